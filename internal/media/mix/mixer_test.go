package mix

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/media/audio"
)

// TestEachHearsOthersNotSelf gives every participant its own tone and checks
// with Goertzel that each output carries every other tone and not its own.
func TestEachHearsOthersNotSelf(t *testing.T) {
	freqs := []float64{400, 700, 1100, 1850} // whole cycles per 20 ms frame
	const amp = 6000
	for n := 2; n <= len(freqs); n++ {
		t.Run(fmt.Sprintf("%d-party", n), func(t *testing.T) {
			m := New()
			ps := make([]*Participant, n)
			for i := range ps {
				ps[i] = m.Add(fmt.Sprintf("p%d", i))
			}
			checked := 0
			for k := range 20 {
				for i, p := range ps {
					p.Push(uint32(i+1), uint32(i*1000+k*FrameSamples), sine(freqs[i], amp, k*FrameSamples, FrameSamples))
				}
				r := tick(m)
				if !r.active["p0"] {
					continue
				}
				checked++
				for i := range ps {
					out := r.out[ps[i].ID()]
					for j := range ps {
						a := goertzel(out, freqs[j])
						if i == j && a > 1 {
							t.Fatalf("tick %d: %s hears itself (%.1f at %.0f Hz)", k, ps[i].ID(), a, freqs[j])
						}
						if i != j && math.Abs(a-amp) > amp*0.01 {
							t.Fatalf("tick %d: %s hears %s at %.1f, want %d", k, ps[i].ID(), ps[j].ID(), a, amp)
						}
					}
				}
				for j := range ps {
					if a := goertzel(r.mixed, freqs[j]); math.Abs(a-amp) > amp*0.01 {
						t.Fatalf("mixed has %.0f Hz at %.1f, want %d", freqs[j], a, amp)
					}
				}
			}
			if checked < 15 {
				t.Fatalf("only %d ticks checked", checked)
			}
		})
	}
}

func TestSaturation(t *testing.T) {
	m := New()
	a, b, c := m.Add("a"), m.Add("b"), m.Add("c")
	for k := range 3 {
		ts := uint32(k * FrameSamples)
		a.Push(1, ts, constFrame(30000, FrameSamples))
		b.Push(2, ts, constFrame(30000, FrameSamples))
		c.Push(3, ts, constFrame(-30000, FrameSamples))
	}
	r := tick(m)
	// c hears a+b = 60000 -> clips at 32767 (no wrap to negative);
	// a hears b+c = 0; the full sum is 30000.
	if got := level(r.out["c"]); got != 32767 {
		t.Fatalf("c hears %d, want 32767", got)
	}
	if got := level(r.out["a"]); got != 0 {
		t.Fatalf("a hears %d, want 0", got)
	}
	if got := level(r.mixed); got != 30000 {
		t.Fatalf("mixed %d, want 30000", got)
	}
	c.SetMuteIn(true)
	r = tick(m)
	if got := level(r.mixed); got != 32767 {
		t.Fatalf("mixed %d, want 32767", got)
	}
	m2 := New()
	x, y, z := m2.Add("x"), m2.Add("y"), m2.Add("z")
	for k := range 2 {
		ts := uint32(k * FrameSamples)
		x.Push(1, ts, constFrame(-32768, FrameSamples))
		y.Push(2, ts, constFrame(-32768, FrameSamples))
	}
	z.SetOverlay(func(pcm []int16) int { copy(pcm, constFrame(-32768, len(pcm))); return len(pcm) })
	r = tick(m2)
	if got := level(r.out["z"]); got != -32768 {
		t.Fatalf("z hears %d, want -32768", got)
	}
	if got := level(r.mixed); got != -32768 {
		t.Fatalf("mixed %d, want -32768", got)
	}
}

