package call

import (
	"math"
	"time"

	"github.com/pion/rtp"

	"github.com/tapedeck/tapedeck/internal/codec"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// State returns the channel state.
func (ch *Channel) State() State {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.state
}

// attach adds a recording to the channel's tap chain.
func (ch *Channel) attach(r *LiveRecording) bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.hangingUp {
		return false
	}
	ch.addTapLocked(&recordingTap{r: r}, StageSink)
	return true
}

// detach takes a recording off the tap chain.
func (ch *Channel) detach(r *LiveRecording) {
	for _, e := range ch.tapList() {
		if t, ok := e.tap.(*recordingTap); ok && t.r == r {
			ch.removeTap(e)
		}
	}
}

// recordings lists the recordings that tap the channel.
func (ch *Channel) recordings() []*LiveRecording {
	var list []*LiveRecording
	for _, e := range ch.tapList() {
		if t, ok := e.tap.(*recordingTap); ok {
			list = append(list, t.r)
		}
	}
	return list
}

// recording reports whether a recording taps the channel.
func (ch *Channel) recording() bool {
	for _, e := range ch.tapList() {
		if _, ok := e.tap.(*recordingTap); ok {
			return true
		}
	}
	return false
}

// OnAudio implements rtp.Handler: decode once, hand the frame to every tap
// of the channel. Runs on the session's reader goroutine.
func (ch *Channel) OnAudio(pkt *rtp.Packet, extSeq uint64) {
	if cap(ch.pcm) < len(pkt.Payload) {
		ch.pcm = make([]int16, len(pkt.Payload))
	}
	if r := ch.solo.Load(); r != nil && (pkt.PayloadType == 0 || pkt.PayloadType == 8) && !ch.muteIn.Load() {
		// The channel's only tap is a recording (the common case): it
		// decodes the payload straight into its queue.
		if r.pushPayload(pkt.SSRC, pkt.SequenceNumber, pkt.Timestamp, pkt.Payload, pkt.PayloadType == 8, ch.media.Arrival(), ch.pcm) {
			return
		}
	}
	if t := ch.part.Load(); t != nil && (pkt.PayloadType == 0 || pkt.PayloadType == 8) && !ch.muteIn.Load() {
		// The channel's only tap is its bridge participant's (a bridged
		// call): the payload is decoded straight into its play-out buffer.
		if t.pushG711(pkt.SSRC, pkt.SequenceNumber, pkt.Timestamp, pkt.Payload, pkt.PayloadType == 8, ch.media.Arrival()) {
			return
		}
	}
	taps := ch.tapList()
	if len(taps) == 0 {
		return
	}
	pcm := ch.pcm[:len(pkt.Payload)]
	ts := pkt.Timestamp
	switch {
	case pkt.PayloadType == 0:
		codec.DecodeMulaw(pcm, pkt.Payload)
	case pkt.PayloadType == 8:
		codec.DecodeAlaw(pcm, pkt.Payload)
	case ch.l16 != nil && pkt.PayloadType == ch.l16.pt:
		pcm, ts = ch.l16.decode(pkt.Payload, pkt.Timestamp)
	default:
		return
	}
	if ch.muteIn.Load() {
		clear(pcm)
	}
	f := &ch.frame
	*f = Frame{SSRC: pkt.SSRC, Timestamp: ts, Seq: pkt.SequenceNumber, PCM: pcm, At: ch.media.Arrival()}
	for _, e := range taps {
		e.tap.Audio(f)
	}
}

// finishRecordings stops every recording of the channel (hangup).
// The call's record cdr, when not nil, is written with the final row of
// the first recording whose end writes one (one transaction: one commit
// for both at the hangup); stored reports whether one did.
func (ch *Channel) finishRecordings(cdr *meta.CDR) (stored bool) {
	ch.m.recMu.Lock()
	var mine []*LiveRecording
	for _, r := range ch.m.live {
		if r.ch == ch {
			mine = append(mine, r)
		}
	}
	ch.m.recMu.Unlock()
	for _, r := range mine {
		r.hangup.Store(true) // the catalog does not wait for the upload
		offered := cdr != nil && !stored
		if offered {
			r.offerCDR(cdr)
		}
		r.finish(RecDone)
		if offered {
			stored = r.cdrHandedOver()
		}
	}
	return stored
}

var beepPCM = func() []int16 {
	// 250 ms at 1 kHz, -10 dBFS, with 5 ms ramps.
	n := 2000
	out := make([]int16, n)
	for i := range out {
		g := 1.0
		if i < 40 {
			g = float64(i) / 40
		} else if i > n-40 {
			g = float64(n-i) / 40
		}
		out[i] = int16(g * 10362 * math.Sin(2*math.Pi*1000*float64(i)/8000))
	}
	return out
}()

// playBeep sends the recording beep to the caller, paced in real time.
func (ch *Channel) playBeep() {
	ch.mu.Lock()
	name := ch.choice.Audio.Name
	ch.mu.Unlock()
	c, ok := codec.ByName(name)
	if !ok {
		c = codec.PCMU
	}
	frame := make([]byte, 160)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for off := 0; off+160 <= len(beepPCM); off += 160 {
		n := c.Encode(frame, beepPCM[off:off+160])
		if !ch.muteOut.Load() {
			ch.tapSent(beepPCM[off : off+160])
			_ = ch.media.WriteAudio(frame[:n], 160)
		}
		select {
		case <-t.C:
		case <-ch.done:
			return
		}
	}
}
