package rtp

import (
	"fmt"
	"net"
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/tapedeck/tapedeck/internal/rawsock"
)

// Socket is a UDP socket that lives outside Go's network poller: nothing
// wakes when a datagram arrives, and a Poller reads it in batches. That is
// the point of it. A socket registered with the runtime's epoll wakes a
// thread for nearly every RTP packet (edge-triggered readiness fires per
// datagram even when no goroutine waits), and on a virtual machine those
// wake-ups, not the packet handling, are most of the cost of a recorded
// call (see bench/RESULTS.md).
//
// Writes are safe for concurrent use and may race with Close: a write after
// Close returns net.ErrClosed, never reaches a reused descriptor.
type Socket struct {
	mu     sync.RWMutex // read-held by writers, held by Close
	fd     int
	v6     bool
	local  netip.AddrPort
	closed bool
}

// ListenSocket binds a non-blocking UDP socket to addr (port 0: any) with
// kernel receive timestamps enabled.
func ListenSocket(addr netip.AddrPort) (*Socket, error) {
	ip := addr.Addr().Unmap()
	family := unix.AF_INET
	if ip.Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("rtp: socket: %w", err)
	}
	fail := func(op string, err error) (*Socket, error) {
		unix.Close(fd)
		return nil, &net.OpError{Op: op, Net: "udp", Addr: net.UDPAddrFromAddrPort(addr), Err: err}
	}
	var sa unix.Sockaddr
	if family == unix.AF_INET {
		sa = &unix.SockaddrInet4{Port: int(addr.Port()), Addr: ip.As4()}
	} else {
		if ip.IsUnspecified() {
			// Like net.ListenUDP on "[::]": dual stack.
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
				return fail("setsockopt", err)
			}
		}
		sa = &unix.SockaddrInet6{Port: int(addr.Port()), Addr: ip.As16()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("listen", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fail("setsockopt", err)
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	s := &Socket{fd: fd, v6: family == unix.AF_INET6}
	switch b := bound.(type) {
	case *unix.SockaddrInet4:
		s.local = netip.AddrPortFrom(netip.AddrFrom4(b.Addr), uint16(b.Port))
	case *unix.SockaddrInet6:
		s.local = netip.AddrPortFrom(netip.AddrFrom16(b.Addr).Unmap(), uint16(b.Port))
	}
	return s, nil
}

// LocalAddr is the bound address.
func (s *Socket) LocalAddr() netip.AddrPort { return s.local }

// WriteTo sends one datagram to "to" without blocking. A full socket buffer
// gives an error (the packet is dropped, as a real-time sender must).
func (s *Socket) WriteTo(b []byte, to netip.AddrPort) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, net.ErrClosed
	}
	// Raw, like the Poller's recvmmsg: a non-blocking UDP send never
	// waits, so the scheduler need not know. Through Syscall6 every
	// frame a stream forwards entered and left the syscall state, and
	// the runtime's monitor, seeing a P in a syscall, could take it
	// (a thread hand-off) and went back to polling every 20 µs.
	n, err := rawsock.SendTo(s.fd, s.v6, b, to)
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: net.UDPAddrFromAddrPort(to), Err: err}
	}
	return n, nil
}

// SetReadBuffer sets the socket's receive buffer (SO_RCVBUF; the kernel
// caps it at net.core.rmem_max), like net.UDPConn.SetReadBuffer: a socket
// that many sources send to and that is read every 100 ms needs more room
// than the default.
func (s *Socket) SetReadBuffer(bytes int) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return net.ErrClosed
	}
	return unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, bytes)
}

// Close closes the descriptor. Remove the socket from its Poller first.
func (s *Socket) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return unix.Close(s.fd)
}
