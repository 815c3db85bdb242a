package dtmf

// DefaultClockRate is used by the Detector when Push is given a clock rate of
// 0 (telephone-event is almost always negotiated at 8000 Hz).
const DefaultClockRate = 8000

// recentEvents is how many finished event timestamps the Detector remembers
// to drop late retransmissions (RFC 4733 senders repeat the End packet, and
// packets may be reordered across event boundaries).
const recentEvents = 4

// maxSegment is the largest duration one event (segment) can carry; longer
// events are split into segments (RFC 4733 §2.5.1).
const maxSegment = 0xFFFF

// Detector turns the telephone-event packets of one RTP stream (one SSRC)
// into DTMF digits. Feed it every received telephone-event packet in arrival
// order with Push. The zero value is ready to use. A Detector is not safe for
// concurrent use; it does not allocate.
//
// An event is identified by its RTP timestamp, which RFC 4733 keeps constant
// for all packets of one event, so a lost first packet (marker bit) does not
// lose the digit.
//
// Reporting rules, per event (= per timestamp):
//
//   - done is reported exactly once: on the first End packet, or when a
//     packet with a different timestamp arrives while the event has not ended
//     (the new event supersedes it), or by Flush. Retransmitted End packets
//     and any other late packet of a finished event are ignored. The
//     timestamps of the last 4 finished events are remembered for this.
//   - begin is reported at most once, on the first accepted packet of the
//     event. If that first packet is an End packet (the start was lost),
//     begin and done are both true on the same call.
//   - Superseding: when a packet of a new event B arrives while event A is
//     still open, that call returns A's digit and last known duration with
//     done=true (begin=true as well if A's begin had not been reported). B
//     becomes the open event but its begin is deferred to the next Push that
//     carries B's timestamp (which reports begin=true, and done=true too if it
//     is an End packet). If B's End packet was the superseding packet, B is
//     already known to be ended and that next packet of B (typically an End
//     retransmission) reports its done; failing that, B is reported as done
//     when the next event supersedes it or by Flush. Flush never reports begin.
//   - digit and durationMs describe the event the flags refer to. On a plain
//     update of the open event both flags are false and they carry the open
//     event's digit and current duration. On an ignored packet all results
//     are zero.
//
// Packets whose event code is not a DTMF digit (> 15) are ignored without
// touching any state. If a packet of the open event carries a different event
// code, the code of its first packet is kept.
//
// Long-duration events split into 0xFFFF segments (RFC 4733 §2.5.1) are
// merged: a packet with the same event code whose timestamp is exactly
// 0xFFFF after the open event's, arriving while that event has reached
// duration 0xFFFF without End, continues the event, and the reported duration
// is the sum over all segments.
//
// durationMs is duration*1000/clockRate, truncated, where clockRate is the
// value passed with the event's first accepted packet.
//
// Call Reset when the stream's SSRC changes.
type Detector struct {
	open      bool   // an event is in progress (not reported as done)
	beganSent bool   // begin was reported for the open event
	endSeen   bool   // an End packet of the open event was seen but not reported
	ts        uint32 // RTP timestamp of the open event (current segment)
	event     uint8
	base      uint32 // duration of earlier segments of a long event
	duration  uint16 // duration of the current segment
	clockRate uint32

	recent  [recentEvents]uint32 // timestamps of finished events
	nRecent int
	next    int
}

// Push processes one received telephone-event packet: its RTP timestamp,
// marker bit, decoded payload and the RTP clock rate of the telephone-event
// payload type (0 means DefaultClockRate). See Detector for exactly what is
// reported. The marker bit is accepted for completeness but not needed:
// events are delimited by timestamp only.
func (d *Detector) Push(rtpTimestamp uint32, marker bool, ev Event, clockRate uint32) (digit rune, durationMs int, begin bool, done bool) {
	if _, ok := EventToDigit(ev.Event); !ok {
		return 0, 0, false, false
	}
	if clockRate == 0 {
		clockRate = DefaultClockRate
	}

	if d.open && rtpTimestamp == d.ts {
		// Another packet of the open event.
		d.duration = max(d.duration, ev.Duration) // tolerate reordering
		digit, durationMs = d.current()
		begin = !d.beganSent
		d.beganSent = true
		if ev.End || d.endSeen {
			d.finish()
			done = true
		}
		return digit, durationMs, begin, done
	}

	if d.finished(rtpTimestamp) {
		return 0, 0, false, false // retransmission or late packet
	}

	if d.open && !d.endSeen && ev.Event == d.event &&
		d.duration == maxSegment && rtpTimestamp-d.ts == maxSegment {
		// Next segment of a long-duration event. Late packets of the previous
		// segment must not restart the event.
		d.remember(d.ts)
		d.base += maxSegment
		d.ts = rtpTimestamp
		d.duration = ev.Duration
		digit, durationMs = d.current()
		if ev.End {
			d.finish()
			done = true
		}
		return digit, durationMs, false, done
	}

	if d.open {
		// A new event supersedes the open one: report the old one now and
		// defer the new one's begin to its next packet.
		digit, durationMs = d.current()
		begin = !d.beganSent
		d.finish()
		d.start(rtpTimestamp, ev, clockRate)
		d.endSeen = ev.End
		return digit, durationMs, begin, true
	}

	d.start(rtpTimestamp, ev, clockRate)
	d.beganSent = true
	digit, durationMs = d.current()
	if ev.End {
		d.finish()
		done = true
	}
	return digit, durationMs, true, done
}

// Flush reports the open event, if any, as done with its last known duration,
// e.g. when no telephone-event packet has arrived for a while and the End
// packets are presumed lost. Later packets of that event are ignored. It
// returns ok=false if no event is open.
func (d *Detector) Flush() (digit rune, durationMs int, ok bool) {
	if !d.open {
		return 0, 0, false
	}
	digit, durationMs = d.current()
	d.finish()
	return digit, durationMs, true
}

// Reset forgets all state, including the open event (without reporting it)
// and the remembered finished timestamps. Use it when the RTP stream restarts
// (new SSRC).
func (d *Detector) Reset() {
	*d = Detector{}
}

func (d *Detector) start(ts uint32, ev Event, clockRate uint32) {
	d.open = true
	d.beganSent = false
	d.endSeen = false
	d.ts = ts
	d.event = ev.Event
	d.base = 0
	d.duration = ev.Duration
	d.clockRate = clockRate
}

// finish closes the open event and remembers its timestamp.
func (d *Detector) finish() {
	d.open = false
	d.endSeen = false
	d.remember(d.ts)
}

func (d *Detector) remember(ts uint32) {
	d.recent[d.next] = ts
	d.next = (d.next + 1) % recentEvents
	d.nRecent = min(d.nRecent+1, recentEvents)
}

func (d *Detector) finished(ts uint32) bool {
	for i := 0; i < d.nRecent; i++ {
		if d.recent[i] == ts {
			return true
		}
	}
	return false
}

func (d *Detector) current() (rune, int) {
	r, _ := EventToDigit(d.event)
	ticks := uint64(d.base) + uint64(d.duration)
	return r, int(ticks * 1000 / uint64(d.clockRate))
}
