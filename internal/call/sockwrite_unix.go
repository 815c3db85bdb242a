//go:build unix

package call

import (
	"net"
	"syscall"
)

// sockWriter writes to a stream socket without blocking and without a
// goroutine hand-off: what the socket buffer takes now, on the caller's
// goroutine. Its caller serialises the writes (audioSocket.mu).
type sockWriter struct {
	raw syscall.RawConn
	fn  func(fd uintptr) bool // made once: a closure per write would allocate
	buf []byte
	n   int
	err error
}

// newSockWriter is nil when the connection has no file descriptor.
func newSockWriter(c net.Conn) *sockWriter {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &sockWriter{raw: raw}
	w.fn = func(fd uintptr) bool {
		for {
			n, err := syscall.Write(int(fd), w.buf)
			switch err {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				n, err = 0, nil
			}
			w.n, w.err = max(n, 0), err
			return true // never wait for the socket: the flusher does
		}
	}
	return w
}

// tryWrite writes what the socket takes now: n bytes of b (0 when its
// buffer is full).
func (w *sockWriter) tryWrite(b []byte) (int, error) {
	w.buf, w.n, w.err = b, 0, nil
	if err := w.raw.Write(w.fn); err != nil {
		w.buf = nil
		return 0, err
	}
	w.buf = nil
	return w.n, w.err
}
