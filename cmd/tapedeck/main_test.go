package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func tapedeckBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tapedeck-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "tapedeck")
		out, err := exec.Command("go", "build", "-race", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is a running tapedeck binary with its log.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  strings.Builder
	done chan error
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func startBinary(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(tapedeckBinary(t), args...)
	cmd.Dir = t.TempDir()
	stderr, _ := cmd.StderrPipe()
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("tapedeck output:\n%s", p.output())
		}
	})
	return p
}

func writeConfig(t *testing.T, sipPort, httpPort int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tapedeck.yaml")
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 200)
	cfg := testutil.NodeYAML("", t.TempDir(), sipPort, httpPort, rtpLo, rtpHi) + `shutdown_timeout_seconds: 20
dialplan:
  - exten: _3XX
    app: Stasis(vm-record,${EXTEN})
`
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func waitHTTP(t *testing.T, base string) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
		res, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	}, "tapedeck did not start")
}

// answerEverything connects an app that answers each StasisStart.
func answerEverything(t *testing.T, base, app string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ws := strings.Replace(base, "http://", "ws://", 1)
	conn, _, err := websocket.Dial(ctx, ws+"/ari/events?app="+app+"&api_key=asterisk:asterisk", nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			_, data, err := conn.Read(ctx)
			if err != nil {
				return
			}
			if s := string(data); strings.Contains(s, `"type":"StasisStart"`) {
				i := strings.Index(s, `"id":"`) + 6
				id := s[i : i+strings.Index(s[i:], `"`)]
				req, _ := http.NewRequest("POST", base+"/ari/channels/"+id+"/answer", nil)
				req.SetBasicAuth("asterisk", "asterisk")
				if res, err := http.DefaultClient.Do(req); err == nil {
					res.Body.Close()
				}
			}
		}
	}()
}

// TestGracefulShutdown: SIGTERM stops new calls (503) while the call in
// progress goes on; the process exits 0 once it ends.
func TestGracefulShutdown(t *testing.T) {
	sipPort, httpPort := testutil.FreeSIPPort(t), testutil.FreeTCPPort(t)
	p := startBinary(t, "-config", writeConfig(t, sipPort, httpPort))
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitHTTP(t, base)
	answerEverything(t, base, "vm-record")

	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	phone, err := sipua.New(sipua.Options{User: "dave", RTPMin: rtpLo, RTPMax: rtpHi})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	target := fmt.Sprintf("sip:305@127.0.0.1:%d", sipPort)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call, err := phone.Dial(ctx, target, sipua.CallOptions{})
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, p.output())
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool { return strings.Contains(p.output(), "draining") }, "no drain log")
	_, err = phone.Dial(ctx, target, sipua.CallOptions{})
	var rej *sipua.ErrRejected
	if !errors.As(err, &rej) || rej.Code != 503 {
		t.Fatalf("new call during drain: %v, want 503", err)
	}
	select {
	case err := <-p.done:
		t.Fatalf("exited while a call was in progress: %v", err)
	case <-call.Ended():
		t.Fatal("call in progress was hung up by the drain")
	default:
	}
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not exit after the last call ended")
	}
}

// TestSecondSignalForces: a second SIGTERM hangs up the calls and exits.
func TestSecondSignalForces(t *testing.T) {
	sipPort, httpPort := testutil.FreeSIPPort(t), testutil.FreeTCPPort(t)
	p := startBinary(t, "-config", writeConfig(t, sipPort, httpPort))
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitHTTP(t, base)
	answerEverything(t, base, "vm-record")
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	phone, err := sipua.New(sipua.Options{User: "erin", RTPMin: rtpLo, RTPMax: rtpHi})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call, err := phone.Dial(ctx, fmt.Sprintf("sip:305@127.0.0.1:%d", sipPort), sipua.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool { return strings.Contains(p.output(), "draining") }, "no drain log")
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-call.Ended():
	case <-time.After(10 * time.Second):
		t.Fatal("call not hung up by the forced stop")
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("did not exit after the second signal")
	}
}

func TestConfigCheck(t *testing.T) {
	var out strings.Builder
	if code := run([]string{"-t", "-config", "../../config-sample.yaml"}, &out); code != 0 {
		t.Fatalf("config-sample.yaml: exit %d: %s", code, out.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("sip:\n  listen: 127.0.0.1:5060\n  lisen: typo\n"), 0o644)
	out.Reset()
	if code := run([]string{"-t", "-config", bad}, &out); code == 0 || !strings.Contains(out.String(), "lisen") {
		t.Fatalf("unknown key accepted: %d %s", code, out.String())
	}
	out.Reset()
	if code := run([]string{"-t", "-http", "0.0.0.0:8088"}, &out); code == 0 || !strings.Contains(out.String(), "ari.users") {
		t.Fatalf("non-loopback HTTP without users accepted: %d %s", code, out.String())
	}
	out.Reset()
	t.Setenv("TAPEDECK_ARI_USER", "app:secret")
	if code := run([]string{"-t", "-http", "0.0.0.0:8088"}, &out); code != 0 {
		t.Fatalf("env credentials not applied: %d %s", code, out.String())
	}
	_ = io.Discard
}

// Allocations are sampled for heap profiles only when -memprofile asks for
// one: each sample unwinds the stack and keeps a bucket per call site.
func TestHeapProfilingOnlyWithMemprofile(t *testing.T) {
	defer func(r int) { runtime.MemProfileRate = r }(runtime.MemProfileRate)
	var out strings.Builder
	runtime.MemProfileRate = 512 << 10
	if code := run([]string{"-t", "-memprofile", filepath.Join(t.TempDir(), "heap.prof"), "-config", "../../config-sample.yaml"}, &out); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	if runtime.MemProfileRate == 0 {
		t.Fatal("-memprofile given, but allocation sampling is off")
	}
	if code := run([]string{"-t", "-config", "../../config-sample.yaml"}, &out); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	if runtime.MemProfileRate != 0 {
		t.Fatalf("no -memprofile, but MemProfileRate = %d", runtime.MemProfileRate)
	}
}
