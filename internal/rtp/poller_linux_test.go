package rtp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

type got struct {
	data []byte
	from netip.AddrPort
	at   time.Time
}

type sink struct {
	mu   sync.Mutex
	pkts []got
}

func (s *sink) fn(b []byte, from netip.AddrPort, at time.Time) {
	s.mu.Lock()
	s.pkts = append(s.pkts, got{bytes.Clone(b), from, at})
	s.mu.Unlock()
}

func (s *sink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pkts)
}

func newPoller(t *testing.T, workers int) *Poller {
	t.Helper()
	p, err := NewPoller(5*time.Millisecond, 5*time.Millisecond, workers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func listenLoopback(t *testing.T) *Socket {
	t.Helper()
	s, err := ListenSocket(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Every datagram to every socket arrives once, in order per socket, with its
// sender's address and a kernel arrival time between the send and the read;
// bursts longer than one recvmmsg batch are drained in the same round.
func TestPollerDeliversEveryDatagram(t *testing.T) {
	p := newPoller(t, 2)
	const nsock, burst = 12, 3*pollBatch + 5
	socks := make([]*Socket, nsock)
	sinks := make([]*sink, nsock)
	for i := range socks {
		socks[i] = listenLoopback(t)
		sinks[i] = &sink{}
		if _, err := p.Add(socks[i], sinks[i].fn); err != nil {
			t.Fatal(err)
		}
	}
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	before := time.Now()
	for k := range burst {
		for i, s := range socks {
			msg := fmt.Appendf(nil, "sock %d packet %d", i, k)
			if _, err := peer.WriteToUDPAddrPort(msg, s.LocalAddr()); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, func() bool {
		for _, s := range sinks {
			if s.len() < burst {
				return false
			}
		}
		return true
	})
	after := time.Now()
	peerAddr := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	for i, s := range sinks {
		s.mu.Lock()
		if len(s.pkts) != burst {
			t.Fatalf("socket %d: %d datagrams, want %d", i, len(s.pkts), burst)
		}
		for k, g := range s.pkts {
			if want := fmt.Sprintf("sock %d packet %d", i, k); string(g.data) != want {
				t.Fatalf("socket %d datagram %d = %q, want %q", i, k, g.data, want)
			}
			if g.from != peerAddr {
				t.Fatalf("from %v, want %v", g.from, peerAddr)
			}
			if g.at.Before(before.Add(-time.Millisecond)) || g.at.After(after) {
				t.Fatalf("arrival time %v outside [%v, %v]", g.at, before, after)
			}
		}
		s.mu.Unlock()
	}
}

// After Remove returns the handler never runs again, even with packets
// still arriving; removing while traffic flows is race-free.
func TestPollerRemoveStopsHandler(t *testing.T) {
	p := newPoller(t, 1)
	s := listenLoopback(t)
	var removed atomic.Bool
	var after atomic.Int64
	var n atomic.Int64
	reg, err := p.Add(s, func(b []byte, _ netip.AddrPort, _ time.Time) {
		if removed.Load() {
			after.Add(1)
		}
		n.Add(1)
		time.Sleep(50 * time.Microsecond) // widen the window for a racing Remove
	})
	if err != nil {
		t.Fatal(err)
	}
	peer, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer peer.Close()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			peer.WriteToUDPAddrPort([]byte("x"), s.LocalAddr())
			time.Sleep(100 * time.Microsecond)
		}
	}()
	waitFor(t, func() bool { return n.Load() > 50 })
	reg.Remove()
	removed.Store(true)
	reg.Remove()                      // idempotent
	time.Sleep(30 * time.Millisecond) // several rounds with data waiting
	close(stop)
	<-done
	if a := after.Load(); a != 0 {
		t.Fatalf("handler ran %d times after Remove returned", a)
	}
}

// A datagram too large for the read buffer is dropped whole (not delivered
// truncated), and the ones after it arrive.
func TestPollerDropsTruncated(t *testing.T) {
	p := newPoller(t, 1)
	s := listenLoopback(t)
	sk := &sink{}
	if _, err := p.Add(s, sk.fn); err != nil {
		t.Fatal(err)
	}
	peer, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer peer.Close()
	peer.WriteToUDPAddrPort(bytes.Repeat([]byte{1}, pollBufSize+100), s.LocalAddr())
	peer.WriteToUDPAddrPort([]byte("after"), s.LocalAddr())
	waitFor(t, func() bool { return sk.len() == 1 })
	time.Sleep(20 * time.Millisecond)
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if len(sk.pkts) != 1 || string(sk.pkts[0].data) != "after" {
		t.Fatalf("delivered %d datagrams, first %q", len(sk.pkts), sk.pkts[0].data)
	}
}

// WriteTo reaches the destination; after Close it fails with net.ErrClosed
// instead of writing to whatever reuses the descriptor.
func TestSocketWriteAndClose(t *testing.T) {
	s := listenLoopback(t)
	if !s.LocalAddr().Addr().Is4() || s.LocalAddr().Port() == 0 {
		t.Fatalf("local address %v", s.LocalAddr())
	}
	peer, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer peer.Close()
	if _, err := s.WriteTo([]byte("hello"), peer.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	peer.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, from, err := peer.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "hello" || from != s.LocalAddr() {
		t.Fatalf("read %q from %v: %v", buf[:n], from, err)
	}
	if _, err := s.WriteTo([]byte("x"), netip.MustParseAddrPort("[::1]:9")); err == nil {
		t.Fatal("IPv6 destination on an IPv4 socket accepted")
	}
	s.Close()
	if _, err := s.WriteTo([]byte("x"), peer.LocalAddr().(*net.UDPAddr).AddrPort()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	// The port is free again.
	again, err := ListenSocket(s.LocalAddr())
	if err != nil {
		t.Fatalf("rebinding a closed socket's port: %v", err)
	}
	again.Close()
	// A port in use is refused.
	busy := listenLoopback(t)
	if _, err := ListenSocket(busy.LocalAddr()); err == nil {
		t.Fatal("bound a port already in use")
	}
}

// An IPv6 socket on [::] is dual stack: it receives from an IPv4 peer (seen
// as a plain IPv4 address) and can answer it.
func TestSocketDualStack(t *testing.T) {
	s, err := ListenSocket(netip.MustParseAddrPort("[::]:0"))
	if err != nil {
		t.Skipf("no IPv6 on this machine: %v", err)
	}
	defer s.Close()
	p := newPoller(t, 1)
	sk := &sink{}
	reg, err := p.Add(s, sk.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Remove()
	peer, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer peer.Close()
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), s.LocalAddr().Port())
	peer.WriteToUDPAddrPort([]byte("v4"), to)
	waitFor(t, func() bool { return sk.len() == 1 })
	from := sk.pkts[0].from
	if from != peer.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Fatalf("from %v, want %v", from, peer.LocalAddr())
	}
	if _, err := s.WriteTo([]byte("back"), from); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	peer.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, _, err := peer.ReadFromUDP(buf); err != nil || string(buf[:n]) != "back" {
		t.Fatalf("reply %q: %v", buf[:n], err)
	}
}

// Sockets are read every slow interval (here 3 s, far beyond the test's
// waits); TryDrain gets a socket's packets out at once, and from the
// socket's own handler it returns instead of deadlocking.
func TestPollerTryDrain(t *testing.T) {
	p, err := NewPoller(5*time.Millisecond, 3*time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.SlowInterval() != 3*time.Second {
		t.Fatalf("slow interval %v", p.SlowInterval())
	}
	slow := listenLoopback(t)
	slowSink := &sink{}
	var slowReg *Registration
	slowReg, err = p.Add(slow, func(b []byte, from netip.AddrPort, at time.Time) {
		slowReg.TryDrain() // from its own handler: must not block
		slowSink.fn(b, from, at)
	})
	if err != nil {
		t.Fatal(err)
	}
	peer, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer peer.Close()
	peer.WriteToUDPAddrPort([]byte("s1"), slow.LocalAddr())
	waitFor(t, func() bool { // queued in the socket
		n, err := unix.IoctlGetInt(slow.fd, unix.SIOCINQ)
		return err == nil && n > 0
	})
	slowReg.TryDrain()
	if n := slowSink.len(); n != 1 {
		t.Fatalf("TryDrain delivered %d datagrams, want 1", n)
	}
	slowReg.Remove()
}

// An owned socket is left to its owner: the worker goes on reading the
// others and not it, until TryDrain; handed back, the worker reads it again.
func TestPollerOwned(t *testing.T) {
	p, err := NewPoller(2*time.Millisecond, 8*time.Millisecond, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	owned, plain := listenLoopback(t), listenLoopback(t)
	ownedSink, plainSink := &sink{}, &sink{}
	ownedReg, err := p.Add(owned, ownedSink.fn)
	if err != nil {
		t.Fatal(err)
	}
	plainReg, err := p.Add(plain, plainSink.fn)
	if err != nil {
		t.Fatal(err)
	}
	ownedReg.SetOwned(true)
	peer, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer peer.Close()
	peer.WriteToUDPAddrPort([]byte("o1"), owned.LocalAddr())
	// Each datagram to the plain socket, sent once the previous one was
	// read, takes the worker through at least one whole cycle of rounds,
	// in which it would have read the owned socket too.
	for i := 1; i <= 3; i++ {
		peer.WriteToUDPAddrPort([]byte("p"), plain.LocalAddr())
		waitFor(t, func() bool { return plainSink.len() == i })
	}
	if n := ownedSink.len(); n != 0 {
		t.Fatalf("the worker read an owned socket (%d datagrams)", n)
	}
	ownedReg.TryDrain()
	if n := ownedSink.len(); n != 1 {
		t.Fatalf("TryDrain delivered %d datagrams, want 1", n)
	}
	ownedReg.SetOwned(false)
	peer.WriteToUDPAddrPort([]byte("o2"), owned.LocalAddr())
	waitFor(t, func() bool { return ownedSink.len() == 2 })
	ownedReg.Remove()
	plainReg.Remove()
}

// A tick runs at its period on the poller's clock (the median spacing, so a
// stall of the machine does not fail the test), and never after Remove.
func TestPollerTick(t *testing.T) {
	p, err := NewPoller(5*time.Millisecond, 50*time.Millisecond, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// A tick every interval counts the worker's rounds; the 20 ms tick,
	// added after it to the same (only) worker, runs later in the same
	// round and records the count. The spacing in rounds is exact whatever
	// the machine's load; wall time only gives a lower bound.
	var rounds atomic.Int64
	counter := p.AddTick(5*time.Millisecond, func() { rounds.Add(1) })
	defer counter.Remove()
	var mu sync.Mutex
	var at []int64
	var first, last time.Time
	var removed atomic.Bool
	var late atomic.Int32
	k := p.AddTick(20*time.Millisecond, func() {
		if removed.Load() {
			late.Add(1)
		}
		mu.Lock()
		if len(at) == 0 {
			first = time.Now()
		}
		last = time.Now()
		at = append(at, rounds.Load())
		mu.Unlock()
	})
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(at) >= 12 })
	k.Remove()
	removed.Store(true)
	k.Remove()
	// Remove's contract: once it returns, fn never runs again. Let a few
	// more of its periods pass (counted in rounds, not slept for).
	after := rounds.Load()
	waitFor(t, func() bool { return rounds.Load() >= after+12 })
	if late.Load() != 0 {
		t.Fatalf("tick ran %d times after Remove", late.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(at); i++ {
		if d := at[i] - at[i-1]; d != 4 {
			t.Fatalf("20 ms tick ran %d rounds of 5 ms after the previous one, want 4 (rounds %v)", d, at)
		}
	}
	// Rounds are never early: 11 periods of 20 ms take at least 220 ms less
	// the one interval a late first round can catch up.
	if span := last.Sub(first); span < 11*20*time.Millisecond-5*time.Millisecond {
		t.Fatalf("11 tick periods took %v, want at least 215 ms", span)
	}
}

// A socket added with AddEvery is read on its own, longer period: while
// a socket added with Add is read round after round (each datagram sent
// after the previous one arrived), the other's queued datagram stays in
// the kernel; Drain still gets it out at once. A session's RTCP socket is
// added so, read once a second.
func TestPollerAddEvery(t *testing.T) {
	p, err := NewPoller(time.Millisecond, 2*time.Millisecond, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fast, slow := listenLoopback(t), listenLoopback(t)
	fastSink, slowSink := &sink{}, &sink{}
	if _, err := p.Add(fast, fastSink.fn); err != nil {
		t.Fatal(err)
	}
	slowReg, err := p.AddEvery(slow, slowSink.fn, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	peer, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer peer.Close()
	peer.WriteToUDPAddrPort([]byte("s"), slow.LocalAddr())
	waitFor(t, func() bool {
		n, err := unix.IoctlGetInt(slow.fd, unix.SIOCINQ)
		return err == nil && n > 0
	})
	for i := 1; i <= 5; i++ { // five reads of the fast socket, one after another
		peer.WriteToUDPAddrPort([]byte("f"), fast.LocalAddr())
		waitFor(t, func() bool { return fastSink.len() == i })
	}
	if n := slowSink.len(); n != 0 {
		t.Fatalf("the socket read every hour was read: %d datagrams", n)
	}
	slowReg.Drain()
	if n := slowSink.len(); n != 1 {
		t.Fatalf("Drain delivered %d datagrams, want 1", n)
	}
}

// A worker with nothing to read or tick parks: it runs no rounds while a
// busy poller beside it runs many (counted, not slept for). A socket
// added wakes it and its datagrams arrive; once the socket is removed it
// parks again; a tick added wakes it as well.
func TestPollerIdleWorkerParks(t *testing.T) {
	busy, idle := newPoller(t, 1), newPoller(t, 1)
	bs := listenLoopback(t)
	rb, err := busy.Add(bs, func([]byte, netip.AddrPort, time.Time) {})
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Remove()
	w := idle.workers[0]
	busyRounds := func() int64 { return busy.workers[0].rounds.Load() }
	waitParked := func(what string) {
		t.Helper()
		// Parked once its count stays put while the busy one runs 20 rounds.
		for range 10 {
			before, from := w.rounds.Load(), busyRounds()
			waitFor(t, func() bool { return busyRounds() >= from+20 })
			if w.rounds.Load() == before {
				return
			}
		}
		t.Fatalf("%s: the idle worker keeps running rounds (%d)", what, w.rounds.Load())
	}
	waitParked("fresh")
	if n := w.rounds.Load(); n != 0 {
		t.Fatalf("a worker with nothing to do ran %d rounds", n)
	}

	s := listenLoopback(t)
	var k sink
	r, err := idle.Add(s, k.fn)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", s.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 {
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return k.len() == 3 })
	r.Remove()
	waitParked("after Remove")

	var ticks atomic.Int64
	tk := idle.AddTick(5*time.Millisecond, func() { ticks.Add(1) })
	waitFor(t, func() bool { return ticks.Load() >= 5 })
	tk.Remove()
	waitParked("after the tick's Remove")
}

// A worker with sockets and no tick wakes once per read interval, not once
// per interval (counted: wakes against the intervals that passed), and
// every socket is still read on every one of those wake-ups.
func TestPollerWithoutTickWakesPerReadInterval(t *testing.T) {
	p, err := NewPoller(time.Millisecond, 20*time.Millisecond, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w := p.workers[0]
	socks := make([]*Socket, 3)
	sinks := make([]*sink, 3)
	for i := range socks {
		socks[i], sinks[i] = listenLoopback(t), &sink{}
		r, err := p.Add(socks[i], sinks[i].fn)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Remove()
	}
	peer, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer peer.Close()
	rounds, wakes := w.rounds.Load(), w.wakes.Load()
	for i := 1; i <= 5; i++ {
		for _, s := range socks {
			peer.WriteToUDPAddrPort([]byte{byte(i)}, s.LocalAddr())
		}
		waitFor(t, func() bool {
			for _, k := range sinks {
				if k.len() < i {
					return false
				}
			}
			return true
		})
	}
	waitFor(t, func() bool { return w.rounds.Load() >= rounds+200 })
	dr, dw := w.rounds.Load()-rounds, w.wakes.Load()-wakes
	if dw*10 > dr {
		t.Fatalf("the worker woke %d times in %d intervals of 1 ms: want once per 20 (the read interval)", dw, dr)
	}
}

// hourlyReader is a one-worker poller (5 ms interval) with one socket read
// once an hour: without a tick to run, its worker sleeps through the read
// interval.
func hourlyReader(t *testing.T) (*Poller, *pollWorker) {
	t.Helper()
	p, err := NewPoller(5*time.Millisecond, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	r, err := p.Add(listenLoopback(t), func([]byte, netip.AddrPort, time.Time) {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Remove)
	return p, p.workers[0]
}

// intervalsPass waits until n intervals (5 ms) have passed, counted on the
// rounds of a busy poller beside the one under test, not slept for.
func intervalsPass(t *testing.T, n int64) {
	t.Helper()
	busy := newPoller(t, 1)
	rb, err := busy.Add(listenLoopback(t), func([]byte, netip.AddrPort, time.Time) {})
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Remove()
	from := busy.workers[0].rounds.Load()
	waitFor(t, func() bool { return busy.workers[0].rounds.Load() >= from+n })
}

// A tick added while the worker sleeps through a read interval (here an
// hour long) runs at once, on the interval's schedule; removed, the
// worker goes back to sleeping per read interval (counted against the
// rounds of a busy poller beside it, not slept for).
func TestPollerTickAddedDuringSlowSleep(t *testing.T) {
	p, w := hourlyReader(t)
	waitFor(t, func() bool { return w.slowSleeps.Load() == 1 })
	var ticks atomic.Int64
	k := p.AddTick(5*time.Millisecond, func() { ticks.Add(1) })
	waitFor(t, func() bool { return ticks.Load() >= 10 })
	k.Remove()
	waitFor(t, func() bool { return w.slowSleeps.Load() == 2 })
	wakes := w.wakes.Load()
	intervalsPass(t, 20)
	if n := w.wakes.Load() - wakes; n != 0 {
		t.Fatalf("without its tick the worker woke %d times in 20 intervals (read interval 1 h)", n)
	}
}

// A paused tick does not run, and a worker whose only tick is paused sleeps
// through the read interval as one without ticks (a direct bridge's idle
// clock must not wake it every interval); resumed, the tick runs again on
// the interval's schedule, and a paused tick can be removed.
func TestPollerPausedTickSleeps(t *testing.T) {
	p, w := hourlyReader(t)
	var ticks atomic.Int64
	k := p.AddTick(5*time.Millisecond, func() { ticks.Add(1) })
	waitFor(t, func() bool { return ticks.Load() >= 5 })
	sleeps := w.slowSleeps.Load()
	k.SetPaused(true)
	if !k.Paused() {
		t.Fatal("Paused() false after SetPaused(true)")
	}
	waitFor(t, func() bool { return w.slowSleeps.Load() > sleeps })
	wakes, ran := w.wakes.Load(), ticks.Load()
	intervalsPass(t, 20)
	if n, m := w.wakes.Load()-wakes, ticks.Load()-ran; n != 0 || m != 0 {
		t.Fatalf("with its only tick paused the worker woke %d times and ran the tick %d times in 20 intervals (read interval 1 h)", n, m)
	}
	k.SetPaused(false)
	ran = ticks.Load()
	waitFor(t, func() bool { return ticks.Load() >= ran+5 })
	k.SetPaused(true)
	k.Remove()
	k.SetPaused(false) // removed: stays gone
	if n := w.active.Load(); n != 0 {
		t.Fatalf("%d active ticks after the only one was removed", n)
	}
}

// SetPaused keeps the guarantee its comment states, no more: it does not
// wait for fn (called while fn runs, from another goroutine or from fn
// itself, it returns), and once it has returned no later round calls fn,
// though the worker keeps running rounds (for another tick); the call
// under way finishes. Resumed, fn runs again.
func TestTickSetPausedGuarantee(t *testing.T) {
	p := newPoller(t, 1)
	var calls, others atomic.Int64
	var block, pauseSelf atomic.Bool
	entered, release := make(chan struct{}, 1), make(chan struct{})
	letGo := sync.OnceFunc(func() { close(release) })
	t.Cleanup(letGo) // (a failure below must not leave the worker blocked in fn)
	var k atomic.Pointer[Tick]
	k.Store(p.AddTick(5*time.Millisecond, func() {
		calls.Add(1)
		if block.CompareAndSwap(true, false) {
			entered <- struct{}{}
			<-release
		}
		if pauseSelf.CompareAndSwap(true, false) {
			k.Load().SetPaused(true)
		}
	}))
	// Another tick keeps the worker running a round every interval.
	p.AddTick(5*time.Millisecond, func() { others.Add(1) })
	waitFor(t, func() bool { return calls.Load() >= 3 })
	noLaterCall := func(what string) {
		t.Helper()
		n, from := calls.Load(), others.Load()
		waitFor(t, func() bool { return others.Load() >= from+10 })
		if m := calls.Load(); m != n {
			t.Fatalf("%s: fn ran %d times in the 10 rounds after, want none", what, m-n)
		}
	}

	// From another goroutine while fn runs: it returns without waiting.
	block.Store(true)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("fn never ran")
	}
	paused := make(chan struct{})
	go func() { k.Load().SetPaused(true); close(paused) }()
	select {
	case <-paused:
	case <-time.After(10 * time.Second):
		t.Fatal("SetPaused(true) waited for the fn running on the worker")
	}
	letGo()
	noLaterCall("paused while fn ran")

	// Resumed, it runs again; paused from fn itself, it returns and fn
	// runs no more.
	k.Load().SetPaused(false)
	n := calls.Load()
	waitFor(t, func() bool { return calls.Load() >= n+3 })
	pauseSelf.Store(true)
	waitFor(t, func() bool { return k.Load().Paused() })
	noLaterCall("paused from fn")
	k.Load().SetPaused(false)
	n = calls.Load()
	waitFor(t, func() bool { return calls.Load() >= n+3 })
}

// dueIn agrees with round's test, (round+phase)%every == 0, for every
// window of rounds: readDue reads each socket once in a window that holds
// one of its rounds, and skips it otherwise.
func TestMemberDueIn(t *testing.T) {
	for every := 1; every <= 12; every++ {
		for phase := range every {
			m := &member{every: every, phase: phase}
			for from := 0; from < 40; from++ {
				for to := from; to < from+30; to++ {
					want := false
					for r := from + 1; r <= to; r++ {
						if (r+m.phase)%m.every == 0 {
							want = true
						}
					}
					if got := m.dueIn(from, to); got != want {
						t.Fatalf("every %d phase %d rounds %d..%d: dueIn %v, want %v", every, phase, from+1, to, got, want)
					}
				}
			}
		}
	}
}

// A worker reading its sockets once per read interval ends each interval
// on the node's wake-up grid (wakegrid): a multiple of the read interval on
// the wall clock, where the node's other periodic jobs wake too, so that
// the process wakes once for all of them. Checked on the sleeps' computed
// ends, not on when the worker woke (that is the scheduler's).
func TestPollerSlowSleepEndsOnWakeGrid(t *testing.T) {
	const slow = 100 * time.Millisecond
	p, err := NewPoller(10*time.Millisecond, slow, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w := p.workers[0]
	s := listenLoopback(t)
	r, err := p.Add(s, (&sink{}).fn)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Remove()
	for range 3 {
		n := w.slowSleeps.Load()
		waitFor(t, func() bool { return w.slowSleeps.Load() > n })
		// The end, in wall-clock ns: the wall clock now plus how far
		// ahead (or behind) of the monotonic clock now it lies.
		end := time.Now().UnixNano() + (w.sleptUntil.Load() - monotonic())
		off := time.Duration(end % int64(slow))
		if off > slow/2 {
			off -= slow
		}
		if off < -time.Millisecond || off > time.Millisecond {
			t.Fatalf("a read interval ends %v off the %v grid, want within 1 ms", off, slow)
		}
	}
}

// A round function runs after the rounds of a worker without ticks (once
// per read interval) and of one with ticks, from no goroutine or timer of
// its own, and no more after remove.
func TestPollerRoundFuncs(t *testing.T) {
	p, err := NewPoller(5*time.Millisecond, 20*time.Millisecond, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w := p.workers[0]
	r, err := p.Add(listenLoopback(t), func([]byte, netip.AddrPort, time.Time) {})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Remove()
	var runs atomic.Int64
	remove := p.AddRoundFunc(func() { runs.Add(1) })
	wakes := w.wakes.Load()
	waitFor(t, func() bool { return runs.Load() >= 5 })
	if w.slowSleeps.Load() == 0 || w.wakes.Load()-wakes < 5 {
		t.Fatalf("round function ran %d times in %d wake-ups of the worker", runs.Load(), w.wakes.Load()-wakes)
	}
	k := p.AddTick(5*time.Millisecond, func() {})
	from := runs.Load()
	waitFor(t, func() bool { return runs.Load() >= from+20 })
	k.Remove()
	remove()
	// A round in progress may still call it once.
	time.Sleep(50 * time.Millisecond)
	n := runs.Load()
	time.Sleep(100 * time.Millisecond)
	if m := runs.Load(); m != n {
		t.Fatalf("round function ran %d times after remove", m-n)
	}
}
