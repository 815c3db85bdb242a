package e2e

// Kamailio (Debian package kamailio) in front of tapedeck nodes, with the
// dispatcher configuration of packaging/kamailio.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// startKamailio runs kamailio with packaging/kamailio/kamailio.cfg on a
// free loopback port, dispatching to nodes (host:port), and returns its
// address once it answers OPTIONS. Without kamailio the test skips, or
// fails under CI=true.
func startKamailio(t *testing.T, nodes ...string) string {
	t.Helper()
	bin, err := exec.LookPath("kamailio")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/kamailio"); err2 != nil {
			testutil.SkipOrFail(t, "SKIP Kamailio test: kamailio not installed (Debian package kamailio; scripts/test-deps.sh)")
		}
		bin = "/usr/sbin/kamailio"
	}
	cfg, err := filepath.Abs("../../packaging/kamailio/kamailio.cfg")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var list strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&list, "1 sip:%s\n", n)
	}
	listPath := filepath.Join(dir, "dispatcher.list")
	if err := os.WriteFile(listPath, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	port := testutil.FreeUDPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "-f", cfg, "-DD", "-E", "-l", "udp:"+addr,
		"-A", fmt.Sprintf("DISPATCHER_LIST=%q", listPath), "-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"), "-w", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var mu sync.Mutex
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = lockedWriter{&mu, &out}, lockedWriter{&mu, &out}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			mu.Lock()
			t.Logf("kamailio output:\n%s", out.String())
			mu.Unlock()
		}
	})
	pollFor(t, 10*time.Second, func() bool { return sipOptions(addr) == 200 }, "kamailio answering OPTIONS")
	return addr
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// sipOptions sends one OPTIONS to addr over UDP and returns the status
// code of the answer (0: none within a second).
func sipOptions(addr string) int {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return 0
	}
	defer c.Close()
	local := c.LocalAddr().String()
	tag := fmt.Sprint(time.Now().UnixNano())
	req := "OPTIONS sip:" + addr + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";rport;branch=z9hG4bK" + tag + "\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:probe@" + local + ">;tag=" + tag + "\r\nTo: <sip:" + addr + ">\r\n" +
		"Call-ID: " + tag + "@probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		return 0
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return 0
	}
	var code int
	if _, err := fmt.Sscanf(string(buf[:n]), "SIP/2.0 %d", &code); err != nil {
		return 0
	}
	return code
}

// channelCount is the number of channels a node's ARI lists.
func channelCount(t *testing.T, n *node) int {
	t.Helper()
	var chans []json.RawMessage
	if err := json.Unmarshal(n.mustDo("GET", "/channels", 200), &chans); err != nil {
		t.Fatal(err)
	}
	return len(chans)
}

