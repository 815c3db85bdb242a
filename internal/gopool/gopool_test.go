package gopool

import (
	"runtime"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil"
)

// TestRunReusesAGoroutine: functions run one after the other run on one
// kept goroutine.
func TestRunReusesAGoroutine(t *testing.T) {
	seen := map[uint64]bool{}
	for range 20 {
		var id uint64
		Run(func() { id = testutil.GoroutineID() })
		seen[id] = true
	}
	// A Run may come before the goroutine of the one before is idle again.
	if len(seen) > 5 {
		t.Fatalf("20 functions one after the other ran on %d goroutines, want them to reuse a few", len(seen))
	}
}

// TestGoDoesNotWait: a function that waits does not hold up the next: it
// gets a goroutine of its own.
func TestGoDoesNotWait(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	Go(func() { close(started); <-release })
	<-started
	done := make(chan struct{})
	Go(func() { close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a function waited for another")
	}
	close(release)
}

// TestRunReturnsAfterGoexit: Run returns when its function ends the
// goroutine.
func TestRunReturnsAfterGoexit(t *testing.T) {
	Run(runtime.Goexit)
	var ran bool
	Run(func() { ran = true })
	if !ran {
		t.Fatal("the next function did not run")
	}
}
