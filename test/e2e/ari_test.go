package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sipua"
)

func rawRequest(t *testing.T, method, u, ctype, body string, auth func(*http.Request)) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if auth != nil {
		auth(req)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

func basic(user, pass string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

// answeredCall places a call to exten and answers it over ARI.
func answeredCall(t *testing.T, n *node, events *ariEvents, phone *sipua.Phone, exten string) (string, *sipua.Call) {
	t.Helper()
	res := dialAsync(phone, n.target(exten), sipua.CallOptions{})
	id := channelID(events.skipTo("StasisStart", 5*time.Second))
	n.mustDo("POST", "/channels/"+id+"/answer", 204)
	r := wait(t, res, 10*time.Second, "answer")
	if r.err != nil {
		t.Fatal(r.err)
	}
	events.skipTo("ChannelStateChange", 5*time.Second)
	return id, r.call
}

func TestARIAuth(t *testing.T) {
	n := startNode(t)
	base := n.baseURL() + "/ari/asterisk/info"
	for name, auth := range map[string]func(*http.Request){
		"none":             nil,
		"wrong password":   basic("asterisk", "nope"),
		"unknown user":     basic("root", "asterisk"),
		"wrong api_key":    func(r *http.Request) { r.URL.RawQuery = "api_key=asterisk:nope" },
		"malformed apikey": func(r *http.Request) { r.URL.RawQuery = "api_key=asterisk" },
	} {
		code, h, body := rawRequest(t, "GET", base, "", "", auth)
		if code != 401 || !strings.Contains(h.Get("WWW-Authenticate"), "Basic") || !strings.Contains(body, `"message"`) {
			t.Errorf("%s: %d %q %s, want 401 with WWW-Authenticate and a message", name, code, h.Get("WWW-Authenticate"), body)
		}
	}
	if code, _, body := rawRequest(t, "GET", base+"?api_key=asterisk:asterisk", "", "", nil); code != 200 || !strings.Contains(body, `"entity_id"`) {
		t.Errorf("api_key: %d %s", code, body)
	}
	code, _, body := rawRequest(t, "GET", base, "", "", basic("asterisk", "asterisk"))
	if code != 200 {
		t.Fatalf("basic: %d", code)
	}
	var info struct {
		System struct {
			EntityID string `json:"entity_id"`
		} `json:"system"`
		Status struct {
			StartupTime string `json:"startup_time"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		t.Fatal(err)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000-0700", info.Status.StartupTime); err != nil {
		t.Errorf("startup_time %q is not an ARI date: %v", info.Status.StartupTime, err)
	}
	if info.System.EntityID != n.srv.Bus().EntityID() {
		t.Errorf("entity_id %q", info.System.EntityID)
	}
	// Only asked-for sections.
	if code, _, body := rawRequest(t, "GET", base+"?only=system", "", "", basic("asterisk", "asterisk")); code != 200 || strings.Contains(body, "build") {
		t.Errorf("only=system: %d %s", code, body)
	}
}

func TestConfiguredUsersReplaceDefault(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.ARI.Users = []config.ARIUser{{Name: "app", Password: "s3cret"}} })
	base := n.baseURL() + "/ari/channels"
	if code, _, _ := rawRequest(t, "GET", base, "", "", basic("asterisk", "asterisk")); code != 401 {
		t.Errorf("default user still accepted: %d", code)
	}
	if code, _, _ := rawRequest(t, "GET", base, "", "", basic("app", "s3cret")); code != 200 {
		t.Errorf("configured user refused: %d", code)
	}
}

func TestARIErrors(t *testing.T) {
	n := startNode(t, func(c *config.Config) {
		c.Dialplan = append(c.Dialplan, config.Route{Exten: "800", App: "Wait(20)"})
	})
	events := n.connect("test")
	phone := newPhone(t, "udp")
	auth := basic("asterisk", "asterisk")
	ari := n.baseURL() + "/ari"

	// Unknown channel.
	for _, c := range []struct{ method, path string }{
		{"GET", "/channels/nope"}, {"POST", "/channels/nope/answer"}, {"DELETE", "/channels/nope"},
		{"POST", "/channels/nope/dtmf?dtmf=1"}, {"GET", "/channels/nope/variable?variable=X"},
	} {
		code, _, body := rawRequest(t, c.method, ari+c.path, "", "", auth)
		if code != 404 || !strings.Contains(body, `"message":"Channel not found"`) {
			t.Errorf("%s %s: %d %s, want 404 Channel not found", c.method, c.path, code, body)
		}
	}
	// Unknown path, trailing slash, wrong method.
	if code, _, _ := rawRequest(t, "GET", ari+"/nothing", "", "", auth); code != 404 {
		t.Errorf("unknown path: %d", code)
	}
	if code, _, body := rawRequest(t, "GET", ari+"/channels/", "", "", auth); code != 404 || !strings.Contains(body, "slash") {
		t.Errorf("trailing slash: %d %s", code, body)
	}
	if code, h, _ := rawRequest(t, "PUT", ari+"/channels", "", "", auth); code != 405 || !strings.Contains(h.Get("Allow"), "GET") {
		t.Errorf("PUT /channels: %d Allow=%q", code, h.Get("Allow"))
	}

	// A channel that is not in a Stasis application: visible, but not controllable.
	waitCtx, cancelWait := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		_, err := phone.Dial(waitCtx, n.target("800"), sipua.CallOptions{})
		res <- err
	}()
	var waitID string
	pollFor(t, 5*time.Second, func() bool {
		_, body := n.do("GET", "/channels", nil)
		var list []map[string]any
		_ = json.Unmarshal(body, &list)
		for _, ch := range list {
			if ch["dialplan"].(map[string]any)["app_name"] == "Wait" {
				waitID = ch["id"].(string)
			}
		}
		return waitID != ""
	}, "the Wait channel to appear")
	for _, p := range []string{"/answer", "/ring", "/dtmf?dtmf=1", "/mute", "/hold"} {
		if code, _, body := rawRequest(t, "POST", ari+"/channels/"+waitID+p, "", "", auth); code != 409 {
			t.Errorf("POST %s on channel not in Stasis: %d %s, want 409", p, code, body)
		}
	}

	// A Stasis channel before answer: media operations need an inbound or
	// answered state; answering works.
	id, call := answeredCall(t, n, events, phone, "309")
	_ = call
	for _, c := range []struct{ method, path string }{
		{"DELETE", "/channels/" + id + "?reason=bogus"},
		{"DELETE", "/channels/" + id + "?reason=busy&reason_code=17"},
		{"DELETE", "/channels/" + id + "?reason_code=abc"},
		{"POST", "/channels/" + id + "/mute?direction=sideways"},
		{"POST", "/channels/" + id + "/dtmf"},
		{"POST", "/channels/" + id + "/dtmf?dtmf=1&duration=abc"},
		{"GET", "/channels/" + id + "/variable"},
	} {
		if code, _, body := rawRequest(t, c.method, ari+c.path, "", "", auth); code != 400 || !strings.Contains(body, `"message"`) {
			t.Errorf("%s %s: %d %s, want 400", c.method, c.path, code, body)
		}
	}
	// Malformed JSON body.
	if code, _, _ := rawRequest(t, "POST", ari+"/channels/"+id+"/variable", "application/json", `{"variable":`, auth); code != 400 {
		t.Errorf("malformed JSON: %d", code)
	}
	// WebSocket without app.
	if code, _, _ := rawRequest(t, "GET", ari+"/events", "", "", auth); code != 400 {
		t.Errorf("events without app: %d", code)
	}
	// None of that hurt the call.
	body := n.mustDo("GET", "/channels/"+id, 200)
	if !strings.Contains(string(body), `"state":"Up"`) {
		t.Fatalf("call state after bad requests: %s", body)
	}
	// The waiting caller gives up; its channel goes away.
	cancelWait()
	if err := wait(t, res, 10*time.Second, "canceled Wait call"); err == nil {
		t.Fatal("Wait() answered the call")
	}
	pollFor(t, 5*time.Second, func() bool { c, _ := n.do("GET", "/channels/"+waitID, nil); return c == 404 }, "Wait channel gone")
}

func pollFor(t testing.TB, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestVariablesAndParams(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	phone := newPhone(t, "udp")
	id, _ := answeredCall(t, n, events, phone, "310")
	auth := basic("asterisk", "asterisk")
	ari := n.baseURL() + "/ari/channels/" + id

	// Query, form and JSON body parameters all work; JSON wins over query.
	if code, _, b := rawRequest(t, "POST", ari+"/variable?variable=Q&value=query", "", "", auth); code != 204 {
		t.Fatalf("query: %d %s", code, b)
	}
	if code, _, b := rawRequest(t, "POST", ari+"/variable", "application/x-www-form-urlencoded", "variable=F&value=form", auth); code != 204 {
		t.Fatalf("form: %d %s", code, b)
	}
	if code, _, b := rawRequest(t, "POST", ari+"/variable?variable=J&value=lost", "application/json; charset=utf-8", `{"value":"json"}`, auth); code != 204 {
		t.Fatalf("json: %d %s", code, b)
	}
	for name, want := range map[string]string{"Q": "query", "F": "form", "J": "json"} {
		ev := events.expect("ChannelVarset", 5*time.Second)
		_ = ev
		_, body := n.do("GET", "/channels/"+id+"/variable?variable="+name, nil)
		if !strings.Contains(string(body), `"value":"`+want+`"`) {
			t.Errorf("variable %s = %s, want %s", name, body, want)
		}
	}
	// Body parameter "variables".
	if code, b := n.do("POST", "/channels/"+id+"/variables", map[string]any{"variables": map[string]string{"A": "1", "B": "2"}}); code != 204 {
		t.Fatalf("setChannelVars: %d %s", code, b)
	}
	_, body := n.do("GET", "/channels/"+id+"/variables?variables=A,B,CALLERID(num)", nil)
	var vars struct{ Variables map[string]string }
	if err := json.Unmarshal(body, &vars); err != nil || vars.Variables["A"] != "1" || vars.Variables["B"] != "2" || vars.Variables["CALLERID(num)"] != "alice" {
		t.Fatalf("getChannelVars: %s", body)
	}
	if code, _ := n.do("GET", "/channels/"+id+"/variable?variable=NOPE", nil); code != 404 {
		t.Errorf("unknown variable: %d", code)
	}
	// ari-client sends DELETE with a JSON content type and no body.
	if code, _, b := rawRequest(t, "DELETE", ari+"/mute?direction=in", "application/json", "", auth); code != 204 {
		t.Errorf("DELETE with JSON content type and empty body: %d %s", code, b)
	}
	for _, p := range []string{"/mute?direction=out", "/hold", "/silence"} {
		if code, _, b := rawRequest(t, "POST", ari+p, "", "", auth); code != 204 {
			t.Errorf("POST %s: %d %s", p, code, b)
		}
		if code, _, b := rawRequest(t, "DELETE", ari+p, "", "", auth); code != 204 {
			t.Errorf("DELETE %s: %d %s", p, code, b)
		}
	}
	events.skipTo("ChannelHold", 5*time.Second)
	events.skipTo("ChannelUnhold", 5*time.Second)
}

func TestApplications(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	other := n.connect("watcher")
	phone := newPhone(t, "udp")
	id, call := answeredCall(t, n, events, phone, "311")

	_, body := n.do("GET", "/applications", nil)
	if !strings.Contains(string(body), `"name":"test"`) || !strings.Contains(string(body), `"name":"watcher"`) {
		t.Fatalf("applications: %s", body)
	}
	_, body = n.do("GET", "/applications/test", nil)
	if !strings.Contains(string(body), `"channel_ids":["`+id+`"]`) {
		t.Fatalf("application test: %s", body)
	}
	if code, _ := n.do("GET", "/applications/none", nil); code != 404 {
		t.Errorf("unknown app: %d", code)
	}
	for _, c := range []struct {
		method, q string
		code      int
	}{
		{"POST", "", 400},
		{"POST", "eventSource=bogus:1", 400},
		{"POST", "eventSource=channel:nope", 422},
		{"DELETE", "eventSource=channel:" + id, 409},
		{"POST", "eventSource=channel:" + id, 200},
	} {
		if code, b := n.do(c.method, "/applications/watcher/subscription?"+c.q, nil); code != c.code {
			t.Errorf("%s subscription?%s: %d %s, want %d", c.method, c.q, code, b, c.code)
		}
	}
	// The watcher now sees the channel's events.
	if err := call.SendDTMF("9", 100*time.Millisecond, 0); err != nil {
		t.Fatal(err)
	}
	if ev := other.expect("ChannelDtmfReceived", 5*time.Second); ev["application"] != "watcher" {
		t.Fatalf("watcher event %v", ev)
	}
	events.expect("ChannelDtmfReceived", 5*time.Second)
	if code, _ := n.do("DELETE", "/applications/watcher/subscription?eventSource=channel:"+id, nil); code != 200 {
		t.Fatalf("unsubscribe: %d", code)
	}
	// Event filter: only allow DTMF for test.
	code, b := n.do("PUT", "/applications/test/eventFilter", map[string]any{"filter": map[string]any{"allowed": []map[string]string{{"type": "ChannelDtmfReceived"}}}})
	if code != 200 || !strings.Contains(string(b), `"events_allowed":[{"type":"ChannelDtmfReceived"}]`) {
		t.Fatalf("eventFilter: %d %s", code, b)
	}
	n.mustDo("POST", "/channels/"+id+"/hold", 204) // ChannelHold is filtered out
	if err := call.SendDTMF("3", 100*time.Millisecond, 0); err != nil {
		t.Fatal(err)
	}
	if ev := events.expect("ChannelDtmfReceived", 5*time.Second); ev["digit"] != "3" {
		t.Fatalf("after filter: %v", ev)
	}
	if ev := other.nextEvent(200 * time.Millisecond); ev != nil {
		t.Fatalf("watcher still subscribed: %v", ev)
	}
}

// TestApplicationReplaced: a second socket for the same app takes over;
// the first is told ApplicationReplaced and closed.
func TestApplicationReplaced(t *testing.T) {
	n := startNode(t)
	first := n.connect("test")
	second := n.connect("test")
	ev := first.expect("ApplicationReplaced", 5*time.Second)
	if ev["application"] != "test" {
		t.Fatalf("replaced event %v", ev)
	}
	wait(t, first.done, 5*time.Second, "first socket closed")
	phone := newPhone(t, "udp")
	dialAsync(phone, n.target("312"), sipua.CallOptions{})
	second.expect("StasisStart", 5*time.Second)
}

// TestSlowClient: a client that stops reading is dropped when its bounded
// queue overflows; publishing (and every call) never blocks on it.
func TestSlowClient(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.ARI.EventQueue = 8 })
	events := n.connect("test")
	phone := newPhone(t, "udp")
	_, call := answeredCall(t, n, events, phone, "313")

	// The "other" application never reads its socket.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	slow, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://%s/ari/events?app=other&api_key=asterisk:asterisk", n.srv.HTTPAddr()), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.CloseNow()
	slow.SetReadLimit(1 << 24)
	pollFor(t, 5*time.Second, func() bool { c, _ := n.do("GET", "/applications/other", nil); return c == 200 }, "slow app registered")
	dialAsync(phone, n.target("401"), sipua.CallOptions{})
	var slowID string
	pollFor(t, 5*time.Second, func() bool {
		_, b := n.do("GET", "/applications/other", nil)
		var app struct {
			ChannelIDs []string `json:"channel_ids"`
		}
		_ = json.Unmarshal(b, &app)
		if len(app.ChannelIDs) == 1 {
			slowID = app.ChannelIDs[0]
		}
		return slowID != ""
	}, "a channel in the slow app")
	// Answered, so that the phone's dial timeout (15 s) cannot end the call
	// while a busy host takes its time over the large events below.
	n.mustDo("POST", "/channels/"+slowID+"/answer", 204)

	// Large events fill the socket buffers, then the queue of 8.
	big := strings.Repeat("x", 256*1024)
	start := time.Now()
	for i := 0; i < 64; i++ {
		code, b := n.do("POST", "/channels/"+slowID+"/variable", map[string]string{"variable": fmt.Sprintf("V%d", i), "value": big})
		if code != 204 {
			t.Fatalf("set variable: %d %s", code, b)
		}
	}
	t.Logf("64 large events published in %v", time.Since(start))
	pollFor(t, 10*time.Second, func() bool { c, _ := n.do("GET", "/applications/other", nil); return c == 404 }, "slow app dropped")
	// The reading client and its call are unaffected.
	if err := call.SendDTMF("8", 100*time.Millisecond, 0); err != nil {
		t.Fatal(err)
	}
	if ev := events.skipTo("ChannelDtmfReceived", 10*time.Second); ev["digit"] != "8" {
		t.Fatalf("digit %v", ev)
	}
	// The slow client, once it reads, finds its connection closed (with
	// the reason when the close frame still fitted into the socket). (A
	// deadline of its own: on a busy host the events above take 20 s.)
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		_, _, err := slow.Read(ctx)
		if err != nil {
			var closeErr websocket.CloseError
			if errorsAs(err, &closeErr) && closeErr.Code != websocket.StatusPolicyViolation {
				t.Fatalf("slow client closed with %v, want policy violation", closeErr)
			}
			if ctx.Err() != nil {
				t.Fatal("slow client still connected")
			}
			t.Logf("slow client disconnected: %v", err)
			break
		}
	}
}

// /healthz: public liveness is a bare "ok" (issue 12: it used to show heap
// and goroutines to anyone); with ARI credentials, the text line for humans
// and scripts, JSON for the load generator (channels, goroutines and the Go
// live heap its soak run follows). Wrong credentials answer 401.
func TestHealthz(t *testing.T) {
	n := startNode(t)
	get := func(path string, auth func(*http.Request)) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", n.baseURL()+path, nil)
		if auth != nil {
			auth(req)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	basicOK := func(r *http.Request) { r.SetBasicAuth("asterisk", "asterisk") }
	if code, b := get("/healthz", nil); code != 200 || b != "ok\n" {
		t.Fatalf("public healthz: %d %q, want 200 \"ok\"", code, b)
	}
	if code, b := get("/healthz?format=json", nil); code != 200 || b != `{"status":"ok"}`+"\n" {
		t.Fatalf("public healthz JSON: %d %q, want only the status", code, b)
	}
	if code, b := get("/healthz?format=json", func(r *http.Request) { r.SetBasicAuth("asterisk", "wrong") }); code != 401 || strings.Contains(b, "goroutines") {
		t.Fatalf("healthz with wrong credentials: %d %q", code, b)
	}
	if code, b := get("/healthz", basicOK); code != 200 || !strings.HasPrefix(b, "ok 0 channels ") || !strings.Contains(b, "goroutines") {
		t.Fatalf("healthz: %d %q", code, b)
	}
	// An unparsable datagram is counted, and the count is among the details.
	sipConn, err := net.Dial("udp", n.srv.SIPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer sipConn.Close()
	sipConn.Write([]byte("NOT SIP AT ALL\r\n\r\n"))
	waitFor(t, 5*time.Second, "the malformed datagram counted", func() bool { return n.srv.SIPStats().MalformedDropped >= 1 })
	for _, c := range []struct {
		path string
		auth func(*http.Request)
	}{{"/healthz?format=json", basicOK}, {"/healthz?format=json&api_key=asterisk:asterisk", nil}} {
		code, b := get(c.path, c.auth)
		var h struct {
			Status     string `json:"status"`
			Channels   *int   `json:"channels"`
			Goroutines int    `json:"goroutines"`
			HeapLive   int64  `json:"heap_live_bytes"`
			GoHeld     int64  `json:"go_held_bytes"`
			SIP        struct {
				MalformedDropped uint64 `json:"malformed_dropped"`
			} `json:"sip"`
		}
		if err := json.Unmarshal([]byte(b), &h); err != nil || code != 200 {
			t.Fatalf("%s: %d %q: %v", c.path, code, b, err)
		}
		if h.Status != "ok" || h.Channels == nil || *h.Channels != 0 || h.Goroutines <= 0 || h.HeapLive <= 0 || h.GoHeld < h.HeapLive || h.SIP.MalformedDropped < 1 {
			t.Fatalf("healthz JSON %+v", h)
		}
	}
}
