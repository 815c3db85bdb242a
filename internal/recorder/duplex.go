package recorder

import (
	"time"

	"github.com/tapedeck/tapedeck/internal/media/audio"
)

// Duplex tracks (Duplex.Add).
const (
	DuplexIn  = 0 // what the channel receives from its party
	DuplexOut = 1 // what the channel sends its party (prompts, playbacks)
)

// Duplex aligns the two directions of one channel — what it receives and
// what it sends — by time, and hands them on mixed (mono) and one per
// channel (stereo: in left, out right). A recording of a call that is not
// bridged uses it for Twilio's RecordingTrack=both.
//
// Each track's samples are placed at a position on one clock: the first
// audio of either track is position 0 (a pause that skips starts again
// from the next audio, Reanchor), an outbound frame at its send time
// (frames that come after a gap of more than DuplexGapTolerance jump to
// their time; the silence between is silence), the inbound stream (a
// Timeline's output, which fills its own gaps) from its first packet's
// arrival on. A position is handed on once both tracks have it, or once
// the clock is past it by DuplexLag: a track that sends nothing there is
// silent. Audio that comes after its position was handed on is moved to
// the output position when it is sound; inserted silence that late is
// dropped, so a track's gaps do not push it later. A stretch in which
// neither track has audio is cut to DuplexIdleMax (a recording's queue
// holds two seconds; the tracks stay aligned on both sides of the cut).
//
// One goroutine (or a lock) uses a Duplex. The slices passed to out are
// valid only during the call.
type Duplex struct {
	rate      int64
	lag       int64
	gapTol    int64
	idleMax   int64
	anchored  bool
	anchorAt  time.Time
	anchorPos int64
	out       int64 // the next output position
	wall      int64 // the clock's position at the latest Add
	tr        [2]duplexTrack
	mixed     []int16
	left      []int16
	right     []int16
}

type duplexTrack struct {
	started bool
	lastAt  time.Time
	floor   int64 // after a pause in arrivals: where its next sound belongs (0: none)
	pos     int64 // position after the track's last sample
	from    int64 // where its buffered audio begins (>= out while buffered)
	ring    []int16
}

// Duplex timing.
const (
	DuplexLag          = 300 * time.Millisecond
	DuplexGapTolerance = 100 * time.Millisecond
	// DuplexPause is the pause in an inbound stream's arrivals after which
	// its next sound is placed at its arrival (a sender that stops and
	// goes on with the next timestamp), not right after what came before;
	// shorter ones (jitter, a burst after a delay) keep the stream's own
	// timing, which the lag leaves room for.
	DuplexPause   = 500 * time.Millisecond
	DuplexIdleMax = time.Second
	duplexRing    = 1 << 15 // samples per track (4 s at 8 kHz)
	duplexChunk   = 160
)

// NewDuplex returns a Duplex for a sample rate.
func NewDuplex(rate int) *Duplex {
	r := int64(rate)
	d := &Duplex{rate: r, lag: int64(DuplexLag) * r / int64(time.Second),
		gapTol: int64(DuplexGapTolerance) * r / int64(time.Second), idleMax: int64(DuplexIdleMax) * r / int64(time.Second),
		mixed: make([]int16, duplexChunk), left: make([]int16, duplexChunk), right: make([]int16, duplexChunk)}
	for i := range d.tr {
		d.tr[i].ring = make([]int16, duplexRing)
	}
	return d
}

// Out is the number of positions handed on so far (cut idle time
// included).
func (d *Duplex) Out() int64 { return d.out }

func (d *Duplex) clock(at time.Time) int64 {
	return d.anchorPos + int64(at.Sub(d.anchorAt))*d.rate/int64(time.Second)
}

// Add places pcm of track k (DuplexIn, DuplexOut) that arrived, or was
// sent, at at, and hands on what is ready.
func (d *Duplex) Add(k int, pcm []int16, at time.Time, out func(mixed, left, right []int16)) {
	if len(pcm) == 0 {
		return
	}
	if !d.anchored {
		d.anchored, d.anchorAt, d.anchorPos = true, at, d.out
	}
	w := d.clock(at)
	d.wall = max(d.wall, w)
	t := &d.tr[k]
	if t.started && k == DuplexIn && at.Sub(t.lastAt) > DuplexPause {
		t.floor = w
	}
	t.lastAt = at
	if t.floor > 0 {
		// The sound after a pause in arrivals: at its time, unless the
		// sender filled the pause (silence placed up to it).
		i := 0
		for i < len(pcm) && pcm[i] == 0 {
			i++
		}
		switch {
		case t.pos+int64(i) >= t.floor-d.gapTol:
			t.floor = 0
		case i < len(pcm):
			d.placeZeros(t, pcm[:i])
			pcm = pcm[i:]
			d.jump(t, t.floor, out)
			t.floor = 0
		}
	}
	switch {
	case !t.started:
		t.started = true
		t.pos = max(w, d.out)
		t.from = t.pos
	case k == DuplexOut && w > t.pos+d.gapTol:
		// The next prompt after a pause in what is sent: at its time.
		d.jump(t, w, out)
	}
	d.place(t, pcm, out)
	d.ready(out)
}

