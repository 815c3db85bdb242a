package recorder

import (
	"testing"
	"time"
)

// tlSignal is the known signal: the sample at position p is p mod 20000 + 1
// (never 0, so silence is recognisable).
func tlSignal(p int64) int16 { return int16(p%20000 + 1) }

func tlPacket(buf []int16, first int64) []int16 {
	for i := range buf {
		buf[i] = tlSignal(first + int64(i))
	}
	return buf
}

type tlHarness struct {
	t   *testing.T
	tl  *Timeline
	out []int16
	now time.Time
	buf [160]int16
}

func newTL(t *testing.T) *tlHarness {
	h := &tlHarness{t: t, tl: NewTimeline(8000, 60*time.Millisecond), now: time.Unix(1000, 0)}
	return h
}

func (h *tlHarness) emit(p []int16) { h.out = append(h.out, p...) }

// push sends packet k of a stream (160 samples at ts0+160k, signal positions
// from sig0+160k).
func (h *tlHarness) push(ssrc, ts uint32, sigPos int64) {
	p := tlPacket(h.buf[:], sigPos)
	h.tl.Push(ssrc, ts, p, h.now, h.emit)
	// The caller reuses its buffer.
	for i := range h.buf {
		h.buf[i] = -1
	}
}

func (h *tlHarness) tick() { h.now = h.now.Add(20 * time.Millisecond) }

// check verifies out[from:from+n] is the signal starting at sigPos.
func (h *tlHarness) check(from, n int, sigPos int64) {
	h.t.Helper()
	if len(h.out) < from+n {
		h.t.Fatalf("only %d samples emitted, need %d", len(h.out), from+n)
	}
	for i := 0; i < n; i++ {
		if g, w := h.out[from+i], tlSignal(sigPos+int64(i)); g != w {
			h.t.Fatalf("sample %d = %d, want %d", from+i, g, w)
		}
	}
}

func (h *tlHarness) checkSilence(from, n int) {
	h.t.Helper()
	if len(h.out) < from+n {
		h.t.Fatalf("only %d samples emitted, need %d", len(h.out), from+n)
	}
	for i := from; i < from+n; i++ {
		if h.out[i] != 0 {
			h.t.Fatalf("sample %d = %d, want silence", i, h.out[i])
		}
	}
}

func TestTimelineInOrder(t *testing.T) {
	h := newTL(t)
	for k := 0; k < 100; k++ {
		h.push(1, 5000+uint32(160*k), int64(160*k))
		if len(h.out) != 160*(k+1) {
			t.Fatalf("in-order packet %d not emitted at once (%d samples out)", k, len(h.out))
		}
		h.tick()
	}
	h.tl.Flush(h.emit)
	h.check(0, 16000, 0)
	if h.tl.Emitted() != 16000 || len(h.out) != 16000 {
		t.Fatalf("emitted %d", h.tl.Emitted())
	}
}

