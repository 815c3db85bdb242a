package webhook

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/netguard"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/wakegrid"
)

// timedOutbox notes when the sender's heartbeats and its outbox's
// periodic look (PendingCount, once per look) run.
type timedOutbox struct {
	meta.Outbox
	mu           sync.Mutex
	beats, looks []time.Time
}

func (o *timedOutbox) Heartbeat(ctx context.Context, node string, at time.Time) error {
	o.mu.Lock()
	o.beats = append(o.beats, time.Now())
	o.mu.Unlock()
	return o.Outbox.Heartbeat(ctx, node, at)
}

func (o *timedOutbox) PendingCount(ctx context.Context, node string) (int, error) {
	o.mu.Lock()
	o.looks = append(o.looks, time.Now())
	o.mu.Unlock()
	return o.Outbox.PendingCount(ctx, node)
}

// TestPeriodicWorkOnWakeGrid: with nothing to deliver, a sender's
// heartbeats and its looks at the outbox (every NodeDeadAfter/3) run on the
// node's wake-up grid, the multiples of that period on the wall clock, not
// at the phase the sender started: started half a period off the grid,
// each still runs within a few ms after a grid instant.
func TestPeriodicWorkOnWakeGrid(t *testing.T) {
	const deadAfter = 300 * time.Millisecond
	const every = deadAfter / 3
	st := openStore(t, filepath.Join(t.TempDir(), "tapedeck.db"))
	ob := &timedOutbox{Outbox: st.(meta.Outbox)}
	allow, err := netguard.Parse([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(wakegrid.Until(every) + every/2)
	s := New(Options{Outbox: ob, Node: "n1", Allow: allow, Workers: 1, NodeDeadAfter: deadAfter,
		Log: slog.New(slog.DiscardHandler)})
	s.Start()
	defer s.Close()
	deadline := time.Now().Add(10 * time.Second)
	var beats, looks []time.Time
	for {
		ob.mu.Lock()
		// The first of each runs at once, at the start.
		if len(ob.beats) > 6 && len(ob.looks) > 6 {
			beats, looks = ob.beats[1:6], ob.looks[1:6]
		}
		ob.mu.Unlock()
		if beats != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("fewer than 6 heartbeats and looks in 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range []struct {
		what string
		at   []time.Time
	}{{"heartbeats", beats}, {"outbox looks", looks}} {
		late := 0
		for _, at := range c.at {
			if off := every - wakegrid.UntilFrom(at, every); off > 20*time.Millisecond {
				late++
				t.Logf("%s: one %v after its grid instant", c.what, off)
			}
		}
		// A loaded host may delay one wake-up; work off the grid is off
		// every time.
		if late > 1 {
			t.Errorf("%d of 5 %s more than 20 ms after a %v grid instant", late, c.what, every)
		}
	}
}
