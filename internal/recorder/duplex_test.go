package recorder

import (
	"testing"
	"time"
)

type duplexOut struct{ mixed, left, right []int16 }

func (o *duplexOut) out(m, l, r []int16) {
	o.mixed = append(o.mixed, m...)
	o.left = append(o.left, l...)
	o.right = append(o.right, r...)
}

func dframe(v int16) []int16 {
	f := make([]int16, 160)
	for i := range f {
		f[i] = v
	}
	return f
}

// TestDuplexAlignsByTime: inbound frames every 20 ms from 0 and outbound
// frames from 1 s on land at their times, mixed and one per channel; the
// outbound prompt after its gap starts where its time says.
func TestDuplexAlignsByTime(t *testing.T) {
	d := NewDuplex(8000)
	var o duplexOut
	t0 := time.Unix(1000, 0)
	for i := range 150 { // 3 s of inbound
		at := t0.Add(time.Duration(i) * 20 * time.Millisecond)
		d.Add(DuplexIn, dframe(100), at, o.out)
		if i >= 50 && i < 100 { // 1 s of outbound, from 1 s to 2 s
			d.Add(DuplexOut, dframe(1000), at.Add(time.Millisecond), o.out)
		}
	}
	d.Flush(o.out)
	if len(o.left) != 24000 {
		t.Fatalf("%d samples, want 24000", len(o.left))
	}
	for i, v := range o.left {
		if v != 100 {
			t.Fatalf("left[%d] = %d, want the inbound track", i, v)
		}
	}
	for i, v := range o.right {
		want := int16(0)
		if i >= 8000+8 && i < 16000+8 { // sent 1 ms after the inbound frame
			want = 1000
		}
		if v != want {
			t.Fatalf("right[%d] = %d, want %d", i, v, want)
		}
		if o.mixed[i] != o.left[i]+v {
			t.Fatalf("mixed[%d] = %d", i, o.mixed[i])
		}
	}
}

// TestDuplexLateSilenceDropped: an inbound gap the timeline filled with
// silence after the outbound track moved the output on does not push the
// inbound audio later; sound that is late goes on at the output position.
func TestDuplexLateSilenceDropped(t *testing.T) {
	d := NewDuplex(8000)
	var o duplexOut
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for ms := 0; ms < 500; ms += 20 {
		d.Add(DuplexIn, dframe(100), at(ms), o.out)
		d.Add(DuplexOut, dframe(1000), at(ms), o.out)
	}
	for ms := 500; ms < 1500; ms += 20 { // inbound silent (no packets)
		d.Add(DuplexOut, dframe(1000), at(ms), o.out)
	}
	// The inbound timeline's gap silence, then sound at 1.5 s.
	d.Add(DuplexIn, make([]int16, 8000), at(1500), o.out)
	for ms := 1500; ms < 2000; ms += 20 {
		if ms > 1500 {
			d.Add(DuplexIn, dframe(100), at(ms), o.out)
		} else {
			d.Add(DuplexIn, dframe(100), at(ms), o.out)
		}
		d.Add(DuplexOut, dframe(1000), at(ms), o.out)
	}
	d.Flush(o.out)
	if len(o.left) < 15900 || len(o.left) > 16100 {
		t.Fatalf("%d samples, want about 16000", len(o.left))
	}
	if o.left[100] != 100 || o.left[6000] != 0 || o.left[11000] != 0 || o.left[12800] != 100 {
		t.Fatalf("inbound misplaced: %d %d %d %d", o.left[100], o.left[6000], o.left[11000], o.left[12800])
	}
}

// TestDuplexIdleCut: a stretch with no audio on either side is cut to
// DuplexIdleMax, and the tracks stay aligned after it.
func TestDuplexIdleCut(t *testing.T) {
	d := NewDuplex(8000)
	var o duplexOut
	t0 := time.Unix(1000, 0)
	d.Add(DuplexOut, dframe(1000), t0, o.out)
	later := t0.Add(10 * time.Second)
	d.Add(DuplexIn, dframe(100), later, o.out)
	d.Add(DuplexOut, dframe(1000), later, o.out)
	d.Flush(o.out)
	if n := len(o.left); n != 160+8000+160 {
		t.Fatalf("%d samples, want a frame, the idle second and a frame", n)
	}
	if o.left[len(o.left)-1] != 100 || o.right[len(o.right)-1] != 1000 || o.right[100] != 1000 || o.right[1000] != 0 || o.left[100] != 0 {
		t.Fatal("tracks misaligned after the cut")
	}
}