// jump moves track t on to position w; the positions between are silent.
func (d *Duplex) jump(t *duplexTrack, w int64, out func(mixed, left, right []int16)) {
	if w <= t.pos {
		return
	}
	if t.pos > d.out && (w-d.out > int64(len(t.ring)) || w-t.pos > d.idleMax) {
		// What it holds first: the gap is longer than the ring, or than
		// the idle cut, which can then cut it (zeros placed in the gap
		// would be audio held, handed on at once when the next sound
		// comes: more than a recording's queue holds).
		d.emit(t.pos, out)
	}
	if t.pos <= d.out {
		t.from = w
	} else {
		d.zero(t, t.pos, w)
	}
	t.pos = w
}

// placeZeros places silence before a jump (no positions handed on).
func (d *Duplex) placeZeros(t *duplexTrack, z []int16) {
	if t.pos < d.out {
		t.pos = min(t.pos+int64(len(z)), d.out)
		return
	}
	if t.pos+int64(len(z))-d.out > int64(len(t.ring)) {
		return // a jump follows: nothing to keep
	}
	if t.pos == d.out {
		t.from = t.pos
	}
	d.zero(t, t.pos, t.pos+int64(len(z)))
	t.pos += int64(len(z))
}

// place appends pcm to track t at its position.
func (d *Duplex) place(t *duplexTrack, pcm []int16, out func(mixed, left, right []int16)) {
	if t.pos < d.out {
		// Late: its positions were handed on. Inserted silence is
		// dropped; sound goes on at the output position.
		i := 0
		for i < len(pcm) && t.pos+int64(i) < d.out && pcm[i] == 0 {
			i++
		}
		t.pos += int64(i)
		pcm = pcm[i:]
		if len(pcm) == 0 {
			return
		}
		if t.pos < d.out {
			t.pos = d.out
		}
		t.from = t.pos
	}
	if t.pos <= d.out {
		t.from = t.pos
	}
	if over := t.pos + int64(len(pcm)) - d.out - int64(len(t.ring)); over > 0 {
		d.emit(d.out+over, out) // a track far ahead of the other: hand on
	}
	a := t.pos & int64(len(t.ring)-1)
	c := copy(t.ring[a:], pcm)
	copy(t.ring, pcm[c:])
	t.pos += int64(len(pcm))
}

// zero clears track t's positions [from, to) (a gap it jumped over).
func (d *Duplex) zero(t *duplexTrack, from, to int64) {
	from = max(from, d.out)
	for p := from; p < to; p++ {
		t.ring[p&int64(len(t.ring)-1)] = 0
	}
}

// ready hands on the positions both tracks have, or that the clock is
// past by the lag.
func (d *Duplex) ready(out func(mixed, left, right []int16)) {
	limit := d.wall - d.lag
	r := int64(-1)
	for i := range d.tr {
		e := max(d.tr[i].pos, limit)
		if !d.tr[i].started {
			e = limit
		}
		if r < 0 || e < r {
			r = e
		}
	}
	d.emit(r, out)
}

// Flush hands on everything placed.
func (d *Duplex) Flush(out func(mixed, left, right []int16)) {
	end := d.out
	for i := range d.tr {
		if d.tr[i].started {
			end = max(end, d.tr[i].pos)
		}
	}
	d.emit(end, out)
}

// Reanchor starts the clock again at the next audio (after a pause that
// skips: the paused time is left out). Call Flush first.
func (d *Duplex) Reanchor() {
	d.anchored = false
	d.wall = d.out
	for i := range d.tr {
		d.tr[i].started = false
		d.tr[i].pos = d.out
		d.tr[i].floor = 0
	}
}

// emit hands on positions up to end.
func (d *Duplex) emit(end int64, out func(mixed, left, right []int16)) {
	if end <= d.out {
		return
	}
	// Neither track has audio until idle: cut that to idleMax (the
	// positions cut are not handed on).
	idle, held := end, false
	for i := range d.tr {
		t := &d.tr[i]
		if t.started && t.pos > d.out {
			if !held || t.from < idle {
				idle = max(t.from, d.out)
			}
			held = true
		}
	}
	if idle-d.out > d.idleMax {
		d.out = idle - d.idleMax
	}
	for d.out < end {
		n := min(end-d.out, duplexChunk)
		for i := range d.tr {
			t := &d.tr[i]
			buf := d.left
			if i == DuplexOut {
				buf = d.right
			}
			buf = buf[:n]
			for j := range n {
				p := d.out + j
				if t.started && p >= t.from && p < t.pos {
					buf[j] = t.ring[p&int64(len(t.ring)-1)]
				} else {
					buf[j] = 0
				}
			}
		}
		m := d.mixed[:n]
		for j := range n {
			v := int32(d.left[j]) + int32(d.right[j])
			m[j] = audio.Saturate(v)
		}
		out(m, d.left[:n], d.right[:n])
		d.out += n
	}
	for i := range d.tr {
		if t := &d.tr[i]; t.from < d.out {
			t.from = min(d.out, max(t.pos, t.from))
		}
	}
}
