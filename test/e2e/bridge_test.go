package e2e

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/tapedeck/tapedeck/internal/codec"
	"github.com/tapedeck/tapedeck/internal/config"
	rtpsess "github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// audioSink keeps the audio a phone receives (decoded PCMU/PCMA).
type audioSink struct {
	mu  sync.Mutex
	pcm []int16
}

func (a *audioSink) OnAudio(p *rtp.Packet, _ uint64) {
	buf := make([]int16, len(p.Payload))
	if p.PayloadType == 8 {
		codec.DecodeAlaw(buf, p.Payload)
	} else {
		codec.DecodeMulaw(buf, p.Payload)
	}
	a.mu.Lock()
	a.pcm = append(a.pcm, buf...)
	a.mu.Unlock()
}

func (a *audioSink) OnDTMF(rune, int, bool) {}

func (a *audioSink) samples() []int16 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int16(nil), a.pcm...)
}

func (a *audioSink) reset() {
	a.mu.Lock()
	a.pcm = nil
	a.mu.Unlock()
}

// goertzel is the power of pcm at f Hz (8 kHz).
func goertzel(pcm []int16, f float64) float64 {
	k := 2 * math.Cos(2*math.Pi*f/8000)
	var s1, s2 float64
	for _, x := range pcm {
		s0 := float64(x) + k*s1 - s2
		s2, s1 = s1, s0
	}
	return (s1*s1 + s2*s2 - k*s1*s2) / float64(len(pcm)+1)
}

func sine(f float64, n int, amp float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amp * math.Sin(2*math.Pi*f*float64(i)/8000))
	}
	return out
}

// dominant reports whether f carries clearly more energy than g in pcm.
func dominant(pcm []int16, f, g float64) bool {
	return goertzel(pcm, f) > 20*goertzel(pcm, g)
}

// TestBridgeOriginateRecord: an inbound call and an originated call in a
// mixing bridge hear each other; the mixed recording holds both, the stereo
// one has one party per channel. Both with the bridge stepped by the RTP
// poller (the default) and by its own ticker (rtp.read_interval_ms: 0).
func TestBridgeOriginateRecord(t *testing.T) {
	for _, readMs := range []int{100, 0} {
		t.Run(fmt.Sprintf("read_interval_ms=%d", readMs), func(t *testing.T) { testBridgeOriginateRecord(t, readMs) })
	}
}

