package testutil

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// CountingProxy forwards TCP connections to a target and counts the
// client's writes: each one a request the client then waits on (pgx
// flushes a statement's messages at once and reads the answer), so a test
// can count round trips to a real PostgreSQL.
type CountingProxy struct {
	ln     net.Listener
	writes atomic.Int64
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn // both ends of every forwarded connection
}

// StartCountingProxy listens on a loopback port and forwards every
// connection to target until the test ends.
func StartCountingProxy(t testing.TB, target string) *CountingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &CountingProxy{ln: ln}
	t.Cleanup(func() { ln.Close(); p.Drop(); p.wg.Wait() })
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); _, _ = io.Copy(c, s); c.Close() }()
			go func() {
				defer p.wg.Done()
				defer s.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						p.writes.Add(1)
						if _, werr := s.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

// Addr is the address clients connect to instead of the target.
func (p *CountingProxy) Addr() string { return p.ln.Addr().String() }

// Writes is the number of client writes forwarded so far.
func (p *CountingProxy) Writes() int64 { return p.writes.Load() }

// Drop closes every forwarded connection, as a PostgreSQL restart does.
func (p *CountingProxy) Drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
