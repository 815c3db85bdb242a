package e2e

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// qualityJSON is a recording's quality as the APIs show it.
type qualityJSON struct {
	PacketsExpected   int64   `json:"packets_expected"`
	PacketsReceived   int64   `json:"packets_received"`
	PacketsLost       int64   `json:"packets_lost"`
	PacketsLate       int64   `json:"packets_late"`
	PacketsDuplicated int64   `json:"packets_duplicated"`
	LossSilenceMs     int64   `json:"loss_silence_ms"`
	JitterMs          float64 `json:"jitter_ms"`
	RecordedMs        int64   `json:"recorded_ms"`
	CallMs            int64   `json:"call_ms"`
	Degraded          bool    `json:"degraded"`
	LossPercent       float64 `json:"loss_percent"`
	RecordedOverCall  float64 `json:"recorded_over_call"`
	Paused            []struct {
		Start    time.Time `json:"start"`
		LengthMs int64     `json:"length_ms"`
		Behavior string    `json:"behavior"`
		By       string    `json:"by"`
	} `json:"paused_intervals"`
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// lossyPattern is 100 packets (2 s) with 5 % loss (packets 15, 35, 55, 75,
// 95), six duplicated and four pairs swapped, none of them overlapping.
func lossyPattern() (lost map[int]bool, lose, dup, swap func(int) bool) {
	lost = map[int]bool{}
	lose = func(i int) bool {
		if i%20 == 15 {
			lost[i] = true
			return true
		}
		return false
	}
	dup = func(i int) bool { return i%17 == 5 }
	swap = func(i int) bool { return i%23 == 7 && i < 90 }
	return lost, lose, dup, swap
}

// TestRecordingCompleteness: a call recorded with 5 % of its packets lost
// (plus duplicates and reordering) reports the loss within one packet and
// the silence inserted for it (20 ms per lost packet) in the catalog, as
// Restcomm (JSON and XML), Twilio (its tapedeck_quality extension) and
// ARI (the stored recording) show it; ARI sends RecordingDegraded while it
// records (the loss passed recording.degraded_loss_percent), and a pause
// (skip) is a paused interval with who asked and its length.
func TestRecordingCompleteness(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.Recording.DegradedLossPercent = 2 })
	events := n.connect("test")
	acc := defaultAccount(t, n)
	phone := newPhone(t, "udp")
	id, call := recordingCall(t, n, events, phone, "330", "name=lossy&format=wav")
	lost, lose, dup, swap := lossyPattern()
	src := sweep(8000 * 2)
	sendPackets(t, call, src, 0x4321, 5000, 200, lose, dup, swap)
	waitRx(t, n, id, 100-len(lost))
	ev := events.skipTo("RecordingDegraded", 5*time.Second)
	var live struct {
		Recording struct {
			Name    string      `json:"name"`
			State   string      `json:"state"`
			Quality qualityJSON `json:"quality"`
		} `json:"recording"`
	}
	raw, _ := json.Marshal(ev)
	must(t, json.Unmarshal(raw, &live))
	if live.Recording.Name != "lossy" || live.Recording.State != "recording" || !live.Recording.Quality.Degraded ||
		live.Recording.Quality.PacketsLost < 2 {
		t.Fatalf("RecordingDegraded %s", raw)
	}
	// A pause by the ARI application, then a second of audio.
	n.mustDo("POST", "/recordings/live/lossy/pause", 204)
	time.Sleep(300 * time.Millisecond) // a pause of measurable length (what is measured, not awaited)
	n.mustDo("DELETE", "/recordings/live/lossy/pause", 204)
	sendPackets(t, call, sweep(8000), 0x4321, 5000+200*160, 400, nil, nil, nil)
	waitRx(t, n, id, 150-len(lost))
	n.mustDo("POST", "/recordings/live/lossy/stop", 204)
	events.skipTo("RecordingFinished", 5*time.Second)

	check := func(api string, q qualityJSON) {
		t.Helper()
		if len(lost) != 5 {
			t.Fatalf("the pattern lost %d packets, want 5", len(lost))
		}
		// Within one packet of what was sent and lost; the pause is not loss.
		if abs64(q.PacketsExpected-150) > 1 || abs64(q.PacketsLost-int64(len(lost))) > 1 ||
			q.PacketsReceived != q.PacketsExpected-q.PacketsLost {
			t.Errorf("%s: expected %d, received %d, lost %d; want 150, 145, 5", api, q.PacketsExpected, q.PacketsReceived, q.PacketsLost)
		}
		// The silence inserted is the lost packets' length.
		if q.LossSilenceMs != 20*int64(len(lost)) {
			t.Errorf("%s: %d ms of silence inserted for %d lost packets, want %d", api, q.LossSilenceMs, len(lost), 20*len(lost))
		}
		if q.PacketsDuplicated != 6 || q.PacketsLate != 0 {
			t.Errorf("%s: %d duplicated (want 6), %d late (want 0)", api, q.PacketsDuplicated, q.PacketsLate)
		}
		if q.RecordedMs != 3000 || !q.Degraded || q.LossPercent < 3 || q.LossPercent > 3.4 {
			t.Errorf("%s: recorded %d ms (want 3000), degraded %v, loss %v%%", api, q.RecordedMs, q.Degraded, q.LossPercent)
		}
		if q.CallMs < q.RecordedMs || q.RecordedOverCall <= 0 || q.RecordedOverCall >= 1 || q.JitterMs < 0 {
			t.Errorf("%s: call %d ms for %d recorded, ratio %v, jitter %v", api, q.CallMs, q.RecordedMs, q.RecordedOverCall, q.JitterMs)
		}
		if len(q.Paused) != 1 || q.Paused[0].Behavior != "skip" || q.Paused[0].By != "ari" ||
			q.Paused[0].LengthMs < 250 || q.Paused[0].Start.IsZero() {
			t.Errorf("%s: paused intervals %+v, want one skip by ari of at least 250 ms", api, q.Paused)
		}
	}

	// The catalog row itself (the database, not the recorder's memory).
	row, err := n.srv.Catalog().Meta.RecordingByName(context.Background(), "lossy")
	if err != nil || row.Quality == nil {
		t.Fatalf("catalog row: %v %+v", err, row.Quality)
	}
	// ARI's stored recording.
	_, body := n.do("GET", "/recordings/stored/lossy", nil)
	var stored struct {
		Quality qualityJSON `json:"quality"`
	}
	must(t, json.Unmarshal(body, &stored))
	check("ARI stored", stored.Quality)
	// Restcomm JSON.
	code, body := rc(t, n, acc, "GET", "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Recordings/"+row.Sid+".json")
	var rj struct {
		Quality qualityJSON `json:"quality"`
	}
	if code != 200 || json.Unmarshal(body, &rj) != nil {
		t.Fatalf("restcomm json: %d %s", code, body)
	}
	check("Restcomm JSON", rj.Quality)
	// Restcomm XML (its default encoding).
	code, body = rc(t, n, acc, "GET", "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Recordings/"+row.Sid)
	var rx struct {
		Recording struct {
			Quality struct {
				PacketsExpected, PacketsReceived, PacketsLost, PacketsLate, PacketsDuplicated int64
				LossSilenceMs, RecordedMs, CallMs                                             int64
				JitterMs, LossPercent, RecordedOverCall                                       float64
				Degraded                                                                      bool
				PausedIntervals                                                               struct {
					Items []struct {
						Start    string
						LengthMs int64
						Behavior string
						By       string
					} `xml:"PausedInterval"`
				}
			}
		}
	}
	if code != 200 || xml.Unmarshal(body, &rx) != nil {
		t.Fatalf("restcomm xml: %d %s", code, body)
	}
	xq := rx.Recording.Quality
	q := qualityJSON{PacketsExpected: xq.PacketsExpected, PacketsReceived: xq.PacketsReceived, PacketsLost: xq.PacketsLost,
		PacketsLate: xq.PacketsLate, PacketsDuplicated: xq.PacketsDuplicated, LossSilenceMs: xq.LossSilenceMs,
		RecordedMs: xq.RecordedMs, CallMs: xq.CallMs, JitterMs: xq.JitterMs, LossPercent: xq.LossPercent,
		RecordedOverCall: xq.RecordedOverCall, Degraded: xq.Degraded}
	for _, p := range xq.PausedIntervals.Items {
		st, err := time.Parse("Mon, 2 Jan 2006 15:04:05 -0700", p.Start)
		if err != nil {
			t.Errorf("XML paused interval start %q: %v", p.Start, err)
		}
		q.Paused = append(q.Paused, struct {
			Start    time.Time `json:"start"`
			LengthMs int64     `json:"length_ms"`
			Behavior string    `json:"behavior"`
			By       string    `json:"by"`
		}{st, p.LengthMs, p.Behavior, p.By})
	}
	check("Restcomm XML", q)
	// Twilio: its own fields unchanged, the quality as tapedeck_quality.
	code, body = rc(t, n, acc, "GET", "/2010-04-01/Accounts/"+acc.Sid+"/Recordings/"+row.Sid+".json")
	var tj struct {
		Sid      string      `json:"sid"`
		Status   string      `json:"status"`
		Duration string      `json:"duration"`
		Quality  qualityJSON `json:"tapedeck_quality"`
	}
	if code != 200 || json.Unmarshal(body, &tj) != nil || tj.Sid != row.Sid || tj.Status != "completed" || tj.Duration != "3" {
		t.Fatalf("twilio: %d %s", code, body)
	}
	check("Twilio", tj.Quality)
	n.mustDo("DELETE", "/channels/"+id, 204)
}