func TestMuteIn(t *testing.T) {
	m := New()
	a, b := m.Add("a"), m.Add("b")
	push := func(k int) {
		a.Push(1, uint32(k*FrameSamples), constFrame(100, FrameSamples))
		b.Push(2, uint32(k*FrameSamples), constFrame(200, FrameSamples))
	}
	push(0)
	push(1)
	a.SetMuteIn(true)
	if !a.MutedIn() {
		t.Fatal("MutedIn false")
	}
	r := tick(m)
	if level(r.out["b"]) != 0 || level(r.out["a"]) != 200 || level(r.mixed) != 200 {
		t.Fatalf("muted: b hears %d, a hears %d, mixed %d", level(r.out["b"]), level(r.out["a"]), level(r.mixed))
	}
	if r.active["a"] || level(r.parts["a"]) != 0 || !r.active["b"] || level(r.parts["b"]) != 200 {
		t.Fatalf("muted parts: %v a=%d b=%d", r.active, level(r.parts["a"]), level(r.parts["b"]))
	}
	a.SetMuteIn(false)
	push(2)
	r = tick(m)
	if level(r.out["b"]) != 100 || level(r.mixed) != 300 || level(r.parts["a"]) != 100 {
		t.Fatalf("unmuted: b hears %d, mixed %d", level(r.out["b"]), level(r.mixed))
	}
	if st := a.Stats(); st.FramesPlayed != 2 { // the buffer kept playing while muted
		t.Fatalf("FramesPlayed %d", st.FramesPlayed)
	}
}

// countdown returns a Source of constant v that lasts frames full frames and
// then extra samples, and a counter of its calls.
func countdown(v int16, frames, extra int) (Source, *int) {
	calls := 0
	left := frames*FrameSamples + extra
	return func(pcm []int16) int {
		calls++
		n := min(left, len(pcm))
		for i := range n {
			pcm[i] = v
		}
		left -= n
		return n
	}, &calls
}

func TestOverlayOnlyToItsParticipant(t *testing.T) {
	m := New()
	a, b := m.Add("a"), m.Add("b")
	for k := range 6 {
		a.Push(1, uint32(k*FrameSamples), constFrame(100, FrameSamples))
		b.Push(2, uint32(k*FrameSamples), constFrame(200, FrameSamples))
	}
	src, calls := countdown(1000, 2, 40)
	b.SetOverlay(src)
	if !b.HasOverlay() {
		t.Fatal("HasOverlay false")
	}
	for i := range 2 {
		r := tick(m)
		if level(r.out["b"]) != 1100 || level(r.out["a"]) != 200 || level(r.mixed) != 300 {
			t.Fatalf("tick %d: b %d a %d mixed %d", i, level(r.out["b"]), level(r.out["a"]), level(r.mixed))
		}
	}
	r := tick(m) // the last 40 samples, then the source is done
	if r.out["b"][39] != 1100 || r.out["b"][40] != 100 {
		t.Fatalf("partial overlay frame: %d %d", r.out["b"][39], r.out["b"][40])
	}
	if b.HasOverlay() {
		t.Fatal("finished overlay still attached")
	}
	r = tick(m)
	if level(r.out["b"]) != 100 || *calls != 3 {
		t.Fatalf("after overlay: b %d, calls %d", level(r.out["b"]), *calls)
	}
}

func TestAnnouncerHeardByAllAndRecorded(t *testing.T) {
	m := New()
	a, b := m.Add("a"), m.Add("b")
	for k := range 6 {
		a.Push(1, uint32(k*FrameSamples), constFrame(100, FrameSamples))
		b.Push(2, uint32(k*FrameSamples), constFrame(200, FrameSamples))
	}
	src, _ := countdown(-50, 1, 80)
	m.SetAnnouncer(src)
	r := tick(m)
	if level(r.out["a"]) != 150 || level(r.out["b"]) != 50 || level(r.mixed) != 250 {
		t.Fatalf("a %d b %d mixed %d", level(r.out["a"]), level(r.out["b"]), level(r.mixed))
	}
	if level(r.parts["a"]) != 100 || level(r.parts["b"]) != 200 {
		t.Fatal("announcer leaked into a participant's own frame")
	}
	r = tick(m)
	if r.mixed[79] != 250 || r.mixed[80] != 300 || m.HasAnnouncer() {
		t.Fatalf("partial announcer frame %d %d, attached %v", r.mixed[79], r.mixed[80], m.HasAnnouncer())
	}
	// An announcer alone in an empty mixer still runs (nobody hears it).
	e := New()
	src, calls := countdown(1, 5, 0)
	e.SetAnnouncer(src)
	tick(e)
	if *calls != 1 {
		t.Fatal("announcer not pulled in an empty mixer")
	}
}

