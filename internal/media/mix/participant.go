package mix

import (
	"sync"
	"sync/atomic"
)

// Participant is one party of a Mixer: a play-out buffer fed by Push and the
// per-tick buffers the mixer fills for it. Create it with Mixer.Add.
type Participant struct {
	id string

	mu sync.Mutex // guards jb; held only for buffer arithmetic, never across callbacks
	jb jitter

	mutedIn atomic.Bool
	overlay atomic.Pointer[source]
	removed atomic.Bool

	// Owned by the ticking goroutine (under Mixer.tickMu).
	in       [FrameSamples]int16
	out      [FrameSamples]int16
	ov       [FrameSamples]int16
	contrib  bool    // in is part of this tick's sum
	ovActive bool    // ov holds this tick's overlay audio
	frame    []int16 // what the participant hears this tick: out, or another's in
}

// ID returns the identifier given to Mixer.Add.
func (p *Participant) ID() string { return p.id }

// Push stores one RTP packet's decoded samples (8 kHz, any count) at RTP
// timestamp ts from synchronisation source ssrc. The samples are copied; the
// caller may reuse pcm at once. Push never blocks on the mixer's consumers.
func (p *Participant) Push(ssrc uint32, ts uint32, pcm []int16) {
	p.mu.Lock()
	p.jb.push(ssrc, ts, pcm)
	p.mu.Unlock()
}

// PushG711 is Push of a G.711 payload (A-law when alaw, else µ-law): its
// samples are decoded straight into the play-out buffer, in one pass
// instead of a decode and a copy; the buffer then holds exactly what Push
// of the decoded samples would have left.
func (p *Participant) PushG711(ssrc uint32, ts uint32, payload []byte, alaw bool) {
	p.mu.Lock()
	p.jb.pushG711(ssrc, ts, payload, alaw)
	p.mu.Unlock()
}

// Trim drops the oldest frames the play-out buffer holds beyond 120 ms
// and returns how many of them held audio (counted in OverflowDrops). A
// push keeps up to 320 ms, so that the packets of a clock that woke up late
// are there to be mixed while it catches up; whoever drives the ticks trims
// once it has caught up, so that a sender's burst does not add latency.
func (p *Participant) Trim() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.jb.trim()
}

// Reset flushes the play-out buffer; the next Push starts a new stream.
func (p *Participant) Reset() {
	p.mu.Lock()
	if p.jb.have {
		p.jb.reset(p.jb.ssrc, p.jb.lastTS)
		p.jb.have = false
	}
	p.mu.Unlock()
}

// Drain has the play-out buffer play out what it holds from the next tick
// on, without waiting to be primed again: the party is leaving (or has
// stopped sending) and no packet will fill it.
func (p *Participant) Drain() {
	p.mu.Lock()
	p.jb.drain()
	p.mu.Unlock()
}

// SetMuteIn mutes (true) or unmutes the participant's input: while muted its
// audio is neither heard by the others nor recorded. Its buffer keeps
// playing out so timing is unaffected.
func (p *Participant) SetMuteIn(muted bool) { p.mutedIn.Store(muted) }

// MutedIn reports whether the participant's input is muted.
func (p *Participant) MutedIn() bool { return p.mutedIn.Load() }

// SetOverlay sets a Source mixed into this participant's own output only
// (a playback to one bridged channel); it is not heard by the others and not
// recorded. nil removes it. A source that finishes is detached by the mixer.
func (p *Participant) SetOverlay(src Source) {
	if src == nil {
		p.overlay.Store(nil)
		return
	}
	p.overlay.Store(&source{fn: src})
}

// HasOverlay reports whether an overlay source is attached.
func (p *Participant) HasOverlay() bool { return p.overlay.Load() != nil }

// Stats returns the participant's play-out counters.
func (p *Participant) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.jb.stats()
}

// pull takes this tick's input frame from the buffer.
func (p *Participant) pull() bool {
	p.mu.Lock()
	active := p.jb.pull(p.in[:])
	p.mu.Unlock()
	return active
}