// TestTwilioDegradedCallback: a recording started through the Twilio API
// with RecordingStatusCallbackEvent=degraded reports, while it records,
// that its loss passed the threshold: a signed callback through the
// durable webhook sender with the loss figures; one that did not ask for
// it gets none. A clean recording is not reported.
func TestTwilioDegradedCallback(t *testing.T) {
	n := startNode(t, func(c *config.Config) {
		c.Webhook.Allow = []string{"127.0.0.1"}
		c.Webhook.BackoffSeconds = 1
		c.Recording.DegradedLossPercent = 3
	})
	hook := &statusHook{}
	hs := httptest.NewServer(hook)
	defer hs.Close()
	events := n.connect("test")
	acc := defaultAccount(t, n)
	for _, tc := range []struct {
		name         string
		events       string
		lossy, wants bool
	}{
		{"lossy, asked", "degraded completed", true, true},
		{"lossy, not asked", "completed", true, false},
		{"clean, asked", "degraded completed", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			phone := newPhone(t, "udp")
			id, call := answeredCall(t, n, events, phone, "351")
			_, body := n.do("GET", "/channels/"+id+"/variable?variable=CALLSID", nil)
			var v struct{ Value string }
			_ = json.Unmarshal(body, &v)
			before := len(hook.requests())
			cb := hs.URL + "/status?case=" + url.QueryEscape(tc.name)
			form := url.Values{"RecordingStatusCallback": {cb}, "RecordingStatusCallbackEvent": {tc.events}}
			req, _ := http.NewRequest("POST", n.baseURL()+"/2010-04-01/Accounts/"+acc.Sid+"/Calls/"+v.Value+"/Recordings.json",
				strings.NewReader(form.Encode()))
			req.SetBasicAuth(acc.Sid, acc.AuthToken)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, err := http.DefaultClient.Do(req)
			must(t, err)
			var created struct {
				Sid string `json:"sid"`
			}
			_ = json.NewDecoder(res.Body).Decode(&created)
			res.Body.Close()
			if res.StatusCode != 201 || !meta.IsRecordingSid(created.Sid) {
				t.Fatalf("start: %d %+v", res.StatusCode, created)
			}
			var lose func(int) bool
			lost := map[int]bool{}
			if tc.lossy {
				lost, lose, _, _ = lossyPattern()
			}
			sendPackets(t, call, sweep(8000*2), 77, 1000, 10, lose, nil, nil)
			waitRx(t, n, id, 100-len(lost))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			must(t, call.Hangup(ctx))
			events.skipTo("ChannelDestroyed", 5*time.Second)
			var mine []hookRequest
			pollFor(t, 20*time.Second, func() bool {
				mine = nil
				for _, q := range hook.requests()[before:] {
					if q.Params["RecordingSid"] == created.Sid {
						mine = append(mine, q)
					}
				}
				for _, q := range mine {
					if q.Params["RecordingStatus"] == "completed" {
						return true
					}
				}
				return false
			}, "the completed callback")
			var degraded []hookRequest
			for _, q := range mine {
				if q.Params["RecordingDegraded"] != "" {
					degraded = append(degraded, q)
				}
			}
			if !tc.wants {
				if len(degraded) != 0 {
					t.Fatalf("degraded callbacks %v, want none", degraded)
				}
				return
			}
			if len(degraded) != 1 {
				t.Fatalf("%d degraded callbacks among %d, want 1", len(degraded), len(mine))
			}
			p := degraded[0].Params
			if p["RecordingStatus"] != "in-progress" || p["AccountSid"] != acc.Sid || p["CallSid"] != v.Value ||
				degraded[0].Signature == "" || p["PacketsLost"] == "" || p["PacketsLost"] == "0" || p["LossPercent"] == "" {
				t.Fatalf("degraded callback %v (signature %q)", p, degraded[0].Signature)
			}
		})
	}
}

