package call

// Latency against cost: a channel's RTP socket is read by the Poller every
// read interval (100 ms), five frames per syscall, which is what makes a
// recorded call cheap and is fine for a recording. A channel whose audio
// feeds a live stream cannot wait that long: a call bridged directly with
// an external media channel (a voice bot), the external channel itself
// (what the bot says back), and the channel a snoop listens to while the
// snoop is bridged directly with its stream (a transcription app). Their
// sockets are read as each packet arrives (rtp.Registration.SetLive) for
// as long as that lasts, and go back to the Poller's schedule after: only
// streamed channels pay the wake-up per packet.

// liveMedia is a Media that can read on arrival (*rtp.Session).
type liveMedia interface{ SetLive(on bool) }

// holdLive adds (+1) or drops (-1) a reason to read the channel's audio
// on arrival.
func (ch *Channel) holdLive(delta int) {
	ch.liveMu.Lock()
	defer ch.liveMu.Unlock()
	was := ch.liveRefs > 0
	ch.liveRefs += delta
	if now := ch.liveRefs > 0; now != was {
		if l, ok := ch.media.(liveMedia); ok {
			l.SetLive(now)
		}
	}
}

// liveChannelsLocked is what a direct bridge needs read on arrival: its
// parties, and the channel each snoop party listens to (when it hears what
// that channel says: spy in or both). Empty when the bridge mixes on its
// clock.
func (b *Bridge) liveChannelsLocked() []*Channel {
	if !b.direct.Load() {
		return nil
	}
	var want []*Channel
	for _, mb := range b.members {
		want = append(want, mb.ch)
		if sm, ok := mb.ch.media.(*snoopMedia); ok && (sm.spy == "in" || sm.spy == "both") {
			want = append(want, sm.target)
		}
	}
	return want
}

// updateLiveLocked makes the channels the bridge needs live hold a
// reference, and drops those it held and no longer needs.
func (b *Bridge) updateLiveLocked() {
	want := b.liveChannelsLocked()
	for _, ch := range want {
		if !containsChannel(b.live, ch) {
			ch.holdLive(1)
		}
	}
	for _, ch := range b.live {
		if !containsChannel(want, ch) {
			ch.holdLive(-1)
		}
	}
	b.live = want
}

func containsChannel(list []*Channel, ch *Channel) bool {
	for _, c := range list {
		if c == ch {
			return true
		}
	}
	return false
}

// SetLive implements liveMedia for a wrapped session.
func (l *l16Out) SetLive(on bool) {
	if m, ok := l.Media.(liveMedia); ok {
		m.SetLive(on)
	}
}