func TestTimelineLoss(t *testing.T) {
	h := newTL(t)
	lost := map[int]bool{}
	for k := 0; k < 200; k++ {
		if k%20 == 7 { // 5% loss
			lost[k] = true
		} else {
			h.push(1, 99+uint32(160*k), int64(160*k))
		}
		h.tick()
	}
	h.tl.Flush(h.emit)
	if len(h.out) != 200*160 {
		t.Fatalf("%d samples, want %d", len(h.out), 200*160)
	}
	for k := 0; k < 200; k++ {
		if lost[k] {
			h.checkSilence(160*k, 160)
		} else {
			h.check(160*k, 160, int64(160*k))
		}
	}
	if s := h.tl.Stats(); s.SilenceSamples != 10*160 || s.Dropped != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestTimelineReorder(t *testing.T) {
	h := newTL(t)
	order := []int{0, 2, 1, 3, 5, 4, 6, 9, 7, 8, 10, 11}
	for _, k := range order {
		h.push(7, uint32(160*k), int64(160*k))
		h.tick()
	}
	h.tl.Flush(h.emit)
	h.check(0, 160*len(order), 0)
	if s := h.tl.Stats(); s.Dropped != 0 || s.SilenceSamples != 0 {
		t.Errorf("stats %+v", s)
	}
	// Held while reordering: after 0 and 2 only 0 is out.
	h2 := newTL(t)
	h2.push(7, 0, 0)
	h2.tick()
	h2.push(7, 320, 320)
	if len(h2.out) != 160 {
		t.Fatalf("%d out while waiting for packet 1", len(h2.out))
	}
	h2.push(7, 160, 160)
	if len(h2.out) != 480 {
		t.Fatalf("%d out after the missing packet arrived", len(h2.out))
	}
}

func TestTimelineLateAndExpiry(t *testing.T) {
	h := newTL(t)
	h.push(1, 0, 0)
	h.tick()
	// Packet 1 is late; 2 waits for it until the window expires.
	h.push(1, 320, 320)
	h.tick()
	h.tl.Advance(h.now, h.emit)
	if len(h.out) != 160 {
		t.Fatalf("released before the window expired: %d", len(h.out))
	}
	h.now = h.now.Add(41 * time.Millisecond) // 61 ms after packet 2 arrived
	h.tl.Advance(h.now, h.emit)
	if len(h.out) != 480 {
		t.Fatalf("not released after the window: %d", len(h.out))
	}
	// Packet 1 finally arrives: its slot is already silence, it is dropped.
	h.push(1, 160, 160)
	h.push(1, 480, 480)
	h.tl.Flush(h.emit)
	h.check(0, 160, 0)
	h.checkSilence(160, 160)
	h.check(320, 320, 320)
	if s := h.tl.Stats(); s.Dropped != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestTimelineDuplicates(t *testing.T) {
	h := newTL(t)
	dups := 0
	for k := 0; k < 50; k++ {
		h.push(3, uint32(160*k), int64(160*k))
		h.push(3, uint32(160*k), int64(160*k))
		dups++
		if k > 5 && k%5 == 0 {
			h.push(3, uint32(160*(k-3)), int64(160*(k-3))) // old duplicate
			dups++
		}
		h.tick()
	}
	// A duplicate of a held packet.
	h.push(3, 160*51, 160*51)
	h.push(3, 160*51, 160*51)
	dups++
	h.push(3, 160*50, 160*50)
	h.tl.Flush(h.emit)
	h.check(0, 52*160, 0)
	if s := h.tl.Stats(); s.Dropped != int64(dups) {
		t.Errorf("dropped %d, want %d", s.Dropped, dups)
	}
}

func TestTimelineWrap(t *testing.T) {
	h := newTL(t)
	ts0 := uint32(0xFFFFFFFF - 160*10 + 1)
	order := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 9, 11, 12, 14, 13, 15}
	for _, k := range order {
		if k == 12 {
			continue // lost across the wrap
		}
		h.push(9, ts0+uint32(160*k), int64(160*k))
		h.tick()
	}
	h.tl.Flush(h.emit)
	if len(h.out) != 16*160 {
		t.Fatalf("%d samples", len(h.out))
	}
	h.check(0, 12*160, 0)
	h.checkSilence(12*160, 160)
	h.check(13*160, 3*160, 13*160)
	if s := h.tl.Stats(); s.Rebases != 0 {
		t.Errorf("wrap caused a rebase: %+v", s)
	}
}

// A silence-suppression gap (timestamps skip 2 s, no packets) is filled from
// timestamps, not from the wall clock.
func TestTimelineTimestampGap(t *testing.T) {
	h := newTL(t)
	for k := 0; k < 10; k++ {
		h.push(1, uint32(160*k), int64(160*k))
		h.tick()
	}
	h.now = h.now.Add(5 * time.Second) // wall clock says 5 s
	for k := 110; k < 120; k++ {       // timestamps say 2 s
		h.push(1, uint32(160*k), int64(160*k))
		h.tick()
	}
	h.tl.Flush(h.emit)
	if len(h.out) != 120*160 {
		t.Fatalf("%d samples, want %d", len(h.out), 120*160)
	}
	h.check(0, 1600, 0)
	h.checkSilence(1600, 100*160)
	h.check(110*160, 1600, 110*160)
}

func TestTimelineSSRCChange(t *testing.T) {
	h := newTL(t)
	for k := 0; k < 50; k++ {
		h.push(1, 1000+uint32(160*k), int64(160*k))
		h.tick()
	}
	// New SSRC, unrelated timestamps, 1 s of wall clock with no packets
	// (plus the usual 20 ms packet interval).
	h.now = h.now.Add(time.Second + 3*time.Millisecond)
	for k := 0; k < 10; k++ {
		h.push(2, 77777+uint32(160*k), 8000+int64(160*k))
		h.tick()
	}
	// And another SSRC change without a pause continues at once.
	h.push(3, 5, 9600)
	h.tl.Flush(h.emit)
	want := 8000 + 8000 + 1600 + 160
	if len(h.out) != want {
		t.Fatalf("%d samples, want %d", len(h.out), want)
	}
	h.check(0, 8000, 0)
	h.checkSilence(8000, 8000)
	h.check(16000, 1600, 8000)
	h.check(17600, 160, 9600)
	if s := h.tl.Stats(); s.Rebases != 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestTimelineJumps(t *testing.T) {
	h := newTL(t)
	for k := 0; k < 10; k++ {
		h.push(1, uint32(160*k), int64(160*k))
		h.tick()
	}
	// Forward jump of 60 s in timestamps, packets keep flowing: rebase, no
	// minute of silence.
	for k := 0; k < 10; k++ {
		h.push(1, 480000+uint32(160*k), 1600+int64(160*k))
		h.tick()
	}
	// Backward jump of 30 s: rebase too.
	for k := 0; k < 10; k++ {
		h.push(1, 240000+uint32(160*k), 3200+int64(160*k))
		h.tick()
	}
	h.tl.Flush(h.emit)
	if len(h.out) != 4800 {
		t.Fatalf("%d samples, want 4800", len(h.out))
	}
	h.check(0, 4800, 0)
	if s := h.tl.Stats(); s.Rebases != 2 || s.SilenceSamples != 0 {
		t.Errorf("stats %+v", s)
	}
}

// Issue 12: a caller stepping the timestamp 9.9 s ahead on every packet
// (just under the jump that rebases) made 980 s of file out of 2 s of
// sending; steps inside the reorder ring (0.2 s) stretched it too. Silence is
// bounded by the wall clock: the output is no longer than the time that
// passed, plus 1/128 for clock drift and the jitter margin.
func TestTimelineTimestampWalkBoundedByWallClock(t *testing.T) {
	for _, step := range []uint32{79200, 1600} {
		h := newTL(t)
		start := h.now
		for k := 0; k < 100; k++ {
			h.push(1, 1000+uint32(k)*step, int64(160*k))
			h.tick()
		}
		h.tl.Flush(h.emit)
		wall := int64(h.now.Sub(start) / time.Millisecond * 8)
		if bound := wall + wall/128 + h.tl.slack; int64(len(h.out)) > bound {
			t.Fatalf("step %d: %d samples out of %d of wall clock (bound %d)", step, len(h.out), wall, bound)
		}
		// All the audio is there, in order.
		var got int
		for _, v := range h.out {
			if v != 0 {
				got++
			}
		}
		if got != 100*160 {
			t.Fatalf("step %d: %d audio samples, want %d", step, got, 100*160)
		}
		if s := h.tl.Stats(); s.Clamped == 0 {
			t.Fatalf("step %d: stats %+v", step, s)
		}
	}
}

// A new SSRC on every packet, packets 30 ms apart: each rebase rounded the
// 10 ms gap up to a 20 ms frame, so 3 s of sending made 4 s of file. The
// same wall-clock bound holds.
func TestTimelineSSRCPerPacketBoundedByWallClock(t *testing.T) {
	h := newTL(t)
	start := h.now
	for k := 0; k < 100; k++ {
		h.push(uint32(k+1), uint32(k)*7777, int64(160*k))
		h.now = h.now.Add(30 * time.Millisecond)
	}
	h.tl.Flush(h.emit)
	wall := int64(h.now.Sub(start) / time.Millisecond * 8)
	if bound := wall + wall/128 + h.tl.slack; int64(len(h.out)) > bound {
		t.Fatalf("%d samples out of %d of wall clock (bound %d)", len(h.out), wall, bound)
	}
}

func TestTimelineOddSizes(t *testing.T) {
	// Packets of varying size, reordered, bigger than the ring.
	h := newTL(t)
	var big [9000]int16
	h.tl.Push(1, 0, tlPacket(big[:], 0), h.now, h.emit)
	h.tick()
	h.tl.Push(1, 9000+240, tlPacket(big[:80], 9240), h.now, h.emit)
	h.tl.Push(1, 9000, tlPacket(big[:240], 9000), h.now, h.emit)
	h.tl.Flush(h.emit)
	h.check(0, 9320, 0)
}

func TestTimelineZeroAllocs(t *testing.T) {
	tl := NewTimeline(8000, 60*time.Millisecond)
	var pcm [160]int16
	now := time.Unix(0, 0)
	n := int64(0)
	out := func(p []int16) { n += int64(len(p)) }
	k := uint32(0)
	allocs := testing.AllocsPerRun(1000, func() {
		// Two packets swapped and one lost per round.
		tl.Push(1, 160*(k+1), pcm[:], now, out)
		now = now.Add(20 * time.Millisecond)
		tl.Push(1, 160*k, pcm[:], now, out)
		now = now.Add(40 * time.Millisecond)
		tl.Push(1, 160*(k+3), pcm[:], now, out)
		now = now.Add(20 * time.Millisecond)
		k += 4
	})
	if allocs != 0 {
		t.Errorf("%v allocs per round", allocs)
	}
}

// PushInOrder, tried before Push for every packet (the caller emitting the
// packet itself when it returns true), gives exactly Push's output and
// counters, through reordering, loss, copies, SSRC changes and jumps; and
// it takes the in-order packets.
func TestTimelinePushInOrderIsPush(t *testing.T) {
	rng := uint64(12345)
	rnd := func(n int) int {
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		return int(rng % uint64(n))
	}
	type pkt struct {
		ssrc uint32
		ts   uint32
		sig  int64
		n    int
		dt   time.Duration
	}
	var pkts []pkt
	ssrc, ts, sig := uint32(7), uint32(4000000000), int64(0)
	for k := 0; k < 5000; k++ {
		n := 160
		if rnd(50) == 0 {
			n = 80 + rnd(200)
		}
		p := pkt{ssrc, ts, sig, n, 20 * time.Millisecond}
		switch r := rnd(100); {
		case r < 3: // lost
		case r < 6 && len(pkts) > 0: // swapped with the one before
			pkts = append(pkts, pkts[len(pkts)-1])
			pkts[len(pkts)-2] = p
		case r < 8: // copied
			pkts = append(pkts, p, p)
		default:
			pkts = append(pkts, p)
		}
		ts += uint32(n)
		sig += int64(n)
		switch rnd(400) {
		case 0:
			ssrc++
			ts = uint32(rnd(1 << 30))
		case 1:
			ts += 200000 // a jump
		case 2:
			pkts[len(pkts)-1].dt = 300 * time.Millisecond // a stall
		}
	}
	a, b := newTL(t), newTL(t)
	var buf [400]int16
	inOrder := 0
	for _, p := range pkts {
		a.now = a.now.Add(p.dt)
		b.now = b.now.Add(p.dt)
		a.tl.Push(p.ssrc, p.ts, tlPacket(buf[:p.n], p.sig), a.now, a.emit)
		if b.tl.PushInOrder(p.ssrc, p.ts, int64(p.n), b.now) {
			b.emit(tlPacket(buf[:p.n], p.sig))
			inOrder++
			continue
		}
		b.tl.Push(p.ssrc, p.ts, tlPacket(buf[:p.n], p.sig), b.now, b.emit)
	}
	a.tl.Flush(a.emit)
	b.tl.Flush(b.emit)
	if len(a.out) != len(b.out) {
		t.Fatalf("%d samples out with PushInOrder, %d with Push", len(b.out), len(a.out))
	}
	for i := range a.out {
		if a.out[i] != b.out[i] {
			t.Fatalf("sample %d: %d with PushInOrder, %d with Push", i, b.out[i], a.out[i])
		}
	}
	if a.tl.Stats() != b.tl.Stats() || a.tl.Emitted() != b.tl.Emitted() {
		t.Fatalf("stats %+v with PushInOrder, %+v with Push", b.tl.Stats(), a.tl.Stats())
	}
	if inOrder < len(pkts)/2 {
		t.Fatalf("PushInOrder took %d of %d packets", inOrder, len(pkts))
	}
	t.Logf("%d packets, %d in order, stats %+v", len(pkts), inOrder, a.tl.Stats())
}
