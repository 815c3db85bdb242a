package mix

import (
	"runtime"
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
// at once (a clock that woke up late) grow the ring and all play while the
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
	for range 14 { // the clock sleeps 280 ms; the packets wait in the socket
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
