package rtp

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/tapedeck/tapedeck/internal/dtmf"
)

type recorder struct {
	mu     sync.Mutex
	audio  []uint64
	digits []string
	n      atomic.Int64
}

func (r *recorder) OnAudio(p *rtp.Packet, ext uint64) {
	r.mu.Lock()
	r.audio = append(r.audio, ext)
	r.mu.Unlock()
	r.n.Add(1)
}

func (r *recorder) OnDTMF(d rune, ms int, end bool) {
	if end {
		r.mu.Lock()
		r.digits = append(r.digits, string(d))
		r.mu.Unlock()
	}
	r.n.Add(1)
}

// newPair makes a session on 127.0.0.1 and a peer socket, the peer's address
// being the session's remote from SDP. batched: the session's sockets are
// read by a Poller (what the server does), otherwise by the session's own
// goroutines (what the test phone does).
func newPair(t testing.TB, h Handler, batched bool) (*Session, *net.UDPConn) {
	return newPairSDP(t, h, batched, nil)
}

// newPairSDP is newPair with the SDP address sdpAddr (nil: the peer's).
func newPairSDP(t testing.TB, h Handler, batched bool, sdpAddr *net.UDPAddr) (*Session, *net.UDPConn) {
	t.Helper()
	ports, err := NewPorts("127.0.0.1", 48000, 48999)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if sdpAddr == nil {
		sdpAddr = peer.LocalAddr().(*net.UDPAddr)
	}
	if sdpAddr == noSDP {
		sdpAddr = nil
	}
	cfg := Config{PayloadType: 0, DTMFPayloadType: 101, ClockRate: 8000, Handler: h, Remote: sdpAddr}
	if batched {
		poller, err := NewPoller(5*time.Millisecond, 20*time.Millisecond, 2)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(poller.Close)
		cfg.Socket, cfg.RTCPSocket, err = ports.ListenSockets()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Poller = poller
	} else {
		cfg.Conn, cfg.RTCPConn, err = ports.Listen()
		if err != nil {
			t.Fatal(err)
		}
	}
	s := NewSession(cfg)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); peer.Close() })
	return s, peer
}

// bothModes runs a session test with goroutine reads and with a Poller.
// noSDP as newPairSDP's address: a session that knows no SDP address yet.
var noSDP = &net.UDPAddr{}

func bothModes(t *testing.T, f func(t *testing.T, batched bool)) {
	t.Run("goroutine", func(t *testing.T) { f(t, false) })
	t.Run("poller", func(t *testing.T) { f(t, true) })
}

func packet(pt uint8, seq uint16, ts, ssrc uint32, marker bool, payload []byte) []byte {
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc, Marker: marker}, Payload: payload}
	b, _ := p.Marshal()
	return b
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStatsLossDuplicatesReorder(t *testing.T) { bothModes(t, testStatsLossDuplicatesReorder) }

func testStatsLossDuplicatesReorder(t *testing.T, batched bool) {
	rec := &recorder{}
	s, peer := newPair(t, rec, batched)
	payload := make([]byte, 160)
	// seq 65530..65535, 0..9 (wrap), with 3 lost, one duplicate, one reordered.
	order := []uint16{65530, 65531, 65532, 65533, 65535, 65534, 0, 1, 1, 2, 3, 7, 8, 9}
	for _, seq := range order {
		if _, err := peer.WriteToUDP(packet(0, seq, uint32(seq)*160, 42, false, payload), s.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return rec.n.Load() == int64(len(order)-1) })
	st := s.Stats()
	if st.Received != 13 || st.Duplicates != 1 || st.Reordered != 1 || st.Expected != 16 || st.Lost != 3 {
		t.Fatalf("stats %+v", st)
	}
	// Extended sequence numbers keep growing across the wrap.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	last := rec.audio[len(rec.audio)-1]
	first := rec.audio[0]
	if last-first != 15 {
		t.Fatalf("extended seq span %d, want 15 (%v)", last-first, rec.audio)
	}
}

func TestSymmetricLatchAndSend(t *testing.T) { bothModes(t, testSymmetricLatchAndSend) }