// twilioForm POSTs a form to the Twilio API with the account's credentials.
func twilioForm(t *testing.T, n *node, acc meta.Account, path string, form url.Values) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", n.baseURL()+"/2010-04-01/Accounts/"+acc.Sid+path, strings.NewReader(form.Encode()))
	req.SetBasicAuth(acc.Sid, acc.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	must(t, err)
	defer res.Body.Close()
	var b strings.Builder
	_, _ = io.Copy(&b, res.Body)
	return res.StatusCode, []byte(b.String())
}

// TestPausedRecordingListsAsPaused: a recording paused through the Twilio
// API is listed as paused (Twilio's status, from the catalog) by Twilio and
// Restcomm, its media is not served as if complete, and its open paused
// interval (silence, asked by the account) is in the catalog; resumed it is
// in-progress again, and once stopped completed with the interval's length.
func TestPausedRecordingListsAsPaused(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	acc := defaultAccount(t, n)
	phone := newPhone(t, "udp")
	id, call := answeredCall(t, n, events, phone, "352")
	_, body := n.do("GET", "/channels/"+id+"/variable?variable=CALLSID", nil)
	var v struct{ Value string }
	_ = json.Unmarshal(body, &v)
	callPath := "/Calls/" + v.Value + "/Recordings"
	code, body := twilioForm(t, n, acc, callPath+".json", url.Values{})
	var created struct {
		Sid string `json:"sid"`
	}
	if code != 201 || json.Unmarshal(body, &created) != nil {
		t.Fatalf("start: %d %s", code, body)
	}
	sendPackets(t, call, sweep(8000*12/10), 9, 0, 0, nil, nil, nil) // over a second: not absent
	waitRx(t, n, id, 60)
	status := func() (tw, rcs string, dur string, q qualityJSON) {
		t.Helper()
		_, b := rc(t, n, acc, "GET", "/2010-04-01/Accounts/"+acc.Sid+"/Recordings/"+created.Sid+".json")
		var tj struct {
			Status   string      `json:"status"`
			Duration string      `json:"duration"`
			Quality  qualityJSON `json:"tapedeck_quality"`
		}
		must(t, json.Unmarshal(b, &tj))
		_, b = rc(t, n, acc, "GET", "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Recordings/"+created.Sid+".json")
		var rj struct {
			Status string `json:"status"`
		}
		must(t, json.Unmarshal(b, &rj))
		return tj.Status, rj.Status, tj.Duration, tj.Quality
	}
	if tw, rcs, _, _ := status(); tw != "in-progress" || rcs != "in-progress" {
		t.Fatalf("recording: twilio %q, restcomm %q", tw, rcs)
	}
	code, body = twilioForm(t, n, acc, callPath+"/Twilio.CURRENT.json", url.Values{"Status": {"paused"}, "PauseBehavior": {"silence"}})
	if code != 200 {
		t.Fatalf("pause: %d %s", code, body)
	}
	tw, rcs, dur, q := status()
	if tw != "paused" || rcs != "paused" || dur != "-1" {
		t.Fatalf("paused: twilio %q (duration %q), restcomm %q; want paused", tw, dur, rcs)
	}
	if len(q.Paused) != 1 || q.Paused[0].Behavior != "silence" || q.Paused[0].By != "twilio:"+acc.Sid {
		t.Fatalf("paused intervals in the catalog: %+v", q.Paused)
	}
	if code, _ := rc(t, n, acc, "GET", "/2010-04-01/Accounts/"+acc.Sid+"/Recordings/"+created.Sid+".wav"); code != 404 {
		t.Errorf("the media of a paused recording: %d, want 404", code)
	}
	code, body = twilioForm(t, n, acc, callPath+"/Twilio.CURRENT.json", url.Values{"Status": {"in-progress"}})
	if code != 200 {
		t.Fatalf("resume: %d %s", code, body)
	}
	if tw, rcs, _, _ := status(); tw != "in-progress" || rcs != "in-progress" {
		t.Fatalf("resumed: twilio %q, restcomm %q", tw, rcs)
	}
	code, body = twilioForm(t, n, acc, callPath+"/"+created.Sid+".json", url.Values{"Status": {"stopped"}})
	if code != 200 {
		t.Fatalf("stop: %d %s", code, body)
	}
	pollFor(t, 10*time.Second, func() bool { tw, _, _, _ := status(); return tw == "completed" }, "the recording to complete")
	_, _, _, q = status()
	if len(q.Paused) != 1 || q.Paused[0].LengthMs <= 0 {
		t.Fatalf("paused intervals after the end: %+v", q.Paused)
	}
	n.mustDo("DELETE", "/channels/"+id, 204)
}