// TestDuplexInboundPause: a sender that stops for a second and goes on with
// the next timestamp (no silence between) is placed at its time again,
// after the outbound prompt played in its pause, not under it.
func TestDuplexInboundPause(t *testing.T) {
	d := NewDuplex(8000)
	var o duplexOut
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for ms := 0; ms < 1000; ms += 20 {
		d.Add(DuplexIn, dframe(100), at(ms), o.out)
	}
	for ms := 1000; ms < 2000; ms += 20 {
		d.Add(DuplexOut, dframe(1000), at(ms), o.out)
	}
	for ms := 2000; ms < 3000; ms += 20 {
		d.Add(DuplexIn, dframe(100), at(ms), o.out)
	}
	d.Flush(o.out)
	if len(o.left) != 24000 {
		t.Fatalf("%d samples, want 24000", len(o.left))
	}
	for _, c := range []struct {
		at          int
		left, right int16
	}{{100, 100, 0}, {7900, 100, 0}, {8100, 0, 1000}, {15900, 0, 1000}, {16100, 100, 0}, {23900, 100, 0}} {
		if o.left[c.at] != c.left || o.right[c.at] != c.right {
			t.Errorf("at %d: %d/%d, want %d/%d", c.at, o.left[c.at], o.right[c.at], c.left, c.right)
		}
	}
}

// TestDuplexReanchor: after a pause that skips (Flush, Reanchor), the next
// audio follows what was handed on, whatever time passed, and the tracks
// are aligned again from there.
func TestDuplexReanchor(t *testing.T) {
	d := NewDuplex(8000)
	var o duplexOut
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for ms := 0; ms < 1000; ms += 20 {
		d.Add(DuplexIn, dframe(100), at(ms), o.out)
	}
	d.Flush(o.out)
	d.Reanchor()
	for ms := 5000; ms < 6000; ms += 20 { // 4 s paused, then both
		d.Add(DuplexIn, dframe(100), at(ms), o.out)
		d.Add(DuplexOut, dframe(1000), at(ms), o.out)
	}
	d.Flush(o.out)
	if len(o.left) != 16000 {
		t.Fatalf("%d samples, want 16000 (the paused time left out)", len(o.left))
	}
	if o.left[7999] != 100 || o.right[7999] != 0 || o.left[8000] != 100 || o.right[8000] != 1000 || o.right[15999] != 1000 {
		t.Fatalf("around the pause: %d/%d %d/%d", o.left[7999], o.right[7999], o.left[8000], o.right[8000])
	}
}

// TestDuplexLongInboundPauseFitsQueue: a caller that talks, sends nothing
// for 3 s (a muted phone, silence suppression) and talks again, with
// nothing sent to it, is handed on in pieces a recording's queue (2 s)
// holds: the pause is an idle stretch, cut to DuplexIdleMax, not 3 s of
// silence handed on at once when the next sound arrives (which overflowed
// the recording's queue and failed it).
func TestDuplexLongInboundPauseFitsQueue(t *testing.T) {
	d := NewDuplex(8000)
	var o duplexOut
	most := 0
	out := func(m, l, r []int16) { o.out(m, l, r) }
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	add := func(ms int) {
		before := len(o.left)
		d.Add(DuplexIn, dframe(100), at(ms), out)
		most = max(most, len(o.left)-before)
	}
	for ms := 0; ms < 600; ms += 20 {
		add(ms)
	}
	for ms := 3600; ms < 4200; ms += 20 {
		add(ms)
	}
	d.Flush(o.out)
	const queue = 2 * 8000 // recQueueDuration in internal/call
	if most >= queue {
		t.Fatalf("%d samples handed on at once, more than a recording's queue holds (%d)", most, queue)
	}
	// Both stretches of sound, the pause between cut to the idle second.
	if n := len(o.left); n != 4800+8000+4800 {
		t.Fatalf("%d samples, want 600 ms, the idle second, 600 ms", n)
	}
	if o.left[4700] != 100 || o.left[4900] != 0 || o.left[12700] != 0 || o.left[12900] != 100 {
		t.Fatalf("misplaced: %d %d %d %d", o.left[4700], o.left[4900], o.left[12700], o.left[12900])
	}
}
