package mix

import (
	"math"

	"github.com/tapedeck/tapedeck/internal/codec"
	"github.com/tapedeck/tapedeck/internal/media/audio"
)

const (
	// SampleRate is the mixer's sample rate in Hz.
	SampleRate = audio.SampleRate
	// FrameSamples is the number of samples in one 20 ms frame.
	FrameSamples = audio.FrameSamples

	targetDepth = 2 * FrameSamples // 40 ms: start (and restart) play-out at this depth
	maxDepth    = 6 * FrameSamples // 120 ms: what Trim leaves; older frames are dropped
	// burstDepth is what a push may fill the buffer to before its oldest
	// frames are dropped: the packets of a clock that woke up to 300 ms
	// late (a busy host) all arrive at once, before the mixer, catching up,
	// plays them faster than real time; Trim then enforces maxDepth.
	burstDepth = 16 * FrameSamples
	resetJump  = SampleRate // a timestamp jump of more than 1 s resets the buffer
	trimWindow = 100        // ticks (2 s) observed before a latency trim

	// The ring holds smallRing samples (power of two >= maxDepth) and
	// grows, by powers of two up to bigRing (>= burstDepth), only to what
	// a burst needs: a late clock's catch-up is rare, and every bridged
	// party would otherwise carry 8 KiB it does not use. It shrinks back
	// after a trim window in which the span never passed smallRing.
	smallRing = 1024
	bigRing   = 4096
)

// jitter is a play-out buffer positioned by RTP timestamp. Positions are
// RTP timestamps unwrapped to 64 bits. Invariants: present (a bit per
// sample) is set only for positions in [playTS, maxEnd), and that span is
// at most len(buf), so the ring never aliases; buf is zero wherever present is
// false. buf and present are allocated by the first push. It is not safe
// for concurrent use; Participant guards it.
type jitter struct {
	buf     []int16  // len is a power of two, smallRing to bigRing
	present []uint64 // a bit per sample of buf
	mask    int64    // len(buf) - 1
	// wide is set when the span passed smallRing during the current trim
	// window; a big ring shrinks at the end of a window without it.
	wide bool

	have    bool // a stream is established (ssrc, lastTS valid)
	ssrc    uint32
	lastTS  uint32 // RTP timestamp of the highest-positioned packet
	lastExt int64  // lastTS unwrapped
	playTS  int64  // next position to play
	maxEnd  int64  // highest position written + 1
	playing bool   // false while priming
	started bool   // a frame has been played since the last reset
	// dry counts the silent ticks of the current underrun (the buffer ran
	// dry after play-out started): the frames a restart skips were covered
	// by that silence, and up to dry of them count as lost.
	dry int64
	// idle counts the pulls since the last push; flush plays out what is
	// held whatever its depth (the party is leaving the mix).
	idle  int
	flush bool

	winTicks int
	winMin   int64

	st Stats
}

// reset flushes the buffer and starts a new stream at ts.
func (j *jitter) reset(ssrc uint32, ts uint32) {
	if j.have {
		j.st.Resets++
	}
	if j.buf == nil {
		j.resize(smallRing)
	} else {
		clear(j.present)
		clear(j.buf)
	}
	j.have = true
	j.ssrc = ssrc
	j.lastTS = ts
	j.lastExt = int64(ts)
	j.playTS = int64(ts)
	j.maxEnd = int64(ts)
	j.playing = false
	j.started = false
	j.dry = 0
}

// push stores pcm at RTP timestamp ts. pcm is copied.
func (j *jitter) push(ssrc uint32, ts uint32, pcm []int16) {
	skip, ext, ok := j.place(ssrc, ts, len(pcm))
	if !ok {
		return
	}
	pcm = pcm[skip:]
	for len(pcm) > 0 { // at most two contiguous runs of the ring
		idx := int(ext & j.mask)
		n := copy(j.buf[idx:], pcm)
		j.mark(idx, n)
		pcm = pcm[n:]
		ext += int64(n)
	}
}