// TestTwilioGETStatusCallbacks: RecordingStatusCallbackMethod=GET sends the
// callbacks as GETs with Twilio's parameters in the query string (after the
// callback URL's own) and no body, through the durable webhook sender,
// signed as Twilio signs a GET (the URL with its query, no parameters
// appended): the npm library's validateRequest accepts each, and rejects
// one whose query was changed.
func TestTwilioGETStatusCallbacks(t *testing.T) {
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
	id, call := answeredCall(t, n, events, phone, "353")
	_, body := n.do("GET", "/channels/"+id+"/variable?variable=CALLSID", nil)
	var v struct{ Value string }
	_ = json.Unmarshal(body, &v)
	if code, body := twilioForm(t, n, acc, "/Calls/"+v.Value+"/Recordings.json", url.Values{"RecordingStatusCallback": {hs.URL + "/cb"},
		"RecordingStatusCallbackMethod": {"PUT"}}); code != 400 || !strings.Contains(string(body), "RecordingStatusCallbackMethod") {
		t.Errorf("method PUT: %d %s, want 400", code, body)
	}
	code, body := twilioForm(t, n, acc, "/Calls/"+v.Value+"/Recordings.json", url.Values{"RecordingStatusCallback": {hs.URL + "/cb?tenant=a%20b"},
		"RecordingStatusCallbackMethod": {"GET"}, "RecordingStatusCallbackEvent": {"in-progress completed"}})
	var created struct {
		Sid string `json:"sid"`
	}
	if code != 201 || json.Unmarshal(body, &created) != nil {
		t.Fatalf("start: %d %s", code, body)
	}
	sendPackets(t, call, sweep(8000*12/10), 5, 0, 0, nil, nil, nil) // over a second: not absent
	waitRx(t, n, id, 60)
	if code, body := twilioForm(t, n, acc, "/Calls/"+v.Value+"/Recordings/"+created.Sid+".json", url.Values{"Status": {"stopped"}}); code != 200 {
		t.Fatalf("stop: %d %s", code, body)
	}
	pollFor(t, 20*time.Second, func() bool { return len(hook.requests()) >= 2 }, "two status callbacks")
	got := hook.requests()
	statuses := map[string]bool{}
	for _, q := range got {
		u, err := url.Parse(q.URL)
		must(t, err)
		p := u.Query()
		statuses[p.Get("RecordingStatus")] = true
		if q.Method != "GET" || len(q.Params) != 0 || p.Get("tenant") != "a b" || p.Get("AccountSid") != acc.Sid ||
			p.Get("CallSid") != v.Value || p.Get("RecordingSid") != created.Sid || q.Signature == "" {
			t.Errorf("callback %s %s (form %v, signature %q)", q.Method, q.URL, q.Params, q.Signature)
		}
	}
	if len(got) != 2 || !statuses["in-progress"] || !statuses["completed"] {
		t.Fatalf("callbacks %v, want in-progress and completed", statuses)
	}
	check := append([]hookRequest(nil), got...)
	tampered := got[1]
	tampered.URL = strings.Replace(tampered.URL, "RecordingStatus=completed", "RecordingStatus=absent", 1)
	if tampered.URL == got[1].URL {
		tampered.URL = strings.Replace(tampered.URL, "RecordingStatus=in-progress", "RecordingStatus=absent", 1)
	}
	check = append(check, tampered)
	reqs, _ := json.Marshal(check)
	res := twilioScript(t, n, acc, map[string]string{"TWILIO_ACTION": "validate", "TWILIO_VALIDATE": string(reqs)})
	valid, _ := res["valid"].([]any)
	if len(valid) != len(check) {
		t.Fatalf("validate: %v", res)
	}
	for i, ok := range valid {
		if want := i < len(got); ok != want {
			t.Errorf("validateRequest of GET %s: %v, want %v", check[i].URL, ok, want)
		}
	}
	n.mustDo("DELETE", "/channels/"+id, 204)
}