// A phone behind NAT: its SDP says one address, its packets come from
// another. The source is learned from a run of Probation sequential packets
// (the ones before are dropped, as Asterisk does) and audio goes back to it.
func testSymmetricLatchAndSend(t *testing.T, batched bool) {
	rec := &recorder{}
	s, peer := newPairSDP(t, rec, batched, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9})
	for seq := uint16(1); seq <= 6; seq++ {
		if _, err := peer.WriteToUDP(packet(0, seq, uint32(seq)*160, 7, seq == 1, make([]byte, 160)), s.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return rec.n.Load() == 6-Probation+1 })
	if got := s.Remote().AddrPort(); got != peer.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Fatalf("latched to %v, want %v", got, peer.LocalAddr())
	}
	if st := s.Stats(); st.SourceDropped != Probation-1 || st.Received != 6-Probation+1 {
		t.Fatalf("learning: dropped %d received %d", st.SourceDropped, st.Received)
	}
	// What we send goes to the latched address.
	if err := s.WriteAudio(make([]byte, 160), 160); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	peer.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, _, err := peer.ReadFromUDP(buf)
	if err != nil {
		t.Fatal(err)
	}
	var p rtp.Packet
	if err := p.Unmarshal(buf[:n]); err != nil || !p.Marker || len(p.Payload) != 160 {
		t.Fatalf("sent packet %+v %v", p.Header, err)
	}
}

func TestStrictRTP(t *testing.T) { bothModes(t, testStrictRTP) }

func TestFirstSourceWithoutSDP(t *testing.T) { bothModes(t, testFirstSourceWithoutSDP) }

// Before any SDP address is known (early media that arrives before the
// answer is read, a call without an offer), the first source's packets are
// all delivered, from the first one, and audio goes back to it; another
// source is still refused once that one is locked.
func testFirstSourceWithoutSDP(t *testing.T, batched bool) {
	rec := &recorder{}
	s, peer := newPairSDP(t, rec, batched, noSDP)
	if s.Remote() != nil {
		t.Fatalf("remote %v before any packet", s.Remote())
	}
	dst := s.LocalAddr()
	for seq := uint16(1); seq <= 6; seq++ {
		if _, err := peer.WriteToUDP(packet(0, seq, uint32(seq)*160, 9, false, make([]byte, 160)), dst); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return rec.n.Load() == 6 })
	if got, want := s.Remote().AddrPort(), peer.LocalAddr().(*net.UDPAddr).AddrPort(); got != want {
		t.Fatalf("sending to %v, want the first source %v", got, want)
	}
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for seq := uint16(50); seq < 60; seq++ {
		other.WriteToUDP(packet(0, seq, uint32(seq)*160, 66, false, make([]byte, 160)), dst)
	}
	peer.WriteToUDP(packet(0, 7, 7*160, 9, false, make([]byte, 160)), dst)
	waitFor(t, func() bool { return rec.n.Load() == 7 })
	if st := s.Stats(); st.SourceDropped != 10 || st.Received != 7 {
		t.Fatalf("after another source: %+v", st)
	}
}

// Once the source is learned, packets from any other address are dropped
// and counted, however many and however sequential; only a continuation of
// the locked stream (same SSRC, following sequence numbers) from a new
// address (a NAT rebinding) or new SDP moves it.
func testStrictRTP(t *testing.T, batched bool) {
	rec := &recorder{}
	s, peer := newPair(t, rec, batched)
	dst := s.LocalAddr()
	send := func(c *net.UDPConn, seq uint16, ssrc uint32) {
		t.Helper()
		if _, err := c.WriteToUDP(packet(0, seq, uint32(seq)*160, ssrc, false, make([]byte, 160)), dst); err != nil {
			t.Fatal(err)
		}
	}
	// The SDP address is accepted at once and locked after Probation packets.
	for seq := uint16(100); seq < 110; seq++ {
		send(peer, seq, 7)
	}
	waitFor(t, func() bool { return rec.n.Load() == 10 })
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// An attacker with its own SSRC: 20 sequential packets, all dropped.
	for seq := uint16(500); seq < 520; seq++ {
		send(other, seq, 666)
	}
	// The real stream goes on; its packets are the marker that the
	// attacker's (sent before) have been handled.
	for seq := uint16(110); seq < 115; seq++ {
		send(peer, seq, 7)
	}
	waitFor(t, func() bool { return rec.n.Load() == 15 })
	st := s.Stats()
	if st.SourceDropped != 20 || st.Received != 15 || st.SSRC != 7 || st.SSRCChanges != 0 {
		t.Fatalf("after injection: %+v", st)
	}
	if got := s.Remote().AddrPort(); got != peer.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Fatalf("remote moved to %v", got)
	}
	// The same SSRC from another address but not continuing the sequence:
	// dropped.
	for seq := uint16(3000); seq < 3010; seq++ {
		send(other, seq, 7)
	}
	// A NAT rebinding: the stream continues from a new address. The first
	// Probation-1 packets are dropped, then it is the source.
	for seq := uint16(115); seq < 125; seq++ {
		send(other, seq, 7)
	}
	waitFor(t, func() bool { return rec.n.Load() == 15+10-Probation+1 })
	st = s.Stats()
	if st.SourceDropped != 20+10+Probation-1 || st.SourceChanges != 1 {
		t.Fatalf("after rebinding: %+v", st)
	}
	if got := s.Remote().AddrPort(); got != other.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Fatalf("remote %v after rebinding, want %v", got, other.LocalAddr())
	}
	// The old address is now the stranger.
	send(peer, 125, 7)
	waitFor(t, func() bool { return s.Stats().SourceDropped == 20+10+Probation })
	// New SDP (a re-INVITE moving the media to a third address) restarts
	// learning: the new address is accepted at once, with any SSRC.
	third, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	s.Update(third.LocalAddr().(*net.UDPAddr), 0, 101)
	if got := s.Remote().AddrPort(); got != third.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Fatalf("remote %v after new SDP, want %v", got, third.LocalAddr())
	}
	n := rec.n.Load()
	send(third, 1, 8)
	waitFor(t, func() bool { return rec.n.Load() == n+1 })
}

