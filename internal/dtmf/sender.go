package dtmf

import "time"

// DefaultVolume is the volume (-dBm0) put in generated events: -10 dBm0, a
// common choice for DTMF.
const DefaultVolume = 10

// EndRepeats is how many times the final End packet is sent (RFC 4733
// recommends three for robustness).
const EndRepeats = 3

// Sender generates the RFC 4733 packet sequence for one DTMF digit. The
// sequence is: non-End packets whose Duration grows by one packetisation
// interval each (ptime, 2*ptime, ... as long as it is below the total), then
// the End packet carrying the total duration, EndRepeats times. Example for
// 100 ms at 8000 Hz with 20 ms ptime: 160, 320, 480, 640, 800E, 800E, 800E.
//
// The caller (the RTP session) sends one packet per ptime (the End repeats
// may be sent back to back or one ptime apart), sets the marker bit on the
// first packet only (Next reports it) and uses one RTP timestamp - the time
// the tone started - for every packet of the event, with increasing sequence
// numbers.
//
// Events that do not fit the 16-bit duration field (> 65535 timestamp units)
// are rejected rather than split into segments.
//
// Create one with NewSender; the zero value produces no packets. Sender does
// not allocate.
type Sender struct {
	event  uint8
	total  uint16 // final duration in timestamp units
	step   uint16 // packetisation interval in timestamp units
	cur    uint32 // duration of the last non-End packet sent
	ends   int    // End packets produced so far
	primed bool   // at least one packet produced (for the marker)
	valid  bool
}

// NewSender validates its arguments and returns a Sender for digit (0-9, *,
// #, A-D, a-d), lasting duration (rounded to the nearest timestamp unit) at
// the given RTP clock rate, with one packet every ptimeMs milliseconds.
func NewSender(digit rune, duration time.Duration, clockRate uint32, ptimeMs int) (Sender, error) {
	ev, ok := DigitToEvent(digit)
	if !ok {
		return Sender{}, ErrInvalidDigit
	}
	if clockRate == 0 {
		return Sender{}, ErrInvalidClockRate
	}
	if ptimeMs <= 0 {
		return Sender{}, ErrInvalidPtime
	}
	step := uint64(ptimeMs) * uint64(clockRate) / 1000
	if step == 0 || step > maxSegment {
		return Sender{}, ErrInvalidPtime
	}
	if duration <= 0 {
		return Sender{}, ErrInvalidDuration
	}
	// Split to avoid overflowing duration*clockRate.
	sec := uint64(duration / time.Second)
	if sec > maxSegment {
		return Sender{}, ErrDurationTooLong
	}
	rem := uint64(duration % time.Second)
	ticks := sec*uint64(clockRate) + (rem*uint64(clockRate)+uint64(time.Second/2))/uint64(time.Second)
	if ticks == 0 {
		return Sender{}, ErrInvalidDuration
	}
	if ticks > maxSegment {
		return Sender{}, ErrDurationTooLong
	}
	return Sender{event: ev, total: uint16(ticks), step: uint16(step), valid: true}, nil
}

// Next returns the next packet of the sequence, whether it is the first one
// (RTP marker bit), and ok=false once the sequence is exhausted.
func (s *Sender) Next() (ev Event, marker bool, ok bool) {
	if !s.valid || s.ends >= EndRepeats {
		return Event{}, false, false
	}
	marker = !s.primed
	s.primed = true
	ev = Event{Event: s.event, Volume: DefaultVolume}
	if next := s.cur + uint32(s.step); next < uint32(s.total) {
		s.cur = next
		ev.Duration = uint16(next)
		return ev, marker, true
	}
	s.ends++
	ev.End = true
	ev.Duration = s.total
	return ev, marker, true
}

// Len returns the total number of packets the Sender produces, including the
// End repeats.
func (s *Sender) Len() int {
	if !s.valid {
		return 0
	}
	// Non-End packets: multiples of step strictly below total.
	return int((uint32(s.total)-1)/uint32(s.step)) + EndRepeats
}

// NewSenderPackets returns the whole packet sequence of NewSender as a slice
// (the first element is the one to send with the marker bit set). It
// allocates the slice; use Sender.Next to avoid that.
func NewSenderPackets(digit rune, duration time.Duration, clockRate uint32, ptimeMs int) ([]Event, error) {
	s, err := NewSender(digit, duration, clockRate, ptimeMs)
	if err != nil {
		return nil, err
	}
	out := make([]Event, 0, s.Len())
	for {
		ev, _, ok := s.Next()
		if !ok {
			return out, nil
		}
		out = append(out, ev)
	}
}
