package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil"
)

// TestFilesOwnerOnlyAndSecretsFromFiles: a server started on a fresh data
// directory creates it, the catalog database, the recordings root and the
// signing key owner-only; an ARI user given in a file through
// TAPEDECK_ARI_USER_FILE is accepted (and replaces the default one); the
// signing key is the same after a restart.
func TestFilesOwnerOnlyAndSecretsFromFiles(t *testing.T) {
	sipPort, httpPort := testutil.FreeSIPPort(t), testutil.FreeTCPPort(t)
	data := filepath.Join(t.TempDir(), "data")
	secret := filepath.Join(t.TempDir(), "ari-user")
	os.WriteFile(secret, []byte("app:s3cret\n"), 0o600)
	start := func() *proc {
		cmd := exec.Command(tapedeckBinary(t), "-sip", fmt.Sprintf("127.0.0.1:%d", sipPort), "-http", fmt.Sprintf("127.0.0.1:%d", httpPort), "-data", data)
		cmd.Env = append(os.Environ(), "TAPEDECK_ARI_USER_FILE="+secret)
		cmd.Dir = t.TempDir()
		p := &proc{cmd: cmd, done: make(chan error, 1)}
		cmd.Stderr = &logWriter{p: p}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.done <- cmd.Wait() }()
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		return p
	}
	p := start()
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitHTTP(t, base)
	for _, c := range []struct {
		user, pass string
		code       int
	}{{"app", "s3cret", 200}, {"asterisk", "asterisk", 401}} {
		req, _ := http.NewRequest("GET", base+"/ari/channels", nil)
		req.SetBasicAuth(c.user, c.pass)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.code {
			t.Errorf("ARI as %s: %d, want %d", c.user, res.StatusCode, c.code)
		}
	}
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{
		{data, 0o700}, {filepath.Join(data, "recording"), 0o700},
		{filepath.Join(data, "tapedeck.db"), 0o600}, {filepath.Join(data, "signing.key"), 0o600},
	} {
		fi, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != f.mode {
			t.Errorf("%s: mode %v, want %v", f.path, fi.Mode().Perm(), f.mode)
		}
	}
	key1, _ := os.ReadFile(filepath.Join(data, "signing.key"))
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	start()
	waitHTTP(t, base)
	key2, _ := os.ReadFile(filepath.Join(data, "signing.key"))
	if len(key1) < 64 || string(key1) != string(key2) {
		t.Errorf("signing key changed across a restart: %q -> %q", key1, key2)
	}
}

type logWriter struct{ p *proc }

func (w *logWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.log.Write(b)
}
