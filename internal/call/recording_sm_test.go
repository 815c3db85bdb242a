package call

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/recorder"
)

// readWAV returns a finished WAV file's samples.
func readWAV(t *testing.T, path string) []int16 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := recorder.ParseWAV(f, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	data := b[info.DataOffset : info.DataOffset+int64(info.DataLen)]
	out := make([]int16, len(data)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
	}
	return out
}

// wavAudio returns how much audio a WAV file holds, after checking that
// its header covers exactly the audio in the file (and some).
func wavAudio(t *testing.T, path string) time.Duration {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	info, err := recorder.ParseWAV(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	if info.DataLen == 0 || int64(info.DataLen) != fi.Size()-info.DataOffset {
		t.Fatalf("header says %d bytes of audio, the file holds %d", info.DataLen, fi.Size()-info.DataOffset)
	}
	return time.Duration(info.DataLen) * time.Second / time.Duration(info.SampleRate*2)
}

func startRecording(t *testing.T, r *testRig, ch *Channel, o RecordOptions) *LiveRecording {
	t.Helper()
	rec, err := ch.Record(o)
	if err != nil {
		t.Fatal(err)
	}
	ev := r.ev.expect("RecordingStarted")
	if ev["recording"].(map[string]any)["name"] != o.Name {
		t.Fatalf("started %v", ev)
	}
	return rec
}

// TestRecordPauseMuteStop: a recording auto-answers, writes what the
// caller sends, skips what arrives while paused, writes silence while
// muted, and a stop keeps the file: 30 frames written of 40 received.
func TestRecordPauseMuteStop(t *testing.T) {
	r := newRig(t)
	ch, d, fm := r.inbound("app", offer(t, 5000, ""))
	rec := startRecording(t, r, ch, RecordOptions{Name: "calls/one", Format: "wav", IfExists: "fail"})
	if ch.State() != StateUp {
		t.Fatalf("recording did not answer: %v", ch.State())
	}
	if a, _, _ := d.snapshot(); len(a) != 1 {
		t.Fatalf("answers %d", len(a))
	}
	ts := feed(ch, fm, 1, 0, 10, 0x10)
	if err := rec.Pause(true); err != nil {
		t.Fatal(err)
	}
	if rec.JSON().State != RecPaused {
		t.Fatal(rec.JSON().State)
	}
	ts = feed(ch, fm, 1, ts, 10, 0x10) // skipped
	if err := rec.Pause(false); err != nil {
		t.Fatal(err)
	}
	ts = feed(ch, fm, 1, ts, 10, 0x10)
	if err := rec.Mute(true); err != nil {
		t.Fatal(err)
	}
	feed(ch, fm, 1, ts, 10, 0x10) // written as silence
	rec.Stop()
	ev := r.ev.expect("RecordingFinished")
	j := ev["recording"].(map[string]any)
	if j["state"] != "done" || j["duration"] != float64(1) {
		t.Fatalf("finished %v", j)
	}
	pcm := readWAV(t, filepath.Join(r.m.opts.RecordingsDir, "calls", "one.wav"))
	if len(pcm) != 30*160 {
		t.Fatalf("%d samples, want %d", len(pcm), 30*160)
	}
	for i, v := range pcm {
		if loud := i < 20*160; loud != (v != 0) {
			t.Fatalf("sample %d = %d (the first 20 frames are audio, the muted last 10 silence)", i, v)
		}
	}
	if err := rec.Pause(true); err == nil {
		t.Fatal("pausing a finished recording succeeded")
	}
	if _, err := r.m.LiveRecording("calls/one"); err == nil {
		t.Fatal("finished recording still live")
	}
	// ifExists=fail now refuses the name.
	if _, err := ch.Record(RecordOptions{Name: "calls/one", Format: "wav", IfExists: "fail"}); err == nil {
		t.Fatal("ifExists=fail recorded over an existing file")
	}
}

// TestRecordCancel: a canceled recording deletes its file.
func TestRecordCancel(t *testing.T) {
	r := newRig(t)
	ch, _, fm := r.inbound("app", offer(t, 5000, ""))
	rec := startRecording(t, r, ch, RecordOptions{Name: "gone", Format: "wav"})
	feed(ch, fm, 1, 0, 5, 0x10)
	rec.Cancel()
	ev := r.ev.expect("RecordingFinished")
	if st := ev["recording"].(map[string]any)["state"]; st != "canceled" {
		t.Fatalf("state %v", st)
	}
	if _, err := os.Stat(filepath.Join(r.m.opts.RecordingsDir, "gone.wav")); !os.IsNotExist(err) {
		t.Fatalf("canceled recording's file: %v", err)
	}
}

// TestRecordFailure: a recording whose file cannot be created fails with a
// cause (RecordingFailed); the channel is not hung up and can record again.
func TestRecordFailure(t *testing.T) {
	r := newRig(t)
	ch, _, fm := r.inbound("app", offer(t, 5000, ""))
	if err := os.MkdirAll(filepath.Join(r.m.opts.RecordingsDir, "blocked.wav"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Record(RecordOptions{Name: "blocked", Format: "wav", IfExists: "overwrite"}); err != nil {
		t.Fatal(err)
	}
	ev := r.ev.expect("RecordingFailed")
	if j := ev["recording"].(map[string]any); j["state"] != "failed" || j["cause"] == "" || j["cause"] == nil {
		t.Fatalf("failed %v", j)
	}
	select {
	case <-ch.Done():
		t.Fatal("a failed recording hung the channel up")
	default:
	}
	rec := startRecording(t, r, ch, RecordOptions{Name: "fine", Format: "wav"})
	feed(ch, fm, 1, 0, 5, 0x10)
	rec.Stop()
	r.ev.expect("RecordingFinished")
}

// TestRecordTerminateOnAndHangup: terminateOn '#' ends the recording (and
// the digit still reaches the application); a hangup ends the next one.
func TestRecordTerminateOnAndHangup(t *testing.T) {
	r := newRig(t)
	ch, _, fm := r.inbound("app", offer(t, 5000, ""))
	rec := startRecording(t, r, ch, RecordOptions{Name: "term", Format: "wav", TerminateOn: "#"})
	feed(ch, fm, 1, 0, 5, 0x10)
	ch.OnDTMF('1', 100, true)
	ch.OnDTMF('#', 100, true)
	<-rec.Done()
	if st := rec.JSON().State; st != RecDone {
		t.Fatal(st)
	}
	if ev := r.ev.expect("ChannelDtmfReceived"); ev["digit"] != "1" {
		t.Fatal(ev)
	}
	if ev := r.ev.expect("ChannelDtmfReceived"); ev["digit"] != "#" {
		t.Fatal(ev)
	}
	if ch.recording() {
		t.Fatal("finished recording still taps the channel")
	}

	rec2 := startRecording(t, r, ch, RecordOptions{Name: "until-hangup", Format: "wav"})
	feed(ch, fm, 1, 1600, 5, 0x10)
	ch.hangup(CauseNormalClearing, true)
	<-rec2.Done()
	if st := rec2.JSON().State; st != RecDone {
		t.Fatal(st)
	}
	if n := len(readWAV(t, filepath.Join(r.m.opts.RecordingsDir, "until-hangup.wav"))); n != 5*160 {
		t.Fatalf("%d samples", n)
	}
}

// TestHangupRacesRecordStart: a hangup racing a recording's start never
// leaves the recording live or tapping the channel: it ends either way.
func TestHangupRacesRecordStart(t *testing.T) {
	r := newRig(t)
	for i := 0; i < 20; i++ {
		ch, _, _ := r.inbound("app", offer(t, 5000, ""))
		rec, err := ch.Record(RecordOptions{Name: "race", Format: "wav", IfExists: "overwrite"})
		if err != nil {
			t.Fatal(err)
		}
		ch.hangup(CauseNormalClearing, true)
		select {
		case <-rec.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the hangup did not end the recording")
		}
		if ch.recording() {
			t.Fatal("a recording taps a destroyed channel")
		}
		if _, err := r.m.LiveRecording("race"); err == nil {
			t.Fatal("the recording is still live after the hangup")
		}
	}
}

// TestRecordCallBeforeTheAnswer: RecordCall on a call that is still
// ringing returns once its recording is attached, so the packet the caller
// sends right after an answer that follows (an OzML script answers with its
// next verb) is in the file. It used to return at once: an answer then
// came before the file was open and the caller's first packets were lost.
func TestRecordCallBeforeTheAnswer(t *testing.T) {
	r := newRig(t)
	ch, _, fm := r.inbound("", offer(t, 5000, ""))
	id := ChannelID(ch.ID())
	done := make(chan CallRecordResult, 1)
	if _, err := r.m.RecordCall(id, CallRecordOptions{RecordOptions: RecordOptions{Name: "first", Format: "wav"},
		OnFinish: func(res CallRecordResult) { done <- res }}); err != nil {
		t.Fatal(err)
	}
	if err := r.m.AnswerCall(id); err != nil {
		t.Fatal(err)
	}
	feed(ch, fm, 1, 0, 5, 0x10) // at once after the answer
	r.m.Hangup(id, CauseNormalClearing)
	var res CallRecordResult
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the recording did not finish")
	}
	if res.Recording.State != RecDone {
		t.Fatalf("recording %+v", res)
	}
	if pcm := readWAV(t, res.Path); len(pcm) != 5*160 {
		t.Fatalf("%d samples, want %d: the first packets after the answer are missing", len(pcm), 5*160)
	}
}

// TestRecordCallEndsByHangupWhenItsCallHangsUpAtItsStart: a call recording
// whose channel has begun hanging up just as it attaches (the hangup has
// not reached the channel's recordings yet) ends with reason hangup, as
// any recording of a call that hung up; before, its reason was stopped
// (found as a flaky TestRecordCompletedQueuedWithTheRow: a Record, then at
// once the call's hangup).
func TestRecordCallEndsByHangupWhenItsCallHangsUpAtItsStart(t *testing.T) {
	r := newRig(t)
	ch, _, _ := r.inbound("", offer(t, 5000, ""))
	id := ChannelID(ch.ID())
	if err := r.m.AnswerCall(id); err != nil {
		t.Fatal(err)
	}
	hook := func(rec *LiveRecording) {
		if rec.ch != ch {
			return // a start left over from an earlier test
		}
		// The hangup's first step (Channel.hangup): the channel refuses
		// new taps from now on.
		rec.ch.mu.Lock()
		rec.ch.hangingUp = true
		rec.ch.mu.Unlock()
	}
	testBeforeAttach.Store(&hook)
	defer testBeforeAttach.Store(nil)
	done := make(chan CallRecordResult, 1)
	if _, err := r.m.RecordCall(id, CallRecordOptions{RecordOptions: RecordOptions{Name: "athangup", Format: "wav"},
		OnFinish: func(res CallRecordResult) { done <- res }}); err != nil {
		t.Fatal(err)
	}
	var res CallRecordResult
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the recording did not finish")
	}
	// The rest of the hangup (the rig's cleanup hangs the channel up).
	ch.mu.Lock()
	ch.hangingUp = false
	ch.mu.Unlock()
	if res.Reason != EndHangup {
		t.Fatalf("reason %q, want %q: the call hung up", res.Reason, EndHangup)
	}
}

// TestRecordingStoppedAsItAttaches: a recording stopped while its file was
// being created (its start goes on to attach it after the stop has ended
// it) does not stay attached to its channel, and announces no
// RecordingStarted after its RecordingFinished. Before, the stop found it
// started but not yet attached and took nothing off: the start then
// attached the finished recording, which tapped the call until it hung
// up, and announced it started.
func TestRecordingStoppedAsItAttaches(t *testing.T) {
	r := newRig(t)
	ch, _, _ := r.inbound("app", offer(t, 5000, ""))
	stop := func(rec *LiveRecording) {
		if rec.ch == ch { // (not a start left over from an earlier test)
			rec.Stop()
		}
	}
	returned := make(chan struct{})
	done := func(rec *LiveRecording) {
		if rec.ch == ch {
			close(returned)
		}
	}
	testBeforeAttach.Store(&stop)
	defer testBeforeAttach.Store(nil)
	testStartReturned.Store(&done)
	defer testStartReturned.Store(nil)
	rec, err := ch.Record(RecordOptions{Name: "stopped-at-attach", Format: "wav"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("the recording's start never returned")
	}
	select {
	case <-rec.Done():
	default:
		t.Fatal("the recording stopped as it attached is not done")
	}
	if ch.recording() {
		t.Fatal("the stopped recording taps the channel")
	}
	r.ev.expect("RecordingFinished")
	r.ev.none("RecordingStarted")
}
