package recorder

import "time"

// maxHeld bounds the packets a Timeline holds for reordering.
const maxHeld = 64

// TimelineStats counts what a Timeline did.
type TimelineStats struct {
	Packets        int64 // packets pushed
	Dropped        int64 // late or duplicate packets dropped
	SilenceSamples int64 // samples of silence inserted for lost packets and gaps
	Rebases        int64 // SSRC changes and timestamp jumps
	Clamped        int64 // gaps cut to the wall-clock time that passed
}

type heldPkt struct {
	pos int64
	n   int64
	at  time.Time
}

// Timeline places decoded packets by RTP timestamp so every sample lands at
// its exact position: it holds packets up to a reorder window, emits them in
// timestamp order, fills lost packets with silence of the right length, drops
// duplicates and late packets, unwraps 32-bit timestamps and rebases on SSRC
// changes and timestamp jumps (continuing after what was emitted plus the
// wall-clock gap, in whole 20 ms frames). One goroutine uses a Timeline; the
// steady state allocates nothing.
//
// Silence never stretches the output past what the wall clock allows: the
// output may reach the time since the first packet (plus 1/128 for a sender
// whose clock runs fast) or the audio received, whichever is more, plus a
// margin for jitter. A gap that would go further (timestamps stepping
// seconds ahead on every packet, a new SSRC on every packet) gets only the
// silence the clock allows and the stream continues from there.
//
// The slices passed to out are valid only during the call and must not be
// modified.
type Timeline struct {
	// First, what an in-order packet touches (PushInOrder, Push's usual
	// case): two cache lines, read for every packet of every call.
	started     bool
	ssrc        uint32
	nheld       int
	lastExt     int64 // highest unwrapped timestamp seen
	offset      int64 // position = unwrapped timestamp + offset
	emitted     int64
	received    int64
	lastArrival time.Time
	lastLen     int64
	stats       TimelineStats

	rate       int64
	window     time.Duration
	winSamples int64
	frame      int64 // samples per 20 ms
	jump       int64 // forward jump that rebases (10 s)

	ring  []int16 // samples by position & mask
	mask  int64
	zeros []int16

	// The wall-clock bound: the first packet's arrival and output position
	// (received, above, counts the samples pushed since), and the margin
	// for jitter.
	wallStart time.Time
	wallBase  int64
	slack     int64

	// held is last: an in-order packet touches none of it.
	held [maxHeld]heldPkt // sorted by pos, not overlapping
}

// NewTimeline returns a Timeline for a clock rate (samples per second; the
// PCM pushed is at this rate) holding packets up to window for reordering.
func NewTimeline(clockRate uint32, window time.Duration) *Timeline {
	if clockRate == 0 {
		clockRate = SampleRate
	}
	if window < 0 {
		window = 0
	}
	rate := int64(clockRate)
	t := &Timeline{
		rate:   rate,
		window: window,
		frame:  max(rate/50, 1),
		jump:   10 * rate,
	}
	t.winSamples = int64(window) * rate / int64(time.Second)
	t.slack = t.winSamples + rate/4
	// Room for the window plus a quarter second of packets.
	size := int64(1)
	for size < t.winSamples+rate/4+1 {
		size <<= 1
	}
	t.ring = make([]int16, size)
	t.mask = size - 1
	t.zeros = make([]int16, t.frame)
	return t
}

// Emitted returns the number of samples emitted so far (the output position).
func (t *Timeline) Emitted() int64 { return t.emitted }

// Stats returns counters.
func (t *Timeline) Stats() TimelineStats { return t.stats }

// Push adds one packet: ssrc and RTP timestamp ts of its first sample, and its
// decoded samples (copied; the caller may reuse pcm). now is the arrival time
// (monotonic). Samples that are ready are passed to out in order.
func (t *Timeline) Push(ssrc uint32, ts uint32, pcm []int16, now time.Time, out func(pcm []int16)) {
	n := int64(len(pcm))
	if n == 0 {
		return
	}
	t.stats.Packets++
	t.received += n
	if !t.started {
		t.started = true
		t.ssrc, t.lastExt, t.offset = ssrc, int64(ts), t.emitted-int64(ts)
		t.wallStart, t.wallBase = now, t.emitted
	} else if ssrc != t.ssrc {
		t.rebase(ssrc, ts, n, now, out)
	}
	ext := t.lastExt + int64(int32(ts-uint32(t.lastExt)))
	pos := ext + t.offset
	if pos-t.emitted > t.jump || pos+n < t.emitted-t.winSamples {
		t.rebase(ssrc, ts, n, now, out)
		ext = int64(ts)
		pos = t.emitted
	} else if pos > t.emitted {
		if limit := t.limit(now); pos+n > limit {
			// Further ahead than the clock allows: keep what was held, add
			// the silence the clock allows, continue the stream from there.
			t.releaseAll(out)
			t.silence(limit-n-t.emitted, out)
			t.offset = t.emitted - ext
			pos = t.emitted
			t.stats.Clamped++
		}
	}
	if ext > t.lastExt {
		t.lastExt = ext
	}
	t.lastArrival, t.lastLen = now, n
	end := pos + n
	if end <= t.emitted {
		t.stats.Dropped++ // duplicate or late
		return
	}
	if pos < t.emitted {
		pcm = pcm[t.emitted-pos:]
		pos = t.emitted
	}
	// Find the insertion point; drop duplicates and overlaps.
	i := t.nheld
	for i > 0 && t.held[i-1].pos >= pos {
		i--
	}
	if (i < t.nheld && t.held[i].pos < end) || (i > 0 && t.held[i-1].pos+t.held[i-1].n > pos) {
		t.stats.Dropped++
		return
	}
	if i == 0 && pos == t.emitted {
		// In order: emit straight from the caller's buffer.
		out(pcm)
		t.emitted = end
		t.release(now, out)
		return
	}
	if end-t.emitted > int64(len(t.ring)) {
		// Too far ahead to hold: a gap longer than any reordering.
		t.releaseAll(out)
		t.silence(pos-t.emitted, out)
		out(pcm)
		t.emitted = end
		return
	}
	if t.nheld == maxHeld {
		t.releaseFirst(out)
		if i > 0 {
			i--
		}
	}
	t.store(pos, pcm)
	copy(t.held[i+1:t.nheld+1], t.held[i:t.nheld])
	t.held[i] = heldPkt{pos: pos, n: end - pos, at: now}
	t.nheld++
	t.release(now, out)
}

