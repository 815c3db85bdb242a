package call

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/recorder"
)

// A bridge recording's writer step builds nothing per step: its logger (a
// With, which allocates) was built at every step, five times a second per
// recording.
func TestBridgeRecordingWriterStepAllocatesNothing(t *testing.T) {
	rig := newRig(t)
	br := rig.newBridge("br")
	r := &LiveRecording{m: rig.m, br: br, target: "bridge:br"}
	step := r.writerStep(idleWriter{}, t.TempDir())
	if n := testing.AllocsPerRun(100, step); n != 0 {
		t.Fatalf("a writer step with nothing queued allocated %.0f times", n)
	}
}

// idleWriter is a recorder.Writer for a step that has nothing to write.
type idleWriter struct{ recorder.Writer }

// bridgeOf makes bridge "br" holding chans.
func bridgeOf(t *testing.T, rig *testRig, chans ...*Channel) *Bridge {
	t.Helper()
	br := rig.newBridge("br")
	for _, ch := range chans {
		if err := br.AddChannel(ch, false); err != nil {
			t.Fatal(err)
		}
	}
	return br
}

// endBridgeRecordings destroys br and waits until recs have ended and the
// writers' clock has stopped, so that no writer or ticker outlives the test.
func endBridgeRecordings(t *testing.T, rig *testRig, br *Bridge, recs ...*LiveRecording) {
	t.Helper()
	br.Destroy()
	for _, rec := range recs {
		eventually(t, "the recording ended", func() bool {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			return rec.state != RecRecording
		})
	}
	eventually(t, "the writers' clock stopped", func() bool {
		rig.m.writers.mu.Lock()
		defer rig.m.writers.mu.Unlock()
		return !rig.m.writers.running
	})
}

// A bridge recording judges its loss only at a party's gap (as a channel
// recording does at its own): the share lost that passes the threshold
// at one party's gap makes it degraded; packets in order never do.
func TestBridgeRecordingDegradedAtAPartysGap(t *testing.T) {
	rig := newRig(t, func(o *Options) { o.DegradedLossPercent = 10 })
	a, _, _ := rig.inbound("app", offer(t, 5000, ""))
	b, _, _ := rig.inbound("app", offer(t, 5002, ""))
	br := bridgeOf(t, rig, a, b)
	// Ended on every way out, a failure included: a bridge left with its
	// recording keeps the writers' clock (a goroutine here, without a
	// Poller) ticking into later tests.
	var recs []*LiveRecording
	t.Cleanup(func() { endBridgeRecordings(t, rig, br, recs...) })
	rec, err := br.Record(RecordOptions{Name: "deg", Format: "wav"}, true)
	if err != nil {
		t.Fatal(err)
	}
	recs = append(recs, rec)
	eventually(t, "the recording started", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.state == RecRecording && rec.writer != nil
	})
	var parts [2]*Frame
	mbs := *br.snap.Load()
	send := func(i int, seq uint16) {
		if parts[i] == nil {
			parts[i] = &Frame{SSRC: uint32(i + 1), PCM: make([]int16, 160)}
		}
		f := parts[i]
		f.Seq, f.Timestamp, f.At = seq, uint32(seq)*160, time.Now()
		rec.partyPacket(mbs[i].ch, mbs[i].part, nil, f.SSRC, f.Seq, f.Timestamp, f.At)
	}
	degraded := func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.degraded
	}
	for seq := range uint16(100) {
		send(0, seq)
		send(1, seq)
	}
	if degraded() {
		t.Fatal("degraded with no packet lost")
	}
	// 10 of 211 lost (4.7 %): under the threshold.
	for seq := uint16(110); seq < 112; seq++ {
		send(1, seq)
	}
	if degraded() {
		t.Fatal("degraded under the threshold")
	}
	// Party 0 loses 12: 22 of 225 (9.8 %), then goes on in order.
	for seq := uint16(112); seq < 150; seq++ {
		send(0, seq)
	}
	if degraded() {
		t.Fatal("degraded under the threshold")
	}
	// Party 0 loses 30 more: 52 of 293 (17.7 %) at its gap.
	send(0, 180)
	if !degraded() {
		t.Fatal("not degraded at the gap that took the loss past the threshold")
	}
}