func testBridgeOriginateRecord(t *testing.T, readMs int) {
	n := startNode(t, func(c *config.Config) { c.RTP.ReadIntervalMs = readMs })
	events := n.connect("test")
	sinkA := &audioSink{}
	sinkB := &audioSink{}
	caller := newPhone(t, "udp")
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	callee, err := sipua.New(sipua.Options{User: "bob", RTPMin: rtpLo, RTPMax: rtpHi, AutoAnswer: true, RingFor: 100 * time.Millisecond,
		IncomingHandler: func() rtpsess.Handler { return sinkB }})
	if err != nil {
		t.Fatal(err)
	}
	defer callee.Close()

	// Leg A: inbound.
	res := dialAsync(caller, n.target("300"), sipua.CallOptions{Handler: sinkA})
	aID := channelID(events.expect("StasisStart", 5*time.Second))
	n.mustDo("POST", "/channels/"+aID+"/answer", 204)
	ra := wait(t, res, 10*time.Second, "answer A")
	must(t, ra.err)
	events.skipTo("ChannelStateChange", 5*time.Second)

	// Leg B: originated into the app with a client-chosen id.
	endpoint := fmt.Sprintf("PJSIP/bob@127.0.0.1:%d", callee.Port())
	code, body := n.do("POST", "/channels?endpoint="+urlq(endpoint)+"&app=test&appArgs=callee&channelId=leg-b&callerId="+urlq(`"Tape Deck" <1000>`), nil)
	if code != 200 || !strings.Contains(string(body), `"id":"leg-b"`) || !strings.Contains(string(body), `"state":"Down"`) {
		t.Fatalf("originate: %d %s", code, body)
	}
	if code, _ := n.do("POST", "/channels?endpoint="+urlq(endpoint)+"&app=test&channelId=leg-b", nil); code != 409 {
		t.Errorf("originate with a used id: %d", code)
	}
	st := events.skipTo("StasisStart", 10*time.Second)
	if channelID(st) != "leg-b" || fmt.Sprint(st["args"]) != "[callee]" || st["channel"].(map[string]any)["state"] != "Up" {
		t.Fatalf("originated StasisStart %v", st)
	}
	var callB *sipua.Call
	select {
	case callB = <-callee.Incoming():
	case <-time.After(5 * time.Second):
		t.Fatal("callee did not get the call")
	}

	// Bridge both.
	code, body = n.do("POST", "/bridges?bridgeId=br1&name=talk", nil)
	if code != 200 || !strings.Contains(string(body), `"bridge_type":"mixing"`) {
		t.Fatalf("create bridge: %d %s", code, body)
	}
	n.mustDo("POST", "/bridges/br1/addChannel?channel="+aID+",leg-b", 204)
	for range 2 {
		ev := events.skipTo("ChannelEnteredBridge", 5*time.Second)
		if ev["bridge"].(map[string]any)["id"] != "br1" {
			t.Fatalf("entered %v", ev)
		}
	}
	if code, _ := n.do("POST", "/channels/"+aID+"/record?name=x&format=wav", nil); code != 409 {
		t.Errorf("record a bridged channel: %d, want 409", code)
	}
	n.mustDo("POST", "/bridges/br1/record?name=mixed&format=wav", 201)
	events.skipTo("RecordingStarted", 5*time.Second)
	n.mustDo("POST", "/bridges/br1/record?name=stereo&format=wav&stereo=true", 201)
	events.skipTo("RecordingStarted", 5*time.Second)

	sinkA.reset()
	sinkB.reset()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = ra.call.SendAudio(ctx, sine(440, 8000*2, 8000)) }()
	go func() { defer wg.Done(); _ = callB.SendAudio(ctx, sine(1000, 8000*2, 8000)) }()
	wg.Wait()
	n.mustDo("POST", "/recordings/live/mixed/stop", 204)
	n.mustDo("POST", "/recordings/live/stereo/stop", 204)
	for range 2 {
		events.skipTo("RecordingFinished", 5*time.Second)
	}
	// Each heard the other, not itself.
	a, b := sinkA.samples(), sinkB.samples()
	if len(a) < 8000 || len(b) < 8000 {
		t.Fatalf("received %d and %d samples", len(a), len(b))
	}
	if !dominant(a, 1000, 440) {
		t.Errorf("A does not hear B's 1000 Hz over its own 440 Hz: %.0f vs %.0f", goertzel(a, 1000), goertzel(a, 440))
	}
	if !dominant(b, 440, 1000) {
		t.Errorf("B does not hear A's 440 Hz over its own 1000 Hz: %.0f vs %.0f", goertzel(b, 440), goertzel(b, 1000))
	}
	// The mixed recording holds both.
	rate, mixed := readWAV(t, filepath.Join(n.recDir(), "mixed.wav"))
	if rate != 8000 || len(mixed) < 8000 {
		t.Fatalf("mixed: %d Hz %d samples", rate, len(mixed))
	}
	p440, p1000, p700 := goertzel(mixed, 440), goertzel(mixed, 1000), goertzel(mixed, 700)
	if p440 < 20*p700 || p1000 < 20*p700 {
		t.Errorf("mixed recording lacks a party: 440 %.0f, 1000 %.0f, 700 %.0f", p440, p1000, p700)
	}
	// The stereo recording: A left, B right.
	left, right := readStereoWAV(t, filepath.Join(n.recDir(), "stereo.wav"))
	if !dominant(left, 440, 1000) || !dominant(right, 1000, 440) {
		t.Errorf("stereo channels: left 440/1000 %.0f/%.0f, right %.0f/%.0f", goertzel(left, 440), goertzel(left, 1000), goertzel(right, 440), goertzel(right, 1000))
	}

	// A playback to the bridge is heard by both parties; a playback to one
	// bridged channel only by that party. (The phones are silent now.)
	playHeard := func(target, media string) (a, b []int16) {
		sinkA.reset()
		sinkB.reset()
		n.mustDo("POST", target+"/play?media="+urlq(media), 201)
		events.skipTo("PlaybackFinished", 5*time.Second)
		return sinkA.samples(), sinkB.samples()
	}
	a, b = playHeard("/bridges/br1", "tone:!1800/600")
	t.Logf("bridge playback: A 1800/700 Hz %.0f/%.0f, B %.0f/%.0f", goertzel(a, 1800), goertzel(a, 700), goertzel(b, 1800), goertzel(b, 700))
	if !dominant(a, 1800, 700) || !dominant(b, 1800, 700) {
		t.Errorf("bridge playback: A 1800/700 Hz %.0f/%.0f, B %.0f/%.0f", goertzel(a, 1800), goertzel(a, 700), goertzel(b, 1800), goertzel(b, 700))
	}
	a, b = playHeard("/channels/leg-b", "tone:!2200/600")
	t.Logf("channel playback: B 2200/700 Hz %.0f/%.0f, A 2200 Hz %.0f", goertzel(b, 2200), goertzel(b, 700), goertzel(a, 2200))
	if !dominant(b, 2200, 700) {
		t.Errorf("B does not hear its own playback: 2200/700 Hz %.0f/%.0f", goertzel(b, 2200), goertzel(b, 700))
	}
	if pa, pb := goertzel(a, 2200), goertzel(b, 2200); pa*100 > pb {
		t.Errorf("A hears B's playback: 2200 Hz %.0f at A, %.0f at B", pa, pb)
	}

	// Remove, then destroy.
	n.mustDo("POST", "/bridges/br1/removeChannel?channel=leg-b", 204)
	events.skipTo("ChannelLeftBridge", 5*time.Second)
	if code, _ := n.do("POST", "/bridges/br1/removeChannel?channel=leg-b", nil); code != 422 {
		t.Errorf("remove a channel not in the bridge: %d", code)
	}
	if code, _ := n.do("POST", "/bridges/br1/addChannel?channel=nope", nil); code != 400 {
		t.Errorf("add an unknown channel: %d", code)
	}
	n.mustDo("DELETE", "/bridges/br1", 204)
	events.skipTo("BridgeDestroyed", 5*time.Second)
	n.mustDo("GET", "/bridges/br1", 404)
	// Hang up the originated leg: the callee gets a BYE.
	n.mustDo("DELETE", "/channels/leg-b", 204)
	wait(t, callB.Ended(), 5*time.Second, "BYE at the callee")
}

