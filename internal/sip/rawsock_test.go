package sip

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil/schedtrace"
)

// TestOptionsProbeStaysOutOfTheSyscallState: the SIP listener reads and
// answers a dispatcher's OPTIONS probe (Kamailio's, each second) without
// entering the scheduler's syscall state, which woke the runtime's
// monitor once a probe on an idle node and cost each node behind Kamailio
// 1.5–2 ms of CPU a second (bench/RESULTS.md, 2026-12-07).
func TestOptionsProbeStaysOutOfTheSyscallState(t *testing.T) {
	_, c, to := udpEndpoint(t, panicky{}, slog.New(slog.DiscardHandler))
	port := c.LocalAddr().(*net.UDPAddr).Port
	const probes = 10
	buf := make([]byte, 65535)
	probe := func(i int) {
		msg := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-probe%d-%d\r\nFrom: <sip:dispatcher@tapedeck.invalid>;tag=p%d\r\nTo: <sip:%s>\r\nCall-ID: probe-%d-%d\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
			to, port, i, time.Now().UnixNano(), i, to, i, time.Now().UnixNano())
		if _, err := c.WriteToUDP([]byte(msg), to); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("probe %d: no answer: %v", i, err)
		}
		if !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200") {
			t.Fatalf("probe %d: %q", i, buf[:n])
		}
	}
	probe(-1) // the listener's first read has happened
	got := schedtrace.Syscalls(t, func() {
		for i := range probes {
			probe(i)
		}
	}, "sipgo/sip.(*UDPConnection)", "sipgo/sip.(*TransportUDP)")
	if len(got) > 0 {
		t.Fatalf("%d of the SIP listener's reads and writes for %d probes went through the syscall state, e.g. %s", len(got), probes, got[0])
	}
}