// A bridged channel whose only tap is its participant's has its G.711
// packets decoded straight into the participant's play-out buffer
// (OnAudio through part, mix.PushG711): each packet is pushed once and
// counted once for the bridge's recording. A second tap turns that off
// (the chain gets the decoded frame), and its removal turns it on again.
func TestBridgedPacketDecodedIntoItsPlayOutBuffer(t *testing.T) {
	rig := newRig(t)
	a, _, fa := rig.inbound("app", offer(t, 5000, ""))
	b, _, _ := rig.inbound("app", offer(t, 5002, ""))
	br := bridgeOf(t, rig, a, b)
	mb := (*br.snap.Load())[0]
	if tp := a.part.Load(); tp == nil || tp.part != mb.part {
		t.Fatal("the bridged channel's only tap is not taken as its participant's")
	}
	rec, err := br.Record(RecordOptions{Name: "g711", Format: "wav"}, true)
	if err != nil {
		t.Fatal(err)
	}
	// Destroyed on every way out: a bridge left with its recording keeps
	// the writers' clock (a goroutine here, without a Poller) ticking
	// into later tests.
	t.Cleanup(br.Destroy)
	eventually(t, "the recording started", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.state == RecRecording && rec.writer != nil
	})
	// Started is not yet attached: the recording counts the party's
	// packets from its attach to the bridge (attachRecording, after the
	// state is set); packets fed before that are not counted.
	select {
	case <-rec.attached:
	case <-time.After(5 * time.Second):
		t.Fatal("the recording did not attach to the bridge")
	}
	counted := func() int64 {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, p := range rec.parties {
			if p.ch == a {
				return p.meter.Counts().Received
			}
		}
		return 0
	}
	ts := feed(a, fa, 7, 0, 5, 0x10)
	if n := mb.part.Stats().Packets; n != 5 {
		t.Fatalf("participant got %d packets, want 5", n)
	}
	if n := counted(); n != 5 {
		t.Fatalf("the recording counted %d of the party's packets, want 5", n)
	}
	if a.frame.PCM != nil {
		t.Fatal("the packets were decoded into the channel's frame and handed to the chain, not into the play-out buffer")
	}
	var seen int
	detach, ok := a.AttachTap(AudioFunc(func(*Frame) { seen++ }), StageSink)
	if !ok || a.part.Load() != nil {
		t.Fatal("with a second tap the participant's tap still takes the packets alone")
	}
	ts = feed(a, fa, 7, ts, 3, 0x10)
	if n := mb.part.Stats().Packets; n != 8 || seen != 3 {
		t.Fatalf("participant got %d packets, the other tap %d; want 8 and 3", n, seen)
	}
	detach()
	if a.part.Load() == nil {
		t.Fatal("the participant's tap is alone again but not taken as such")
	}
	feed(a, fa, 7, ts, 2, 0x10)
	if n, c := mb.part.Stats().Packets, counted(); n != 10 || c != 10 || seen != 3 {
		t.Fatalf("participant got %d packets, the recording counted %d, the detached tap %d; want 10, 10, 3", n, c, seen)
	}
	endBridgeRecordings(t, rig, br, rec)
}

