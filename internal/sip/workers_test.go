package sip

import (
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/tapedeck/tapedeck/internal/testutil"
)

// goroutineRecorder answers every call, noting the goroutine that ran its
// handler.
type goroutineRecorder struct {
	mu       sync.Mutex
	ids      []uint64
	returned chan struct{}
}

func (g *goroutineRecorder) Invite(d *Dialog) {
	defer func() { g.returned <- struct{}{} }()
	g.mu.Lock()
	g.ids = append(g.ids, testutil.GoroutineID())
	g.mu.Unlock()
	d.SetHandler(fuzzCalls{})
	_ = d.Answer(fuzzSDP)
}

// TestHandlersRunOnKeptGoroutines: requests one after the other are
// handled on one kept goroutine (whose stack has grown already), not on
// the goroutine sipgo starts for each request (package gopool).
func TestHandlersRunOnKeptGoroutines(t *testing.T) {
	g := &goroutineRecorder{returned: make(chan struct{}, 1)}
	_, c, to := udpEndpoint(t, g, slog.New(slog.DiscardHandler))
	const n = 20
	for i := range n {
		if got := finalTo(t, c, to, "301", 10+i); !strings.HasPrefix(got, "SIP/2.0 200") {
			t.Fatalf("call %d got %q, want 200", i, got)
		}
		<-g.returned
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.ids) != n {
		t.Fatalf("%d handlers ran, want %d", len(g.ids), n)
	}
	seen := map[uint64]bool{}
	for _, id := range g.ids {
		seen[id] = true
	}
	// One goroutine, or a few where a request came before the goroutine
	// that handled the one before was idle again.
	if len(seen) > n/4 {
		t.Fatalf("%d requests one after the other ran on %d goroutines %v, want them to reuse a few", n, len(seen), g.ids)
	}
	t.Logf("%d requests one after the other ran on %d goroutines", n, len(seen))
}
