package recorder

import "time"

// MeterCounts are a recording's packet counters (see Meter).
type MeterCounts struct {
	Expected   int64   // packets the sender sent while recording, by sequence number
	Received   int64   // distinct packets that arrived (late ones included)
	Lost       int64   // Expected - Received, never negative
	Late       int64   // arrived too late to be placed, dropped (see Meter.Late)
	Duplicated int64   // arrived more than once (the copies)
	JitterMs   float64 // RFC 3550 interarrival jitter, in milliseconds
}

// Meter counts one recording's RTP packets as RFC 3550 A.3 and A.8 do, but
// only over the stretches that were recorded: a pause (Break) ends a
// stretch, and the packets the sender sent meanwhile are neither expected
// nor lost. A new SSRC, or a sequence number that jumps by more than
// meterJump, also starts a new stretch (a re-INVITE, a restarted sender).
// One goroutine uses a Meter (the recording's media path, under its lock);
// it does not allocate.
type Meter struct {
	// First, what Packet touches for an in-order packet: two cache lines
	// (when the Meter is allocated, or embedded, on a 64-byte boundary).
	epoch   time.Time // first arrival: arrival times count from it
	rate    int64     // timestamp units per second
	max     uint64    // highest extended sequence number of the stretch
	segRecv uint64    // distinct packets of the stretch
	transit int64
	jitter  float64 // timestamp units
	window  [4]uint64
	gaps    uint64 // packets that skipped sequence numbers
	ssrc    uint32
	started bool // a stretch is running
	// hasTransit: transit is set.
	hasTransit bool
	base       uint64 // first extended sequence number of the stretch

	doneExpected, doneReceived uint64 // closed stretches
	dups, late                 uint64
}

// meterJump is the sequence-number jump taken as a new sender rather than
// loss (RFC 3550 A.1's MAX_DROPOUT).
const meterJump = 3000

// NewMeter returns a Meter for an RTP clock rate (0: 8000).
func NewMeter(clockRate uint32) *Meter {
	if clockRate == 0 {
		clockRate = SampleRate
	}
	return &Meter{rate: int64(clockRate)}
}

// Init makes m a new Meter for an RTP clock rate (0: 8000), as NewMeter
// returns: for a Meter held in a larger struct, next to what uses it.
func (m *Meter) Init(clockRate uint32) {
	*m = *NewMeter(clockRate)
}

// Packet counts one arriving packet (its SSRC, 16-bit sequence number, RTP
// timestamp and arrival time); it reports whether the packet is a copy of
// one already counted, which the recording then drops.
func (m *Meter) Packet(ssrc uint32, seq uint16, ts uint32, at time.Time) (dup bool) {
	if m.epoch.IsZero() {
		m.epoch = at
	}
	if m.started && ssrc != m.ssrc {
		m.Break()
		m.hasTransit = false
	}
	if !m.started {
		m.started, m.ssrc = true, ssrc
		ext := uint64(seq) + 1<<16 // room below for packets reordered before the first
		m.base, m.max, m.segRecv = ext, ext, 1
		m.window = [4]uint64{}
		m.setSeen(ext)
		m.jitterUpdate(ts, at)
		return false
	}
	ext := unwrapSeq(m.max, seq)
	switch {
	case ext > m.max && ext-m.max > meterJump, ext < m.max && m.max-ext > meterJump:
		// A new sender behind the same SSRC: a new stretch.
		m.Break()
		m.hasTransit = false
		return m.Packet(ssrc, seq, ts, at)
	case ext > m.max:
		if ext-m.max > 1 {
			m.gaps++
		}
		m.shift(ext - m.max)
		m.max = ext
	default:
		if m.seen(ext) {
			m.dups++
			return true
		}
		if ext < m.base {
			if m.base-ext > 1 {
				m.gaps++ // reordered before the first, with a hole
			}
			m.base = ext
		}
	}
	m.setSeen(ext)
	m.segRecv++
	m.jitterUpdate(ts, at)
	return false
}

// Gaps counts the packets that left a hole in the sequence numbers (after
// the highest, or before the lowest). Counts().Lost grows only with it: between two gaps each packet adds as
// much to Expected as to Received (or only to Received: a late one), so
// the share lost is highest right after a gap.
func (m *Meter) Gaps() uint64 { return m.gaps }

// Late counts a packet that arrived (and was counted by Packet) but too late
// to be placed in the recording.
func (m *Meter) Late() { m.late++ }

// Break ends the current stretch (a pause): the next packet starts a new
// one, and the sequence numbers skipped in between are not counted as lost.
func (m *Meter) Break() {
	if m.started {
		m.doneExpected += m.max - m.base + 1
		m.doneReceived += m.segRecv
		m.started = false
	}
}

// Counts returns the counters so far.
func (m *Meter) Counts() MeterCounts {
	exp, recv := m.doneExpected, m.doneReceived
	if m.started {
		exp += m.max - m.base + 1
		recv += m.segRecv
	}
	c := MeterCounts{Expected: int64(exp), Received: int64(recv), Late: int64(m.late), Duplicated: int64(m.dups)}
	c.Lost = max(c.Expected-c.Received, 0)
	c.JitterMs = m.jitter * 1000 / float64(m.rate)
	return c
}

func (m *Meter) jitterUpdate(ts uint32, at time.Time) {
	arrival := int64(at.Sub(m.epoch)) * m.rate / int64(time.Second)
	transit := arrival - int64(ts)
	if !m.hasTransit {
		m.hasTransit, m.transit = true, transit
		return
	}
	d := transit - m.transit
	m.transit = transit
	if d < 0 {
		d = -d
	}
	// The timestamp wraps at 2^32: a difference that large is the wrap.
	if d > 1<<31 {
		d = 1<<32 - d
	}
	m.jitter += (float64(d) - m.jitter) / 16
}

// unwrapSeq extends a 16-bit sequence number to the one nearest max.
func unwrapSeq(max uint64, seq uint16) uint64 {
	cand := max&^0xFFFF | uint64(seq)
	if cand+0x8000 < max {
		cand += 0x10000
	} else if cand > max+0x8000 && cand >= 0x10000 {
		cand -= 0x10000
	}
	return cand
}

func (m *Meter) shift(n uint64) {
	if n >= 256 {
		m.window = [4]uint64{}
		return
	}
	for ; n > 0; n-- {
		carry := uint64(0)
		for i := range m.window {
			next := m.window[i] >> 63
			m.window[i] = m.window[i]<<1 | carry
			carry = next
		}
	}
}

func (m *Meter) setSeen(ext uint64) {
	if d := m.max - ext; d < 256 {
		m.window[d/64] |= 1 << (d % 64)
	}
}

// seen: a packet of the last 256 was counted; an older one is taken as seen
// (a copy or a straggler far too late to matter).
func (m *Meter) seen(ext uint64) bool {
	d := m.max - ext
	return d >= 256 || m.window[d/64]&(1<<(d%64)) != 0
}