// PushInOrder is Push for a packet whose samples the caller has not decoded
// yet: when the packet (ssrc, RTP timestamp ts, n samples, arriving at now)
// is the next in order with nothing held, it is accounted exactly as Push
// would and PushInOrder returns true: the caller emits its n samples itself,
// where Push would have passed them to out. Otherwise it changes nothing and
// returns false, and the caller decodes the packet and calls Push. This lets
// the media path decode a packet straight into its destination (a
// recording's queue) instead of into a buffer that Push's out copies from.
func (t *Timeline) PushInOrder(ssrc uint32, ts uint32, n int64, now time.Time) bool {
	if !t.started || ssrc != t.ssrc || t.nheld != 0 || n <= 0 {
		return false
	}
	ext := t.lastExt + int64(int32(ts-uint32(t.lastExt)))
	if ext+t.offset != t.emitted {
		return false
	}
	t.stats.Packets++
	t.received += n
	if ext > t.lastExt {
		t.lastExt = ext
	}
	t.lastArrival, t.lastLen = now, n
	t.emitted += n
	return true
}

// Dropped is Stats().Dropped, without copying the counters.
func (t *Timeline) Dropped() int64 { return t.stats.Dropped }

// Advance emits held packets whose reorder wait has expired by now (call it
// from a ticker when packets stop arriving).
func (t *Timeline) Advance(now time.Time, out func(pcm []int16)) {
	t.release(now, out)
}

// Flush emits everything held, filling holes with silence.
func (t *Timeline) Flush(out func(pcm []int16)) {
	t.releaseAll(out)
}

// limit is the furthest output position the wall clock allows at now,
// counting the samples pushed so far.
func (t *Timeline) limit(now time.Time) int64 {
	wall := max(int64(now.Sub(t.wallStart)), 0) / int64(time.Millisecond) * t.rate / 1000
	return t.wallBase + max(wall+wall/128, t.received) + t.slack
}

// rebase continues the output with a new SSRC or after a timestamp jump
// (packet ts of n samples): after what was emitted plus the wall-clock gap,
// within the wall-clock bound.
func (t *Timeline) rebase(ssrc uint32, ts uint32, n int64, now time.Time, out func([]int16)) {
	t.releaseAll(out)
	gap := int64(now.Sub(t.lastArrival))*t.rate/int64(time.Second) - t.lastLen
	gap = (gap + t.frame/2) / t.frame * t.frame
	if room := t.limit(now) - n - t.emitted; gap > 0 && gap > room {
		gap = room
		t.stats.Clamped++
	}
	if gap > 0 {
		t.silence(gap, out)
	}
	t.ssrc, t.lastExt, t.offset = ssrc, int64(ts), t.emitted-int64(ts)
	t.stats.Rebases++
}

func (t *Timeline) release(now time.Time, out func([]int16)) {
	for t.nheld > 0 {
		h := &t.held[0]
		last := &t.held[t.nheld-1]
		if h.pos != t.emitted && now.Sub(h.at) < t.window && last.pos+last.n-t.emitted <= t.winSamples {
			return
		}
		t.releaseFirst(out)
	}
}

func (t *Timeline) releaseAll(out func([]int16)) {
	for t.nheld > 0 {
		t.releaseFirst(out)
	}
}

func (t *Timeline) releaseFirst(out func([]int16)) {
	h := t.held[0]
	t.silence(h.pos-t.emitted, out)
	a := h.pos & t.mask
	b := a + h.n
	if b <= int64(len(t.ring)) {
		out(t.ring[a:b])
	} else {
		out(t.ring[a:])
		out(t.ring[:b-int64(len(t.ring))])
	}
	t.emitted = h.pos + h.n
	copy(t.held[:t.nheld-1], t.held[1:t.nheld])
	t.nheld--
}

func (t *Timeline) silence(n int64, out func([]int16)) {
	if n <= 0 {
		return
	}
	t.stats.SilenceSamples += n
	t.emitted += n
	for n > 0 {
		k := min(n, int64(len(t.zeros)))
		out(t.zeros[:k])
		n -= k
	}
}

func (t *Timeline) store(pos int64, pcm []int16) {
	a := pos & t.mask
	k := copy(t.ring[a:], pcm)
	copy(t.ring, pcm[k:])
}
