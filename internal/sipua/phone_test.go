package sipua

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestFirstRequestLeavesFromListenPort: every request a UDP phone sends,
// its very first included (sent the moment New returns), leaves from the
// port it listens on and advertises, as a trunk matched by source address
// needs. Several fresh phones in a row, as the load generator starts them.
func TestFirstRequestLeavesFromListenPort(t *testing.T) {
	srv, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	target := "sip:2100@" + srv.LocalAddr().String()
	buf := make([]byte, 65535)
	// next reads the next OPTIONS (retransmissions of an earlier one,
	// recognised by their Call-ID, are skipped).
	next := func(seen map[string]bool) (src *net.UDPAddr, msg string) {
		t.Helper()
		for {
			_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := srv.ReadFrom(buf)
			if err != nil {
				t.Fatalf("no request reached the far end: %v", err)
			}
			msg = string(buf[:n])
			id := header(msg, "Call-ID")
			if seen[id] {
				continue
			}
			seen[id] = true
			return from.(*net.UDPAddr), msg
		}
	}
	for i := range 10 {
		p, err := New(Options{User: "trunk"})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range 2 { // nobody answers: each ends at its deadline
				rctx, rcancel := context.WithTimeout(ctx, 100*time.Millisecond)
				_, _ = p.Options(rctx, target)
				rcancel()
			}
		}()
		seen := map[string]bool{}
		for k := range 2 {
			src, msg := next(seen)
			if !strings.HasPrefix(msg, "OPTIONS ") {
				t.Fatalf("phone %d request %d: got %q", i, k, strings.SplitN(msg, "\r\n", 2)[0])
			}
			if src.Port != p.Port() {
				t.Errorf("phone %d request %d left from port %d, the phone listens on %d (Via %s)", i, k, src.Port, p.Port(), header(msg, "Via"))
			}
		}
		<-done
		cancel()
		p.Close()
	}
}

// header returns the value of a SIP message's first header called name.
func header(msg, name string) string {
	for _, l := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