// TestTwilioTooShortRecordingIsAbsent: a recording started through the
// Twilio API that holds audio but less than a second is absent (Twilio's
// rule), error 16101, its media not served, its absent status callback
// sent with ErrorCode 16101; one of a second and more is completed; one of
// 1.5 s of silence (digital silence, then noise under the silence
// detector's threshold) is absent with 16102, as Twilio's silent ones, in
// both APIs.
func TestTwilioTooShortRecordingIsAbsent(t *testing.T) {
	n := startNode(t, func(c *config.Config) {
		c.Webhook.Allow = []string{"127.0.0.1"}
		c.Webhook.BackoffSeconds = 1
	})
	hook := &statusHook{}
	hs := httptest.NewServer(hook)
	defer hs.Close()
	events := n.connect("test")
	acc := defaultAccount(t, n)
	quiet := make([]int16, 1500*8)
	for i := 6000; i < len(quiet); i++ {
		quiet[i] = int16(i%7*20 - 60) // |x| averages well under 256
	}
	for _, tc := range []struct {
		ms     int
		status string
		code   any
		silent bool
	}{{600, "absent", 16101.0, false}, {1200, "completed", nil, false}, {1500, "absent", 16102.0, true}} {
		t.Run(fmt.Sprint(tc.ms, "ms"), func(t *testing.T) {
			phone := newPhone(t, "udp")
			id, call := answeredCall(t, n, events, phone, "354")
			_, body := n.do("GET", "/channels/"+id+"/variable?variable=CALLSID", nil)
			var v struct{ Value string }
			_ = json.Unmarshal(body, &v)
			code, body := twilioForm(t, n, acc, "/Calls/"+v.Value+"/Recordings.json", url.Values{"RecordingStatusCallback": {hs.URL + "/cb"},
				"RecordingStatusCallbackEvent": {"completed absent"}})
			var created struct {
				Sid string `json:"sid"`
			}
			if code != 201 || json.Unmarshal(body, &created) != nil {
				t.Fatalf("start: %d %s", code, body)
			}
			audio := sweep(tc.ms * 8)
			if tc.silent {
				audio = quiet
			}
			sendPackets(t, call, audio, 3, 0, 0, nil, nil, nil)
			waitRx(t, n, id, tc.ms/20)
			if code, body := twilioForm(t, n, acc, "/Calls/"+v.Value+"/Recordings/"+created.Sid+".json", url.Values{"Status": {"stopped"}}); code != 200 {
				t.Fatalf("stop: %d %s", code, body)
			}
			var cb hookRequest
			pollFor(t, 20*time.Second, func() bool {
				for _, q := range hook.requests() {
					if q.Params["RecordingSid"] == created.Sid {
						cb = q
						return true
					}
				}
				return false
			}, "the final status callback")
			r := map[string]any{}
			_, body = rc(t, n, acc, "GET", "/2010-04-01/Accounts/"+acc.Sid+"/Recordings/"+created.Sid+".json")
			must(t, json.Unmarshal(body, &r))
			if r["status"] != tc.status || r["error_code"] != tc.code {
				t.Fatalf("%d ms of audio: status %v, error_code %v; want %s, %v", tc.ms, r["status"], r["error_code"], tc.status, tc.code)
			}
			wantCode := "0"
			if tc.code != nil {
				wantCode = fmt.Sprint(tc.code)
			}
			if tc.code != nil {
				// Restcomm's API gives the same code.
				_, body := rc(t, n, acc, "GET", "/2012-04-24/Accounts/"+acc.Sid+"/Recordings/"+created.Sid+".json")
				rr := map[string]any{}
				must(t, json.Unmarshal(body, &rr))
				if rr["status"] != "absent" || rr["error_code"] != tc.code {
					t.Errorf("Restcomm: status %v error_code %v, want absent %v", rr["status"], rr["error_code"], tc.code)
				}
			}
			if cb.Params["RecordingStatus"] != tc.status || cb.Params["ErrorCode"] != wantCode {
				t.Fatalf("callback %v", cb.Params)
			}
			media, _, _ := httpGet(t, fmt.Sprint(r["media_url"])+".wav", "", false)
			if (tc.status == "absent") != (media == 404) {
				t.Fatalf("media of a %s recording: %d", tc.status, media)
			}
			n.mustDo("DELETE", "/channels/"+id, 204)
		})
	}
}

// TestTwilioTrimSilence: Trim=trim-silence drops the leading and trailing
// silence of a recording (0.6 s before the speech, 0.8 s after): the file
// and the catalog hold the 1.2 s of audio, which starts with the speech;
// do-not-trim keeps all 2.6 s.
func TestTwilioTrimSilence(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	acc := defaultAccount(t, n)
	for _, tc := range []struct {
		trim string
		want float64
	}{{"trim-silence", 1.2}, {"do-not-trim", 2.6}} {
		t.Run(tc.trim, func(t *testing.T) {
			phone := newPhone(t, "udp")
			id, call := answeredCall(t, n, events, phone, "355")
			_, body := n.do("GET", "/channels/"+id+"/variable?variable=CALLSID", nil)
			var v struct{ Value string }
			_ = json.Unmarshal(body, &v)
			code, body := twilioForm(t, n, acc, "/Calls/"+v.Value+"/Recordings.json", url.Values{"Trim": {tc.trim}})
			var created struct {
				Sid string `json:"sid"`
			}
			if code != 201 || json.Unmarshal(body, &created) != nil {
				t.Fatalf("start: %d %s", code, body)
			}
			speech := sweep(8000 * 12 / 10)
			pcm := append(append(make([]int16, 8000*6/10), speech...), make([]int16, 8000*8/10)...)
			sendPackets(t, call, pcm, 11, 0, 0, nil, nil, nil)
			waitRx(t, n, id, len(pcm)/160)
			if code, body := twilioForm(t, n, acc, "/Calls/"+v.Value+"/Recordings/"+created.Sid+".json", url.Values{"Status": {"stopped"}}); code != 200 {
				t.Fatalf("stop: %d %s", code, body)
			}
			var row meta.Recording
			pollFor(t, 10*time.Second, func() bool {
				var err error
				row, err = n.srv.Catalog().Meta.Recording(context.Background(), acc.Sid, created.Sid)
				return err == nil && row.Status == meta.StatusCompleted
			}, "the recording to complete")
			_, got := readWAV(t, filepath.Join(n.recDir(), row.FilePath))
			secs := float64(len(got)) / 8000
			if d := secs - tc.want; d < -0.02 || d > 0.02 || row.Duration-secs > 0.001 || secs-row.Duration > 0.001 {
				t.Fatalf("%s: the file holds %.3f s, the catalog says %.3f s; want %.1f s", tc.trim, secs, row.Duration, tc.want)
			}
			if tc.trim == "trim-silence" {
				// It starts with the speech (within the few quiet samples of
				// the chirp's first cycle).
				want := g711(speech)
				off := len(want) - len(got)
				for i := 0; i < 400; i++ {
					if got[i] != want[off+i] {
						t.Fatalf("trimmed audio sample %d: %d, want %d (speech from %d)", i, got[i], want[off+i], off)
					}
				}
			}
			n.mustDo("DELETE", "/channels/"+id, 204)
		})
	}
}

