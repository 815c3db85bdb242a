package mix

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// TestPartyBufferSmallWithoutALateClock: a party that streams in time holds
// the small ring (2 KiB of samples), not the 8 KiB a late clock's burst
// needs: bridged calls pay for the burst only when one comes.
func TestPartyBufferSmallWithoutALateClock(t *testing.T) {
	const parties = 200
	m := New()
	ps := make([]*Participant, parties)
	frame := constFrame(1, FrameSamples)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range ps {
		ps[i] = m.Add("p")
		ps[i].Push(ssrcA, 0, frame)
	}
	runtime.ReadMemStats(&after)
	perParty := (after.TotalAlloc - before.TotalAlloc) / parties
	t.Logf("%d bytes allocated per party (Add, with the mixer's list, and its first Push)", perParty)
	// The party itself is about 1.2 KiB, its share of the mixer's list
	// about 0.8 KiB here, the small ring 2.1 KiB; the 4,096-sample ring
	// alone would be 8.5 KiB.
	if perParty > 6144 {
		t.Fatalf("%d bytes allocated per party, want at most 6144 (a 1,024-sample ring)", perParty)
	}

	p := ps[0]
	for k := 1; k < 500; k++ { // 10 s in time
		p.Push(ssrcA, uint32(k*FrameSamples), frame)
		tick(m)
	}
	if n := len(p.jb.buf); n != smallRing {
		t.Fatalf("ring of %d samples after 10 s in time, want %d", n, smallRing)
	}
}

// TestRingGrowsForALateClockAndShrinksBack: the packets of 280 ms that come
// at once (a clock that woke up late) grow the ring (to 2,048 samples, then
// 4,096: what the span needs) and all play while the
// driver catches up; once the depth stays small for a trim window the ring
// shrinks back. Every frame plays once, in order, across both moves and
// across the ring's and the RTP timestamp's wrap.
func TestRingGrowsForALateClockAndShrinksBack(t *testing.T) {
	m, p, next := single(t)
	base := uint32(1<<32 - 37*FrameSamples - 91) // wraps, and is not aligned to either ring
	k := 0
	var got []int
	push := func() {
		p.Push(ssrcA, base+uint32(k*FrameSamples), constFrame(int16(k%30000+1), FrameSamples))
		k++
	}
	play := func() {
		if v := next(); v != 0 {
			got = append(got, v)
		}
	}
	for range 50 {
		push()
		play()
	}
	if n := len(p.jb.buf); n != smallRing {
		t.Fatalf("ring of %d samples before the burst, want %d", n, smallRing)
	}
	for range 8 { // the clock sleeps 280 ms; the packets wait in the socket
		push()
	}
	if n := len(p.jb.buf); n != 2*smallRing {
		t.Fatalf("ring of %d samples 160 ms into the burst, want %d", n, 2*smallRing)
	}
	for range 6 {
		push()
	}
	if n := len(p.jb.buf); n != bigRing {
		t.Fatalf("ring of %d samples after a 280 ms burst, want %d", n, bigRing)
	}
	for range 14 { // catching up
		play()
	}
	m.Trim()
	for range 3 * trimWindow {
		push()
		play()
	}
	if n := len(p.jb.buf); n != smallRing {
		t.Fatalf("ring of %d samples %d ticks after the burst, want %d again", n, 3*trimWindow, smallRing)
	}
	for range 20 {
		push()
		play()
	}
	if len(got) < k-2 {
		t.Fatalf("played %d frames of %d pushed", len(got), k)
	}
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("frame %d played %d, want %d (played %v)", i, v, i+1, got)
		}
	}
	if st := p.Stats(); st.OverflowDrops != 0 || st.LateDrops != 0 || st.FramesLost != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRingMovesChangeNothing: random streams (bursts of up to 400 ms, loss,
// reordering, late packets, odd packet sizes, timestamp jumps and SSRC
// changes, Trim and Drain at random), each followed by a steady stream in
// which the ring shrinks, play exactly as they do in a ring of 4,096
// samples that never moves.
func TestRingMovesChangeNothing(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 13))
		var dyn, fixed jitter
		fixed.buf, fixed.present, fixed.mask = make([]int16, bigRing), make([]uint64, bigRing/64), bigRing-1
		ssrc, ts := rng.Uint32(), rng.Uint32()
		a, b := make([]int16, FrameSamples), make([]int16, FrameSamples)
		pcm := make([]int16, 4*FrameSamples)
		push := func(at uint32, n int) {
			pcm := pcm[:n]
			for i := range pcm {
				pcm[i] = int16(at+uint32(i)) | 1 // nonzero, and says where it belongs
			}
			dyn.push(ssrc, at, pcm)
			fixed.push(ssrc, at, pcm)
		}
		grew, shrank := 0, 0
		for step := range 6000 {
			size := len(dyn.buf)
			op := rng.IntN(100)
			if step%1500 >= 500 { // steady: a packet, a pull, a trim (a bridge's step)
				op = []int{50, 60, 90}[step%3]
				if op == 50 && rng.IntN(50) == 0 {
					op = 51 // the packet is lost
				}
			}
			switch {
			case op < 40: // a packet, now and then reordered, late or resized
				n := FrameSamples
				if rng.IntN(10) == 0 {
					n = 80 * (1 + rng.IntN(4))
				}
				at := ts
				if rng.IntN(8) == 0 {
					at -= uint32(rng.IntN(6) * FrameSamples)
				}
				push(at, n)
				ts += uint32(n)
			case op < 43: // a burst: a late clock, or a sender's
				for range 1 + rng.IntN(20) {
					push(ts, FrameSamples)
					ts += FrameSamples
				}
			case op < 50: // loss
				ts += uint32(FrameSamples * (1 + rng.IntN(10)))
			case op == 50: // the steady stream's packet
				push(ts, FrameSamples)
				ts += FrameSamples
			case op == 51:
				ts += FrameSamples
			case op < 90:
				fixed.wide = true // the reference never shrinks
				if x, y := dyn.pull(a), fixed.pull(b); x != y || !slices.Equal(a, b) {
					t.Fatalf("seed %d step %d: pulled %v %v, want %v %v", seed, step, x, a[:4], y, b[:4])
				}
			case op < 95:
				if x, y := dyn.trim(), fixed.trim(); x != y {
					t.Fatalf("seed %d step %d: trim %d, want %d", seed, step, x, y)
				}
			case op < 97:
				dyn.drain()
				fixed.drain()
			case op < 98:
				ssrc = rng.Uint32()
			default:
				ts += uint32(rng.IntN(3 * SampleRate))
			}
			switch {
			case size < len(dyn.buf) && size > 0:
				grew++
			case size > len(dyn.buf):
				shrank++
			}
			if ds, fs := dyn.stats(), fixed.stats(); ds != fs {
				t.Fatalf("seed %d step %d: stats %+v, want %+v", seed, step, ds, fs)
			}
		}
		if grew == 0 || shrank == 0 || len(fixed.buf) != bigRing {
			t.Fatalf("seed %d: the ring grew %d times and shrank %d, the reference is %d samples", seed, grew, shrank, len(fixed.buf))
		}
	}
}