// TestRecordAlignment pushes a click at the same RTP-derived instant for two
// parties with different SSRCs, timestamp bases and packet sizes, and checks
// it appears in the same tick at the same sample for both.
func TestRecordAlignment(t *testing.T) {
	m := New()
	a, b := m.Add("alice"), m.Add("bob")
	baseA, baseB := uint32(4000000000), uint32(17)
	const click = 37*FrameSamples + 93 // sample offset from each stream's start
	frame := func(start, n int) []int16 {
		f := make([]int16, n)
		for i := range f {
			if start+i == click {
				f[i] = 20000
			}
		}
		return f
	}
	var ticks []tickResult
	for k := range 60 {
		a.Push(0xa, baseA+uint32(k*FrameSamples), frame(k*FrameSamples, FrameSamples))
		for h := range 2 { // bob sends 10 ms packets
			s := k*FrameSamples + h*80
			b.Push(0xb, baseB+uint32(s), frame(s, 80))
		}
		ticks = append(ticks, tick(m))
	}
	find := func(id string) (int, int) {
		for ti, r := range ticks {
			for si, v := range r.parts[id] {
				if v != 0 {
					return ti, si
				}
			}
		}
		return -1, -1
	}
	ta, sa := find("alice")
	tb, sb := find("bob")
	if ta < 0 || ta != tb || sa != sb || sa != 93 {
		t.Fatalf("click: alice tick %d sample %d, bob tick %d sample %d", ta, sa, tb, sb)
	}
	if got := ticks[ta].mixed[sa]; got != 32767 {
		t.Fatalf("mixed click %d, want 32767 (saturated 40000)", got)
	}
	if o := ticks[ta].order; len(o) != 2 || o[0] != "alice" || o[1] != "bob" {
		t.Fatalf("parts order %v", o)
	}
}

func TestAddRemove(t *testing.T) {
	m := New()
	a := m.Add("a")
	b := m.Add("b")
	c := m.Add("c")
	if m.Len() != 3 {
		t.Fatalf("Len %d", m.Len())
	}
	m.Remove(b)
	m.Remove(b)
	m.Remove(nil)
	if m.Len() != 2 || m.Participants()[0] != a || m.Participants()[1] != c {
		t.Fatal("remove changed the wrong participant")
	}
	var heard []string
	m.Tick(func(p *Participant, _ []int16) { heard = append(heard, p.ID()) })
	if len(heard) != 2 || heard[0] != "a" || heard[1] != "c" {
		t.Fatalf("out called for %v", heard)
	}
	// Remove from inside a callback: no deadlock, and not called again.
	heard = heard[:0]
	m.Tick(func(p *Participant, _ []int16) {
		heard = append(heard, p.ID())
		if p == a {
			m.Remove(c)
		}
	})
	if len(heard) != 1 || m.Len() != 1 || m.Ticks() != 2 {
		t.Fatalf("out called for %v, Len %d", heard, m.Len())
	}
}

func TestZeroAllocsPerTick(t *testing.T) {
	for _, n := range []int{2, 10} {
		m := New()
		ps := make([]*Participant, n)
		for i := range ps {
			ps[i] = m.Add(fmt.Sprintf("p%d", i))
		}
		pcm := sine(400, 5000, 0, FrameSamples)
		ts := uint32(0)
		var sink int
		out := func(_ *Participant, f []int16) { sink += int(f[0]) }
		rec := func(mixed []int16, parts []Frame) { sink += int(mixed[0]) + len(parts) }
		m.SetAnnouncer(func(pcm []int16) int { return len(pcm) })
		ps[0].SetOverlay(func(pcm []int16) int { return len(pcm) })
		step := func() {
			for i, p := range ps {
				p.Push(uint32(i), ts, pcm)
			}
			ts += FrameSamples
			m.TickRecord(out, rec)
		}
		for range 10 {
			step()
		}
		if a := testing.AllocsPerRun(500, step); a != 0 {
			t.Fatalf("%d parties: %.1f allocs per tick", n, a)
		}
		_ = sink
	}
}

