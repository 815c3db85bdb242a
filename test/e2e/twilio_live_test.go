package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/nodeari"
)

// twilioLive runs test/node/twilio-live.js once: the npm twilio library
// creates (rec == "") or updates a recording of a live call.
func twilioLive(t *testing.T, n *node, acc meta.Account, callSid, rec string, params any) nodeari.Line {
	t.Helper()
	ps, _ := json.Marshal(params)
	action := "create"
	if rec != "" {
		action = "update"
	}
	return twilioScript(t, n, acc, map[string]string{"TWILIO_CALL_SID": callSid, "TWILIO_ACTION": action,
		"TWILIO_RECORDING": rec, "TWILIO_PARAMS": string(ps)})
}

func twilioScript(t *testing.T, n *node, acc meta.Account, env map[string]string) nodeari.Line {
	t.Helper()
	return twilioScriptAt(t, n.baseURL(), acc.Sid, acc.AuthToken, env)
}

// longestZeroRun is the longest run of zero samples in pcm.
func longestZeroRun(pcm []int16) int {
	best, run := 0, 0
	for _, s := range pcm {
		if s == 0 {
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	return best
}

// secondRecording: on a node that allows more than one recording of a
// call at a time (twilio.max_recordings_per_call), a second recording of
// the call, while first runs, is started; Twilio.CURRENT then names none
// of them (Twilio's 16108, "concurrent recordings"); the second is stopped
// by its Sid, and Twilio.CURRENT names first again.
func secondRecording(t *testing.T, n *node, acc meta.Account, callSid, first string) {
	t.Helper()
	l := twilioLive(t, n, acc, callSid, "", map[string]string{"recordingTrack": "inbound"})
	second, _ := l["sid"].(string)
	if !meta.IsRecordingSid(second) || second == first || l["status"] != "in-progress" {
		t.Fatalf("a second recording while one runs: %v", l)
	}
	if l := twilioLive(t, n, acc, callSid, "Twilio.CURRENT", map[string]string{"status": "paused"}); l["error"] != true ||
		l["status"] != 400.0 || l["code"] != 16108.0 || l["moreInfo"] != "https://www.twilio.com/docs/errors/16108" {
		t.Errorf("Twilio.CURRENT with two recordings running: %v, want 400/16108", l)
	}
	if l := twilioLive(t, n, acc, callSid, second, map[string]string{"status": "stopped"}); l["status"] != "stopped" || l["sid"] != second {
		t.Fatalf("stopping the second recording: %v", l)
	}
}

// TestTwilioLiveCallRecording: the npm twilio library starts, pauses,
// resumes and stops recordings of a real call (Calls/{CallSid}/Recordings,
// Twilio.CURRENT); Twilio.CURRENT while a second recording runs, an update of a finished
// recording, dual channels of one direction and an unknown call get
// Twilio's errors. Of 1 s + 1 s paused + 1 s of audio sent, a pause that
// skips keeps about 2 s, one that inserts silence keeps about 3 s with 1 s
// of digital silence in the middle.
func TestTwilioLiveCallRecording(t *testing.T) {
	needTwilioLibrary(t)
	// More than one recording of a call at a time (the default is one:
	// TestTwilioSecondRecordingRefused), so that Twilio.CURRENT can name none.
	n := startNode(t, func(c *config.Config) { c.Twilio.MaxRecordingsPerCall = -1 })
	events := n.connect("test")
	acc := defaultAccount(t, n)
	phone := newPhone(t, "udp")
	id, call := answeredCall(t, n, events, phone, "350")
	callSid := callSidOf(t, n, id)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	sent := 0
	send := func(ms int) {
		t.Helper()
		must(t, call.SendAudio(ctx, sweep(ms*8)))
		sent += ms / 20
		waitRx(t, n, id, sent)
	}
	wantErr := func(what string, l nodeari.Line, status, code float64) {
		t.Helper()
		if l["error"] != true || l["status"] != status || l["code"] != code ||
			l["moreInfo"] != "https://www.twilio.com/docs/errors/"+strconv.Itoa(int(code)) {
			t.Errorf("%s: %v, want Twilio's error %v/%v", what, l, status, code)
		}
	}
	wantErr("dual channels of one direction", twilioLive(t, n, acc, callSid, "", map[string]string{"recordingChannels": "dual", "recordingTrack": "inbound"}), 400, 20001)
	wantErr("an unknown call", twilioLive(t, n, acc, "CA"+strings.Repeat("0", 32), "", nil), 404, 20404)

	lengths := map[string]float64{}
	for _, behavior := range []string{"skip", "silence"} {
		// The inbound track: the phone stops sending between the steps
		// (with the next timestamp after), which a recording of both
		// tracks keeps as silence on the wall clock, as Twilio's would
		// (TestTwilioRecordingTrackBoth); the lengths here are of what
		// the caller sent.
		l := twilioLive(t, n, acc, callSid, "", map[string]string{"recordingChannels": "mono", "recordingTrack": "inbound", "trim": "do-not-trim"})
		sid, _ := l["sid"].(string)
		if !meta.IsRecordingSid(sid) || l["status"] != "in-progress" || l["callSid"] != callSid || l["channels"] != 1.0 ||
			l["source"] != "StartCallRecordingAPI" || l["track"] != "inbound" ||
			l["uri"] != "/2010-04-01/Accounts/"+acc.Sid+"/Calls/"+callSid+"/Recordings/"+sid+".json" {
			t.Fatalf("%s: create: %v", behavior, l)
		}
		secondRecording(t, n, acc, callSid, sid)
		send(1000)
		if l := twilioLive(t, n, acc, callSid, "Twilio.CURRENT", map[string]string{"status": "paused", "pauseBehavior": behavior}); l["status"] != "paused" || l["sid"] != sid {
			t.Fatalf("%s: pause: %v", behavior, l)
		}
		send(1000)
		if l := twilioLive(t, n, acc, callSid, "Twilio.CURRENT", map[string]string{"status": "in-progress"}); l["status"] != "in-progress" || l["sid"] != sid {
			t.Fatalf("%s: resume: %v", behavior, l)
		}
		send(1000)
		if l := twilioLive(t, n, acc, callSid, sid, map[string]string{"status": "stopped"}); l["status"] != "stopped" || l["sid"] != sid {
			t.Fatalf("%s: stop: %v", behavior, l)
		}
		var rec meta.Recording
		pollFor(t, 10*time.Second, func() bool {
			var err error
			rec, err = n.srv.Catalog().Meta.Recording(context.Background(), acc.Sid, sid)
			return err == nil && rec.Status == meta.StatusCompleted
		}, "the recording completed in the catalog")
		wantErr("pausing a finished recording", twilioLive(t, n, acc, callSid, sid, map[string]string{"status": "paused"}), 400, 16114)
		rate, pcm := readWAV(t, filepath.Join(n.recDir(), rec.Name+".wav"))
		lengths[behavior] = float64(len(pcm)) / float64(rate)
		zeros := float64(longestZeroRun(pcm)) / float64(rate)
		switch behavior {
		case "skip":
			if zeros > 0.3 {
				t.Errorf("skip: %.2f s of silence in the file; the paused second should be left out", zeros)
			}
		case "silence":
			if zeros < 0.9 || zeros > 1.3 {
				t.Errorf("silence: the longest silence is %.2f s, want the paused second", zeros)
			}
		}
	}
	t.Logf("recorded: skip %.2f s, silence %.2f s", lengths["skip"], lengths["silence"])
	if d := lengths["skip"]; d < 1.8 || d > 2.4 {
		t.Errorf("skip: %.2f s recorded, want about 2 s (the paused second left out)", d)
	}
	if d := lengths["silence"]; d < 2.8 || d > 3.4 {
		t.Errorf("silence: %.2f s recorded, want about 3 s (the paused second as silence)", d)
	}
	must(t, call.Hangup(ctx))
	events.skipTo("ChannelDestroyed", 5*time.Second)
}

// secondRecordingRefused: with the default twilio.max_recordings_per_call
// (one), a second start while first runs is Twilio's 400/16108 naming
// first, and nothing is started: the call still has its one recording in
// the catalog.
func secondRecordingRefused(t *testing.T, n *node, acc meta.Account, callSid, first string) {
	t.Helper()
	before := callRows(t, n, acc, callSid)
	l := twilioLive(t, n, acc, callSid, "", map[string]string{"recordingTrack": "inbound"})
	if l["error"] != true || l["status"] != 400.0 || l["code"] != 16108.0 || l["moreInfo"] != "https://www.twilio.com/docs/errors/16108" {
		t.Fatalf("a second recording while %s runs: %v, want Twilio's 400/16108", first, l)
	}
	if msg, _ := l["message"].(string); !strings.Contains(msg, first) {
		t.Errorf("the refusal %q does not name the running recording %s", msg, first)
	}
	if after := callRows(t, n, acc, callSid); after != before {
		t.Errorf("the call's recordings in the catalog: %d, then %d after the refused start", before, after)
	}
}

// callRows counts the call's recordings in the catalog (of every source).
func callRows(t *testing.T, n *node, acc meta.Account, callSid string) int {
	t.Helper()
	page, err := n.srv.Catalog().Meta.ListRecordings(context.Background(), meta.Query{AccountSid: acc.Sid, CallSid: callSid, Limit: 100, SortBy: meta.SortDateCreated})
	if err != nil {
		t.Fatal(err)
	}
	return len(page.Items)
}

// TestTwilioSecondRecordingRefused: by default a call has one recording of
// the Twilio API at a time, as the issue asks. The npm twilio library's
// second start while one is in progress, and again while it is paused, gets
// Twilio's 400/16108 naming the running one, and nothing is started; once
// it is stopped a new one starts. A recording of the call made by an ARI
// application does not count: the Twilio API can neither pause nor stop
// it, so it must not keep the API from recording.
func TestTwilioSecondRecordingRefused(t *testing.T) {
	needTwilioLibrary(t)
	n := startNode(t)
	events := n.connect("test")
	acc := defaultAccount(t, n)
	phone := newPhone(t, "udp")
	id, call := answeredCall(t, n, events, phone, "350")
	callSid := callSidOf(t, n, id)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// An ARI recording of the channel first: not the Twilio API's.
	n.mustDo("POST", "/channels/"+id+"/record?name=tw-ari-"+callSid+"&format=wav", 201)

	l := twilioLive(t, n, acc, callSid, "", map[string]string{"recordingTrack": "inbound"})
	first, _ := l["sid"].(string)
	if !meta.IsRecordingSid(first) || l["status"] != "in-progress" {
		t.Fatalf("the first recording, beside an ARI one: %v", l)
	}
	secondRecordingRefused(t, n, acc, callSid, first)
	if l := twilioLive(t, n, acc, callSid, "Twilio.CURRENT", map[string]string{"status": "paused"}); l["status"] != "paused" || l["sid"] != first {
		t.Fatalf("pause: %v", l)
	}
	secondRecordingRefused(t, n, acc, callSid, first)
	if l := twilioLive(t, n, acc, callSid, "Twilio.CURRENT", map[string]string{"status": "stopped"}); l["status"] != "stopped" || l["sid"] != first {
		t.Fatalf("stop: %v", l)
	}
	l = twilioLive(t, n, acc, callSid, "", map[string]string{"recordingTrack": "inbound"})
	if next, _ := l["sid"].(string); !meta.IsRecordingSid(next) || next == first || l["status"] != "in-progress" {
		t.Fatalf("a recording after the first was stopped: %v", l)
	}
	must(t, call.Hangup(ctx))
	events.skipTo("ChannelDestroyed", 5*time.Second)
}

// statusHook is a real HTTP receiver of recording status callbacks.
type statusHook struct {
	mu  sync.Mutex
	got []hookRequest
}

type hookRequest struct {
	Signature string              `json:"signature"`
	URL       string              `json:"url"`
	Params    map[string]string   `json:"params"`
	Method    string              `json:"method"`
	form      map[string][]string // every value
}

func (h *statusHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	q := hookRequest{Signature: r.Header.Get("X-Twilio-Signature"), URL: "http://" + r.Host + r.URL.RequestURI(),
		Params: map[string]string{}, form: r.PostForm, Method: r.Method}
	for k := range r.PostForm {
		q.Params[k] = r.PostForm.Get(k)
	}
	h.mu.Lock()
	h.got = append(h.got, q)
	h.mu.Unlock()
	w.WriteHeader(204)
}

func (h *statusHook) requests() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookRequest(nil), h.got...)
}

