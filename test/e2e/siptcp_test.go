package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapedeck/tapedeck/internal/config"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func optionsOver(via string, n int, srvAddr string) string {
	return fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/%s;branch=z9hG4bK-opt%d\r\nFrom: <sip:probe@127.0.0.1>;tag=p%d\r\nTo: <sip:%s>\r\nCall-ID: probe-%d\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		srvAddr, via, n, n, srvAddr, n)
}

// udpAlive checks that a UDP OPTIONS is answered 200.
func udpAlive(t *testing.T, srvAddr string, n int) {
	t.Helper()
	raw := newRawSIP(t)
	raw.send(srvAddr, strings.ReplaceAll(optionsOver(fmt.Sprintf("UDP 127.0.0.1:%d", raw.port()), n, srvAddr), "\r\n", "\n"))
	if got := raw.status(5 * time.Second); !strings.HasPrefix(got, "SIP/2.0 200") {
		t.Fatalf("UDP OPTIONS answered %q", got)
	}
}

func httpAlive(t *testing.T, n *node) {
	t.Helper()
	res, err := http.Get(n.baseURL() + "/healthz")
	if err != nil {
		t.Fatalf("HTTP: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("HTTP /healthz: %d", res.StatusCode)
	}
}

// dialFrom opens count TCP connections from local address ip.
func dialFrom(t *testing.T, ip, addr string, count int) []net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	var cs []net.Conn
	for range count {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cs = append(cs, c)
	}
	return cs
}

// TestTCPConnectionLimits: idle TCP connections once piled up until the
// descriptors ran out. Now connections beyond the per-source and the global
// cap are closed at once, UDP and HTTP keep working while the caps are
// reached, idle connections are closed after the idle timeout except the
// one a call is using (its BYE still arrives on it), and TCP accepts again
// afterwards.
func TestTCPConnectionLimits(t *testing.T) {
	n := startNode(t, func(c *config.Config) {
		c.SIP.TCP = config.SIPTCP{IdleTimeoutSeconds: 1, MaxConnections: 12, MaxConnectionsPerSource: 8}
	})
	events := n.connect("test")
	call, id := upCall(t, n, events, "tcp")
	srvAddr := n.srv.SIPAddr()
	st := n.srv.SIPStats
	base := st()
	if base.TCPOpen != 1 {
		t.Fatalf("%d TCP connections open with one TCP call up, want 1", base.TCPOpen)
	}
	handled := func(want int64) func() bool {
		return func() bool { s := st(); return s.TCPOpen+int64(s.TCPRefused-base.TCPRefused) == want }
	}

	// Per source: 8 from 127.0.0.1, the phone's included.
	local := dialFrom(t, "127.0.0.1", srvAddr, 10)
	waitFor(t, 5*time.Second, "10 connections accepted or refused", handled(1+10))
	if s := st(); s.TCPOpen != 8 || s.TCPRefused-base.TCPRefused != 3 {
		t.Fatalf("per-source cap 8: %d open, %d refused; want 8 and 3", s.TCPOpen, s.TCPRefused-base.TCPRefused)
	}
	// Globally: 12.
	other := dialFrom(t, "127.0.0.2", srvAddr, 8)
	waitFor(t, 5*time.Second, "8 more connections accepted or refused", handled(1+10+8))
	if s := st(); s.TCPOpen != 12 || s.TCPRefused-base.TCPRefused != 3+4 {
		t.Fatalf("global cap 12: %d open, %d refused; want 12 and 7", s.TCPOpen, s.TCPRefused-base.TCPRefused)
	}
	// A refused connection is closed by the server: the client reads EOF.
	c := local[len(local)-1]
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("a connection over the cap: read %v, want EOF", err)
	}
	// UDP and HTTP are unaffected.
	udpAlive(t, srvAddr, 1)
	httpAlive(t, n)

	// Idle connections go; the call's stays.
	waitFor(t, 10*time.Second, "idle connections closed", func() bool { return st().TCPOpen == 1 })
	if s := st(); s.TCPIdleClosed-base.TCPIdleClosed != 11 {
		t.Fatalf("%d idle connections closed, want 11", s.TCPIdleClosed-base.TCPIdleClosed)
	}
	for _, c := range append(local[:7], other[:4]...) {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("an idle connection: read %v, want EOF", err)
		}
	}
	// TCP accepts again.
	if got := tcpStatus(t, srvAddr, optionsOver("TCP 127.0.0.1:5099", 2, srvAddr), 5*time.Second); !strings.HasPrefix(got, "SIP/2.0 200") {
		t.Fatalf("TCP OPTIONS after the flood answered %q", got)
	}
	// The call's connection outlived the idle timeout: the BYE arrives.
	n.mustDo("DELETE", "/channels/"+id, 204)
	wait(t, call.Ended(), 5*time.Second, "the BYE on the call's TCP connection")
}

// TestTCPAcceptSurvivesDescriptorExhaustion: sipgo's accept loop returned
// on the first error, so once the descriptors had run out SIP over TCP
// never accepted again. In a subprocess with a small descriptor limit the
// server runs out of descriptors while a TCP client waits in the backlog;
// UDP still answers, and once descriptors are free again that client is
// accepted and answered, and new TCP and HTTP connections work.
func TestTCPAcceptSurvivesDescriptorExhaustion(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts descriptors in /proc/self/fd")
	}
	if os.Getenv("TAPEDECK_E2E_EMFILE_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestTCPAcceptSurvivesDescriptorExhaustion$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "TAPEDECK_E2E_EMFILE_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS") {
			t.Fatalf("subprocess: %v\n%s", err, out)
		}
		return
	}
	n := startNode(t)
	srvAddr := n.srv.SIPAddr()
	st := n.srv.SIPStats
	raw := newRawSIP(t)
	open, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	limit := uint64(len(open) + 24)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: limit, Max: limit}); err != nil {
		t.Fatal(err)
	}
	var files []*os.File
	release := func() {
		for _, f := range files {
			f.Close()
		}
		files = nil
	}
	defer release()
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !errors.Is(err, unix.EMFILE) {
				t.Fatal(err)
			}
			break
		}
		files = append(files, f)
	}
	// One descriptor for the client; the server has none to accept with.
	files[len(files)-1].Close()
	files = files[:len(files)-1]
	c, err := net.DialTimeout("tcp", srvAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, 5*time.Second, "an accept to fail", func() bool { return st().TCPAcceptErrors > 0 })
	raw.send(srvAddr, strings.ReplaceAll(optionsOver(fmt.Sprintf("UDP 127.0.0.1:%d", raw.port()), 3, srvAddr), "\r\n", "\n"))
	if got := raw.status(5 * time.Second); !strings.HasPrefix(got, "SIP/2.0 200") {
		t.Fatalf("UDP OPTIONS while out of descriptors answered %q", got)
	}

	release()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(optionsOver("TCP 127.0.0.1:5098", 4, srvAddr))); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(c)
	line, err := rd.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "SIP/2.0 200") {
		t.Fatalf("the TCP client that waited in the backlog: %q %v", line, err)
	}
	if got := tcpStatus(t, srvAddr, optionsOver("TCP 127.0.0.1:5097", 5, srvAddr), 5*time.Second); !strings.HasPrefix(got, "SIP/2.0 200") {
		t.Fatalf("a new TCP client answered %q", got)
	}
	udpAlive(t, srvAddr, 6)
	httpAlive(t, n)
}
