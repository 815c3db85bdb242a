package rawsock

import (
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// UDPConn is a *net.UDPConn whose ReadFrom and WriteTo (the two that sipgo's
// UDP transport calls) make raw system calls: the descriptor stays in the
// network poller, which parks a reader until a datagram arrives (and
// honours deadlines and Close), but the recvfrom and sendto themselves do
// not enter the scheduler's syscall state. Its other methods are
// net.UDPConn's.
type UDPConn struct {
	*net.UDPConn
	rc syscall.RawConn
	v6 bool // an AF_INET6 socket (dual stack on "[::]")
}

// NewUDP wraps c.
func NewUDP(c *net.UDPConn) (*UDPConn, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var sa unix.Sockaddr
	var serr error
	if err := rc.Control(func(fd uintptr) { sa, serr = unix.Getsockname(int(fd)) }); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	_, v6 := sa.(*unix.SockaddrInet6)
	return &UDPConn{UDPConn: c, rc: rc, v6: v6}, nil
}

// ReadFrom reads one datagram, as net.UDPConn.ReadFrom (a datagram longer
// than b is truncated to it).
func (c *UDPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	var (
		n     int
		from  netip.AddrPort
		errno syscall.Errno
	)
	err := c.rc.Read(func(fd uintptr) bool {
		n, from, errno = recvFrom(int(fd), b)
		return errno != unix.EAGAIN
	})
	if err == nil && errno != 0 {
		err = errno
	}
	if err != nil {
		return 0, nil, &net.OpError{Op: "read", Net: "udp", Source: c.LocalAddr(), Err: unwrapOp(err)}
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// WriteTo sends b to addr (a *net.UDPAddr), waiting while the socket's
// buffer is full, as net.UDPConn.WriteTo.
func (c *UDPConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || ua == nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.LocalAddr(), Addr: addr, Err: syscall.EINVAL}
	}
	to := ua.AddrPort()
	var (
		n   int
		eno error
	)
	err := c.rc.Write(func(fd uintptr) bool {
		n, eno = SendTo(int(fd), c.v6, b, to)
		return eno != unix.EAGAIN
	})
	if err == nil {
		err = eno
	}
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.LocalAddr(), Addr: addr, Err: unwrapOp(err)}
	}
	return n, nil
}

// recvFrom is one raw recvfrom (EINTR retried).
func recvFrom(fd int, b []byte) (int, netip.AddrPort, syscall.Errno) {
	var (
		rsa unix.RawSockaddrInet6 // room for either family
		p   unsafe.Pointer
	)
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	for {
		l := uint32(unsafe.Sizeof(rsa))
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(p), uintptr(len(b)), 0, uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&l)))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, netip.AddrPort{}, errno
		}
		from, _ := AddrPort(&rsa)
		if rsa.Family == unix.AF_INET6 && rsa.Scope_id != 0 && from.Addr().Is6() {
			zone := strconv.FormatUint(uint64(rsa.Scope_id), 10)
			if ifi, err := net.InterfaceByIndex(int(rsa.Scope_id)); err == nil {
				zone = ifi.Name
			}
			from = netip.AddrPortFrom(from.Addr().WithZone(zone), from.Port())
		}
		return int(n), from, 0
	}
}

// AddrPort is the address and port of a raw socket address of either
// family (sa is the larger IPv6 one; an IPv4 address is read through it),
// IPv4-mapped addresses as IPv4, without zone; false for another family.
func AddrPort(sa *unix.RawSockaddrInet6) (netip.AddrPort, bool) {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), getPort(&sa4.Port)), true
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), getPort(&sa.Port)), true
	}
	return netip.AddrPort{}, false
}

// SendTo is one raw sendto of b to "to" on the non-blocking UDP socket fd
// (v6: an AF_INET6 one, to which IPv4 destinations go v4-mapped); EINTR
// is retried. The error is a syscall.Errno (EAGAIN: the socket's buffer
// is full) or ErrFamily.
func SendTo(fd int, v6 bool, b []byte, to netip.AddrPort) (int, error) {
	var (
		sa4  unix.RawSockaddrInet4
		sa6  unix.RawSockaddrInet6
		ptr  unsafe.Pointer
		size uintptr
	)
	ip := to.Addr()
	port := to.Port()
	if v6 {
		sa6.Family = unix.AF_INET6
		putPort(&sa6.Port, port)
		sa6.Addr = ip.As16() // v4 addresses become v4-mapped
		if z := ip.Zone(); z != "" {
			if ifi, err := net.InterfaceByName(z); err == nil {
				sa6.Scope_id = uint32(ifi.Index)
			} else if k, err := strconv.ParseUint(z, 10, 32); err == nil {
				sa6.Scope_id = uint32(k)
			}
		}
		ptr, size = unsafe.Pointer(&sa6), unsafe.Sizeof(sa6)
	} else {
		ip = ip.Unmap()
		if !ip.Is4() {
			return 0, ErrFamily
		}
		sa4.Family = unix.AF_INET
		putPort(&sa4.Port, port)
		sa4.Addr = ip.As4()
		ptr, size = unsafe.Pointer(&sa4), unsafe.Sizeof(sa4)
	}
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(p), uintptr(len(b)), 0, uintptr(ptr), size)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(n), nil
	}
}

// putPort stores a port in network byte order into a raw sockaddr field.
func putPort(dst *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(dst))
	b[0], b[1] = byte(port>>8), byte(port)
}

// getPort reads a port in network byte order from a raw sockaddr field.
func getPort(src *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(src))
	return uint16(b[0])<<8 | uint16(b[1])
}