// TestConcurrent runs Add/Remove, Push, Tick and the setters from separate
// goroutines; run it with -race. Work is bounded by counts, not time.
func TestConcurrent(t *testing.T) {
	m := New()
	var stop atomic.Bool
	var clock sync.WaitGroup
	var ticks atomic.Int64

	clock.Add(1)
	go func() { // the bridge clock
		defer clock.Done()
		for !stop.Load() || ticks.Load() < 200 {
			m.TickRecord(func(p *Participant, f []int16) {
				_ = f[FrameSamples-1]
			}, func(mixed []int16, parts []Frame) {
				for _, f := range parts {
					_ = f.PCM[0] + mixed[0]
				}
			})
			ticks.Add(1)
			runtime.Gosched()
		}
	}()

	var wg sync.WaitGroup
	for g := range 4 { // RTP readers joining, sending, leaving
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			buf := make([]int16, 240)
			for round := range 20 {
				p := m.Add(fmt.Sprintf("g%d-%d", g, round))
				ts := rng.Uint32()
				for k := range 50 {
					n := []int{80, 160, 240}[rng.IntN(3)]
					for i := range buf[:n] {
						buf[i] = int16(rng.IntN(65536) - 32768)
					}
					p.Push(uint32(g), ts, buf[:n])
					ts += uint32(n)
					if k%7 == 0 {
						p.SetMuteIn(k%2 == 0)
					}
					if k%11 == 0 {
						src, _ := countdown(5, 2, 3)
						p.SetOverlay(src)
					}
					_ = p.Stats()
					runtime.Gosched()
				}
				m.Remove(p)
			}
		}()
	}
	wg.Add(1)
	go func() { // announcements and observers
		defer wg.Done()
		for i := range 500 {
			src, _ := countdown(int16(i), 3, 0)
			m.SetAnnouncer(src)
			_ = m.Len()
			for _, p := range m.Participants() {
				_ = p.Stats()
			}
			if i%5 == 0 {
				m.SetAnnouncer(nil)
			}
			runtime.Gosched()
		}
	}()
	wg.Wait()
	stop.Store(true)
	clock.Wait()
	if m.Len() != 0 {
		t.Fatalf("Len %d after all removed", m.Len())
	}
}

// A source that returns Idle mixes nothing that tick and stays attached;
// its audio is heard on the ticks where it has some.
func TestIdleSourceStaysAttached(t *testing.T) {
	m := New()
	a, b := m.Add("a"), m.Add("b")
	var have []int16 // the next frame the source gives, nil: idle
	src := func(pcm []int16) int {
		if have == nil {
			return Idle
		}
		copy(pcm, have)
		have = nil
		return len(pcm)
	}
	b.SetOverlay(src)
	m.SetAnnouncer(src)
	for k := range 6 {
		a.Push(1, uint32(k*FrameSamples), constFrame(100, FrameSamples))
		b.Push(2, uint32(k*FrameSamples), constFrame(10, FrameSamples))
		r := tick(m)
		if !b.HasOverlay() || !m.HasAnnouncer() {
			t.Fatalf("tick %d: an idle source was detached", k)
		}
		if !r.active["a"] {
			continue
		}
		if got := level(r.out["b"]); got != 100 {
			t.Fatalf("tick %d: b hears %d with the sources idle, want 100", k, got)
		}
		if got := level(r.mixed); got != 110 {
			t.Fatalf("tick %d: mixed %d, want 110", k, got)
		}
	}
	have = constFrame(1000, FrameSamples) // the overlay (pulled first) has audio now
	a.Push(1, uint32(6*FrameSamples), constFrame(100, FrameSamples))
	b.Push(2, uint32(6*FrameSamples), constFrame(10, FrameSamples))
	r := tick(m)
	if got := level(r.out["b"]); got != 1100 {
		t.Fatalf("b hears %d with its overlay active, want 1100", got)
	}
	if got := level(r.out["a"]); got != 10 {
		t.Fatalf("a hears %d, want 10 (the overlay is b's alone)", got)
	}
}

