package call

import (
	"testing"
	"unsafe"
)

// TestMediaPathFieldsPacked: what the media path touches for a recorded
// packet (OnAudio, pushPayload) lies in the first cache line of the
// Channel and the first six of the LiveRecording (its Meter's two, then
// the recording's fields and its queue's head), so a call's state, cold
// again at each of the poller's rounds, costs few misses. A field added
// in front of them, or one of them moved down, fails it.
func TestMediaPathFieldsPacked(t *testing.T) {
	var ch Channel
	for name, end := range map[string]uintptr{
		"solo":   unsafe.Offsetof(ch.solo) + unsafe.Sizeof(ch.solo),
		"part":   unsafe.Offsetof(ch.part) + unsafe.Sizeof(ch.part),
		"media":  unsafe.Offsetof(ch.media) + unsafe.Sizeof(ch.media),
		"pcm":    unsafe.Offsetof(ch.pcm) + unsafe.Sizeof(ch.pcm),
		"muteIn": unsafe.Offsetof(ch.muteIn) + unsafe.Sizeof(ch.muteIn),
	} {
		if end > 64 {
			t.Errorf("Channel.%s ends at byte %d, past the first cache line", name, end)
		}
	}
	var r LiveRecording
	q := unsafe.Offsetof(r.q)
	for name, end := range map[string]uintptr{
		"meterBuf":      unsafe.Offsetof(r.meterBuf) + unsafe.Sizeof(r.meterBuf),
		"mixIn":         unsafe.Offsetof(r.mixIn) + unsafe.Sizeof(r.mixIn),
		"mu":            unsafe.Offsetof(r.mu) + unsafe.Sizeof(r.mu),
		"state":         unsafe.Offsetof(r.state) + unsafe.Sizeof(r.state),
		"writer":        unsafe.Offsetof(r.writer) + unsafe.Sizeof(r.writer),
		"timeline":      unsafe.Offsetof(r.timeline) + unsafe.Sizeof(r.timeline),
		"meter":         unsafe.Offsetof(r.meter) + unsafe.Sizeof(r.meter),
		"duplex":        unsafe.Offsetof(r.duplex) + unsafe.Sizeof(r.duplex),
		"cause":         unsafe.Offsetof(r.cause) + unsafe.Sizeof(r.cause),
		"written":       unsafe.Offsetof(r.written) + unsafe.Sizeof(r.written),
		"pushAt":        unsafe.Offsetof(r.pushAt) + unsafe.Sizeof(r.pushAt),
		"muted":         unsafe.Offsetof(r.muted) + 1,
		"heard":         unsafe.Offsetof(r.heard) + 1,
		"degraded":      unsafe.Offsetof(r.degraded) + 1,
		"hasMaxSilence": unsafe.Offsetof(r.hasMaxSilence) + 1,
		"absentSilent":  unsafe.Offsetof(r.absentSilent) + 1,
		"gapsJudged":    unsafe.Offsetof(r.gapsJudged) + unsafe.Sizeof(r.gapsJudged),
		"maxSamp":       unsafe.Offsetof(r.maxSamp) + unsafe.Sizeof(r.maxSamp),
		"partyGaps":     unsafe.Offsetof(r.partyGaps) + unsafe.Sizeof(r.partyGaps),
		"br":            unsafe.Offsetof(r.br) + unsafe.Sizeof(r.br),
		"q.mu":          q + unsafe.Offsetof(r.q.mu) + unsafe.Sizeof(r.q.mu),
		"q.max":         q + unsafe.Offsetof(r.q.max) + unsafe.Sizeof(r.q.max),
		"q.pending":     q + unsafe.Offsetof(r.q.pending) + unsafe.Sizeof(r.q.pending),
		"q.gaps":        q + unsafe.Offsetof(r.q.gaps) + unsafe.Sizeof(r.q.gaps),
	} {
		if end > 6*64 {
			t.Errorf("LiveRecording.%s ends at byte %d, past the first six cache lines", name, end)
		}
	}
	if unsafe.Offsetof(r.meterBuf) != 0 {
		t.Errorf("LiveRecording.meterBuf at byte %d: its two lines of Packet's fields are no longer aligned", unsafe.Offsetof(r.meterBuf))
	}
}

// TestBridgeHotFieldsPacked: what a bridged party's packet (participantTap)
// and the bridge's tick (stepper) read of the Bridge lies in its first
// cache line: direct sat four lines below snap, recSnap two.
func TestBridgeHotFieldsPacked(t *testing.T) {
	var b Bridge
	for name, end := range map[string]uintptr{
		"m":       unsafe.Offsetof(b.m) + unsafe.Sizeof(b.m),
		"direct":  unsafe.Offsetof(b.direct) + unsafe.Sizeof(b.direct),
		"recSnap": unsafe.Offsetof(b.recSnap) + unsafe.Sizeof(b.recSnap),
		"snap":    unsafe.Offsetof(b.snap) + unsafe.Sizeof(b.snap),
		"mixer":   unsafe.Offsetof(b.mixer) + unsafe.Sizeof(b.mixer),
		"outBuf":  unsafe.Offsetof(b.outBuf) + unsafe.Sizeof(b.outBuf),
	} {
		if end > 64 {
			t.Errorf("Bridge.%s ends at byte %d, past the first cache line", name, end)
		}
	}
}
