package sip

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the SIP-over-TCP limits.
const (
	DefaultTCPIdleTimeout  = 120 * time.Second
	DefaultTCPMaxPerSource = 64
	minTCPMaxConns         = 16
	maxAutoTCPConns        = 10000 // sipgo holds a 32 KB buffer per connection
)

// tcpListener is the listener sipgo's TCP transport accepts from. sipgo's
// accept loop returns on the first error, which left SIP over TCP dead for
// good after the descriptors ran out once; here Accept retries every error
// but a closed listener, backing off like net/http. It also caps
// connections, globally and per source address, by closing the excess at
// once, and hands out connections that close themselves when idle.
type tcpListener struct {
	net.Listener
	e         *Endpoint
	max       int
	perSource int
	idle      time.Duration

	done      chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	open     int
	bySource map[string]int
	lastWarn time.Time // of refusals and accept errors, which come in floods
}

func newTCPListener(l net.Listener, e *Endpoint, max, perSource int, idle time.Duration) *tcpListener {
	return &tcpListener{Listener: l, e: e, max: max, perSource: perSource, idle: idle,
		done: make(chan struct{}), bySource: make(map[string]int)}
}

func (l *tcpListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

func (l *tcpListener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case <-l.done:
				return nil, net.ErrClosed
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			l.e.stats.tcpAcceptEr.Add(1)
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else {
				delay = min(2*delay, time.Second)
			}
			l.warn("sip tcp: accept failed; retrying", "err", err, "retry_in", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return nil, net.ErrClosed
			}
			continue
		}
		delay = 0
		src := sourceOf(c.RemoteAddr())
		l.mu.Lock()
		full := l.open >= l.max
		if full || (l.perSource > 0 && l.bySource[src] >= l.perSource) {
			l.mu.Unlock()
			c.Close()
			l.e.stats.tcpRefused.Add(1)
			l.warn("sip tcp: connection refused", "source", src, "global_cap_reached", full, "max", l.max, "max_per_source", l.perSource)
			continue
		}
		l.open++
		l.bySource[src]++
		l.mu.Unlock()
		l.e.stats.tcpOpen.Add(1)
		ic := &idleConn{Conn: c, l: l, src: src}
		ic.touch()
		return ic, nil
	}
}

// warn logs at most one line a second for floods of refusals or errors.
func (l *tcpListener) warn(msg string, args ...any) {
	l.mu.Lock()
	now := time.Now()
	ok := now.Sub(l.lastWarn) >= time.Second
	if ok {
		l.lastWarn = now
	}
	l.mu.Unlock()
	if ok {
		l.e.log.Warn(msg, args...)
	} else {
		l.e.log.Debug(msg, args...)
	}
}

func (l *tcpListener) release(src string) {
	l.mu.Lock()
	l.open--
	if l.bySource[src]--; l.bySource[src] <= 0 {
		delete(l.bySource, src)
	}
	l.mu.Unlock()
	l.e.stats.tcpOpen.Add(-1)
}

func sourceOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// idleConn is an accepted connection that ends itself (the reader sees
// EOF) after the listener's idle time without a byte read or written,
// unless a dialog still uses it: its BYE and re-INVITEs arrive on it.
type idleConn struct {
	net.Conn
	l     *tcpListener
	src   string
	last  atomic.Int64 // unix nanoseconds of the last read or write
	once  sync.Once
	ended atomic.Bool
}

func (c *idleConn) touch() { c.last.Store(time.Now().UnixNano()) }

func (c *idleConn) Read(b []byte) (int, error) {
	if c.l.idle <= 0 {
		return c.Conn.Read(b)
	}
	for {
		if err := c.Conn.SetReadDeadline(time.Unix(0, c.last.Load()).Add(c.l.idle)); err != nil {
			return 0, err
		}
		n, err := c.Conn.Read(b)
		if n > 0 {
			c.touch()
			return n, err
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		if time.Since(time.Unix(0, c.last.Load())) < c.l.idle {
			continue // written to meanwhile
		}
		if c.l.e.dialogOn(c.Conn.RemoteAddr().String()) {
			c.touch()
			continue
		}
		c.l.e.stats.tcpIdle.Add(1)
		c.l.e.log.Debug("sip tcp: closing idle connection", "remote", c.Conn.RemoteAddr().String(), "idle", c.l.idle)
		c.ended.Store(true)
		return 0, io.EOF
	}
}

func (c *idleConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *idleConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.src) })
	return err
}

// dialogOn reports whether a dialog that is not over came from raddr.
func (e *Endpoint) dialogOn(raddr string) bool {
	found := false
	e.dialogs.Range(func(_, v any) bool {
		if d := v.(*Dialog); d.invite.Source() == raddr {
			found = true
		}
		return !found
	})
	return found
}
