package call

import (
	"sync"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/wakegrid"
)

// The RTP watchdog looks at the channels on the node's wake-up grid (the
// multiples of its period on the wall clock, where the RTP poller reads),
// not at the phase its first channel came: a channel registered half a
// period off the grid still has every look within a few ms after a grid
// instant.
func TestWatchdogLooksOnWakeGrid(t *testing.T) {
	const timeout = 400 * time.Millisecond // a look every 100 ms
	const every = timeout / 4
	r := newRig(t, func(o *Options) { o.RTPTimeout = timeout })
	var mu sync.Mutex
	var looks []time.Time
	r.m.watchLooked = func(now time.Time) {
		mu.Lock()
		looks = append(looks, now)
		mu.Unlock()
	}
	// Half a period off the grid, so that a ticker started now would look
	// at phase 50 ms every time.
	time.Sleep(wakegrid.Until(every) + every/2)
	r.inbound("", offer(t, 5000, ""))
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(looks)
		mu.Unlock()
		if n >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d watchdog looks in 10 s, want 5", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	late := 0
	for _, at := range looks[:5] {
		// How long after the last grid instant the look ran.
		if off := every - wakegrid.UntilFrom(at, every); off > 20*time.Millisecond {
			late++
			t.Logf("a look %v after its grid instant", off)
		}
	}
	// A loaded host may delay one wake-up; a look off the grid is off
	// every time.
	if late > 1 {
		t.Fatalf("%d of 5 watchdog looks more than 20 ms after a %v grid instant", late, every)
	}
}