// A bridged channel's overlay (a playback to it alone) is attached to its
// participant at the playback's first frame, not at the join: a bridge with
// no such playback asks no overlay at its ticks. The frame is then heard
// by that channel only.
func TestBridgeOverlayAttachedAtItsFirstFrame(t *testing.T) {
	rig := newRig(t)
	a, _, fa := rig.inbound("app", offer(t, 5000, ""))
	b, _, fb := rig.inbound("app", offer(t, 5002, ""))
	br := bridgeOf(t, rig, a, b)
	mbs := *br.snap.Load()
	for _, mb := range mbs {
		if mb.part.HasOverlay() {
			t.Fatalf("%s: an overlay attached before any playback to it", mb.ch.id)
		}
	}
	fa.keepSent()
	fb.keepSent()
	pcm := make([]int16, 160)
	for i := range pcm {
		pcm[i] = 3000
	}
	want := make([]byte, 160)
	encodeMulaw(want, pcm)
	(*a.bridgeOverlay.Load())(pcm)
	if !mbs[0].part.HasOverlay() || mbs[1].part.HasOverlay() {
		t.Fatal("the playback's channel has no overlay, or the other one has")
	}
	heard := func(f *fakeMedia) bool {
		for _, fr := range f.sentFrames() {
			if bytes.Equal(fr, want) {
				return true
			}
		}
		return false
	}
	eventually(t, "the channel heard its playback's frame", func() bool { return heard(fa) })
	if heard(fb) {
		t.Fatal("the other party heard a playback meant for one channel")
	}
	br.Destroy()
}

// A party's tap remembers its meter in the recording that counted its last
// packet (partyPacket's cache): with two recordings of the bridge each
// still counts every packet in its own meter, and a party frozen in one
// (it left) is counted afresh, not in the frozen meter.
func TestBridgePartyCacheKeepsEachRecordingsCounts(t *testing.T) {
	rig := newRig(t)
	a, _, fa := rig.inbound("app", offer(t, 5000, ""))
	b, _, _ := rig.inbound("app", offer(t, 5002, ""))
	br := bridgeOf(t, rig, a, b)
	var recs []*LiveRecording
	// Ended on every way out, a failure included (see
	// TestBridgeRecordingDegradedAtAPartysGap).
	t.Cleanup(func() { endBridgeRecordings(t, rig, br, recs...) })
	for _, name := range []string{"one", "two"} {
		rec, err := br.Record(RecordOptions{Name: name, Format: "wav"}, false)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
		eventually(t, "the recording started, fed by the bridge", func() bool {
			rec.mu.Lock()
			started := rec.state == RecRecording && rec.writer != nil
			rec.mu.Unlock()
			p := br.recSnap.Load()
			return started && p != nil && slices.Contains(*p, rec)
		})
	}
	// received lists the Received of each of a's meters in rec.
	received := func(rec *LiveRecording) []int64 {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		var n []int64
		for _, p := range rec.parties {
			if p.ch == a {
				n = append(n, p.meter.Counts().Received)
			}
		}
		return n
	}
	ts := feed(a, fa, 7, 0, 5, 0x10)
	for _, rec := range recs {
		if n := received(rec); !slices.Equal(n, []int64{5}) {
			t.Fatalf("%s: a's meters counted %v, want [5]", rec.name, n)
		}
	}
	recs[0].partyLeft(a) // frozen in the first recording only
	feed(a, fa, 7, ts, 3, 0x10)
	if n := received(recs[0]); !slices.Equal(n, []int64{5, 3}) {
		t.Fatalf("first recording: a's meters counted %v, want [5 3] (the frozen one kept, a new one counting)", n)
	}
	if n := received(recs[1]); !slices.Equal(n, []int64{8}) {
		t.Fatalf("second recording: a's meters counted %v, want [8]", n)
	}
	// With the second recording gone the first's meter is remembered
	// packet after packet; a's leave freezes it.
	recs[1].finish(RecDone)
	eventually(t, "the second recording left the bridge", func() bool {
		p := br.recSnap.Load()
		return p != nil && !slices.Contains(*p, recs[1])
	})
	ts = feed(a, fa, 7, ts+3*160, 2, 0x10)
	recs[0].partyLeft(a)
	feed(a, fa, 7, ts, 2, 0x10)
	if n := received(recs[0]); !slices.Equal(n, []int64{5, 5, 2}) {
		t.Fatalf("first recording: a's meters counted %v, want [5 5 2] (each frozen one kept, a new one counting)", n)
	}
}