// TestTwilioRecordingStatusCallbacks: a recording started by the npm twilio
// library with RecordingStatusCallback (events in-progress, completed,
// paused, resumed) reports each to a real receiver with Twilio's
// parameters, through the webhook sender, signed so that the library's
// validateRequest accepts every request (and rejects a tampered one); a
// callback to a forbidden host is refused at the request.
func TestTwilioRecordingStatusCallbacks(t *testing.T) {
	needTwilioLibrary(t)
	n := startNode(t, func(c *config.Config) {
		c.Webhook.Allow = []string{"127.0.0.1"}
		c.Webhook.BackoffSeconds = 1
	})
	hook := &statusHook{}
	hs := httptest.NewServer(hook)
	defer hs.Close()
	events := n.connect("test")
	acc := defaultAccount(t, n)
	phone := newPhone(t, "udp")
	id, call := answeredCall(t, n, events, phone, "350")
	_, body := n.do("GET", "/channels/"+id+"/variable?variable=CALLSID", nil)
	var v struct{ Value string }
	_ = json.Unmarshal(body, &v)
	callSid := v.Value

	if l := twilioLive(t, n, acc, callSid, "", map[string]string{"recordingStatusCallback": "http://10.1.2.3/cb"}); l["error"] != true || l["status"] != 400.0 || l["code"] != 20001.0 {
		t.Errorf("a callback to a forbidden host: %v, want 400", l)
	}
	cbURL := hs.URL + "/status?tenant=a%20b"
	// The inbound track: its length is what the phone sent, without the
	// pauses between the steps (see TestTwilioLiveCallRecording).
	l := twilioLive(t, n, acc, callSid, "", map[string]any{"recordingStatusCallback": cbURL, "recordingTrack": "inbound",
		"recordingStatusCallbackEvent": []string{"in-progress", "completed", "paused", "resumed"}, "recordingStatusCallbackMethod": "POST"})
	sid, _ := l["sid"].(string)
	if !meta.IsRecordingSid(sid) {
		t.Fatalf("create: %v", l)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	must(t, call.SendAudio(ctx, sweep(600*8)))
	waitRx(t, n, id, 30)
	twilioLive(t, n, acc, callSid, "Twilio.CURRENT", map[string]string{"status": "paused", "pauseBehavior": "silence"})
	twilioLive(t, n, acc, callSid, "Twilio.CURRENT", map[string]string{"status": "in-progress"})
	must(t, call.SendAudio(ctx, sweep(600*8)))
	waitRx(t, n, id, 60)
	twilioLive(t, n, acc, callSid, sid, map[string]string{"status": "stopped"})
	pollFor(t, 20*time.Second, func() bool { return len(hook.requests()) >= 4 }, "four status callbacks")
	got := hook.requests()
	statuses := map[string]int{}
	for _, q := range got {
		p := q.Params
		statuses[p["RecordingStatus"]]++
		if p["AccountSid"] != acc.Sid || p["CallSid"] != callSid || p["RecordingSid"] != sid || p["RecordingChannels"] != "1" ||
			p["RecordingSource"] != "StartCallRecordingAPI" || p["ErrorCode"] != "0" || p["RecordingStartTime"] == "" ||
			p["RecordingUrl"] != n.baseURL()+"/2010-04-01/Accounts/"+acc.Sid+"/Recordings/"+sid || q.Signature == "" {
			t.Errorf("callback %v (signature %q)", p, q.Signature)
		}
		if _, ok := p["RecordingDuration"]; ok != (p["RecordingStatus"] == "completed") {
			t.Errorf("RecordingDuration on %s: %v", p["RecordingStatus"], p)
		}
		if p["RecordingStatus"] == "completed" && p["RecordingDuration"] != "1" {
			t.Errorf("completed: RecordingDuration %q, want 1 (1.2 s and a short pause)", p["RecordingDuration"])
		}
	}
	if len(got) != 4 || statuses["in-progress"] != 2 || statuses["paused"] != 1 || statuses["completed"] != 1 {
		t.Errorf("callbacks %v, want in-progress (start and resume), paused, completed", statuses)
	}
	// The library's validateRequest accepts each; a changed parameter fails.
	check := append([]hookRequest(nil), got...)
	tampered := got[0]
	tampered.Params = map[string]string{}
	for k, v := range got[0].Params {
		tampered.Params[k] = v
	}
	tampered.Params["RecordingStatus"] = "absent"
	check = append(check, tampered)
	reqs, _ := json.Marshal(check)
	res := twilioScript(t, n, acc, map[string]string{"TWILIO_ACTION": "validate", "TWILIO_VALIDATE": string(reqs)})
	valid, _ := res["valid"].([]any)
	if len(valid) != len(check) {
		t.Fatalf("validate: %v", res)
	}
	for i, ok := range valid {
		if want := i < len(got); ok != want {
			t.Errorf("validateRequest of request %d (%v): %v, want %v", i, check[i].Params["RecordingStatus"], ok, want)
		}
	}
	must(t, call.Hangup(ctx))
	events.skipTo("ChannelDestroyed", 5*time.Second)
}

// TestTwilioDualChannelRecording: RecordingChannels=dual on a bridged
// two-party call, started by the npm twilio library by the caller's
// CallSid, gives a 2-channel file with each party (a different tone each)
// on its own channel, catalogued with channels 2.
func TestTwilioDualChannelRecording(t *testing.T) {
	needTwilioLibrary(t)
	n := startNode(t)
	events := n.connect("test")
	acc := defaultAccount(t, n)
	caller := newPhone(t, "udp")
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	callee, err := sipua.New(sipua.Options{User: "bob", RTPMin: rtpLo, RTPMax: rtpHi, AutoAnswer: true, RingFor: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer callee.Close()
	aID, callA := answeredCall(t, n, events, caller, "300")
	endpoint := fmt.Sprintf("PJSIP/bob@127.0.0.1:%d", callee.Port())
	n.mustDo("POST", "/channels?endpoint="+urlq(endpoint)+"&app=test&channelId=leg-b", 200)
	events.skipTo("StasisStart", 10*time.Second)
	var callB *sipua.Call
	select {
	case callB = <-callee.Incoming():
	case <-time.After(5 * time.Second):
		t.Fatal("callee did not get the call")
	}
	n.mustDo("POST", "/bridges?bridgeId=br1", 200)
	n.mustDo("POST", "/bridges/br1/addChannel?channel="+aID+",leg-b", 204)
	for range 2 {
		events.skipTo("ChannelEnteredBridge", 5*time.Second)
	}
	_, body := n.do("GET", "/channels/"+aID+"/variable?variable=CALLSID", nil)
	var v struct{ Value string }
	_ = json.Unmarshal(body, &v)
	callSid := v.Value

	l := twilioLive(t, n, acc, callSid, "", map[string]string{"recordingChannels": "dual"})
	sid, _ := l["sid"].(string)
	if !meta.IsRecordingSid(sid) || l["channels"] != 2.0 || l["status"] != "in-progress" {
		t.Fatalf("create dual: %v", l)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Both parties send digital silence, then their tone, from one loop
	// that writes both parties' frame of each 20 ms tick back to back: the
	// tones start at the same instant (within a few microseconds), so
	// their onsets must be at the same place in both channels.
	const silentFrames = 30
	must(t, sendTogether(ctx, callA, callB,
		append(make([]int16, silentFrames*160), sine(440, 8000, 8000)...),
		append(make([]int16, (silentFrames+dualMarkerSkew)*160), sine(1000, 8000, 8000)...)))
	waitRx(t, n, aID, 50)
	if l := twilioLive(t, n, acc, callSid, "Twilio.CURRENT", map[string]string{"status": "stopped"}); l["status"] != "stopped" || l["channels"] != 2.0 {
		t.Fatalf("stop: %v", l)
	}
	var rec meta.Recording
	pollFor(t, 10*time.Second, func() bool {
		rec, err = n.srv.Catalog().Meta.Recording(context.Background(), acc.Sid, sid)
		return err == nil && rec.Status == meta.StatusCompleted
	}, "the recording completed in the catalog")
	if rec.Channels != 2 {
		t.Errorf("catalogued with %d channels, want 2", rec.Channels)
	}
	left, right := readStereoWAV(t, filepath.Join(n.recDir(), rec.Name+".wav"))
	if len(left) < 4000 || !dominant(left, 440, 1000) || !dominant(right, 1000, 440) {
		t.Errorf("dual channels (%d samples): left 440/1000 %.0f/%.0f, right %.0f/%.0f", len(left),
			goertzel(left, 440), goertzel(left, 1000), goertzel(right, 440), goertzel(right, 1000))
	}
	// Aligned within one frame: the tones' onsets, found by energy per
	// 1 ms window, are at most 20 ms apart in the file.
	onL, onR := energyOnset(left, 1000), energyOnset(right, 1000)
	if onL < 0 || onR < 0 {
		t.Fatalf("no onset: left at %d ms, right at %d ms", onL, onR)
	}
	if d := onL - onR; d > 20 || d < -20 {
		t.Errorf("channels misaligned: the caller's tone starts at %d ms, the callee's at %d ms (%d ms apart, want <= 20)", onL, onR, d)
	} else {
		t.Logf("onsets: left %d ms, right %d ms", onL, onR)
	}
}

// dualMarkerSkew delays the callee's tone by this many 20 ms frames in
// TestTwilioDualChannelRecording (0; set to 3 to see the alignment check
// fail on a 60 ms offset).
const dualMarkerSkew = 0

// sendTogether sends a to call a and b to call b at 20 ms per frame, both
// parties' frame of each tick written back to back by one goroutine.
func sendTogether(ctx context.Context, a, b *sipua.Call, pa, pb []int16) error {
	fa, fb := make([]byte, 160), make([]byte, 160)
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	for off := 0; off+160 <= len(pa) || off+160 <= len(pb); off += 160 {
		if off+160 <= len(pa) {
			if err := a.Media().WriteAudio(fa[:a.Codec().Encode(fa, pa[off:off+160])], 160); err != nil {
				return err
			}
		}
		if off+160 <= len(pb) {
			if err := b.Media().WriteAudio(fb[:b.Codec().Encode(fb, pb[off:off+160])], 160); err != nil {
				return err
			}
		}
		select {
		case <-tk.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// energyOnset is the first 1 ms window (8 samples at 8 kHz) of pcm whose
// mean absolute sample exceeds level, in ms; -1 when none does.
func energyOnset(pcm []int16, level int) int {
	for w := 0; w+8 <= len(pcm); w += 8 {
		sum := 0
		for _, x := range pcm[w : w+8] {
			sum += max(int(x), -int(x))
		}
		if sum/8 > level {
			return w / 8
		}
	}
	return -1
}
