package mix

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/tapedeck/tapedeck/internal/media/audio"
)

// Frame is one participant's own input for a tick, as given to a recorder.
type Frame struct {
	P      *Participant
	ID     string
	PCM    []int16 // FrameSamples samples; silence when muted, priming or lost
	Active bool    // PCM holds received audio (not muted, not priming, not lost)
}

// Mixer mixes its participants' audio one 20 ms frame per Tick.
type Mixer struct {
	mu        sync.Mutex                     // serialises Add/Remove
	parts     atomic.Pointer[[]*Participant] // copy-on-write list
	announcer atomic.Pointer[source]
	ticks     atomic.Uint64

	tickMu sync.Mutex // serialises Tick; only Tick takes it
	sum    [FrameSamples]int32
	ann    [FrameSamples]int16
	mixed  [FrameSamples]int16
	zero   [FrameSamples]int16
	frames []Frame
}

// New returns an empty Mixer.
func New() *Mixer {
	m := &Mixer{}
	m.parts.Store(new([]*Participant))
	return m
}

// Add creates a participant with the given id and adds it to the mix from
// the next tick. Ids are not checked for uniqueness.
func (m *Mixer) Add(id string) *Participant {
	p := &Participant{id: id}
	m.mu.Lock()
	old := *m.parts.Load()
	next := make([]*Participant, len(old), len(old)+1)
	copy(next, old)
	next = append(next, p)
	m.parts.Store(&next)
	m.mu.Unlock()
	return p
}

// Remove takes p out of the mix; it is idempotent. A Tick already running
// may still include p's audio in its sums, but after Remove returns it no
// longer calls out for p unless that call had already begun.
func (m *Mixer) Remove(p *Participant) {
	if p == nil {
		return
	}
	p.removed.Store(true)
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.parts.Load()
	i := slices.Index(old, p)
	if i < 0 {
		return
	}
	next := make([]*Participant, 0, len(old)-1)
	next = append(next, old[:i]...)
	next = append(next, old[i+1:]...)
	m.parts.Store(&next)
}

// Sync returns once a Tick that was running when it was called has returned:
// whatever that tick took from the play-out buffers (a leaving party's last
// frame) has reached its out and rec callbacks. It must not be called from
// those callbacks.
func (m *Mixer) Sync() {
	m.tickMu.Lock()
	m.tickMu.Unlock() //nolint:staticcheck // empty: waiting for the tick is the point
}

// Len returns the number of participants.
func (m *Mixer) Len() int { return len(*m.parts.Load()) }

// Participants returns a snapshot of the participants in the order added.
func (m *Mixer) Participants() []*Participant { return slices.Clone(*m.parts.Load()) }

// Ticks returns how many ticks have run.
func (m *Mixer) Ticks() uint64 { return m.ticks.Load() }

// SetAnnouncer sets a bridge-wide Source heard by every participant and
// included in the recorded mix; nil removes it. A source that finishes is
// detached by the mixer.
func (m *Mixer) SetAnnouncer(src Source) {
	if src == nil {
		m.announcer.Store(nil)
		return
	}
	m.announcer.Store(&source{fn: src})
}

// HasAnnouncer reports whether an announcer source is attached.
func (m *Mixer) HasAnnouncer() bool { return m.announcer.Load() != nil }

// Tick advances the mix by one 20 ms frame: it takes one frame from every
// participant's buffer and calls out once per participant with the mix of
// everyone except that participant (plus the announcer and the
// participant's own overlay). frame is valid only during the call.
func (m *Mixer) Tick(out func(p *Participant, frame []int16)) {
	m.TickRecord(out, nil)
}

// Trim trims every participant's play-out buffer to 120 ms
// (Participant.Trim): the driver of the ticks calls it once it has caught
// up with real time.
func (m *Mixer) Trim() {
	for _, p := range *m.parts.Load() {
		p.Trim()
	}
}

