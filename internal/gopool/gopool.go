// Package gopool runs functions on goroutines that it keeps between them,
// so that their stacks, once grown, are grown.
//
// A new goroutine starts with a small stack. The server's per-call work —
// answering an INVITE, starting a recording and writing its catalog row,
// ending a call and writing its final row and CDR (SQLite's transpiled
// frames are large) — grew a fresh goroutine's stack two or three times on
// every call, copying it each time (runtime.newstack 6–9 % of the server's
// CPU in the profiles of bench/RESULTS.md, cpu13). A kept goroutine grows
// its stack once, and keeps it until a garbage collection finds it idle and
// halves it. Go finds an idle goroutine or starts another, so a function
// that waits (an INVITE ringing until an application answers) never holds
// another up; goroutines idle longer than Idle end.
package gopool

import "time"

// Idle is how long a kept goroutine waits for more work before it ends.
const Idle = 10 * time.Second

var work = make(chan func())

// Go runs f on a kept goroutine: an idle one, or a new one when none is
// idle. It does not wait for f.
func Go(f func()) {
	select {
	case work <- f: // an idle goroutine took it
	default:
		go loop(f)
	}
}

// Run runs f on a kept goroutine and returns when f has returned (or
// called runtime.Goexit).
func Run(f func()) {
	done := make(chan struct{})
	Go(func() {
		defer close(done)
		f()
	})
	<-done
}

func loop(f func()) {
	t := time.NewTimer(Idle)
	defer t.Stop()
	for {
		f()
		t.Reset(Idle)
		select {
		case f = <-work:
		case <-t.C:
			return
		}
	}
}