// TestTwilioRecordingTrack: RecordingTrack=inbound records only what the
// caller sends (its 440 Hz), outbound only what it hears (a 1800 Hz tone
// played to it), both as before; a one-direction track cannot be
// dual-channel.
func TestTwilioRecordingTrack(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	acc := defaultAccount(t, n)
	for _, tc := range []struct {
		track      string
		loud, mute float64
	}{{"inbound", 440, 1800}, {"outbound", 1800, 440}} {
		t.Run(tc.track, func(t *testing.T) {
			phone := newPhone(t, "udp")
			id, call := answeredCall(t, n, events, phone, "356")
			_, body := n.do("GET", "/channels/"+id+"/variable?variable=CALLSID", nil)
			var v struct{ Value string }
			_ = json.Unmarshal(body, &v)
			path := "/Calls/" + v.Value + "/Recordings"
			if code, body := twilioForm(t, n, acc, path+".json", url.Values{"RecordingTrack": {tc.track}, "RecordingChannels": {"dual"}}); code != 400 {
				t.Fatalf("%s dual: %d %s, want 400", tc.track, code, body)
			}
			code, body := twilioForm(t, n, acc, path+".json", url.Values{"RecordingTrack": {tc.track}})
			var created struct {
				Sid   string `json:"sid"`
				Track string `json:"track"`
			}
			if code != 201 || json.Unmarshal(body, &created) != nil || created.Track != tc.track {
				t.Fatalf("start: %d %s", code, body)
			}
			n.mustDo("POST", "/channels/"+id+"/play?media="+urlq("tone:!1800/1500"), 201)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			must(t, call.SendAudio(ctx, sine(440, 8000*3/2, 8000)))
			events.skipTo("PlaybackFinished", 5*time.Second)
			if code, body := twilioForm(t, n, acc, path+"/"+created.Sid+".json", url.Values{"Status": {"stopped"}}); code != 200 {
				t.Fatalf("stop: %d %s", code, body)
			}
			var row meta.Recording
			pollFor(t, 10*time.Second, func() bool {
				var err error
				row, err = n.srv.Catalog().Meta.Recording(context.Background(), acc.Sid, created.Sid)
				return err == nil && row.Status == meta.StatusCompleted
			}, "the recording to complete")
			_, pcm := readWAV(t, filepath.Join(n.recDir(), row.FilePath))
			if len(pcm) < 8000 {
				t.Fatalf("%s: %d samples", tc.track, len(pcm))
			}
			if !dominant(pcm, tc.loud, tc.mute) {
				t.Fatalf("%s: %v Hz %.0f, %v Hz %.0f: not only the %s audio", tc.track, tc.loud, goertzel(pcm, tc.loud), tc.mute, goertzel(pcm, tc.mute), tc.track)
			}
			n.mustDo("DELETE", "/channels/"+id, 204)
		})
	}
}

// toneFrames classifies each 20 ms frame of pcm: 'a' when a carries it
// (f1 Hz, clearly more than f2), 'b' for f2, 'x' for both, '.' for neither.
func toneFrames(pcm []int16, f1, f2 float64) string {
	var b strings.Builder
	for off := 0; off+160 <= len(pcm); off += 160 {
		fr := pcm[off : off+160]
		p1, p2 := goertzel(fr, f1), goertzel(fr, f2)
		const loud = 1e5
		switch {
		case p1 > loud && p2 > loud && p1 < 20*p2 && p2 < 20*p1:
			b.WriteByte('x')
		case p1 > loud && p1 > 20*p2:
			b.WriteByte('a')
		case p2 > loud && p2 > 20*p1:
			b.WriteByte('b')
		default:
			b.WriteByte('.')
		}
	}
	return b.String()
}

// edgeOwn is s (toneFrames) with each 'x' next to a frame of own read as own.
func edgeOwn(s string, own byte) string {
	b := []byte(s)
	for i := range b {
		if b[i] == 'x' && ((i > 0 && s[i-1] == own) || (i+1 < len(s) && s[i+1] == own)) {
			b[i] = own
		}
	}
	return string(b)
}

// runs lists the runs of c in s as [first, last] frame indexes; holes of up
// to 10 frames of nothing ('.') inside a run do not break it (the test
// phone's sender may stall on a loaded host, and its audio is then placed
// by its arrival).
func runs(s string, c byte) [][2]int {
	var out [][2]int
	for i := 0; i < len(s); i++ {
		if s[i] != c {
			continue
		}
		j := i
		for {
			k := j + 1
			for k < len(s) && k-j <= 10 && s[k] == '.' {
				k++
			}
			if k >= len(s) || s[k] != c {
				break
			}
			j = k
		}
		out = append(out, [2]int{i, j})
		i = j
	}
	return out
}