// Two parties take a shortcut (each hears the other's frame as it is): it
// must give what the general mix gives, whatever their state: muted,
// silent, losing packets, with or without an overlay and an announcer.
func TestTwoPartiesMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	m := New()
	ps := []*Participant{m.Add("a"), m.Add("b")}
	var ov [2][]int16
	var ann []int16
	source := func(slot *[]int16) Source {
		return func(pcm []int16) int {
			if *slot == nil {
				return Idle
			}
			copy(pcm, *slot)
			return len(pcm)
		}
	}
	ps[0].SetOverlay(source(&ov[0]))
	ps[1].SetOverlay(source(&ov[1]))
	m.SetAnnouncer(source(&ann))
	randFrame := func() []int16 {
		f := make([]int16, FrameSamples)
		for i := range f {
			f[i] = int16(rng.IntN(65536) - 32768)
		}
		return f
	}
	checked := 0
	for k := range 400 {
		for i, p := range ps {
			p.SetMuteIn(rng.IntN(5) == 0)
			if rng.IntN(6) != 0 { // else: lost
				p.Push(uint32(i+1), uint32(k*FrameSamples), randFrame())
			}
			ov[i] = nil
			if rng.IntN(4) == 0 {
				ov[i] = randFrame()
			}
		}
		ann = nil
		if rng.IntN(4) == 0 {
			ann = randFrame()
		}
		r := tick(m)
		// Reference: the recorder's frames are what each party contributed.
		for i := range FrameSamples {
			var sum int32
			for _, p := range ps {
				if r.active[p.ID()] {
					sum += int32(r.parts[p.ID()][i])
				}
			}
			if ann != nil {
				sum += int32(ann[i])
			}
			if want := audio.Saturate(sum); r.mixed[i] != want {
				t.Fatalf("tick %d sample %d: mixed %d, want %d", k, i, r.mixed[i], want)
			}
			for j, p := range ps {
				v := sum
				if r.active[p.ID()] {
					v -= int32(r.parts[p.ID()][i])
				}
				if ov[j] != nil {
					v += int32(ov[j][i])
				}
				if want := audio.Saturate(v); r.out[p.ID()][i] != want {
					t.Fatalf("tick %d sample %d: %s hears %d, want %d", k, i, p.ID(), r.out[p.ID()][i], want)
				}
			}
		}
		if r.active["a"] && r.active["b"] {
			checked++
		}
	}
	if checked < 100 {
		t.Fatalf("only %d ticks with both parties active", checked)
	}
}

// TestSyncWaitsForTheTickInProgress: Sync returns only once the tick that
// took a participant's last frame has handed it to its rec callback.
func TestSyncWaitsForTheTickInProgress(t *testing.T) {
	m := New()
	p := m.Add("a")
	p.Push(ssrcA, 0, constFrame(7, FrameSamples))
	p.Drain()
	inRec, release := make(chan struct{}), make(chan struct{})
	go m.TickRecord(nil, func([]int16, []Frame) { close(inRec); <-release })
	<-inRec
	if d := p.Stats().Depth; d != 0 {
		t.Fatalf("the tick left %d samples", d)
	}
	synced := make(chan struct{})
	go func() { m.Sync(); close(synced) }()
	select {
	case <-synced:
		t.Fatal("Sync returned while the tick was still in its rec callback")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case <-synced:
	case <-time.After(5 * time.Second):
		t.Fatal("Sync did not return once the tick had")
	}
}
