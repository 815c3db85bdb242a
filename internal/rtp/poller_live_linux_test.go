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
	if n := liveGoroutines(); n != 0 {
		t.Fatalf("%d live readers after Remove", n)
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
