package rtp

import (
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"
)

func liveGoroutines() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "rtp.(*liveReader).run")
}

// waitFor polls cond until it holds or the deadline passes.
func waitLive(t *testing.T, d time.Duration, cond func() bool) bool {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// A live socket (SetLive) is read as each datagram arrives, not on the
// worker's schedule (a read every second here): every datagram reaches the
// handler within 200 ms of its send, in order. Off, its reader goroutine
// ends and the worker reads it again; Remove of a live socket ends its
// reader too, and nothing is delivered after it.
func TestPollerLive(t *testing.T) {
	p, err := NewPoller(10*time.Millisecond, time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	s := listenLoopback(t)
	var k sink
	reg, err := p.Add(s, k.fn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Remove)
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(s.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := reg.SetLive(true); err != nil {
		t.Fatal(err)
	}
	if !reg.Live() || !waitLive(t, 5*time.Second, func() bool { return liveGoroutines() == 1 }) {
		t.Fatalf("live %v with %d readers, want one", reg.Live(), liveGoroutines())
	}
	for i := range 20 {
		sent := time.Now()
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if !waitLive(t, 200*time.Millisecond, func() bool { return k.len() == i+1 }) {
			t.Fatalf("datagram %d not delivered %v after its send (the worker reads every second)", i, time.Since(sent))
		}
		k.mu.Lock()
		got := k.pkts[i].data[0]
		k.mu.Unlock()
		if got != byte(i) {
			t.Fatalf("datagram %d holds %d", i, got)
		}
		time.Sleep(5 * time.Millisecond)
	}

	// Off: the reader ends; the worker reads it on its schedule again.
	if err := reg.SetLive(false); err != nil {
		t.Fatal(err)
	}
	if !waitLive(t, 5*time.Second, func() bool { return liveGoroutines() == 0 }) {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("%d live readers left after SetLive(false)\n%s", liveGoroutines(), buf[:n])
	}
	if _, err := c.Write([]byte{20}); err != nil {
		t.Fatal(err)
	}
	if !waitLive(t, 3*time.Second, func() bool { return k.len() == 21 }) {
		t.Fatal("a datagram sent after SetLive(false) never came: the worker does not read the socket again")
	}

	// Live again, then Remove: the reader has ended when Remove returns.
	if err := reg.SetLive(true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte{21}); err != nil {
		t.Fatal(err)
	}
	if !waitLive(t, 200*time.Millisecond, func() bool { return k.len() == 22 }) {
		t.Fatal("live again: a datagram not delivered within 200 ms")
	}
	reg.Remove()
	if reg.Live() || !waitLive(t, 5*time.Second, func() bool { return liveGoroutines() == 0 }) {
		t.Fatalf("live %v, %d live readers after Remove", reg.Live(), liveGoroutines())
	}
	_, _ = c.Write([]byte{22})
	if err := reg.SetLive(true); err != nil || reg.Live() {
		t.Fatalf("SetLive after Remove: %v, live %v; want a no-op", err, reg.Live())
	}
	time.Sleep(50 * time.Millisecond) // nothing may come: a bounded check of an absence
	if n := k.len(); n != 22 {
		t.Fatalf("%d datagrams delivered, want 22 (none after Remove)", n)
	}
}

// SetLive(false) from the live socket's own handler (a bridge that stops
// forwarding directly because of a packet it handles) neither deadlocks
// nor loses the next datagrams: the reader ends and the worker reads them.
func TestPollerLiveOffFromHandler(t *testing.T) {
	p, err := NewPoller(10*time.Millisecond, 50*time.Millisecond, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	s := listenLoopback(t)
	var k sink
	var reg *Registration
	ready := make(chan struct{})
	reg, err = p.Add(s, func(b []byte, from netip.AddrPort, at time.Time) {
		<-ready
		k.fn(b, from, at)
		if b[0] == 0 {
			_ = reg.SetLive(false)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	close(ready)
	t.Cleanup(reg.Remove)
	if err := reg.SetLive(true); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(s.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 5 {
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !waitLive(t, 5*time.Second, func() bool { return k.len() == 5 && liveGoroutines() == 0 }) {
		t.Fatalf("%d of 5 datagrams delivered, %d live readers left", k.len(), liveGoroutines())
	}
	if reg.Live() {
		t.Fatal("still live after SetLive(false) from the handler")
	}
}

// Many live sockets of a worker share one reader: with 20 streamed
// sockets there is one reader goroutine, not one each, and it still reads
// each socket as its datagrams arrive (every one of 10 rounds of a
// datagram to each socket is delivered within 200 ms of its send, though
// the worker reads every second), in order per socket. The reader ends
// when the last socket leaves live reading, and the sockets handed back
// are read by the worker again.
func TestPollerLiveSharedReader(t *testing.T) {
	p, err := NewPoller(10*time.Millisecond, time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	const n = 20
	sinks := make([]sink, n)
	regs := make([]*Registration, n)
	conns := make([]*net.UDPConn, n)
	for i := range n {
		s := listenLoopback(t)
		if regs[i], err = p.Add(s, sinks[i].fn); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(regs[i].Remove)
		if conns[i], err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(s.LocalAddr())); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close()
		if err := regs[i].SetLive(true); err != nil {
			t.Fatal(err)
		}
	}
	if !waitLive(t, 5*time.Second, func() bool { return liveGoroutines() > 0 }) {
		t.Fatal("no live reader")
	}
	total := func() int {
		sum := 0
		for i := range sinks {
			sum += sinks[i].len()
		}
		return sum
	}
	for round := range 10 {
		sent := time.Now()
		for i := range n {
			if _, err := conns[i].Write([]byte{byte(round)}); err != nil {
				t.Fatal(err)
			}
		}
		if !waitLive(t, 200*time.Millisecond, func() bool { return total() == n*(round+1) }) {
			t.Fatalf("round %d: %d of %d datagrams delivered %v after the sends (the worker reads every second)", round, total(), n*(round+1), time.Since(sent))
		}
	}
	if n := liveGoroutines(); n != 1 {
		t.Fatalf("%d live readers for %d live sockets of one worker after 10 rounds, want 1", n, len(regs))
	}
	for i := range sinks {
		sinks[i].mu.Lock()
		for k, g := range sinks[i].pkts {
			if g.data[0] != byte(k) {
				sinks[i].mu.Unlock()
				t.Fatalf("socket %d: datagram %d holds %d", i, k, g.data[0])
			}
		}
		sinks[i].mu.Unlock()
	}
	for i := range n {
		if err := regs[i].SetLive(false); err != nil {
			t.Fatal(err)
		}
		if i < n-1 && liveGoroutines() > 1 {
			t.Fatalf("%d live readers with %d live sockets left, want 1", liveGoroutines(), n-1-i)
		}
	}
	if !waitLive(t, 5*time.Second, func() bool { return liveGoroutines() == 0 }) {
		t.Fatalf("%d live readers left with no live socket", liveGoroutines())
	}
	for i := range n {
		if _, err := conns[i].Write([]byte{10}); err != nil {
			t.Fatal(err)
		}
	}
	if !waitLive(t, 3*time.Second, func() bool { return total() == n*11 }) {
		t.Fatalf("%d of %d datagrams delivered: the worker does not read the sockets handed back", total(), n*11)
	}
}
