package rtp

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SendBatch holds datagrams queued while a Poller drains a socket, sent
// when that drain ends with one sendmmsg per run of datagrams for the same
// socket. A recorded call's socket is read every slow interval (100 ms by
// default), so its packets reach their handlers five at a time; what they
// forward to an external media channel would otherwise cost a sendto
// each, where a batch costs one system call. The delay is the rest of the
// drain (microseconds), not a clock.
//
// A SendBatch belongs to the goroutine draining; it is not safe for
// concurrent use.
type SendBatch struct {
	n     int
	socks [sendBatchMax]*Socket
	to    [sendBatchMax]netip.AddrPort
	lens  [sendBatchMax]int
	bufs  []byte
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
}

const (
	sendBatchMax = 32   // datagrams held before a flush
	sendSlot     = 1500 // bytes per datagram; larger ones are sent at once
)

func newSendBatch() *SendBatch {
	return &SendBatch{
		bufs:  make([]byte, sendBatchMax*sendSlot),
		hdrs:  make([]unix.Mmsghdr, sendBatchMax),
		iovs:  make([]unix.Iovec, sendBatchMax),
		names: make([]unix.RawSockaddrInet6, sendBatchMax),
	}
}

// queue copies b, to be sent from s to "to" at the next Flush.
func (q *SendBatch) queue(s *Socket, b []byte, to netip.AddrPort) error {
	if len(b) > sendSlot {
		_, err := s.WriteTo(b, to)
		return err
	}
	if q.n == sendBatchMax {
		q.Flush()
	}
	i := q.n
	copy(q.bufs[i*sendSlot:], b)
	q.socks[i], q.to[i], q.lens[i] = s, to, len(b)
	q.n++
	return nil
}

// Len is the number of datagrams waiting.
func (q *SendBatch) Len() int { return q.n }

// Flush sends what is queued, in order: one sendmmsg for each run of
// datagrams from the same socket. A datagram the socket does not take (a
// full buffer, an unreachable destination) is dropped, as a real-time
// sender must.
func (q *SendBatch) Flush() {
	for i := 0; i < q.n; {
		j := i + 1
		for j < q.n && q.socks[j] == q.socks[i] {
			j++
		}
		q.send(i, j)
		i = j
	}
	clear(q.socks[:q.n])
	q.n = 0
}

// send writes datagrams i..j-1, all of one socket.
func (q *SendBatch) send(i, j int) {
	s := q.socks[i]
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return
	}
	m := 0
	for k := i; k < j; k++ {
		ptr, size, ok := s.sockaddr(q.to[k], &q.names[m])
		if !ok {
			continue
		}
		q.iovs[m].Base = &q.bufs[k*sendSlot]
		q.iovs[m].SetLen(q.lens[k])
		h := &q.hdrs[m]
		*h = unix.Mmsghdr{}
		h.Hdr.Name = (*byte)(ptr)
		h.Hdr.Namelen = uint32(size)
		h.Hdr.Iov = &q.iovs[m]
		h.Hdr.SetIovlen(1)
		m++
	}
	for sent := 0; sent < m; {
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&q.hdrs[sent])), uintptr(m-sent), 0, 0, 0)
		switch {
		case errno == unix.EINTR:
		case errno != 0:
			sent++ // this one is dropped; go on with the rest
		default:
			sent += int(r)
		}
	}
}
