package call

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// nbConn is the TCP connection under a media websocket. Its writes never
// block, so that the websocket library's frames can be written on the
// goroutine of whoever sends them (a bridge's clock, the other party's
// media path), as the AudioSocket's are: what the socket buffer takes now
// is written at once with a non-blocking write (sockWriter); the rest is
// kept, in order, for a flusher goroutine that exists only while there is
// a backlog, and every later write queues behind it. Every byte written
// is kept, so the library's framing (audio, control messages, its pongs
// and close frame) stays whole and in order; the audio's sender bounds
// the backlog by dropping whole frames (mediaWebSocket.writeAudio).
//
// A connection without a file descriptor of its own (the server's TLS
// connection) cannot be written without blocking: its flusher then stays
// for the connection's life, a writer goroutine as before.
type nbConn struct {
	net.Conn
	raw *sockWriter // nil: every write goes through the flusher

	mu       sync.Mutex
	idle     *sync.Cond // signalled on a write and when the flusher ends
	pend     []byte     // bytes not written yet
	spare    []byte     // the flusher's other buffer
	inflight int        // bytes the flusher is writing
	flushing bool       // the flusher goroutine owns the socket's writes
	err      error      // the first write error: later writes fail
	closing  bool       // Close was called: a lasting flusher ends
}

func newNBConn(c net.Conn) *nbConn {
	nb := &nbConn{Conn: c, raw: newSockWriter(c)}
	nb.idle = sync.NewCond(&nb.mu)
	return nb
}

// Write takes all of p, or fails with the error of an earlier write.
func (c *nbConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	rest := p
	if !c.flushing && c.raw != nil {
		n, err := c.raw.tryWrite(p)
		if err != nil {
			c.err = err
			return n, err
		}
		rest = p[n:]
	}
	if len(rest) == 0 {
		return len(p), nil
	}
	c.pend = append(c.pend, rest...)
	if !c.flushing {
		c.flushing = true
		go c.flusher()
	} else if c.raw == nil {
		c.idle.Broadcast() // a lasting flusher may be waiting
	}
	return len(p), nil
}

// backlog is what was written and has not reached the socket yet.
func (c *nbConn) backlog() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inflight + len(c.pend)
}

// flusher writes, blocking, what the socket did not take, until nothing
// is pending or a write fails; without raw writes, until Close.
func (c *nbConn) flusher() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for c.raw == nil && len(c.pend) == 0 && c.err == nil && !c.closing {
			c.idle.Wait()
		}
		if len(c.pend) == 0 || c.err != nil {
			break
		}
		out := c.pend
		c.pend, c.inflight = c.spare[:0], len(out)
		c.mu.Unlock()
		_, err := c.Conn.Write(out)
		c.mu.Lock()
		c.spare, c.inflight = out[:0], 0
		if err != nil {
			c.err = err
			c.pend = c.pend[:0]
		}
	}
	c.flushing = false
	c.idle.Broadcast()
}

// Close lets the flusher write what is pending (the close frame is
// written just before) for up to a second, then closes the connection.
func (c *nbConn) Close() error {
	c.mu.Lock()
	c.closing = true
	c.idle.Broadcast()
	if c.flushing {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		for c.flushing {
			c.idle.Wait()
		}
	}
	if c.err == nil {
		c.err = net.ErrClosed
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// nbHijacker is the media websocket's http.ResponseWriter: the hijacked
// connection the websocket library writes to is an nbConn.
type nbHijacker struct {
	http.ResponseWriter
	conn *nbConn
}

func (h *nbHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.conn = newNBConn(c)
	return h.conn, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(h.conn, 4096)), nil
}

// nbClient is an http.Client for one media websocket dial whose
// connection is an nbConn (conn, once dialed).
func nbClient(conn **nbConn) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		*conn = newNBConn(c)
		return *conn, nil
	}
	return &http.Client{Transport: tr}
}