// TestTwilioRecordingTrackBoth: RecordingTrack=both on a call that is not
// bridged records what the caller sends (a second of 440 Hz, twice) and
// what tapedeck sends it (a second of an 1800 Hz tone played between the
// two), aligned by time: mono holds the three in that order, dual the
// caller on the first channel and the tone on the second, the tone's
// frames between the caller's two stretches (within a frame, as the
// tone was played after the first and before the second).
func TestTwilioRecordingTrackBoth(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	acc := defaultAccount(t, n)
	for _, channels := range []string{"mono", "dual"} {
		t.Run(channels, func(t *testing.T) {
			phone := newPhone(t, "udp")
			id, call := answeredCall(t, n, events, phone, "356")
			_, body := n.do("GET", "/channels/"+id+"/variable?variable=CALLSID", nil)
			var v struct{ Value string }
			_ = json.Unmarshal(body, &v)
			path := "/Calls/" + v.Value + "/Recordings"
			code, body := twilioForm(t, n, acc, path+".json", url.Values{"RecordingTrack": {"both"}, "RecordingChannels": {channels}})
			var created struct {
				Sid      string `json:"sid"`
				Track    string `json:"track"`
				Channels int    `json:"channels"`
			}
			wantCh := map[string]int{"mono": 1, "dual": 2}[channels]
			if code != 201 || json.Unmarshal(body, &created) != nil || created.Track != "both" || created.Channels != wantCh {
				t.Fatalf("start: %d %s", code, body)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			must(t, call.SendAudio(ctx, sine(440, 8000, 8000)))
			waitRx(t, n, id, 50)
			n.mustDo("POST", "/channels/"+id+"/play?media="+urlq("tone:!1800/1000"), 201)
			events.skipTo("PlaybackFinished", 5*time.Second)
			must(t, call.SendAudio(ctx, sine(440, 8000, 8000)))
			waitRx(t, n, id, 100)
			if code, body := twilioForm(t, n, acc, path+"/"+created.Sid+".json", url.Values{"Status": {"stopped"}}); code != 200 {
				t.Fatalf("stop: %d %s", code, body)
			}
			var row meta.Recording
			pollFor(t, 10*time.Second, func() bool {
				var err error
				row, err = n.srv.Catalog().Meta.Recording(context.Background(), acc.Sid, created.Sid)
				return err == nil && row.Status == meta.StatusCompleted
			}, "the recording to complete")
			if row.Channels != wantCh {
				t.Errorf("catalog: %d channels, want %d", row.Channels, wantCh)
			}
			file := filepath.Join(n.recDir(), row.FilePath)
			// near: a run of about a second (50 frames).
			second := func(what string, r [2]int) {
				t.Helper()
				if l := r[1] - r[0] + 1; l < 46 || l > 64 {
					t.Errorf("%s: %d frames, want about 50", what, l)
				}
			}
			var as, bs [][2]int
			if channels == "mono" {
				_, pcm := readWAV(t, file)
				fr := toneFrames(pcm, 440, 1800)
				t.Logf("frames: %s", fr)
				as, bs = runs(fr, 'a'), runs(fr, 'b')
				if x := strings.Count(fr, "x"); x > 2 {
					t.Errorf("%d frames hold both tones: the tone was played while the caller was silent", x)
				}
			} else {
				left, right := readStereoWAV(t, file)
				fl, fr := toneFrames(left, 440, 1800), toneFrames(right, 440, 1800)
				t.Logf("left:  %s\nright: %s", fl, fr)
				// A frame that holds only the first or last few samples of
				// a channel's own tone (its frames placed by time, not on
				// the recording's 20 ms grid, as on a busy host) leaks
				// enough at the other frequency to read as both ('x'): such
				// a frame at the edge of the channel's own run is its own.
				if strings.ContainsAny(edgeOwn(fl, 'a'), "bx") || strings.ContainsAny(edgeOwn(fr, 'b'), "ax") {
					t.Errorf("a channel holds the other direction's tone")
				}
				as, bs = runs(fl, 'a'), runs(fr, 'b')
			}
			if len(as) != 2 || len(bs) != 1 {
				t.Fatalf("runs of the caller's tone %v, of the played tone %v; want 2 and 1", as, bs)
			}
			second("caller, first", as[0])
			second("caller, second", as[1])
			second("tone", bs[0])
			if bs[0][0] < as[0][1] || bs[0][1] > as[1][0] {
				t.Errorf("the played tone (frames %v) is not between the caller's (%v): not aligned by time", bs[0], as)
			}
			n.mustDo("DELETE", "/channels/"+id, 204)
		})
	}
}

// TestTwilioTrackOnBridgedCall: on a bridged two-party call, inbound
// records only what the caller sends (440 Hz), not the other party (1000
// Hz), and outbound only what the caller hears (the other party).
func TestTwilioTrackOnBridgedCall(t *testing.T) {
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
	n.mustDo("POST", "/channels?endpoint="+urlq(fmt.Sprintf("PJSIP/bob@127.0.0.1:%d", callee.Port()))+"&app=test&channelId=leg-b", 200)
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
	path := "/Calls/" + v.Value + "/Recordings"
	for _, tc := range []struct {
		track      string
		loud, mute float64
	}{{"inbound", 440, 1000}, {"outbound", 1000, 440}} {
		code, body := twilioForm(t, n, acc, path+".json", url.Values{"RecordingTrack": {tc.track}})
		var created struct {
			Sid string `json:"sid"`
		}
		if code != 201 || json.Unmarshal(body, &created) != nil {
			t.Fatalf("%s: start: %d %s", tc.track, code, body)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _ = callA.SendAudio(ctx, sine(440, 8000*3/2, 8000)) }()
		go func() { defer wg.Done(); _ = callB.SendAudio(ctx, sine(1000, 8000*3/2, 8000)) }()
		wg.Wait()
		cancel()
		if code, body := twilioForm(t, n, acc, path+"/"+created.Sid+".json", url.Values{"Status": {"stopped"}}); code != 200 {
			t.Fatalf("%s: stop: %d %s", tc.track, code, body)
		}
		var row meta.Recording
		pollFor(t, 10*time.Second, func() bool {
			row, err = n.srv.Catalog().Meta.Recording(context.Background(), acc.Sid, created.Sid)
			return err == nil && row.Status == meta.StatusCompleted
		}, "the recording to complete")
		_, pcm := readWAV(t, filepath.Join(n.recDir(), row.FilePath))
		if len(pcm) < 8000 || !dominant(pcm, tc.loud, tc.mute) {
			t.Fatalf("%s on a bridged call (%d samples): %v Hz %.0f, %v Hz %.0f", tc.track, len(pcm), tc.loud, goertzel(pcm, tc.loud),
				tc.mute, goertzel(pcm, tc.mute))
		}
	}
}

// TestBridgeRecordingCompleteness: a bridge (mixed) recording of a
// two-party call, where the caller's packets are lost 5 % (and six
// duplicated) and the callee's arrive whole, reports its parties'
// figures: the sums (expected about 200, lost 5 within a packet) and,
// per party (tapedeck's extension), the caller's loss and copies and the
// callee's none, in the catalog and the Twilio API; the loss passed the
// threshold, so it is degraded.
func TestBridgeRecordingCompleteness(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.Recording.DegradedLossPercent = 2 })
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
	n.mustDo("POST", "/channels?endpoint="+urlq(fmt.Sprintf("PJSIP/bob@127.0.0.1:%d", callee.Port()))+"&app=test&channelId=leg-b", 200)
	events.skipTo("StasisStart", 10*time.Second)
	var callB *sipua.Call
	select {
	case callB = <-callee.Incoming():
	case <-time.After(5 * time.Second):
		t.Fatal("callee did not get the call")
	}
	n.mustDo("POST", "/bridges?bridgeId=brq", 200)
	n.mustDo("POST", "/bridges/brq/addChannel?channel="+aID+",leg-b", 204)
	for range 2 {
		events.skipTo("ChannelEnteredBridge", 5*time.Second)
	}
	n.mustDo("POST", "/bridges/brq/record?name=brq&format=wav", 201)
	events.skipTo("RecordingStarted", 5*time.Second)
	lost, lose, dup, _ := lossyPattern()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sendPackets(t, callB, sine(1000, 8000*2, 8000), 0x7777, 9000, 900, nil, nil, nil)
	}()
	sendPackets(t, callA, sine(440, 8000*2, 8000), 0x4321, 5000, 200, lose, dup, nil)
	wg.Wait()
	waitRx(t, n, aID, 100-len(lost))
	waitRx(t, n, "leg-b", 100)
	n.mustDo("POST", "/recordings/live/brq/stop", 204)
	events.skipTo("RecordingFinished", 5*time.Second)
	row, err := n.srv.Catalog().Meta.RecordingByName(context.Background(), "brq")
	if err != nil || row.Quality == nil {
		t.Fatalf("catalog row: %v %+v", err, row.Quality)
	}
	q := row.Quality
	raw, _ := json.Marshal(q)
	t.Logf("quality: %s", raw)
	if abs64(q.PacketsExpected-200) > 2 || abs64(q.PacketsLost-int64(len(lost))) > 1 ||
		q.PacketsReceived != q.PacketsExpected-q.PacketsLost || q.PacketsDuplicated != 6 || !q.Degraded {
		t.Errorf("sums: expected %d received %d lost %d duplicated %d degraded %v; want 200, 195, 5, 6, true",
			q.PacketsExpected, q.PacketsReceived, q.PacketsLost, q.PacketsDuplicated, q.Degraded)
	}
	if len(q.Parties) != 2 {
		t.Fatalf("parties %+v, want the caller and the callee", q.Parties)
	}
	for _, p := range q.Parties {
		switch p.Channel {
		case aID:
			if abs64(p.PacketsExpected-100) > 1 || abs64(p.PacketsLost-int64(len(lost))) > 1 || p.PacketsDuplicated != 6 ||
				p.LossSilenceMs < 20*int64(len(lost)-1) || p.LossSilenceMs > 200 {
				t.Errorf("caller: %+v, want 100 expected, 5 lost, 6 duplicated, about 100 ms of silence played for the loss", p)
			}
		case "leg-b":
			if abs64(p.PacketsExpected-100) > 1 || p.PacketsLost != 0 || p.PacketsDuplicated != 0 {
				t.Errorf("callee: %+v, want 100 expected, none lost or duplicated", p)
			}
		default:
			t.Errorf("party %+v is neither", p)
		}
	}
	// The Twilio API shows them (tapedeck_quality).
	code, body := rc(t, n, acc, "GET", "/2010-04-01/Accounts/"+acc.Sid+"/Recordings/"+row.Sid+".json")
	var tj struct {
		Quality struct {
			PacketsLost int64 `json:"packets_lost"`
			Parties     []struct {
				Channel     string `json:"channel"`
				PacketsLost int64  `json:"packets_lost"`
			} `json:"parties"`
		} `json:"tapedeck_quality"`
	}
	if code != 200 || json.Unmarshal(body, &tj) != nil || tj.Quality.PacketsLost != q.PacketsLost || len(tj.Quality.Parties) != 2 {
		t.Errorf("twilio: %d %s", code, body)
	}
	// And Restcomm's XML (its default encoding).
	code, body = rc(t, n, acc, "GET", "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Recordings/"+row.Sid)
	var rx struct {
		Recording struct {
			Quality struct {
				PacketsLost int64
				Parties     struct {
					Items []struct {
						Channel     string
						PacketsLost int64
					} `xml:"Party"`
				}
			}
		}
	}
	if code != 200 || xml.Unmarshal(body, &rx) != nil || rx.Recording.Quality.PacketsLost != q.PacketsLost ||
		len(rx.Recording.Quality.Parties.Items) != 2 {
		t.Errorf("restcomm xml: %d %s", code, body)
	}
}