// TestKamailioDispatcher: Kamailio with the repository's dispatcher
// configuration spreads calls over two tapedeck nodes; once one drains
// (Shutdown, as on SIGTERM, with a call still up on it) it answers the
// probes and INVITEs with 503 and every new call lands on the other.
func TestKamailioDispatcher(t *testing.T) {
	a := startNode(t, withRoute("2001", "Record(calls/${UNIQUEID},wav)"))
	b := startNode(t, withRoute("2001", "Record(calls/${UNIQUEID},wav)"))
	kam := startKamailio(t, a.srv.SIPAddr(), b.srv.SIPAddr())
	phone := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	names := map[*node]string{a: "A", b: "B"}
	// place dials 2001 through Kamailio and says which node took the
	// call; the call stays up.
	place := func() (*node, *sipua.Call) {
		t.Helper()
		base := map[*node]int{a: channelCount(t, a), b: channelCount(t, b)}
		call, err := phone.Dial(ctx, sipua.Target("2001", kam), sipua.CallOptions{})
		if err != nil {
			t.Fatalf("call through kamailio: %v", err)
		}
		var on *node
		pollFor(t, 5*time.Second, func() bool {
			for _, n := range []*node{a, b} {
				if channelCount(t, n) > base[n] {
					on = n
					return true
				}
			}
			return false
		}, "the call's channel on a node")
		return on, call
	}
	end := func(n *node, call *sipua.Call) {
		t.Helper()
		must(t, call.Hangup(ctx))
		pollFor(t, 5*time.Second, func() bool { return channelCount(t, n) == 0 }, "the call's channel gone")
	}

	landed := map[string]int{}
	for range 4 {
		n, call := place()
		landed[names[n]]++
		end(n, call)
	}
	if landed["A"] == 0 || landed["B"] == 0 {
		t.Fatalf("calls by node: %v, want both", landed)
	}

	// Drain A with a call up on it.
	var held *sipua.Call
	for held == nil {
		n, call := place()
		if n == a {
			held = call
		} else {
			end(n, call)
		}
	}
	drained := make(chan error, 1)
	go func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		drained <- a.srv.Shutdown(sctx)
	}()
	pollFor(t, 5*time.Second, func() bool { return sipOptions(a.srv.SIPAddr()) == 503 }, "draining node A answering OPTIONS with 503")
	landed = map[string]int{}
	for range 4 {
		n, call := place()
		landed[names[n]]++
		end(n, call)
	}
	if landed["A"] != 0 || landed["B"] != 4 {
		t.Errorf("calls by node while A drains: %v, want all on B", landed)
	}
	must(t, held.Hangup(ctx))
	select {
	case err := <-drained:
		if err != nil {
			t.Errorf("A's shutdown: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("A did not finish draining after its last call")
	}
}

// TestKamailioSkipsUnreadyNode isolates the OPTIONS probing from the
// failover route: node A is unready (it lost NATS, so /readyz fails) but
// still takes every INVITE it gets, so only the dispatcher's probes (A
// answers them 503) keep calls away from it. Once Kamailio has seen A's
// 503, every call lands on B.
func TestKamailioSkipsUnreadyNode(t *testing.T) {
	a := startNode(t, withRoute("2001", "Record(calls/${UNIQUEID},wav)"), func(c *config.Config) { c.NATS.URL = "nats://127.0.0.1:1" })
	b := startNode(t, withRoute("2001", "Record(calls/${UNIQUEID},wav)"))
	pollFor(t, 5*time.Second, func() bool { return sipOptions(a.srv.SIPAddr()) == 503 }, "unready node A answering OPTIONS with 503")
	if code := sipOptions(b.srv.SIPAddr()); code != 200 {
		t.Fatalf("ready node B answers OPTIONS %d", code)
	}
	// A takes a call sent to it directly: only the probes can keep calls
	// off it.
	phone := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	direct, err := phone.Dial(ctx, a.target("2001"), sipua.CallOptions{})
	if err != nil {
		t.Fatalf("INVITE straight to the unready node: %v", err)
	}
	must(t, direct.Hangup(ctx))
	pollFor(t, 5*time.Second, func() bool { return channelCount(t, a) == 0 }, "the direct call gone")

	kam := startKamailio(t, a.srv.SIPAddr(), b.srv.SIPAddr())
	place := func() *node {
		t.Helper()
		call, err := phone.Dial(ctx, sipua.Target("2001", kam), sipua.CallOptions{})
		if err != nil {
			t.Fatalf("call through kamailio: %v", err)
		}
		var on *node
		pollFor(t, 5*time.Second, func() bool {
			for _, n := range []*node{a, b} {
				if channelCount(t, n) > 0 {
					on = n
					return true
				}
			}
			return false
		}, "the call's channel on a node")
		must(t, call.Hangup(ctx))
		pollFor(t, 5*time.Second, func() bool { return channelCount(t, on) == 0 }, "the call's channel gone")
		return on
	}
	// Kamailio probes every second: wait until it has marked A (three
	// calls in a row on B, which round-robin over two active nodes does
	// not give)...
	deadline := time.Now().Add(15 * time.Second)
	for run := 0; run < 3; {
		if time.Now().After(deadline) {
			t.Fatal("Kamailio kept sending calls to the unready node")
		}
		if place() == b {
			run++
		} else {
			run = 0
		}
	}
	// ... then none goes to A.
	for i := range 6 {
		if place() == a {
			t.Fatalf("call %d landed on the unready node", i)
		}
	}
}
