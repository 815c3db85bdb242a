package call

import (
	"time"

	"github.com/tapedeck/tapedeck/internal/rtp"
)

// Cost against latency, the other way (liveref.go): a channel whose received
// audio only goes to recordings (dialplan Record, an ARI recording of a
// channel no application controls) needs it no sooner than the recordings'
// writers take it, every writerTick (200 ms), on the node's wake-up grid.
// Reading its socket every 100 ms then only moves packets from the
// kernel's queue to the recording's: its socket is relaxed
// (rtp.Registration.SetRelaxed) to be read every writerTick, on the
// wake-ups where the writers' clock ticks (writerClock.fromRound), so
// audio waits no longer before its write than before (at most a
// writerTick), each recvmmsg returns ten packets instead of five, and the
// call's cold state is touched half as often. As soon as anything else
// taps the channel (a bridge, a snoop, TALK_DETECT, a digit gatherer or
// feature code), a recording ends on a digit (terminateOn), or the channel
// enters an application (which hears its digits), it is read every read
// interval again. Hangups and recording controls drain the socket first,
// as ever; a digit that nobody consumes reaches those subscribed to every
// channel up to 200 ms after it arrived instead of 100.

// relaxMedia is a Media whose reads can be relaxed (*rtp.Session).
type relaxMedia interface{ SetRelaxed(period time.Duration) }

// relaxPeriod is the relaxed read period for sockets of p: the writers'
// tick when p's read interval divides it into at least two reads, else 0
// (never relaxed). Without a Poller (reads on arrival) the media ignores
// it.
func relaxPeriod(p *rtp.Poller) time.Duration {
	if p == nil {
		return writerTick
	}
	slow := p.SlowInterval()
	if slow <= 0 || slow*2 > writerTick || writerTick%slow != 0 {
		return 0
	}
	return writerTick
}

// updateRelaxLocked relaxes the channel's reads, or ends that, when its
// taps or application changed. ch.mu is held.
func (ch *Channel) updateRelaxLocked() {
	want := ch.relaxableLocked()
	if want == ch.relaxed {
		return
	}
	ch.relaxed = want
	if rm, ok := ch.media.(relaxMedia); ok {
		var period time.Duration
		if want {
			period = ch.m.relaxPeriod
		}
		rm.SetRelaxed(period)
	}
}

// relaxableLocked: the channel is in no application, has taps, and every
// one is a recording that no digit ends.
func (ch *Channel) relaxableLocked() bool {
	if ch.m.relaxPeriod == 0 || ch.app != "" {
		return false
	}
	taps := ch.tapList()
	if len(taps) == 0 {
		return false
	}
	for _, e := range taps {
		t, ok := e.tap.(*recordingTap)
		if !ok {
			return false
		}
		switch t.r.opts.TerminateOn {
		case "", "none":
		default:
			return false
		}
	}
	return true
}

// SetRelaxed implements relaxMedia for a wrapped session.
func (l *l16Out) SetRelaxed(period time.Duration) {
	if m, ok := l.Media.(relaxMedia); ok {
		m.SetRelaxed(period)
	}
}
