package server

import (
	"testing"

	"github.com/tapedeck/tapedeck/internal/testutil/schedtrace"
)

// TestNATSTrafficStaysOutOfTheSyscallState: the node's NATS connection
// (startNATS) reads and writes without entering the scheduler's syscall
// state (package rawsock), which woke the runtime's monitor at each
// message that found the node idle.
func TestNATSTrafficStaysOutOfTheSyscallState(t *testing.T) {
	run := runID()
	nb, _, _ := clusterNode(t, "raw"+run+".ari.", "raw"+run)
	const flushes = 10 // each a PING written and a PONG read
	got := schedtrace.Syscalls(t, func() {
		for range flushes {
			if err := nb.nc.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}, "github.com/nats-io/nats") // (the symbols spell nats.go "nats%2ego")
	if len(got) > 0 {
		t.Fatalf("%d of the NATS connection's reads and writes for %d flushes went through the syscall state, e.g. %s", len(got), flushes, got[0])
	}
}
