package rtp

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A relaxed socket (SetRelaxed) is read only on the wake-ups whose instant
// falls in the first read interval of its period's grid, while a socket
// beside it is read at every wake-up; SetRelaxed(0) puts it back, and a
// period under two read intervals relaxes nothing. The worker is driven
// by hand (readDue with chosen instants): its own schedule is an hour.
func TestPollerRelaxedReadsOnItsGrid(t *testing.T) {
	// Two steps per read interval: the worker sleeps on a Go timer (slowSleep),
	// which Close ends.
	p, err := NewPoller(30*time.Minute, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w := p.workers[0]
	norm, rel := listenLoopback(t), listenLoopback(t)
	normSink, relSink := &sink{}, &sink{}
	if _, err := p.Add(norm, normSink.fn); err != nil {
		t.Fatal(err)
	}
	reg, err := p.Add(rel, relSink.fn)
	if err != nil {
		t.Fatal(err)
	}
	reg.SetRelaxed(90 * time.Minute) // under two read intervals: nothing
	if got := reg.Relaxed(); got != 0 {
		t.Fatalf("Relaxed() = %v after a period under two read intervals, want 0", got)
	}
	reg.SetRelaxed(2*time.Hour + time.Minute) // rounded down to 2 h
	if got := reg.Relaxed(); got != 2*time.Hour {
		t.Fatalf("Relaxed() = %v, want 2h", got)
	}
	peer, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer peer.Close()
	queued := func(s *Socket) bool {
		n, err := unix.IoctlGetInt(s.fd, unix.SIOCINQ)
		return err == nil && n > 0
	}
	send := func() {
		peer.WriteToUDPAddrPort([]byte("n"), norm.LocalAddr())
		peer.WriteToUDPAddrPort([]byte("r"), rel.LocalAddr())
		waitFor(t, func() bool { return queued(norm) && queued(rel) })
	}
	// The worker has started (and set its goroutine id, which drain reads)
	// and sleeps: readDue below runs on this goroutine alone.
	waitFor(t, func() bool { return w.slowSleeps.Load() > 0 })
	h := int64(time.Hour)
	round := 0
	wake := func(now int64) { // a read interval's rounds, as run does
		w.readDue(round, round+w.slowEvery, now, h)
		round += w.slowEvery
	}
	send()
	wake(h + 5*int64(time.Millisecond)) // off the 2 h grid
	if normSink.len() != 1 || relSink.len() != 0 {
		t.Fatalf("off the grid: normal %d, relaxed %d datagrams; want 1, 0", normSink.len(), relSink.len())
	}
	wake(2*h + 5*int64(time.Millisecond)) // on it, late by 5 ms
	if normSink.len() != 1 || relSink.len() != 1 {
		t.Fatalf("on the grid: normal %d, relaxed %d datagrams; want 1, 1", normSink.len(), relSink.len())
	}
	send()
	wake(4*h - 1) // the last instant of the second read interval: off
	if normSink.len() != 2 || relSink.len() != 1 {
		t.Fatalf("off the grid: normal %d, relaxed %d datagrams; want 2, 1", normSink.len(), relSink.len())
	}
	reg.SetRelaxed(0)
	wake(5 * h)
	if relSink.len() != 2 {
		t.Fatalf("back to every read interval: relaxed %d datagrams, want 2", relSink.len())
	}
}

// On the worker's own schedule (10 ms steps, read every 100 ms, no tick), a
// socket relaxed to 200 ms while packets stream to it and to a socket
// beside it every 10 ms gets them in about half as many wake-ups, and
// every packet arrives.
func TestPollerRelaxedLive(t *testing.T) {
	p, err := NewPoller(10*time.Millisecond, 100*time.Millisecond, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w := p.workers[0]
	var mu sync.Mutex
	wakes := map[string]map[int64]bool{"n": {}, "r": {}}
	count := map[string]int{}
	fn := func(b []byte, _ netip.AddrPort, _ time.Time) {
		mu.Lock()
		wakes[string(b)][w.wakes.Load()] = true
		count[string(b)]++
		mu.Unlock()
	}
	norm, rel := listenLoopback(t), listenLoopback(t)
	if _, err := p.Add(norm, fn); err != nil {
		t.Fatal(err)
	}
	reg, err := p.Add(rel, fn)
	if err != nil {
		t.Fatal(err)
	}
	reg.SetRelaxed(200 * time.Millisecond)
	peer, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer peer.Close()
	const sent = 150 // 1.5 s
	for range sent {
		peer.WriteToUDPAddrPort([]byte("n"), norm.LocalAddr())
		peer.WriteToUDPAddrPort([]byte("r"), rel.LocalAddr())
		time.Sleep(10 * time.Millisecond)
	}
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return count["n"] == sent && count["r"] == sent
	})
	mu.Lock()
	n, r := len(wakes["n"]), len(wakes["r"])
	mu.Unlock()
	t.Logf("normal socket read in %d wake-ups, relaxed in %d", n, r)
	if n < 6 || r*3 > n*2+3 {
		t.Fatalf("normal socket read in %d wake-ups, relaxed in %d: want about half", n, r)
	}
}

// A worker whose sockets are all relaxed (an RTP socket every 200 ms, an
// RTCP socket every second, as Session relaxes them) sleeps from one
// instant of their grid to the next: 5 wake-ups a second, not one every
// read interval that reads nothing. Relaxed no more, the socket is read
// every read interval again at once.
func TestPollerAllRelaxedSleepsOnTheirGrid(t *testing.T) {
	p, err := NewPoller(10*time.Millisecond, 100*time.Millisecond, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w := p.workers[0]
	var mu sync.Mutex
	count := map[string]int{}
	fn := func(b []byte, _ netip.AddrPort, _ time.Time) {
		mu.Lock()
		count[string(b)]++
		mu.Unlock()
	}
	rtpSock, rtcpSock := listenLoopback(t), listenLoopback(t)
	reg, err := p.Add(rtpSock, fn)
	if err != nil {
		t.Fatal(err)
	}
	reg.SetRelaxed(200 * time.Millisecond)
	rreg, err := p.AddEvery(rtcpSock, fn, RTCPReadInterval)
	if err != nil {
		t.Fatal(err)
	}
	rreg.SetRelaxed(RTCPReadInterval)
	peer, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer peer.Close()
	sentA := 0 // packets "a" sent: a loaded host's sleeps send fewer than 100 in 2 s
	wakesIn := func(d time.Duration, send string) int64 {
		start := w.wakes.Load()
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			peer.WriteToUDPAddrPort([]byte(send), rtpSock.LocalAddr())
			if send == "a" {
				sentA++
			}
			time.Sleep(20 * time.Millisecond)
		}
		return w.wakes.Load() - start
	}
	time.Sleep(300 * time.Millisecond) // the first sleep may be one read interval
	peer.WriteToUDPAddrPort([]byte("c"), rtcpSock.LocalAddr())
	if n := wakesIn(2*time.Second, "a"); n > 12 {
		t.Fatalf("%d wake-ups in 2 s with every socket relaxed to 200 ms or more; want about 10 (20 every read interval)", n)
	}
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return count["c"] == 1 && count["a"] == sentA
	})
	reg.SetRelaxed(0)
	if n := wakesIn(time.Second, "b"); n < 8 {
		t.Fatalf("%d wake-ups in 1 s once the socket is relaxed no more; want about 10", n)
	}
}
