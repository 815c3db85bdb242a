package sip

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil"
)

// panicky panics for calls to 666 and answers the others.
type panicky struct{}

func (panicky) Invite(d *Dialog) {
	if d.Exten() == "666" {
		var m map[string]int
		m["boom"]++ // a nil map write: the kind of bug a handler can have
	}
	d.SetHandler(fuzzCalls{})
	_ = d.Answer(fuzzSDP)
}

// finalTo sends an INVITE for exten over UDP and returns the status line of
// the final response.
func finalTo(t *testing.T, c *net.UDPConn, to *net.UDPAddr, exten string, n int) string {
	t.Helper()
	port := c.LocalAddr().(*net.UDPAddr).Port
	msg := fmt.Sprintf("INVITE sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-p%d\r\nFrom: <sip:a@127.0.0.1>;tag=f%d\r\nTo: <sip:%s@%s>\r\nCall-ID: panic-%d\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1:%d>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		exten, to, port, n, n, exten, to, n, port)
	if _, err := c.WriteToUDP([]byte(msg), to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		k, _, err := c.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("no final response to the INVITE for %s: %v", exten, err)
		}
		first, _, _ := strings.Cut(string(buf[:k]), "\r\n")
		if !strings.HasPrefix(first, "SIP/2.0 1") {
			return first
		}
	}
}

// TestPanicFailsOnlyThatCall: a panic in the handler of one call is
// recovered, logged with its stack and counted; that call gets 500, and
// the endpoint goes on answering the next.
func TestPanicFailsOnlyThatCall(t *testing.T) {
	logs := &testutil.SyncBuffer{}
	e, c, to := udpEndpoint(t, panicky{}, slog.New(slog.NewTextHandler(logs, nil)))

	if got := finalTo(t, c, to, "666", 1); !strings.HasPrefix(got, "SIP/2.0 500") {
		t.Fatalf("the call whose handler panicked got %q, want 500", got)
	}
	if n := e.Stats().PanicsRecovered; n != 1 {
		t.Fatalf("%d panics counted, want 1", n)
	}
	if l := logs.String(); !strings.Contains(l, "recovered from a panic") || !strings.Contains(l, "endpoint_test.go") {
		t.Fatalf("the panic was not logged with its stack:\n%s", l)
	}
	if got := finalTo(t, c, to, "301", 2); !strings.HasPrefix(got, "SIP/2.0 200") {
		t.Fatalf("the next call got %q, want 200", got)
	}
}

// udpEndpoint starts an endpoint for h on a loopback UDP port and opens a
// loopback UDP socket to talk to it from; both close when the test ends.
// It returns the endpoint, the socket and the endpoint's address.
func udpEndpoint(t *testing.T, h Handler, log *slog.Logger) (*Endpoint, *net.UDPConn, *net.UDPAddr) {
	t.Helper()
	e, err := New(Options{Listen: "127.0.0.1:0", Transports: []string{"udp"}, Logger: log}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	to, err := net.ResolveUDPAddr("udp", e.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return e, c, to
}
