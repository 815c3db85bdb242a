package e2e

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil/nodeari"
)

// toneDBFS is f Hz at level dBFS (relative to a full-scale sine).
func toneDBFS(f float64, n int, level float64) []int16 {
	return sine(f, n, 32767*math.Pow(10, level/20))
}

// TestAriBargeInTalkDetect: an npm ari-client IVR sets TALK_DETECT(set)=500,
// plays an endless prompt and stops it when the caller starts talking. The
// caller talks (a -9 dBFS tone) for 1.2 s, then is silent: the app gets
// ChannelTalkingStarted, stops the prompt, and ChannelTalkingFinished with
// the talking time (1200 ms, silence not counted) once 500 ms of silence
// passed.
func TestAriBargeInTalkDetect(t *testing.T) {
	n := startNode(t, withRoute("_3XX", "Stasis(bargein)"))
	app := nodeari.Start(t, "bargein.js", map[string]string{"ARI_URL": n.baseURL(), "ARI_APP": "bargein"})
	if _, err := app.WaitLine("READY", 20*time.Second); err != nil {
		t.Fatalf("app did not start: %v\n%s", err, app.Output())
	}
	caller := newPhone(t, "udp")
	res := dialAsync(caller, n.target("300"), sipua.CallOptions{Handler: &audioSink{}})
	rc := wait(t, res, 15*time.Second, "answer")
	must(t, rc.err)
	if _, err := app.WaitLine("PROMPT", 10*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, app.Output())
	}
	if _, err := app.WaitLine("ChannelTalkingStarted", 0); err == nil {
		t.Fatal("talking before the caller said anything")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	must(t, rc.call.SendAudio(ctx, toneDBFS(440, 8000*12/10, -9)))
	if _, err := app.WaitLine("BARGED", 5*time.Second); err != nil {
		t.Fatalf("no barge-in: %v\n%s", err, app.Output())
	}
	if l, err := app.WaitLine("PlaybackFinished", 5*time.Second); err != nil || l["state"] != "done" {
		t.Fatalf("prompt: %v %v\n%s", l, err, app.Output())
	}
	go func() { _ = rc.call.SendAudio(ctx, make([]int16, 8000*3)) }()
	fin, err := app.WaitLine("ChannelTalkingFinished", 10*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, app.Output())
	}
	if d := fin["duration"].(float64); d < 1100 || d > 1300 {
		t.Errorf("talking duration %v ms, want about 1200", d)
	}
	if err := app.Wait(10 * time.Second); err != nil {
		t.Fatalf("app: %v\n%s", err, app.Output())
	}
	if code, body := n.do("POST", "/channels/nope/variable?variable="+urlq("TALK_DETECT(set)"), nil); code != 404 {
		t.Errorf("TALK_DETECT on a missing channel: %d %s", code, body)
	}
}

// TestRecordingSteadyToneIsTalking: as with Asterisk's DSP threshold, a
// steady 440 Hz tone at -9 dBFS is talking: maxSilenceSeconds=1 does not
// end the recording during 3 s of it, and talking_duration counts it.
func TestRecordingSteadyToneIsTalking(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	phone := newPhone(t, "udp")
	id, call := answeredCall(t, n, events, phone, "324")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n.mustDo("POST", "/channels/"+id+"/record?name=tone&format=wav&maxSilenceSeconds=1", 201)
	events.skipTo("RecordingStarted", 5*time.Second)
	must(t, call.SendAudio(ctx, toneDBFS(440, 8000*3, -9)))
	n.mustDo("POST", "/recordings/live/tone/stop", 204)
	fin := events.skipTo("RecordingFinished", 5*time.Second)
	rec := fin["recording"].(map[string]any)
	if td, _ := rec["talking_duration"].(float64); td < 2 {
		t.Errorf("talking_duration %v for 3 s of tone: %v", rec["talking_duration"], rec)
	}
	if d, _ := rec["duration"].(float64); d < 2 {
		t.Errorf("recording ended early (duration %v): %v", rec["duration"], rec)
	}
}
