package call

import (
	"time"

	"github.com/tapedeck/tapedeck/internal/sdp"
	"github.com/tapedeck/tapedeck/internal/wakegrid"
)

// The RTP watchdog ends calls whose far end vanished without a BYE: one
// goroutine per Manager (while it has channels, never one per call) looks
// at every channel a few times per timeout and hangs up an answered one
// whose received-packet count has not moved for Options.RTPTimeout, with
// Asterisk's cause for its rtp_timeout (44, Requested channel not
// available). Time is measured on the monotonic clock from the moment the
// count last moved; a hold (the peer sends sendonly or inactive, or
// recvonly: it does not send to us) or a channel not yet up restarts the
// count, as Asterisk pauses rtp_timeout on hold.

// watchState is a channel's watchdog state, touched by the watchdog
// goroutine only.
type watchState struct {
	packets uint64
	since   time.Time
}

// watch starts the watchdog unless it runs or no timeout is set.
func (m *Manager) watch() {
	if m.opts.RTPTimeout > 0 && m.watching.CompareAndSwap(false, true) {
		go m.watchdog()
	}
}

func (m *Manager) watchdog() {
	every := min(max(m.opts.RTPTimeout/4, 20*time.Millisecond), time.Second)
	// On the node's wake-up grid (wakegrid): its looks fall on RTP poller
	// reads, in the same wake-up of the process. A ticker woke a node with
	// calls once more a second, at whatever moment its first channel came.
	t := time.NewTimer(wakegrid.Until(every))
	defer t.Stop()
	for range t.C {
		t.Reset(wakegrid.Until(every))
		if m.watchLooked != nil {
			m.watchLooked(time.Now())
		}
		m.mu.RLock()
		chans := make([]*Channel, 0, len(m.chans))
		for _, ch := range m.chans {
			chans = append(chans, ch)
		}
		m.mu.RUnlock()
		if len(chans) == 0 {
			m.watching.Store(false)
			// A channel registered since the look above started no
			// watchdog (watching was still set): look again.
			m.mu.RLock()
			n := len(m.chans)
			m.mu.RUnlock()
			if n == 0 || !m.watching.CompareAndSwap(false, true) {
				return
			}
			continue
		}
		now := time.Now()
		for _, ch := range chans {
			if ch.rtpSilentFor(now) >= m.opts.RTPTimeout {
				ch.log.Warn("no RTP received; hanging up", "timeout", m.opts.RTPTimeout.String(),
					"packets", ch.watch.packets, "cause", CauseChanUnavailable)
				go ch.hangup(CauseChanUnavailable, false)
			}
		}
	}
}

// rtpSilentFor is how long the channel has been up, not on hold, without
// receiving RTP (watchdog goroutine only).
func (ch *Channel) rtpSilentFor(now time.Time) time.Duration {
	ch.mu.Lock()
	paused := ch.state != StateUp || ch.hangingUp || ch.held || ch.remote == nil || ch.remote.Direction == sdp.RecvOnly
	ch.mu.Unlock()
	st := ch.media.Stats()
	w := &ch.watch
	if paused || w.since.IsZero() || st.Received != w.packets {
		w.packets, w.since = st.Received, now
		return 0
	}
	return now.Sub(w.since)
}
