package sip

import "time"

// handlerWorkers runs the endpoint's request handlers on goroutines it
// keeps between requests. sipgo starts a goroutine for every request, with
// a small stack; a handler that answers an INVITE, starts a recording and
// writes its catalog row, or ends a call and writes its final row and CDR
// (SQLite's transpiled frames are large) grows that stack two or three
// times, copying it each time, on every call (6–9 % of the server's CPU in
// the profiles of bench/RESULTS.md, cpu13). A kept goroutine grows its
// stack once, and keeps it until a garbage collection finds it idle and
// halves it. A request finds an idle goroutine or starts another, so a
// handler that waits (an INVITE ringing until an application answers)
// never holds another request up; goroutines idle longer than
// workerIdle end.
type handlerWorkers struct {
	work chan func()
}

// workerIdle is how long a handler goroutine waits for another request
// before it ends.
const workerIdle = 10 * time.Second

func newHandlerWorkers() *handlerWorkers {
	return &handlerWorkers{work: make(chan func())}
}

// run runs f on a kept goroutine and returns when f has returned.
func (w *handlerWorkers) run(f func()) {
	done := make(chan struct{})
	job := func() {
		defer close(done)
		f()
	}
	select {
	case w.work <- job: // an idle goroutine took it
	default:
		go w.loop(job)
	}
	<-done
}

func (w *handlerWorkers) loop(job func()) {
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		job()
		t.Reset(workerIdle)
		select {
		case job = <-w.work:
		case <-t.C:
			return
		}
	}
}