func TestDTMFOncePerDigitAndSSRCChange(t *testing.T) { bothModes(t, testDTMFOncePerDigitAndSSRCChange) }

func testDTMFOncePerDigitAndSSRCChange(t *testing.T, batched bool) {
	rec := &recorder{}
	s, peer := newPair(t, rec, batched)
	send := func(seq uint16, ts, ssrc uint32, events []dtmf.Event) {
		for i, ev := range events {
			b := make([]byte, 4)
			ev.MarshalTo(b)
			peer.WriteToUDP(packet(101, seq+uint16(i), ts, ssrc, i == 0, b), s.LocalAddr())
		}
	}
	evs, err := dtmf.NewSenderPackets('5', 100*time.Millisecond, 8000, 20)
	if err != nil {
		t.Fatal(err)
	}
	send(10, 1000, 1, evs)
	// A new SSRC (e.g. after a re-INVITE) with a restarted sequence.
	evs2, _ := dtmf.NewSenderPackets('#', 60*time.Millisecond, 8000, 20)
	send(5, 99999, 2, evs2)
	waitFor(t, func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return len(rec.digits) == 2 })
	time.Sleep(50 * time.Millisecond) // retransmitted end packets must not add digits
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.digits) != 2 || rec.digits[0] != "5" || rec.digits[1] != "#" {
		t.Fatalf("digits %v", rec.digits)
	}
	if s.Stats().SSRCChanges != 1 {
		t.Fatalf("ssrc changes %d", s.Stats().SSRCChanges)
	}
}

func TestSendDigitPacketsAndHold(t *testing.T) { bothModes(t, testSendDigitPacketsAndHold) }

func testSendDigitPacketsAndHold(t *testing.T, batched bool) {
	rec := &recorder{}
	s, peer := newPair(t, rec, batched)
	s.Update(peer.LocalAddr().(*net.UDPAddr), 0, 101)
	go s.SendDigit('9', 60*time.Millisecond)
	var det dtmf.Detector
	buf := make([]byte, 1500)
	peer.SetReadDeadline(time.Now().Add(3 * time.Second))
	got := ""
	for got == "" {
		n, _, err := peer.ReadFromUDP(buf)
		if err != nil {
			t.Fatal(err)
		}
		var p rtp.Packet
		var ev dtmf.Event
		if p.Unmarshal(buf[:n]) != nil || p.PayloadType != 101 || ev.Unmarshal(p.Payload) != nil {
			t.Fatalf("not a telephone-event packet")
		}
		if d, _, _, done := det.Push(p.Timestamp, p.Marker, ev, 8000); done {
			got = string(d)
		}
	}
	if got != "9" {
		t.Fatalf("digit %q", got)
	}
	// On hold nothing is sent, even when the held party's packets (music on
	// hold) keep arriving.
	s.Update(nil, 0, 101)
	if err := s.WriteAudio(make([]byte, 160), 160); err == nil {
		t.Fatal("sent while on hold")
	}
	n := s.Stats().Received
	peer.WriteToUDP(packet(0, 1, 160, 5, true, make([]byte, 160)), s.LocalAddr())
	waitFor(t, func() bool { return s.Stats().Received == n+1 })
	if err := s.WriteAudio(make([]byte, 160), 160); err == nil {
		t.Fatal("a received packet resumed sending while on hold")
	}
	// Off hold (same address): sending resumes.
	s.Update(peer.LocalAddr().(*net.UDPAddr), 0, 101)
	if err := s.WriteAudio(make([]byte, 160), 160); err != nil {
		t.Fatalf("off hold: %v", err)
	}
}

