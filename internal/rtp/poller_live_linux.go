package rtp

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A socket whose audio feeds a live stream (a snoop streamed to an external
// media application, a call bridged directly with its stream) cannot wait
// for the Poller's next read of it: up to a read interval (100 ms) of
// latency. SetLive takes such a socket off the worker's schedule and gives
// it a reader of its own: a goroutine parked in Go's network poller on a
// duplicate of the socket's descriptor, which wakes when a datagram
// arrives, drains the socket with recvmmsg (the same batch read, holding
// the same lock, so Drain, TryDrain and Remove keep their meaning) and
// parks again. It costs a wake-up per packet, which is why only sockets
// whose audio someone hears live get one; the rest stay on the Poller's
// schedule, and a socket goes back to it when its stream ends.

// liveState is a member's on-arrival reader, if any.
type liveState struct {
	mu   sync.Mutex // serialises SetLive and Remove
	r    *liveReader
	dead bool // removed: no reader starts again
}

type liveReader struct {
	f    *os.File      // the duplicate descriptor, registered with Go's poller
	done chan struct{} // closed when the goroutine has returned
	gid  int64         // the reader goroutine's id, set before it reads
	idc  chan struct{} // closed once gid is set
	stop atomic.Bool   // set before f is closed: deliver nothing more
}

// SetLive (on) reads the socket as soon as a datagram arrives, on a
// goroutine of its own, instead of on the worker's schedule; off hands it
// back to the worker (or to its owner, SetOwned). The handler's calls stay
// sequential. Off does not wait for the reader to return (it may be called
// from the handler itself, or with a lock the handler takes): the reader
// stops within one wake-up and delivers nothing more after the handler call
// in progress; Remove does wait. It fails only when the descriptor cannot
// be duplicated or registered; the socket then stays on the schedule.
func (r *Registration) SetLive(on bool) error {
	m := r.m
	if !on {
		m.stopLiveReader()
		return nil
	}
	m.lv.mu.Lock()
	defer m.lv.mu.Unlock()
	if m.lv.r != nil || m.lv.dead {
		return nil
	}
	m.sock.mu.RLock()
	if m.sock.closed {
		m.sock.mu.RUnlock()
		return os.ErrClosed
	}
	fd, err := unix.FcntlInt(uintptr(m.sock.fd), unix.F_DUPFD_CLOEXEC, 0)
	m.sock.mu.RUnlock()
	if err != nil {
		return err
	}
	// The duplicate shares the socket's non-blocking open file, so
	// os.NewFile registers it with the network poller.
	f := os.NewFile(uintptr(fd), "rtp-live")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return err
	}
	lr := &liveReader{f: f, done: make(chan struct{}), idc: make(chan struct{})}
	m.lv.r = lr
	m.live.Store(true)
	go lr.run(m, rc)
	return nil
}

// stopLiveReader ends the member's on-arrival reader, if any, without
// waiting for it.
func (m *member) stopLiveReader() {
	m.lv.mu.Lock()
	defer m.lv.mu.Unlock()
	if lr := m.lv.r; lr != nil {
		m.lv.r = nil
		m.live.Store(false)
		lr.halt()
	}
}

// halt makes the reader return: it delivers nothing more, and a deadline in
// the past ends its wait at once. (Closing the file here would wait for a
// handler call in progress, which may be the caller.) The reader closes
// the file as it returns.
func (lr *liveReader) halt() {
	lr.stop.Store(true)
	_ = lr.f.SetReadDeadline(time.Unix(1, 0))
}

// Live reports whether the socket has an on-arrival reader (SetLive).
func (r *Registration) Live() bool { return r.m.live.Load() }

// stopLive ends the on-arrival reader for good (Remove) and waits for it,
// unless called from that reader's own handler.
func (r *Registration) stopLive() {
	m := r.m
	m.lv.mu.Lock()
	lr := m.lv.r
	m.lv.r, m.lv.dead = nil, true
	m.live.Store(false)
	m.lv.mu.Unlock()
	if lr == nil {
		return
	}
	lr.halt()
	<-lr.idc
	if lr.gid != goid() {
		<-lr.done
	}
}

// run drains the socket each time the network poller says it is readable.
// RawConn.Read calls the function, and while it returns false waits for
// the descriptor to become readable again; closing the file ends the wait
// with an error. The poller is edge-triggered: a datagram that arrives
// while the function reads marks the descriptor ready, so the next wait
// returns at once and nothing is left unread.
func (lr *liveReader) run(m *member, rc syscall.RawConn) {
	defer close(lr.done)
	lr.gid = goid()
	close(lr.idc)
	_ = rc.Read(func(uintptr) bool {
		m.busy.Lock()
		defer m.busy.Unlock()
		if m.removed || lr.stop.Load() {
			return true
		}
		m.holder.Store(lr.gid)
		b := batches.Get().(*batch)
		b.read(m)
		batches.Put(b)
		m.holder.Store(0)
		return false
	})
	lr.f.Close()
	// Ended without being stopped (the network poller refused the wait):
	// the worker reads the socket again.
	m.lv.mu.Lock()
	if m.lv.r == lr {
		m.lv.r = nil
		m.live.Store(false)
	}
	m.lv.mu.Unlock()
}
