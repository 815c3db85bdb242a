package mix

import (
	"slices"
	"testing"
)

const ssrcA = 0x1234

func TestReorderedPacketsPlayInOrder(t *testing.T) {
	_, p, next := single(t)
	base := uint32(5000)
	push := func(k int) { p.Push(ssrcA, base+uint32(k*FrameSamples), constFrame(int16(k+1), FrameSamples)) }

	var got []int
	push(1)
	push(0) // older packet before play-out began: buffer extends backwards
	got = append(got, next())
	push(3)
	push(2)
	got = append(got, next(), next())
	push(5)
	push(4)
	got = append(got, next(), next(), next(), next())
	if want := []int{1, 2, 3, 4, 5, 6, 0}; !slices.Equal(got, want) {
		t.Fatalf("played %v, want %v", got, want)
	}
	st := p.Stats()
	if st.LateDrops != 0 || st.FramesPlayed != 6 || st.FramesLost != 0 || st.Underruns != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLatePacketDropped(t *testing.T) {
	_, p, next := single(t)
	for k := range 3 {
		p.Push(ssrcA, uint32(k*FrameSamples), constFrame(int16(k+1), FrameSamples))
	}
	if a, b := next(), next(); a != 1 || b != 2 {
		t.Fatalf("played %d %d", a, b)
	}
	p.Push(ssrcA, FrameSamples, constFrame(99, FrameSamples))    // already played
	p.Push(ssrcA, FrameSamples+80, constFrame(77, FrameSamples)) // half late
	if got := next(); got != -99999 {
		t.Fatalf("partially late packet: frame level %d, want mixed 3/77 frame", got)
	}
	st := p.Stats()
	if st.LateDrops != 2 {
		t.Fatalf("LateDrops = %d, want 2", st.LateDrops)
	}
}

func TestLossPlaysSilenceInPlace(t *testing.T) {
	_, p, next := single(t)
	var got []int
	for k := range 10 {
		if k != 4 {
			p.Push(ssrcA, uint32(k*FrameSamples), constFrame(int16(k+1), FrameSamples))
		}
		got = append(got, next())
	}
	// One tick of priming, then frames 1..9 with frame 5 (index 4) silent.
	if want := []int{0, 1, 2, 3, 4, 0, 6, 7, 8, 9}; !slices.Equal(got, want) {
		t.Fatalf("played %v, want %v", got, want)
	}
	st := p.Stats()
	if st.FramesLost != 1 || st.Underruns != 0 || st.FramesPlayed != 9 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUnderrunReprimes(t *testing.T) {
	_, p, next := single(t)
	push := func(k int) { p.Push(ssrcA, uint32(k*FrameSamples), constFrame(int16(k+1), FrameSamples)) }
	push(0)
	push(1)
	got := []int{next(), next(), next(), next()}
	if st := p.Stats(); st.Underruns != 1 || st.Playing {
		t.Fatalf("after running dry: %+v", st)
	}
	push(2) // delayed, not lost: continues where play-out stopped
	got = append(got, next())
	push(3)
	got = append(got, next(), next(), next())
	if want := []int{1, 2, 0, 0, 0, 3, 4, 0}; !slices.Equal(got, want) {
		t.Fatalf("played %v, want %v", got, want)
	}
	if st := p.Stats(); st.Underruns != 2 || st.FramesLost != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUnderrunAfterBurstLossAddsNoDelay(t *testing.T) {
	_, p, next := single(t)
	push := func(k int) { p.Push(ssrcA, uint32(k*FrameSamples), constFrame(int16(k+1), FrameSamples)) }
	push(0)
	push(1)
	got := []int{next(), next()}
	// Frames 2..6 are lost in the network while the clock runs on.
	for range 5 {
		got = append(got, next())
	}
	for k := 7; k < 10; k++ {
		push(k)
		got = append(got, next())
	}
	// On restart the empty gap is skipped down to the 40 ms target: one
	// frame of slack, then frame 7 (value 8) onwards, one tick per frame.
	if want := []int{1, 2, 0, 0, 0, 0, 0, 0, 8, 9}; !slices.Equal(got, want) {
		t.Fatalf("played %v, want %v", got, want)
	}
	// The five lost frames count: four skipped, their time covered by the
	// underrun's silence, and the slack frame played in place.
	if st := p.Stats(); st.Underruns != 1 || st.Depth != FrameSamples || st.FramesLost != 5 {
		t.Fatalf("stats %+v", st)
	}
}

// TestLossDuringSenderStallCounts: a sender that stalls (its packets come
// late, in a burst) around a lost packet: the buffer runs dry, and the
// lost frame at the front, whose time the underrun's silence covered, is
// skipped on restart but counts as lost. A stall without loss counts none;
// a timestamp jump counts only the frames the underrun's silence covered.
func TestLossDuringSenderStallCounts(t *testing.T) {
	for _, tc := range []struct {
		name        string
		stall       int   // ticks without packets
		burst, gone []int // frames that then come at once; of them, lost
		want        uint64
	}{
		{"loss in a stall", 3, []int{10, 11, 12, 13}, []int{10}, 1},
		{"stall alone", 3, []int{10, 11, 12, 13}, nil, 0},
		{"two lost in a long stall", 6, []int{10, 11, 12, 13, 14, 15, 16}, []int{10, 11}, 2},
		// Two ticks of stall, one of them dry, then timestamps six frames on.
		{"timestamp jump", 2, []int{16, 17, 18}, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, p, next := single(t)
			push := func(k int) { p.Push(ssrcA, uint32(k*FrameSamples), constFrame(int16(k+1), FrameSamples)) }
			var got []int
			for k := range 10 { // on time: packet k, then a tick
				push(k)
				got = append(got, next())
			}
			for range tc.stall {
				got = append(got, next())
			}
			for _, k := range tc.burst {
				if !slices.Contains(tc.gone, k) {
					push(k)
				}
			}
			for k := tc.burst[len(tc.burst)-1] + 1; k < tc.burst[len(tc.burst)-1]+8; k++ { // on time again
				push(k)
				got = append(got, next())
			}
			st := p.Stats()
			if st.Underruns != 1 || st.FramesLost != tc.want {
				t.Fatalf("played %v: underruns %d, frames lost %d; want 1, %d", got, st.Underruns, st.FramesLost, tc.want)
			}
			// What was not lost plays, in order.
			var played []int
			for _, v := range got {
				if v > 0 {
					played = append(played, v)
				}
			}
			for i := 1; i < len(played); i++ {
				if played[i] <= played[i-1] {
					t.Fatalf("played %v: out of order", got)
				}
			}
			if played[0] != 1 || played[9] != 10 || played[10] != tc.burst[0]+1+len(tc.gone) {
				t.Fatalf("played %v", got)
			}
		})
	}
}

func TestSilenceSuppressionGap(t *testing.T) {
	_, p, next := single(t)
	push := func(k int) { p.Push(ssrcA, uint32(k*FrameSamples), constFrame(int16(k%100+1), FrameSamples)) }
	for k := range 5 {
		push(k)
		next()
	}
	for range 25 { // 500 ms of no packets, timestamps keep running
		next()
	}
	var got []int
	for k := 30; k < 34; k++ {
		push(k)
		got = append(got, next())
	}
	if want := []int{0, 31, 32, 33}; !slices.Equal(got, want) {
		t.Fatalf("played %v, want %v", got, want)
	}
	if st := p.Stats(); st.Resets != 0 || st.OverflowDrops != 0 || st.Depth != FrameSamples {
		t.Fatalf("stats %+v", st)
	}
}

// TestOverflowDropsOldest: a burst beyond 120 ms is kept until Trim (the
// ticks' driver has caught up), which drops its oldest frames; a push past
// 320 ms drops the oldest at once.
func TestOverflowDropsOldest(t *testing.T) {
	m, p, next := single(t)
	for k := range 10 {
		p.Push(ssrcA, uint32(k*FrameSamples), constFrame(int16(k+1), FrameSamples))
	}
	if st := p.Stats(); st.OverflowDrops != 0 || st.Depth != 10*FrameSamples {
		t.Fatalf("before Trim: stats %+v", st)
	}
	m.Trim()
	if st := p.Stats(); st.OverflowDrops != 4 || st.Depth != maxDepth {
		t.Fatalf("after Trim: stats %+v", st)
	}
	var got []int
	for range 7 {
		got = append(got, next())
	}
	if want := []int{5, 6, 7, 8, 9, 10, 0}; !slices.Equal(got, want) {
		t.Fatalf("played %v, want %v", got, want)
	}

	_, p, next = single(t)
	for k := range 20 {
		p.Push(ssrcA, uint32(k*FrameSamples), constFrame(int16(k+1), FrameSamples))
	}
	if st := p.Stats(); st.OverflowDrops != 4 || st.Depth != burstDepth {
		t.Fatalf("a 400 ms burst: stats %+v", st)
	}
	if got := next(); got != 5 {
		t.Fatalf("first frame of a 400 ms burst %d, want 5", got)
	}
}

// TestBurstCaughtUpKeepsEveryFrame: the packets of 300 ms that came at once
// (a clock that woke up late) all play when the driver mixes faster than
// real time before it trims.
func TestBurstCaughtUpKeepsEveryFrame(t *testing.T) {
	m, p, next := single(t)
	for k := range 15 {
		p.Push(ssrcA, uint32(k*FrameSamples), constFrame(int16(k+1), FrameSamples))
	}
	var got []int
	for range 10 { // catching up
		got = append(got, next())
	}
	m.Trim()
	for range 6 {
		got = append(got, next())
	}
	if want := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0}; !slices.Equal(got, want) {
		t.Fatalf("played %v, want %v", got, want)
	}
	if st := p.Stats(); st.OverflowDrops != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestOversizedPacket(t *testing.T) {
	m, p, next := single(t)
	pcm := make([]int16, 18*FrameSamples)
	for i := range pcm {
		pcm[i] = int16(i/FrameSamples + 1)
	}
	p.Push(ssrcA, 0, pcm)
	if st := p.Stats(); st.OverflowDrops != 2 || st.Depth != burstDepth {
		t.Fatalf("stats %+v", st)
	}
	m.Trim()
	if st := p.Stats(); st.OverflowDrops != 12 || st.Depth != maxDepth {
		t.Fatalf("after Trim: stats %+v", st)
	}
	if got := next(); got != 13 {
		t.Fatalf("first frame %d, want 13", got)
	}
}

func TestLatencyTrim(t *testing.T) {
	_, p, next := single(t)
	k := 0
	push := func() { p.Push(ssrcA, uint32(k*FrameSamples), constFrame(int16(k%1000+1), FrameSamples)); k++ }
	push()
	push() // with the next push: one frame more than priming needs, forever
	for range 2 * trimWindow {
		push()
		next()
	}
	st := p.Stats()
	if st.Trimmed != 1 || st.Underruns != 0 || st.Depth != FrameSamples {
		t.Fatalf("stats %+v", st)
	}
}

func TestSSRCChangeAndJumpReset(t *testing.T) {
	_, p, next := single(t)
	for k := range 4 {
		p.Push(ssrcA, 1000+uint32(k*FrameSamples), constFrame(int16(k+1), FrameSamples))
	}
	if a, b := next(), next(); a != 1 || b != 2 {
		t.Fatalf("played %d %d", a, b)
	}
	// New SSRC with an unrelated timestamp: flush (frames 3,4 gone), re-prime.
	p.Push(0xbeef, 77, constFrame(50, FrameSamples))
	if st := p.Stats(); st.Resets != 1 || st.Playing || st.Depth != FrameSamples {
		t.Fatalf("after SSRC change: %+v", st)
	}
	var got []int
	got = append(got, next())
	p.Push(0xbeef, 77+FrameSamples, constFrame(51, FrameSamples))
	got = append(got, next(), next())
	if want := []int{0, 50, 51}; !slices.Equal(got, want) {
		t.Fatalf("played %v, want %v", got, want)
	}
	// Same SSRC, timestamp leaps 2 s ahead: reset.
	p.Push(0xbeef, 77+2*FrameSamples+2*SampleRate, constFrame(60, FrameSamples))
	p.Push(0xbeef, 77+3*FrameSamples+2*SampleRate, constFrame(61, FrameSamples))
	if got := next(); got != 60 {
		t.Fatalf("after jump played %d, want 60", got)
	}
	// And 5 s backwards: reset too.
	p.Push(0xbeef, 77, constFrame(70, FrameSamples))
	p.Push(0xbeef, 77+FrameSamples, constFrame(71, FrameSamples))
	if got := next(); got != 70 {
		t.Fatalf("after backward jump played %d, want 70", got)
	}
	if st := p.Stats(); st.Resets != 3 {
		t.Fatalf("Resets = %d, want 3", st.Resets)
	}
}

func TestTimestampWrap(t *testing.T) {
	_, p, next := single(t)
	base := uint32(0xFFFFFFFF - 2*FrameSamples + 17)
	var got []int
	for k := range 8 {
		p.Push(ssrcA, base+uint32(k*FrameSamples), constFrame(int16(k+1), FrameSamples))
		got = append(got, next())
	}
	if want := []int{0, 1, 2, 3, 4, 5, 6, 7}; !slices.Equal(got, want) {
		t.Fatalf("played %v, want %v", got, want)
	}
	if st := p.Stats(); st.Resets != 0 || st.LateDrops != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestPacketSizes feeds a sample-exact ramp in packets of various ptimes,
// arriving on a 10 ms timeline (packet before tick when both fall on the same
// instant), and checks the play-out reproduces it with no gap.
func TestPacketSizes(t *testing.T) {
	val := func(i int) int16 { return int16(i*37%30011 - 15000) }
	for _, ms := range []int{10, 20, 30, 40, 60} {
		t.Run("ptime"+itoa(ms), func(t *testing.T) {
			m := New()
			p := m.Add("a")
			n := ms * SampleRate / 1000
			step := ms / 10
			base := uint32(123456789)
			var played []int16
			pkt := make([]int16, n)
			sent := 0
			for tm := 0; tm < 600; tm++ { // 6 s in 10 ms steps
				if tm%step == 0 {
					for i := range pkt {
						pkt[i] = val(sent + i)
					}
					p.Push(ssrcA, base+uint32(sent), pkt) // pkt is reused: Push must copy
					sent += n
				}
				if tm%2 == 0 {
					m.TickRecord(nil, func(_ []int16, parts []Frame) {
						if parts[0].Active || len(played) > 0 {
							played = append(played, parts[0].PCM...)
						}
					})
				}
			}
			if len(played) < 250*FrameSamples {
				t.Fatalf("played only %d samples", len(played))
			}
			for i, v := range played {
				if v != val(i) {
					t.Fatalf("sample %d = %d, want %d", i, v, val(i))
				}
			}
			st := p.Stats()
			if st.Underruns != 0 || st.FramesLost != 0 || st.LateDrops != 0 || st.OverflowDrops != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// TestLastFramesOfAStoppedStreamPlay: a stream that underran and then
// sends its last frame (below the priming depth) and nothing more: that
// frame plays once no packet has come for the priming depth's time,
// instead of waiting for packets that never come. Before that it waits,
// as priming does.
func TestLastFramesOfAStoppedStreamPlay(t *testing.T) {
	_, p, next := single(t)
	var got []int
	for k := range 3 {
		p.Push(ssrcA, uint32(k*FrameSamples), constFrame(int16(k+1), FrameSamples))
	}
	got = append(got, next(), next(), next(), next())          // 1 2 3, underrun
	p.Push(ssrcA, 3*FrameSamples, constFrame(4, FrameSamples)) // late, and the last
	for range 5 {
		got = append(got, next())
	}
	if want := []int{1, 2, 3, 0, 0, 0, 4, 0, 0}; !slices.Equal(got, want) {
		t.Fatalf("played %v, want %v (the last frame on the third tick without a packet)", got, want)
	}
	if st := p.Stats(); st.FramesPlayed != 4 || st.Depth != 0 {
		t.Fatalf("stats %+v: want the 4 frames played, none held", st)
	}
}

// TestDrainPlaysWhatIsHeld: a leaving party's buffer, primed or not,
// plays out what it holds from the next tick (the bridge keeps it in the
// mix, and its recordings, until then).
func TestDrainPlaysWhatIsHeld(t *testing.T) {
	_, p, next := single(t)
	p.Push(ssrcA, 0, constFrame(7, FrameSamples)) // below the priming depth
	p.Drain()
	if a, b := next(), next(); a != 7 || b != 0 {
		t.Fatalf("played %d %d, want 7 then silence", a, b)
	}
	if st := p.Stats(); st.Depth != 0 || st.FramesPlayed != 1 {
		t.Fatalf("stats %+v", st)
	}
}
