package call

import (
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestTapSeesDecodedAudio: a tap gets each received frame decoded, silence
// while the input is muted, and nothing once detached; with no tap the
// frame is not even decoded.
func TestTapSeesDecodedAudio(t *testing.T) {
	r := newRig(t)
	ch, _, fm := r.inbound("app", offer(t, 5000, ""))
	var mu sync.Mutex
	var frames []Frame
	var sum []int
	detach, ok := ch.AttachTap(AudioFunc(func(f *Frame) {
		mu.Lock()
		defer mu.Unlock()
		frames = append(frames, Frame{SSRC: f.SSRC, Timestamp: f.Timestamp, At: f.At})
		s := 0
		for _, v := range f.PCM {
			if v != 0 {
				s++
			}
		}
		sum = append(sum, s)
	}), StageSink)
	if !ok {
		t.Fatal("attach refused")
	}
	ts := feed(ch, fm, 42, 0, 2, 0x10) // loud µ-law
	if err := ch.Mute("in", true); err != nil {
		t.Fatal(err)
	}
	ts = feed(ch, fm, 42, ts, 1, 0x10)
	detach()
	detach() // idempotent
	feed(ch, fm, 42, ts, 1, 0x10)
	mu.Lock()
	defer mu.Unlock()
	if len(frames) != 3 || frames[1].Timestamp != 160 || frames[0].SSRC != 42 || frames[1].At.Sub(frames[0].At) != 20*time.Millisecond {
		t.Fatalf("frames %+v", frames)
	}
	if sum[0] != 160 || sum[1] != 160 || sum[2] != 0 {
		t.Fatalf("non-zero samples per frame %v (want 160, 160, then 0 muted)", sum)
	}
}

// TestTapStagesAndConsumedDigit: control taps see a digit before sinks; a
// control tap consuming '*' keeps it from the later taps, from the
// application (no ChannelDtmfReceived) and from the bridged party (no RFC
// 4733 sent), while other digits pass everywhere.
func TestTapStagesAndConsumedDigit(t *testing.T) {
	r := newRig(t)
	a, _, fa := r.inbound("app", offer(t, 5000, ""))
	b, _, fb := r.inbound("app", offer(t, 5002, ""))
	for _, ch := range []*Channel{a, b} {
		if err := ch.Answer(); err != nil {
			t.Fatal(err)
		}
	}
	br := r.newBridge("br")
	defer br.Destroy()
	for _, ch := range []*Channel{a, b} {
		if err := br.AddChannel(ch, false); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var order []string
	sink := DigitFunc(func(d Digit) bool {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, "sink:"+string(d.Digit))
		return false
	})
	feature := DigitFunc(func(d Digit) bool {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, "control:"+string(d.Digit))
		return d.Digit == '*'
	})
	a.AttachTap(sink, StageSink) // attached first, runs later
	a.AttachTap(feature, StageControl)

	a.OnDTMF('*', 0, false)
	a.OnDTMF('*', 120, true)
	a.OnDTMF('5', 0, false)
	a.OnDTMF('5', 100, true)

	ev := r.ev.expect("ChannelDtmfReceived")
	if ev["digit"] != "5" {
		t.Fatalf("the application got digit %v (the consumed '*' must not arrive)", ev["digit"])
	}
	r.ev.none("ChannelDtmfReceived")
	select {
	case d := <-fb.sentDigits():
		if d != '5' {
			t.Fatalf("the bridged party was sent %q (the consumed '*' must not be passed on)", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("digit 5 not passed to the bridged party")
	}
	select {
	case d := <-fb.sentDigits():
		t.Fatalf("extra digit %q passed to the bridged party", d)
	case d := <-fa.sentDigits():
		t.Fatalf("digit %q sent back to its sender", d)
	case <-time.After(50 * time.Millisecond):
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"control:*", "control:*", "control:5", "sink:5", "control:5", "sink:5"}
	if len(order) != len(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
}

// TestAttachTapAfterHangup: a hung-up channel takes no tap.
func TestAttachTapAfterHangup(t *testing.T) {
	r := newRig(t)
	ch, _, _ := r.inbound("app", offer(t, 5000, ""))
	ch.hangup(CauseNormalClearing, true)
	if _, ok := ch.AttachTap(NoOpTap{}, StageSink); ok {
		t.Fatal("a hung-up channel took a tap")
	}
}

// BenchmarkTapChain: the media path through two taps stays allocation-free.
func BenchmarkTapChain(b *testing.B) {
	m := NewManager(Options{})
	ch := &Channel{m: m, media: newFakeMedia(), done: make(chan struct{})}
	n := 0
	ch.addTapLocked(AudioFunc(func(f *Frame) { n += len(f.PCM) }), StageSink)
	ch.addTapLocked(NoOpTap{}, StageSink)
	b.ReportAllocs()
	b.ResetTimer()
	var ts uint32
	for i := 0; i < b.N; i++ {
		ts = feedOne(ch, ts)
	}
	if n == 0 {
		b.Fatal("the tap saw nothing")
	}
}

// TestSentTap: a sent tap sees what the channel sends (a bridge's mix, the
// silence generator), nothing while the output is muted, and nothing once
// detached.
func TestSentTap(t *testing.T) {
	r := newRig(t)
	ch, _, _ := r.inbound("app", offer(t, 5000, ""))
	if err := ch.Answer(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []int16 // first sample of each frame
	detach, ok := ch.AttachSentTap(AudioFunc(func(f *Frame) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, f.PCM[0])
	}))
	if !ok {
		t.Fatal("attach refused")
	}
	seen := func() []int16 {
		mu.Lock()
		defer mu.Unlock()
		return append([]int16(nil), got...)
	}
	mixed := make([]int16, 160)
	mixed[0] = 1234
	buf := make([]byte, 160)
	ch.sendBridged(mixed, buf)
	if g := seen(); len(g) != 1 || g[0] != 1234 {
		t.Fatalf("sent tap saw %v", g)
	}
	if err := ch.Mute("out", true); err != nil {
		t.Fatal(err)
	}
	ch.sendBridged(mixed, buf)
	if g := seen(); len(g) != 1 {
		t.Fatalf("sent tap saw %d frames while muted out", len(g))
	}
	if err := ch.Mute("out", false); err != nil {
		t.Fatal(err)
	}
	if err := ch.Silence(true); err != nil {
		t.Fatal(err)
	}
	eventually(t, "silence seen by the sent tap", func() bool { g := seen(); return len(g) > 1 && g[len(g)-1] == 0 })
	if err := ch.Silence(false); err != nil {
		t.Fatal(err)
	}
	detach()
	n := len(seen())
	ch.sendBridged(mixed, buf)
	if len(seen()) != n {
		t.Fatal("a detached sent tap still sees frames")
	}
}

// BenchmarkSentTap: handing sent frames to a tap does not allocate.
func BenchmarkSentTap(b *testing.B) {
	m := NewManager(Options{})
	ch := &Channel{m: m, media: newFakeMedia(), done: make(chan struct{})}
	n := 0
	ch.AttachSentTap(AudioFunc(func(f *Frame) { n += len(f.PCM) }))
	pcm := make([]int16, 160)
	buf := make([]byte, 160)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ch.sendBridged(pcm, buf)
	}
	if n == 0 {
		b.Fatal("the tap saw nothing")
	}
}

// TestChannelSoloRecording: a channel's solo (what OnAudio reads instead
// of the chain for each packet) is its recording exactly while that
// recording is the chain's only tap, and each packet then reaches every
// tap of the chain: with a second tap both get it, with the recording
// alone again the recording does.
func TestChannelSoloRecording(t *testing.T) {
	r := newRig(t)
	ch, _, fm := r.inbound("app", offer(t, 5000, ""))
	if ch.solo.Load() != nil {
		t.Fatal("solo set without a tap")
	}
	rec := startRecording(t, r, ch, RecordOptions{Name: "calls/solo", Format: "wav", IfExists: "fail"})
	if ch.solo.Load() != rec {
		t.Fatal("solo is not the channel's only tap, its recording")
	}
	ts := feed(ch, fm, 42, 0, 2, 0x10)
	var mu sync.Mutex
	seen := 0
	detach, ok := ch.AttachTap(AudioFunc(func(f *Frame) {
		mu.Lock()
		seen++
		mu.Unlock()
	}), StageSink)
	if !ok {
		t.Fatal("attach refused")
	}
	if ch.solo.Load() != nil {
		t.Fatal("solo still set with a second tap")
	}
	ts = feed(ch, fm, 42, ts, 3, 0x10)
	detach()
	if ch.solo.Load() != rec {
		t.Fatal("solo not set again once the recording is the only tap")
	}
	feed(ch, fm, 42, ts, 4, 0x10)
	mu.Lock()
	if seen != 3 {
		t.Errorf("the second tap saw %d frames, want the 3 fed while attached", seen)
	}
	mu.Unlock()
	rec.Stop()
	r.ev.expect("RecordingFinished")
	if ch.solo.Load() != nil {
		t.Fatal("solo still set after the recording ended")
	}
	if pcm := readWAV(t, filepath.Join(r.m.opts.RecordingsDir, "calls", "solo.wav")); len(pcm) != 9*160 {
		t.Errorf("the recording holds %d samples, want the 9 frames fed (%d)", len(pcm), 9*160)
	}
}
