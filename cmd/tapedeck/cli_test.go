package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// TestCLINeverServesByAccident runs the binary with argument lists that
// are not "serve": each exits by itself (a server never would) with the
// expected status, and none logs a start; help goes to standard output.
func TestCLINeverServesByAccident(t *testing.T) {
	bin := tapedeckBinary(t)
	data := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "t.yaml")
	os.WriteFile(cfg, []byte("data_dir: "+data+"\n"), 0o600)
	env := append(os.Environ(),
		fmt.Sprintf("TAPEDECK_SIP_LISTEN=127.0.0.1:%d", testutil.FreeSIPPort(t)),
		fmt.Sprintf("TAPEDECK_HTTP_LISTEN=127.0.0.1:%d", testutil.FreeTCPPort(t)),
		"TAPEDECK_DATA_DIR="+data)
	for _, c := range []struct {
		args   []string
		code   int
		stdout string // substring expected on stdout
		stderr string // substring expected on stderr
	}{
		{[]string{"help"}, 0, "recordings list", ""},
		{[]string{"--help"}, 0, "TAPEDECK_ARI_USER", ""},
		{[]string{"-h"}, 0, "accounts create NAME", ""},
		{[]string{"help", "recordings"}, 0, "Commands:", ""},
		{[]string{"foo"}, 2, "", `unknown command "foo"`},
		{[]string{"serve", "extra"}, 2, "", "serve takes no arguments"},
		{[]string{"-nosuchflag"}, 2, "", "flag provided but not defined"},
		{[]string{"version"}, 0, "tapedeck ", ""},
		{[]string{"-version"}, 0, "(commit ", ""},
		{[]string{"version", "x"}, 2, "", "version takes no arguments"},
		{[]string{"config", "check"}, 0, "", "configuration OK"},
		{[]string{"config", "check", "-config", cfg}, 0, "", "configuration OK"},
		{[]string{"-t"}, 0, "", "configuration OK"},
		{[]string{"config"}, 2, "", "usage: tapedeck config check"},
		{[]string{"accounts", "list"}, 0, "default", ""},
		{[]string{"-config", cfg, "accounts", "list"}, 0, "default", ""},
		{[]string{"accounts", "list", "-config", cfg}, 0, "default", ""},
		{[]string{"accounts"}, 2, "", "usage: tapedeck accounts"},
		{[]string{"accounts", "rotate", "ACnosuch"}, 1, "", "not found"},
		{[]string{"recordings", "list"}, 0, "SID", ""},
		{[]string{"recordings", "list", "-config", cfg}, 0, "SID", ""},
		{[]string{"recordings"}, 2, "", "usage: tapedeck recordings"},
		{[]string{"recordings", "get", "REnosuch"}, 1, "", "not found"},
		{[]string{"recordings", "frobnicate"}, 2, "", "usage: tapedeck recordings"},
		{[]string{"health"}, 1, "", "not reachable"}, // nothing listens on the HTTP port
		{[]string{"health", "x"}, 2, "", "health takes no arguments"},
	} {
		t.Run(strings.Join(c.args, "_"), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, c.args...)
			cmd.Env = env
			cmd.Dir = t.TempDir()
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("still running after 30 s: it is serving\n%s", stderr.String())
			}
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != c.code || !strings.Contains(stdout.String(), c.stdout) || !strings.Contains(stderr.String(), c.stderr) {
				t.Errorf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, c.code, stdout.String(), stderr.String())
			}
			if strings.Contains(stderr.String(), "tapedeck started") {
				t.Errorf("started a server:\n%s", stderr.String())
			}
			if strings.Contains(stderr.String(), "SQL") {
				t.Errorf("database driver text shown:\n%s", stderr.String())
			}
		})
	}
}

// TestSIGHUPReloadsDialplan: SIGHUP with a changed configuration file
// makes a new route answer while the call in progress goes on; an invalid
// file is refused and changes nothing.
func TestSIGHUPReloadsDialplan(t *testing.T) {
	sipPort, httpPort := testutil.FreeSIPPort(t), testutil.FreeTCPPort(t)
	path := writeConfig(t, sipPort, httpPort)
	p := startBinary(t, "-config", path)
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitHTTP(t, base)
	answerEverything(t, base, "vm-record")
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	phone, err := sipua.New(sipua.Options{User: "gina", RTPMin: rtpLo, RTPMax: rtpHi})
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
	newRoute := fmt.Sprintf("sip:2001@127.0.0.1:%d", sipPort)
	var rej *sipua.ErrRejected
	if _, err := phone.Dial(ctx, newRoute, sipua.CallOptions{}); !errors.As(err, &rej) || rej.Code != 404 {
		t.Fatalf("2001 before the reload: %v, want 404", err)
	}
	// An invalid file: refused, the running configuration stays.
	good, _ := os.ReadFile(path)
	os.WriteFile(path, append(good, []byte("  - exten: \"2001\"\n    app: NoSuchApp()\n")...), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool { return strings.Contains(p.output(), "configuration not reloaded") }, "invalid file not reported")
	os.WriteFile(path, append(good, []byte("  - exten: \"2001\"\n    app: Record(calls/reloaded,wav)\n")...), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool { return strings.Contains(p.output(), "configuration reloaded") }, "no reload log")
	second, err := phone.Dial(ctx, newRoute, sipua.CallOptions{})
	if err != nil {
		t.Fatalf("2001 after the reload: %v", err)
	}
	select {
	case <-call.Ended():
		t.Fatal("the call in progress ended at the reload")
	case err := <-p.done:
		t.Fatalf("the process exited at SIGHUP: %v", err)
	default:
	}
	if err := second.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := call.Hangup(ctx); err != nil {
		t.Fatalf("the first call after the reload: %v", err)
	}
}

// TestVersionStamped: the version and commit given at build time are what
// `tapedeck version` prints.
func TestVersionStamped(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "tapedeck")
	out, err := exec.Command("go", "build", "-ldflags", "-X main.version=9.8.7 -X main.commit=c0ffee", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "tapedeck 9.8.7 (commit c0ffee, go") {
		t.Fatalf("version: %v %q", err, out)
	}
}

// TestMakeAlonePrintsTargets: `make` with no target lists the targets and
// runs nothing (it used to start the 10-minute load benchmark).
func TestMakeAlonePrintsTargets(t *testing.T) {
	mk := testutil.RequireTool(t, "make")
	cmd := exec.Command(mk, "--no-print-directory")
	cmd.Dir = testutil.RepoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make: %v\n%s", err, out)
	}
	for _, target := range []string{"make build", "make test", "make bench "} {
		if !strings.Contains(string(out), target) {
			t.Errorf("make's listing lacks %q:\n%s", target, out)
		}
	}
	if strings.Contains(string(out), "go ") || strings.Contains(string(out), "bash ") {
		t.Errorf("make alone ran something:\n%s", out)
	}
}