// TickRecord is Tick that also calls rec once, after the out calls, with the
// recorded mix (every unmuted participant plus the announcer, saturated) and
// each participant's own input frame in participant order, for a recorder
// that writes a mix or one channel per party. mixed, parts and the frames in
// them are valid only during the call. Either callback may be nil.
func (m *Mixer) TickRecord(out func(p *Participant, frame []int16), rec func(mixed []int16, parts []Frame)) {
	m.tickMu.Lock()
	defer m.tickMu.Unlock()
	m.ticks.Add(1)
	ps := *m.parts.Load()

	for _, p := range ps {
		active := p.pull()
		p.contrib = active && !p.mutedIn.Load()
		p.ovActive = false
		if ov := p.overlay.Load(); ov != nil {
			var done bool
			p.ovActive, done = ov.fill(p.ov[:])
			if done {
				p.overlay.CompareAndSwap(ov, nil)
			}
		}
	}
	annActive := false
	if a := m.announcer.Load(); a != nil {
		var done bool
		annActive, done = a.fill(m.ann[:])
		if done {
			m.announcer.CompareAndSwap(a, nil)
		}
	}

	if len(ps) == 2 && !annActive && !ps[0].ovActive && !ps[1].ovActive {
		// Two parties and nothing injected (the common call): each hears
		// the other's frame as it is.
		a, b := ps[0], ps[1]
		a.frame, b.frame = m.zero[:], m.zero[:]
		if b.contrib {
			a.frame = b.in[:]
		}
		if a.contrib {
			b.frame = a.in[:]
		}
		if rec != nil {
			mixed := &m.mixed
			switch {
			case a.contrib && b.contrib:
				for i := range mixed {
					mixed[i] = audio.Saturate(int32(a.in[i]) + int32(b.in[i]))
				}
			case a.contrib:
				*mixed = a.in
			case b.contrib:
				*mixed = b.in
			default:
				clear(mixed[:])
			}
		}
	} else {
		m.mixAll(ps, annActive)
	}

	if out != nil {
		for _, p := range ps {
			if !p.removed.Load() {
				out(p, p.frame)
			}
		}
	}
	for _, p := range ps {
		p.frame = nil
	}
	if rec != nil {
		fr := m.frames[:0]
		for _, p := range ps {
			f := Frame{P: p, ID: p.id, PCM: m.zero[:], Active: p.contrib}
			if p.contrib {
				f.PCM = p.in[:]
			}
			fr = append(fr, f) // grows only when the participant count grows
		}
		m.frames = fr
		rec(m.mixed[:], fr)
		clear(fr) // drop references to participants between ticks
	}
}

// mixAll is the general mix: the sum of every contributing participant and
// the announcer, and for each participant that sum minus its own input
// plus its overlay, saturated.
func (m *Mixer) mixAll(ps []*Participant, annActive bool) {
	sum := &m.sum
	clear(sum[:])
	for _, p := range ps {
		if p.contrib {
			for i, s := range &p.in {
				sum[i] += int32(s)
			}
		}
	}
	if annActive {
		for i, s := range &m.ann {
			sum[i] += int32(s)
		}
	}
	for _, p := range ps {
		o := &p.out
		switch {
		case p.contrib && p.ovActive:
			for i := range o {
				o[i] = audio.Saturate(sum[i] - int32(p.in[i]) + int32(p.ov[i]))
			}
		case p.contrib:
			for i := range o {
				o[i] = audio.Saturate(sum[i] - int32(p.in[i]))
			}
		case p.ovActive:
			for i := range o {
				o[i] = audio.Saturate(sum[i] + int32(p.ov[i]))
			}
		default:
			for i := range o {
				o[i] = audio.Saturate(sum[i])
			}
		}
		p.frame = o[:]
	}
	for i := range m.mixed {
		m.mixed[i] = audio.Saturate(sum[i])
	}
}
