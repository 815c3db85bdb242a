// Package nodeari runs the Node.js ARI client scripts in test/node (real
// npm ari-client 2.2.0 apps), or a built ARI client program (StartProgram),
// for end-to-end tests and reads the JSON lines they print.
package nodeari

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil"
)

// Line is one JSON object printed by the script, e.g.
// {"type":"StasisStart","args":["x"],"channel":"1700000000.1"}.
type Line = map[string]any

// Proc is a running node script.
type Proc struct {
	t      testing.TB
	Script string // absolute path of the script or program

	cmd    *exec.Cmd
	exited chan struct{}
	err    error // cmd.Wait result, valid after exited is closed

	mu       sync.Mutex
	changed  chan struct{}
	lines    []Line
	consumed []bool
	stdout   []string // every stdout line, in order
	eof      bool
	stderr   bytes.Buffer

	closeOnce sync.Once
}

// Start runs `node test/node/<script>` (script may also be an absolute
// path) with a clean environment holding only PATH, HOME and env. Node,
// or test/node/node_modules, missing: skip, or fail when CI=true. The
// process is killed by a t.Cleanup; when the test failed its stdout and
// stderr are logged.
func Start(t testing.TB, script string, env map[string]string) *Proc {
	t.Helper()
	node := testutil.RequireTool(t, "node")
	root := testutil.RepoRoot(t)
	nodeDir := filepath.Join(root, "test", "node")
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "ari-client")); err != nil {
		testutil.SkipOrFail(t, "test/node/node_modules/ari-client missing; run scripts/test-deps.sh (npm ci in test/node)")
	}
	if !filepath.IsAbs(script) {
		script = filepath.Join(nodeDir, script)
	}
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("nodeari: %v", err)
	}

	cmd := exec.Command(node, script)
	cmd.Dir = nodeDir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "NODE_PATH=" + filepath.Join(nodeDir, "node_modules")}
	return start(t, cmd, script, env)
}

// StartProgram runs the executable bin (e.g. a Go ARI client the test
// built, test/goari) like Start runs a script: clean environment holding
// only PATH, HOME and env, JSON lines read from stdout, killed by a
// t.Cleanup.
func StartProgram(t testing.TB, bin string, env map[string]string) *Proc {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	return start(t, cmd, bin, env)
}

func start(t testing.TB, cmd *exec.Cmd, script string, env map[string]string) *Proc {
	t.Helper()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	killWithParent(cmd)
	p := &Proc{t: t, Script: script, cmd: cmd, exited: make(chan struct{}), changed: make(chan struct{})}
	cmd.Stderr = &lockedWriter{mu: &p.mu, buf: &p.stderr}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("nodeari: start %s: %v", script, err)
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
		for sc.Scan() {
			text := sc.Text()
			var m Line
			p.mu.Lock()
			p.stdout = append(p.stdout, text)
			if json.Unmarshal([]byte(text), &m) == nil && m != nil {
				p.lines = append(p.lines, m)
				p.consumed = append(p.consumed, false)
			}
			p.notifyLocked()
			p.mu.Unlock()
		}
		p.mu.Lock()
		p.eof = true
		p.notifyLocked()
		p.mu.Unlock()
	}()
	go func() {
		<-readDone // all stdout read before Wait closes the pipe
		p.err = cmd.Wait()
		close(p.exited)
		p.mu.Lock()
		p.notifyLocked()
		p.mu.Unlock()
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s:\n%s", filepath.Base(script), p.Output())
		}
	})
	return p
}

type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(b)
}

func (p *Proc) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// WaitLine returns the oldest printed line whose "type" is typ that no
// earlier WaitLine returned, waiting up to timeout. Lines printed before the
// call count. It fails fast when the script exits without printing one.
func (p *Proc) WaitLine(typ string, timeout time.Duration) (Line, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		for i, l := range p.lines {
			if !p.consumed[i] && l["type"] == typ {
				p.consumed[i] = true
				p.mu.Unlock()
				return l, nil
			}
		}
		eof, ch := p.eof, p.changed
		p.mu.Unlock()
		if eof {
			return nil, fmt.Errorf("%s ended without a %q line:\n%s", filepath.Base(p.Script), typ, p.Output())
		}
		select {
		case <-ch:
		case <-timer.C:
			return nil, fmt.Errorf("%s: no %q line within %v:\n%s", filepath.Base(p.Script), typ, timeout, p.Output())
		}
	}
}

// Lines returns a copy of all JSON lines printed so far.
func (p *Proc) Lines() []Line {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Line(nil), p.lines...)
}

// Wait waits up to timeout for the script to exit. It returns nil for exit
// status 0, and an error holding the output otherwise.
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.exited:
	case <-time.After(timeout):
		return fmt.Errorf("%s still running after %v:\n%s", filepath.Base(p.Script), timeout, p.Output())
	}
	if p.err != nil {
		return fmt.Errorf("%s: %w:\n%s", filepath.Base(p.Script), p.err, p.Output())
	}
	return nil
}

// ExitCode returns the exit status, or -1 while it runs (or when killed).
func (p *Proc) ExitCode() int {
	select {
	case <-p.exited:
		var ee *exec.ExitError
		if errors.As(p.err, &ee) {
			return ee.ExitCode()
		}
		if p.err != nil {
			return -1
		}
		return 0
	default:
		return -1
	}
}

// Kill ends the script if it is still running. Start registers it with
// t.Cleanup.
func (p *Proc) Kill() {
	p.closeOnce.Do(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		p.cmd.Process.Kill()
		<-p.exited
	})
}

// Output is everything the script printed: stdout lines then stderr.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	b.WriteString("--- stdout:\n")
	for _, l := range p.stdout {
		b.WriteString(l + "\n")
	}
	b.WriteString("--- stderr:\n")
	b.WriteString(p.stderr.String())
	return b.String()
}