// BenchmarkProcess is the receive path after the socket read: parse,
// latch, statistics, DTMF detection, handler. 0 allocs/op.
func BenchmarkProcess(b *testing.B) {
	from := netip.MustParseAddrPort("127.0.0.1:4000")
	s := NewSession(Config{PayloadType: 0, DTMFPayloadType: 101, ClockRate: 8000, Handler: nopHandler{},
		Remote: net.UDPAddrFromAddrPort(from)})
	r := &reader{buf: make([]byte, 1500)}
	audio := packet(0, 0, 0, 1, false, make([]byte, 160))
	ev := make([]byte, 4)
	(&dtmf.Event{Event: 1, Duration: 160}).MarshalTo(ev)
	tone := packet(101, 0, 0, 1, true, ev)
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(audio)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		src := audio
		if i%50 == 49 {
			src = tone
		}
		n := copy(r.buf, src)
		seq := uint16(i)
		r.buf[2], r.buf[3] = byte(seq>>8), byte(seq)
		s.process(r, r.buf[:n], from, now)
	}
}

type nopHandler struct{}

func (nopHandler) OnAudio(*rtp.Packet, uint64) {}
func (nopHandler) OnDTMF(rune, int, bool)      {}

type countHandler struct{ n atomic.Int64 }

func (c *countHandler) OnAudio(*rtp.Packet, uint64) { c.n.Add(1) }
func (c *countHandler) OnDTMF(rune, int, bool)      {}

