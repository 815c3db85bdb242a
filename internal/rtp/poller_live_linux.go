package rtp

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A socket whose audio feeds a live stream (a snoop streamed to an external
// media application, a call bridged directly with its stream) cannot wait
// for the Poller's next read of it: up to a read interval (100 ms) of
// latency. SetLive takes such a socket off the worker's schedule and reads
// it on arrival instead.
//
// Each worker has one reader for all its live sockets: a goroutine that
// waits, in Go's network poller, on an epoll set of its own holding those
// sockets (an epoll descriptor is itself pollable: it becomes readable when
// any socket in it does). When it wakes it drains every socket that is
// ready, with the same batch read as the worker and holding the member's
// lock, so Drain, TryDrain and Remove keep their meaning. Packets that
// arrive together (a load generator sends its calls' packets in one burst;
// a busy node's sockets are often ready several at a time) cost one
// wake-up of one goroutine instead of one goroutine each, and the
// runtime's poller watches one descriptor per worker instead of one per
// live socket. Sockets whose audio nobody hears live stay on the Poller's
// schedule, and a socket goes back to it when its stream ends.
//
// Waiting a little after a wake-up so that more packets gather (a 2 ms
// sleep, the set taken out of the runtime's poller meanwhile) was tried
// and measured dearer under the load generator (bench/RESULTS.md, str19).

// liveSet is a worker's on-arrival reading: its live sockets, by
// descriptor, and the reader that serves them while there are any.
type liveSet struct {
	mu      sync.Mutex // serialises SetLive and Remove; guards the fields and member.lvDead
	members map[int32]*member
	r       *liveReader
}

type liveReader struct {
	ep   int           // the epoll set of the live sockets
	f    *os.File      // ep, registered with Go's network poller
	done chan struct{} // closed when the goroutine has returned
	stop atomic.Bool   // deliver nothing more
}

// SetLive (on) reads the socket as soon as a datagram arrives, on the
// worker's live reader, instead of on the worker's schedule; off hands it
// back to the worker (or to its owner, SetOwned). The handler's calls stay
// sequential. Off does not wait for the reader (it may be called from the
// handler itself, or with a lock a handler takes): the reader delivers
// nothing more of this socket after the handler call in progress, if any,
// and its batch. It fails only when the epoll set cannot be made or the
// socket added to it; the socket then stays on the schedule.
func (r *Registration) SetLive(on bool) error {
	m, s := r.m, &r.w.live
	s.mu.Lock()
	defer s.mu.Unlock()
	if !on {
		if m.live.Load() {
			s.removeLocked(m)
		}
		return nil
	}
	if m.live.Load() || m.lvDead {
		return nil
	}
	if s.r == nil {
		lr, err := startLiveReader(s)
		if err != nil {
			return err
		}
		s.r = lr
	}
	m.sock.mu.RLock()
	defer m.sock.mu.RUnlock()
	if m.sock.closed {
		s.stopIfEmptyLocked()
		return os.ErrClosed
	}
	fd := int32(m.sock.fd)
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: fd}
	if err := unix.EpollCtl(s.r.ep, unix.EPOLL_CTL_ADD, int(fd), &ev); err != nil {
		s.stopIfEmptyLocked()
		return err
	}
	if s.members == nil {
		s.members = map[int32]*member{}
	}
	s.members[fd] = m
	m.live.Store(true)
	return nil
}

// removeLocked takes a live member out of the set; the reader stops when
// none is left.
func (s *liveSet) removeLocked(m *member) {
	m.live.Store(false)
	for fd, x := range s.members {
		if x == m {
			delete(s.members, fd)
			// The socket may be closed already (its registration then
			// went with it); an error means nothing else.
			_ = unix.EpollCtl(s.r.ep, unix.EPOLL_CTL_DEL, int(fd), nil)
			break
		}
	}
	s.stopIfEmptyLocked()
}

func (s *liveSet) stopIfEmptyLocked() {
	if len(s.members) == 0 && s.r != nil {
		s.r.halt()
		s.r = nil
	}
}

// Live reports whether the socket is read on arrival (SetLive).
func (r *Registration) Live() bool { return r.m.live.Load() }

// stopLive takes the socket off the live reader for good (Remove). It does
// not wait for the reader: Remove then waits for a read in progress
// (member.busy), after which nothing is delivered.
func (r *Registration) stopLive() {
	s := &r.w.live
	s.mu.Lock()
	defer s.mu.Unlock()
	r.m.lvDead = true
	if r.m.live.Load() {
		s.removeLocked(r.m)
	}
}

// stopLive ends the worker's live reader and waits for it (Poller.Close).
func (w *pollWorker) stopLive() {
	s := &w.live
	s.mu.Lock()
	lr := s.r
	for _, m := range s.members {
		m.live.Store(false)
	}
	s.members, s.r = nil, nil
	s.mu.Unlock()
	if lr != nil {
		lr.halt()
		<-lr.done
	}
}

func startLiveReader(s *liveSet) (*liveReader, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	// Non-blocking, so os.NewFile registers it with the network poller.
	if err := unix.SetNonblock(ep, true); err != nil {
		unix.Close(ep)
		return nil, err
	}
	f := os.NewFile(uintptr(ep), "rtp-live")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	lr := &liveReader{ep: ep, f: f, done: make(chan struct{})}
	go lr.run(s, rc)
	return lr, nil
}

// halt makes the reader return: it delivers nothing more, and a deadline in
// the past ends its wait at once. (Closing the file here would wait for a
// handler call in progress, which may be the caller.) The reader closes
// the file as it returns.
func (lr *liveReader) halt() {
	lr.stop.Store(true)
	_ = lr.f.SetReadDeadline(time.Unix(1, 0))
}

// run drains the ready sockets each time the network poller says the epoll
// set is readable. RawConn.Read calls the function, and while it returns
// false waits for the descriptor to become readable again; the deadline
// set by halt ends the wait with an error. The sockets are in the set
// edge-triggered, and the set in Go's poller too: a datagram that arrives
// after a socket's read marks it (and the set) ready again, so nothing is
// left unread.
func (lr *liveReader) run(s *liveSet, rc syscall.RawConn) {
	defer close(lr.done)
	gid := goid()
	events := make([]unix.EpollEvent, 128)
	ready := make([]*member, 0, len(events))
	b := newBatch()
	_ = rc.Read(func(uintptr) bool {
		for {
			if lr.stop.Load() {
				return true
			}
			// Raw: with a zero timeout epoll_wait never blocks (see
			// batch.read).
			n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(lr.ep), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
			if errno != 0 || n == 0 {
				return false // nothing ready (or EINTR): wait for the next
			}
			s.mu.Lock()
			ready = ready[:0]
			for i := range int(n) {
				if m := s.members[events[i].Fd]; m != nil {
					ready = append(ready, m)
				}
			}
			s.mu.Unlock()
			for i, m := range ready {
				ready[i] = nil
				m.busy.Lock()
				if !m.removed && m.live.Load() && !lr.stop.Load() {
					m.holder.Store(gid)
					b.read(m)
					m.holder.Store(0)
				}
				m.busy.Unlock()
			}
			if int(n) < len(events) {
				return false
			}
		}
	})
	lr.f.Close()
	if lr.stop.Load() {
		return
	}
	// Ended without being stopped (the network poller refused the wait):
	// the worker reads the sockets again.
	s.mu.Lock()
	if s.r == lr {
		for _, m := range s.members {
			m.live.Store(false)
		}
		s.members, s.r = nil, nil
	}
	s.mu.Unlock()
}
