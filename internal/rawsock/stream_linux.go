package rawsock

import (
	"context"
	"io"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// StreamConn is a stream socket (TCP, Unix) whose Read and Write make raw
// read and write system calls; its other methods are the wrapped
// connection's.
type StreamConn struct {
	net.Conn
	rc syscall.RawConn
}

// Stream wraps c when it is a socket (a syscall.Conn), else returns c.
func Stream(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return &StreamConn{Conn: c, rc: rc}
}

// WrapDial makes the connections that dial opens Streams (a pgx DialFunc).
func WrapDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return Stream(c), nil
	}
}

// Read is net.Conn's: what is there, waiting until something is; io.EOF
// once the peer has closed.
func (c *StreamConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var (
		n     int
		errno syscall.Errno
	)
	err := c.rc.Read(func(fd uintptr) bool {
		n, errno = rawIO(unix.SYS_READ, fd, b)
		return errno != unix.EAGAIN
	})
	if err == nil && errno != 0 {
		err = errno
	}
	if err != nil {
		return 0, c.opError("read", err)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Write is net.Conn's: all of b, waiting while the socket's buffer is full.
func (c *StreamConn) Write(b []byte) (int, error) {
	done := 0
	for done < len(b) {
		var (
			n     int
			errno syscall.Errno
		)
		err := c.rc.Write(func(fd uintptr) bool {
			n, errno = rawIO(unix.SYS_WRITE, fd, b[done:])
			return errno != unix.EAGAIN
		})
		if err == nil && errno != 0 {
			err = errno
		}
		if err != nil {
			return done, c.opError("write", err)
		}
		done += n
	}
	return done, nil
}

func (c *StreamConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: unwrapOp(err)}
}

// rawIO is one raw read or write of b on fd (EINTR retried).
func rawIO(trap uintptr, fd uintptr, b []byte) (int, syscall.Errno) {
	for {
		n, _, errno := unix.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(n), 0
	}
}