// BenchmarkReceiveSocket: real loopback UDP, socket read → parse → taps.
// The sender writes with WriteToUDPAddrPort from a reused buffer, so the
// allocation count is the receive path's.
// (The Poller's cost is CPU per packet, not time per packet, which its
// interval sets: bench/loadgen measures it.)
func BenchmarkReceiveSocket(b *testing.B) {
	h := &countHandler{}
	s, peer := newPair(b, h, false)
	dst := s.LocalAddr().AddrPort()
	pkt := packet(0, 0, 0, 1, false, make([]byte, 160))
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	b.ResetTimer()
	sent := 0
	for i := 0; i < b.N; i++ {
		seq := uint16(i)
		pkt[2], pkt[3] = byte(seq>>8), byte(seq)
		if _, err := peer.WriteToUDPAddrPort(pkt, dst); err == nil {
			sent++
		}
		if i%64 == 63 { // let the reader keep up: no socket-buffer drops
			for h.n.Load() < int64(sent)-32 {
				time.Sleep(0)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.n.Load() < int64(sent) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(h.n.Load())/float64(sent), "delivered")
}

// With a Poller, Close hands the handler what the socket holds before it
// closes: the audio that arrived just before a hangup is recorded, not left
// for a read round that never comes. The poller's first round is a second
// away, so only Close can deliver the packets in time.
func TestCloseDeliversQueuedPackets(t *testing.T) {
	poller, err := NewPoller(time.Second, time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer poller.Close()
	ports, _ := NewPorts("127.0.0.1", 48000, 48999)
	sock, rtcpSock, err := ports.ListenSockets()
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	peer, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer peer.Close()
	s := NewSession(Config{Socket: sock, RTCPSocket: rtcpSock, Poller: poller, PayloadType: 0, ClockRate: 8000, Handler: rec,
		Remote: peer.LocalAddr().(*net.UDPAddr)})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	const n = 75 // more than one recvmmsg batch
	for i := range n {
		if _, err := peer.WriteToUDP(packet(0, uint16(i), uint32(i)*160, 9, i == 0, make([]byte, 160)), s.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	if got := rec.n.Load(); got != 0 {
		t.Fatalf("%d packets handled before Close with a 1 s interval", got)
	}
	s.Close()
	if got := rec.n.Load(); got != n {
		t.Fatalf("Close delivered %d of %d queued packets", got, n)
	}
	if st := s.Stats(); st.Received != n || st.Lost != 0 {
		t.Fatalf("stats %+v", st)
	}
}

type arrivalHandler struct {
	s        *Session
	arrivals []time.Time
}

func (a *arrivalHandler) OnAudio(*rtp.Packet, uint64) { a.arrivals = append(a.arrivals, a.s.Arrival()) }
func (a *arrivalHandler) OnDTMF(rune, int, bool)      {}

// Arrival is when a packet arrived, not when a batched read got to it: two
// packets sent 50 ms apart and read in one batch keep their spacing (the
// wall clock a recording bounds its gaps with).
func TestArrivalIsReceiveTime(t *testing.T) {
	poller, err := NewPoller(time.Second, time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer poller.Close()
	ports, _ := NewPorts("127.0.0.1", 48000, 48999)
	sock, rtcpSock, err := ports.ListenSockets()
	if err != nil {
		t.Fatal(err)
	}
	peer, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer peer.Close()
	h := &arrivalHandler{}
	s := NewSession(Config{Socket: sock, RTCPSocket: rtcpSock, Poller: poller, PayloadType: 0, ClockRate: 8000, Handler: h,
		Remote: peer.LocalAddr().(*net.UDPAddr)})
	h.s = s
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	awaitArrivalStamps(t)
	first := time.Now()
	peer.WriteToUDP(packet(0, 1, 160, 9, true, make([]byte, 160)), s.LocalAddr())
	time.Sleep(50 * time.Millisecond) // the input: a 50 ms gap between two packets
	peer.WriteToUDP(packet(0, 2, 320, 9, false, make([]byte, 160)), s.LocalAddr())
	s.Close() // one read, long before the poller's first round
	if len(h.arrivals) != 2 {
		t.Fatalf("%d packets handled", len(h.arrivals))
	}
	if gap := h.arrivals[1].Sub(h.arrivals[0]); gap < 45*time.Millisecond {
		t.Fatalf("arrivals %v apart for packets sent 50 ms apart", gap)
	}
	if h.arrivals[0].Before(first.Add(-time.Second)) || h.arrivals[1].After(time.Now().Add(time.Second)) {
		t.Fatalf("arrivals %v not around the sending (%v)", h.arrivals, first)
	}
}

// blockingHandler holds its first audio packet until release is closed,
// after calling Flush from inside the handler (which must not wait for
// itself).
type blockingHandler struct {
	s        atomic.Pointer[Session]
	entered  chan struct{}
	release  chan struct{}
	finished atomic.Int64
}

func (h *blockingHandler) OnAudio(*rtp.Packet, uint64) {
	if h.finished.Load() == 0 {
		h.s.Load().Flush() // from the Handler: returns at once
		close(h.entered)
		<-h.release
	}
	h.finished.Add(1)
}
func (h *blockingHandler) OnDTMF(rune, int, bool) {}

// Flush waits for a packet already counted in the statistics but still in
// the Handler: a stop or hangup that follows "N packets received" sees all
// N (the flake of TestRecordingGolden with read_interval_ms=0, where the
// stop ran between the statistics and OnAudio of the last packet, and the
// Poller's window when its worker is mid-batch).
func TestFlushWaitsForPacketInHandler(t *testing.T) { bothModes(t, testFlushWaitsForPacketInHandler) }

func testFlushWaitsForPacketInHandler(t *testing.T, batched bool) {
	h := &blockingHandler{entered: make(chan struct{}), release: make(chan struct{})}
	s, peer := newPair(t, h, batched)
	h.s.Store(s)
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(h.release) }) }
	t.Cleanup(release) // before the session's Close, even on failure
	if _, err := peer.WriteToUDP(packet(0, 1, 160, 7, true, make([]byte, 160)), s.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("packet not handled (or Flush from the Handler deadlocked)")
	}
	if st := s.Stats(); st.Received != 1 {
		t.Fatalf("received %d, want 1", st.Received)
	}
	flushed := make(chan int64)
	go func() {
		s.Flush()
		flushed <- h.finished.Load()
	}()
	select {
	case n := <-flushed:
		t.Fatalf("Flush returned while the packet was still in the Handler (handled %d)", n)
	case <-time.After(100 * time.Millisecond): // Flush is waiting, as it must
	}
	release()
	select {
	case n := <-flushed:
		if n != 1 {
			t.Fatalf("after Flush %d packets handled, want 1", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Flush did not return once the Handler did")
	}
}