// readStereoWAV splits a 2-channel 16-bit WAV.
func readStereoWAV(t *testing.T, path string) ([]int16, []int16) {
	t.Helper()
	b := mustRead(t, path)
	if len(b) < 44 || b[22] != 2 {
		t.Fatalf("%s is not a stereo WAV", path)
	}
	data := b[44:]
	n := len(data) / 4
	l, r := make([]int16, n), make([]int16, n)
	for i := 0; i < n; i++ {
		l[i] = int16(uint16(data[4*i]) | uint16(data[4*i+1])<<8)
		r[i] = int16(uint16(data[4*i+2]) | uint16(data[4*i+3])<<8)
	}
	return l, r
}

// TestOriginateFailures: busy, unreachable and bad endpoints produce the
// right causes and status codes; /channels/create + /dial rings then
// answers.
func TestOriginateFailures(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	busy, err := sipua.New(sipua.Options{User: "busy", RTPMin: rtpLo, RTPMax: rtpHi, Reject: 486})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	rtpLo, rtpHi = testutil.FreeUDPPortRange(t, 100)
	ok, err := sipua.New(sipua.Options{User: "ok", RTPMin: rtpLo, RTPMax: rtpHi, AutoAnswer: true, RingFor: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer ok.Close()

	for _, c := range []struct{ q string }{
		{"endpoint=Local/100@default&app=test"},
		{"endpoint=PJSIP/alice&app=test"},
		{"endpoint=PJSIP/a@127.0.0.1:5&app=nobody"},
		{"endpoint=PJSIP/a@127.0.0.1:5"},
	} {
		if code, body := n.do("POST", "/channels?"+c.q, nil); code != 400 {
			t.Errorf("originate?%s = %d %s, want 400", c.q, code, body)
		}
	}

	// Busy: created channel in the app, dialed; Dial event BUSY and cause 17.
	code, body := n.do("POST", fmt.Sprintf("/channels/create?endpoint=PJSIP/busy@127.0.0.1:%d&app=test&channelId=c-busy", busy.Port()), nil)
	if code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	events.skipTo("StasisStart", 5*time.Second)
	n.mustDo("POST", "/channels/c-busy/dial", 204)
	d := events.skipTo("ChannelDestroyed", 10*time.Second)
	if channelID(d) != "c-busy" || d["cause"].(float64) != 17 {
		t.Fatalf("busy: %v", d)
	}

	// Ringing then answered, with ChannelStateChange Ringing → Up.
	code, body = n.do("POST", fmt.Sprintf("/channels/create?endpoint=PJSIP/ok@127.0.0.1:%d&app=test&channelId=c-ok", ok.Port()), nil)
	if code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	events.skipTo("StasisStart", 5*time.Second)
	if code, _ := n.do("POST", "/channels/c-ok/answer", nil); code != 412 {
		t.Errorf("answer an outbound channel in state Down: %d, want 412", code)
	}
	n.mustDo("POST", "/channels/c-ok/dial?timeout=10", 204)
	if code, _ := n.do("POST", "/channels/c-ok/dial", nil); code != 409 {
		t.Errorf("second dial: %d, want 409", code)
	}
	var states []string
	for len(states) < 2 {
		ev := events.skipTo("ChannelStateChange", 10*time.Second)
		states = append(states, ev["channel"].(map[string]any)["state"].(string))
	}
	if strings.Join(states, ",") != "Ringing,Up" {
		t.Fatalf("states %v, want Ringing,Up", states)
	}
	n.mustDo("DELETE", "/channels/c-ok", 204)
	events.skipTo("ChannelDestroyed", 5*time.Second)

	// Nobody listening: the INVITE times out (originate timeout 1 s) → no answer.
	code, body = n.do("POST", "/channels/create?endpoint=PJSIP/x@127.0.0.1:9&app=test&channelId=c-none", nil)
	if code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	events.skipTo("StasisStart", 5*time.Second)
	n.mustDo("POST", "/channels/c-none/dial?timeout=1", 204)
	d = events.skipTo("ChannelDestroyed", 10*time.Second)
	if cause := d["cause"].(float64); cause != 19 && cause != 18 {
		t.Fatalf("unreachable: cause %v, want 19 or 18", cause)
	}
}
