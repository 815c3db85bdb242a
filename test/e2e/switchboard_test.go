package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/nodeari"
)

// writeWAV writes 8 kHz mono 16-bit PCM as a WAV file.
func writeWAV(t *testing.T, path string, pcm []int16) {
	t.Helper()
	b := make([]byte, 44+2*len(pcm))
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*len(pcm)))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
	binary.LittleEndian.PutUint16(b[22:], 1)
	binary.LittleEndian.PutUint32(b[24:], 8000)
	binary.LittleEndian.PutUint32(b[28:], 16000)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(2*len(pcm)))
	for i, s := range pcm {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(s))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// mohDir makes a music on hold directory: the default class plays 1000 Hz,
// the class "tone" 440 Hz.
func mohDir(t *testing.T) string {
	dir := t.TempDir()
	writeWAV(t, filepath.Join(dir, "default-1000.wav"), sine(1000, 8000, 8000))
	writeWAV(t, filepath.Join(dir, "tone", "a440.wav"), sine(440, 8000, 8000))
	return dir
}

func withMOHDir(dir string) func(*config.Config) {
	return func(c *config.Config) { c.Sounds.MOHDir = dir }
}

// TestAriSwitchboardRoundTrip: an npm ari-client switchboard takes a call
// through music on hold (startMoh/stopMoh with a mohClass), move to a second
// application, continueInDialplan back to a route of tapedeck's dialplan in
// another context, and redirect of the answered, bridged call. The caller
// hears the class's music only while it is on; the redirect reaches the
// caller as a REFER naming the endpoint; once the caller's call to the
// target succeeds (NOTIFY 200) tapedeck hangs up, and the app sees
// ChannelLeftBridge, StasisEnd and ChannelDestroyed, in Asterisk's order.
func TestAriSwitchboardRoundTrip(t *testing.T) {
	n := startNode(t, withMOHDir(mohDir(t)), func(c *config.Config) {
		c.Dialplan = []config.Route{
			{Exten: "300", App: "Stasis(front)"},
			{Exten: "_5XX", Context: "switchboard", App: "Stasis(front,continued)"},
		}
	})
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	target, err := sipua.New(sipua.Options{User: "bob", AutoAnswer: true, RTPMin: rtpLo, RTPMax: rtpHi})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Close() })
	endpoint := fmt.Sprintf("PJSIP/sip:bob@127.0.0.1:%d", target.Port())

	app := nodeari.Start(t, "switchboard.js", map[string]string{
		"ARI_URL": n.baseURL(), "MOH_CLASS": "tone", "MOH_MS": "2000",
		"CONT_CONTEXT": "switchboard", "CONT_EXTEN": "501", "REDIRECT_ENDPOINT": endpoint,
	})
	if _, err := app.WaitLine("READY", 20*time.Second); err != nil {
		t.Fatalf("switchboard did not start: %v\n%s", err, app.Output())
	}

	phone := newPhone(t, "udp")
	sink := &audioSink{}
	r := wait(t, dialAsync(phone, n.target("300"), sipua.CallOptions{Handler: sink}), 15*time.Second, "answer")
	must(t, r.err)
	if _, err := app.WaitLine("MOH_STARTED", 10*time.Second); err != nil {
		t.Fatalf("no MOH_STARTED: %v\n%s", err, app.Output())
	}
	sink.reset()
	if _, err := app.WaitLine("MOH_STOPPED", 10*time.Second); err != nil {
		t.Fatalf("no MOH_STOPPED: %v\n%s", err, app.Output())
	}
	music := sink.samples()
	if len(music) < 8000 || !dominant(music, 440, 1000) || rms(music) < 1000 {
		t.Fatalf("during moh the caller heard %d samples, rms %.0f, 440 Hz %.3g, 1000 Hz %.3g: want the class tone's 440 Hz",
			len(music), rms(music), goertzel(music, 440), goertzel(music, 1000))
	}
	sink.reset()

	// The redirect reaches the caller as a REFER; the caller calls the
	// target, as a phone does, and reports the outcome.
	var ref sipua.Refer
	select {
	case ref = <-phone.Refers():
	case <-time.After(20 * time.Second):
		t.Fatalf("no REFER\n%s", app.Output())
	}
	if want := strings.TrimPrefix(endpoint, "PJSIP/"); ref.Target != want {
		t.Fatalf("Refer-To %q, want %q", ref.Target, want)
	}
	if after := sink.samples(); len(after) > 0 && goertzel(after, 440) > 1e9 {
		t.Errorf("the music went on after stopMoh (440 Hz power %.3g)", goertzel(after, 440))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if code, err := ref.Call.NotifyTransfer(ctx, 100, "Trying"); err != nil || code != 200 {
		t.Fatalf("NOTIFY 100: %d %v", code, err)
	}
	transferred, err := phone.Dial(ctx, ref.Target, sipua.CallOptions{})
	must(t, err)
	defer transferred.Hangup(context.Background())
	if code, err := ref.Call.NotifyTransfer(ctx, 200, "OK"); err != nil || code != 200 {
		t.Fatalf("NOTIFY 200: %d %v", code, err)
	}
	select {
	case <-r.call.Ended():
	case <-time.After(10 * time.Second):
		t.Fatal("tapedeck did not hang up the transferred call")
	}
	if err := app.Wait(20 * time.Second); err != nil {
		t.Fatalf("switchboard: %v\n%s", err, app.Output())
	}

	var seq []string
	for _, l := range app.Lines() {
		typ := fmt.Sprint(l["type"])
		switch typ {
		case "READY":
			continue
		case "StasisStart":
			typ = fmt.Sprintf("%s/%v%v@%v,%v,%v", typ, l["application"], l["args"], l["context"], l["exten"], l["priority"])
		case "StasisEnd":
			typ += "/" + fmt.Sprint(l["application"])
		case "ApplicationMoveFailed":
			typ = fmt.Sprintf("%s/%v->%v%v", typ, l["application"], l["destination"], l["args"])
		case "ChannelDestroyed":
			typ += "/" + fmt.Sprint(l["cause"])
		}
		seq = append(seq, typ)
	}
	want := []string{
		"StasisStart/front[]@default,300,1", "ApplicationMoveFailed/front->nowhere[a b]", "StasisEnd/front", "StasisStart/back[moved]@default,300,1",
		"StasisEnd/back", "StasisStart/front[continued]@switchboard,501,1",
		"ChannelEnteredBridge", "ChannelLeftBridge", "StasisEnd/front", "ChannelDestroyed/16",
	}
	// The app's own lines (ANSWERED, MOVED, ...) are printed when a REST
	// call returns, which may be before or after the events it causes:
	// the events are compared in order, the app's lines for presence.
	var events, steps []string
	for _, x := range seq {
		if x == strings.ToUpper(x) {
			steps = append(steps, x)
		} else {
			events = append(events, x)
		}
	}
	if got, w := strings.Join(events, " "), strings.Join(want, " "); got != w {
		t.Fatalf("events\n got %s\nwant %s\n(all: %s)", got, w, strings.Join(seq, " "))
	}
	if got, w := strings.Join(steps, " "), "ANSWERED MOH_STARTED MOH_STOPPED MOVE_NOWHERE MOVED CONTINUED BRIDGED REDIRECTED"; got != w {
		t.Fatalf("steps %s, want %s", got, w)
	}
}