// pushG711 is push of the G.711 payload's samples (A-law when alaw, else
// µ-law), decoded straight into the ring: the same samples at the same
// positions as push of the payload decoded, in one pass.
func (j *jitter) pushG711(ssrc uint32, ts uint32, payload []byte, alaw bool) {
	skip, ext, ok := j.place(ssrc, ts, len(payload))
	if !ok {
		return
	}
	payload = payload[skip:]
	for len(payload) > 0 { // at most two contiguous runs of the ring
		idx := int(ext & j.mask)
		n := min(len(payload), len(j.buf)-idx)
		if alaw {
			codec.DecodeAlaw(j.buf[idx:], payload[:n])
		} else {
			codec.DecodeMulaw(j.buf[idx:], payload[:n])
		}
		j.mark(idx, n)
		payload = payload[n:]
		ext += int64(n)
	}
}

// place is push's bookkeeping for a packet of n samples at ts: it counts
// the packet, positions the stream, makes room, and returns where the
// packet's samples go: its first skip samples are dropped (late, or beyond
// burstDepth) and the rest are to be written from position ext on. ok is
// false when none is to be written.
func (j *jitter) place(ssrc uint32, ts uint32, n int) (skip int, ext int64, ok bool) {
	if n == 0 {
		return 0, 0, false
	}
	j.st.Packets++
	j.idle = 0
	if !j.have || ssrc != j.ssrc {
		j.reset(ssrc, ts)
	} else if d := int64(int32(ts - j.lastTS)); d > resetJump || d < -resetJump {
		j.reset(ssrc, ts)
	}
	ext = j.lastExt + int64(int32(ts-j.lastTS))
	if ext > j.lastExt {
		j.lastExt, j.lastTS = ext, ts
	}
	if n > burstDepth { // keep only the newest burstDepth samples
		k := n - burstDepth
		j.st.OverflowDrops += uint64(k / FrameSamples)
		skip = k
		ext += int64(k)
	}
	end := ext + int64(n-skip)

	if ext < j.playTS {
		if !j.started && max(j.maxEnd, end)-ext <= maxDepth {
			// Reordering before play-out began: start earlier.
			j.playTS = ext
		} else {
			j.st.LateDrops++
			if end <= j.playTS {
				return 0, 0, false
			}
		}
	}
	if end > j.maxEnd {
		if over := end - j.playTS - burstDepth; over > 0 {
			frames := (over + FrameSamples - 1) / FrameSamples
			j.st.OverflowDrops += uint64(j.skip(frames))
		}
		if span := end - j.playTS; span > smallRing {
			j.wide = true
			if size := len(j.buf); span > int64(size) {
				for int64(size) < span {
					size *= 2
				}
				j.resize(size) // span <= burstDepth <= bigRing
			}
		}
		j.maxEnd = end
	}
	if ext < j.playTS { // late part, or the head pushed out by overflow
		skip += int(j.playTS - ext)
		ext = j.playTS
	}
	return skip, ext, true
}

// take moves n samples at position pos into dst (nil to discard), leaving
// the ring empty there, and reports whether any of them had arrived.
func (j *jitter) take(dst []int16, pos int64, n int) (any bool) {
	for n > 0 { // at most two contiguous runs of the ring
		idx := int(pos & j.mask)
		k := min(n, len(j.buf)-idx)
		any = any || j.marked(idx, k)
		if dst != nil {
			copy(dst, j.buf[idx:idx+k])
			dst = dst[k:]
		}
		clear(j.buf[idx : idx+k])
		j.unmark(idx, k)
		pos += int64(k)
		n -= k
	}
	return any
}

// skip drops the next frames frames at the play-out point and returns how
// many of them held any received sample.
func (j *jitter) skip(frames int64) (withData int) {
	for range frames {
		if j.take(nil, j.playTS, FrameSamples) {
			withData++
		}
		j.playTS += FrameSamples
	}
	if j.maxEnd < j.playTS {
		j.maxEnd = j.playTS
	}
	return withData
}

// frameEmpty reports whether no sample of the frame at the play-out point
// has arrived.
func (j *jitter) frameEmpty() bool {
	idx := int(j.playTS & j.mask)
	k := min(FrameSamples, len(j.buf)-idx)
	return !j.marked(idx, k) && !j.marked(0, FrameSamples-k)
}

// bitRuns calls fn for each word of present covering samples
// [idx, idx+n), which must not wrap, with the mask of those samples in it.
func bitRuns(idx, n int, fn func(w int, mask uint64) bool) {
	for n > 0 {
		b := idx & 63
		k := min(n, 64-b)
		if !fn(idx>>6, (^uint64(0)>>(64-k))<<b) {
			return
		}
		idx += k
		n -= k
	}
}

// mark sets the present bits of samples [idx, idx+n) (not wrapping).
func (j *jitter) mark(idx, n int) {
	bitRuns(idx, n, func(w int, m uint64) bool { j.present[w] |= m; return true })
}

// unmark clears the present bits of samples [idx, idx+n) (not wrapping).
func (j *jitter) unmark(idx, n int) {
	bitRuns(idx, n, func(w int, m uint64) bool { j.present[w] &^= m; return true })
}

// marked reports whether any of samples [idx, idx+n) (not wrapping) has
// arrived.
func (j *jitter) marked(idx, n int) (any bool) {
	bitRuns(idx, n, func(w int, m uint64) bool { any = j.present[w]&m != 0; return !any })
	return any
}

// pull writes the next frame into dst (len FrameSamples) and reports whether
// any received audio was in it.
func (j *jitter) pull(dst []int16) (active bool) {
	j.idle++
	if !j.playing {
		// Priming waits for the target depth, unless no packet has come
		// for that long (the stream stopped: its last frames would wait
		// for packets that never come) or the party is leaving.
		stopped := j.flush || j.idle > targetDepth/FrameSamples
		if !j.have || j.maxEnd <= j.playTS || (j.maxEnd-j.playTS < targetDepth && !stopped) {
			if j.started {
				j.dry++
			}
			clear(dst)
			return false
		}
		// (Re)start: frames at the front that hold nothing (a gap the
		// underrun already covered in real time, or a silence-suppression
		// pause) are skipped down to the target depth rather than played.
		// Those the underrun's silence stood in for count as lost, as if
		// played in place: a loss during a late sender's stall is silence
		// played for it all the same.
		var skipped int64
		for j.maxEnd-j.playTS-FrameSamples >= targetDepth && j.frameEmpty() {
			j.skip(1)
			skipped++
		}
		j.st.FramesLost += uint64(min(skipped, j.dry))
		j.dry = 0
		j.playing = true
		j.winTicks, j.winMin = 0, math.MaxInt64
	}
	if j.maxEnd <= j.playTS {
		j.playing = false
		j.st.Underruns++
		j.dry = 1
		clear(dst)
		return false
	}
	active = j.take(dst, j.playTS, len(dst))
	j.playTS += int64(len(dst))
	j.started = true
	j.st.FramesPlayed++
	if !active {
		j.st.FramesLost++
	}

	depth := j.maxEnd - j.playTS
	j.winMin = min(j.winMin, depth)
	if j.winTicks++; j.winTicks >= trimWindow {
		if j.winMin >= targetDepth {
			j.skip(1)
			j.st.Trimmed++
		}
		if len(j.buf) > smallRing && !j.wide && j.maxEnd-j.playTS <= smallRing {
			j.resize(smallRing)
		}
		j.winTicks, j.winMin, j.wide = 0, math.MaxInt64, false
	}
	return active
}

// resize moves the ring to a new one of size samples (a power of two no
// smaller than the span [playTS, maxEnd)), keeping every sample held at
// its position.
func (j *jitter) resize(size int) {
	buf := make([]int16, size)
	present := make([]uint64, size/64)
	mask := int64(size - 1)
	for pos := j.playTS; j.buf != nil && pos < j.maxEnd; {
		from, to := int(pos&j.mask), int(pos&mask)
		k := min(int(j.maxEnd-pos), len(j.buf)-from, size-to)
		copy(buf[to:to+k], j.buf[from:from+k])
		for i := range k {
			if j.present[(from+i)>>6]&(1<<((from+i)&63)) != 0 {
				present[(to+i)>>6] |= 1 << ((to + i) & 63)
			}
		}
		pos += int64(k)
	}
	j.buf, j.present, j.mask = buf, present, mask
}

// trim drops the oldest frames beyond maxDepth (counted as overflow) and
// returns how many of them held audio.
func (j *jitter) trim() int {
	over := j.maxEnd - j.playTS - maxDepth
	if over <= 0 {
		return 0
	}
	n := j.skip((over + FrameSamples - 1) / FrameSamples)
	j.st.OverflowDrops += uint64(n)
	return n
}

// drain makes the buffer play out what it holds, whatever its depth.
func (j *jitter) drain() { j.flush = true }

// stats returns the counters and the current depth.
func (j *jitter) stats() Stats {
	s := j.st
	s.Depth = int(max(j.maxEnd-j.playTS, 0))
	s.Playing = j.playing
	return s
}
