package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/recorder"
	rtpsess "github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/sounds"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/baresip"
	"github.com/tapedeck/tapedeck/internal/testutil/versitygw"
	"github.com/tapedeck/tapedeck/internal/webhook"
)

// receiver is a real HTTP server on loopback that collects form POSTs
// (FinishedUrl notifications) and can serve OzML.
type receiver struct {
	t   testing.TB
	srv *http.Server
	l   net.Listener

	mu    sync.Mutex
	posts []recvPost
	wake  chan struct{}
	// answer, when set, answers a request.
	answer func(path string, form url.Values) (status int, body string)
}

type recvPost struct {
	Path   string
	Form   url.Values
	Header http.Header
	Body   []byte
}

func startReceiver(t testing.TB) *receiver {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, l: l, wake: make(chan struct{}, 1)}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve)}
	go r.srv.Serve(l)
	t.Cleanup(func() { r.srv.Close() })
	return r
}

func (r *receiver) url(path string) string { return "http://" + r.l.Addr().String() + path }

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	form, _ := url.ParseQuery(string(body))
	r.mu.Lock()
	r.posts = append(r.posts, recvPost{Path: req.URL.Path, Form: form, Header: req.Header.Clone(), Body: body})
	answer := r.answer
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	if answer != nil {
		status, b := answer(req.URL.Path, form)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		io.WriteString(w, b)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// waitPost waits for a POST with the notification name.
func (r *receiver) waitPost(name string, timeout time.Duration) recvPost {
	r.t.Helper()
	var got recvPost
	testutil.Eventually(r.t, timeout, 20*time.Millisecond, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, p := range r.posts {
			if p.Form.Get("NotificationName") == name {
				got = p
				return true
			}
		}
		return false
	}, "no %s notification", name)
	return got
}

func (r *receiver) count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, p := range r.posts {
		if p.Form.Get("NotificationName") == name {
			n++
		}
	}
	return n
}

// ozekiNode is a node with the command API's own listener, one API user
// and the receiver's address allowed for notifications.
func ozekiNode(t testing.TB, route, app string, more ...func(*config.Config)) *node {
	muts := []func(*config.Config){withRoute(route, app), func(c *config.Config) {
		c.Ozeki.Listen = "127.0.0.1:0"
		c.Ozeki.Users = []config.OzekiUser{{Username: "HTTP_User_1", Password: "qwe123"}}
		c.Webhook.Allow = []string{"127.0.0.1"}
		c.Webhook.Secret = "s3cret"
		c.Webhook.BackoffSeconds = 1
	}}
	return startNode(t, append(muts, more...)...)
}

// ozekiGet runs a command URL (path and query) on the API's own listener.
func (n *node) ozekiGet(pathQuery string) string {
	n.t.Helper()
	res, err := http.Get("http://" + n.srv.OzekiAddr() + pathQuery)
	if err != nil {
		n.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		n.t.Fatalf("HTTP %d, want always 200: %s", res.StatusCode, b)
	}
	return string(b)
}

type ozResponse struct {
	Code        int    `xml:"Code"`
	Message     string `xml:"Message"`
	CallID      string `xml:"CallId"`
	ActiveCalls struct {
		Calls []struct {
			CallState string `xml:"CallState"`
			CallID    string `xml:"CallId"`
			Source    string `xml:"Source"`
		} `xml:"CallInfo"`
	} `xml:"ActiveCalls"`
}

func parseOz(t testing.TB, body string) ozResponse {
	t.Helper()
	var r ozResponse
	if err := xml.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("response is not XML: %v\n%s", err, body)
	}
	return r
}

// activeCall waits for one call in ListActiveCalls and returns its CallId.
func (n *node) activeCall() string {
	n.t.Helper()
	var id string
	testutil.Eventually(n.t, 10*time.Second, 20*time.Millisecond, func() bool {
		r := parseOz(n.t, n.ozekiGet("/api?command=ListActiveCalls&Username=HTTP_User_1&Password=qwe123"))
		if r.Code != 200 || len(r.ActiveCalls.Calls) != 1 {
			return false
		}
		id = r.ActiveCalls.Calls[0].CallID
		return true
	}, "no active call")
	return id
}

// seedResponse is the seed's response, whitespace normalised.
const seedResponse = `<?xml version="1.0"?> <Response xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"> <Code>200</Code> <Message>Command successfully executed</Message> </Response>`

func normXML(s string) string { return strings.Join(strings.Fields(s), " ") }

// decodeRecording reads a downloaded wav or mp3 (lame --decode) as 8 kHz PCM.
func decodeRecording(t testing.TB, data []byte, format string) []int16 {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "rec."+format)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if format == "mp3" {
		lame := testutil.RequireTool(t, "lame")
		out := filepath.Join(dir, "rec.wav")
		if b, err := exec.Command(lame, "--quiet", "--decode", path, out).CombinedOutput(); err != nil {
			t.Fatalf("lame --decode: %v %s", err, b)
		}
		path = out
	}
	clip, err := sounds.DecodeFile(path)
	if err != nil {
		t.Fatalf("decoding the downloaded %s: %v", format, err)
	}
	return clip.Samples()
}

// TestOzekiRecordSeedURL: the seed's example URL (its user, password and
// parameters; our host; FinishDigits=1 added as in the seed's OzML) against a live baresip call answers the seed's
// XML; pressing 1 (RFC 4733 from baresip) stops the recording while the
// call goes on; RecordCompleted reaches the receiver, signed, with the
// fields; its RecordURL downloads the call's audio (baresip's 440 Hz
// microphone), in mp3 (the seed's Format) and wav.
func TestOzekiRecordSeedURL(t *testing.T) {
	for _, format := range []string{"mp3", "wav"} {
		t.Run(format, func(t *testing.T) {
			if format == "mp3" {
				testutil.RequireTool(t, "lame")
			}
			n := ozekiNode(t, "_5XX", "Wait(60)")
			recv := startReceiver(t)
			phone := baresip.Start(t, baresip.Options{User: "rec" + format})
			if err := phone.Dial(n.target("500")); err != nil {
				t.Fatal(err)
			}
			id := n.activeCall()
			finished := recv.url("/record_finished.php")
			// The seed's URL, verbatim but for host and the CallId.
			q := "/api?command=Record&Username=HTTP_User_1&Password=qwe123&CallId=" + url.QueryEscape(id) +
				"&Format=" + format + "&FinishedUrl=" + strings.ReplaceAll(url.QueryEscape(finished), "%3A", "%3a")
			q = strings.ReplaceAll(strings.ReplaceAll(q, "%2F", "%2f"), "%2E", "%2e")
			// The seed's URL has no FinishDigits; its OzML example stops on
			// 1, so the command asks for the same.
			q += "&FinishDigits=1"
			body := n.ozekiGet(q)
			if normXML(body) != seedResponse {
				t.Fatalf("response\n%s\nwant the seed's\n%s", body, seedResponse)
			}
			// The recording answered the call.
			if _, err := phone.WaitEvent("CALL_ESTABLISHED", 10*time.Second); err != nil {
				t.Fatal(err)
			}
			// Two seconds of the caller's audio, then 1.
			testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
				st, err := n.srv.Calls().RTPStats(callID(id))
				return err == nil && st.Received > 100
			}, "no RTP from baresip")
			if err := phone.SendDTMF("1"); err != nil {
				t.Fatal(err)
			}
			p := recv.waitPost("RecordCompleted", 15*time.Second)
			f := p.Form
			if f.Get("CallId") != id || f.Get("Format") != format || f.Get("Reason") != "finish-digit" {
				t.Fatalf("RecordCompleted fields %v", f)
			}
			if !webhook.Verify([]byte("s3cret"), p.Header.Get(webhook.SignatureHeader), p.Body, time.Now(), time.Minute) {
				t.Fatalf("signature %q does not verify", p.Header.Get(webhook.SignatureHeader))
			}
			// The call goes on after the recording stopped.
			if _, err := n.srv.Calls().Channel(callID(id)); err != nil {
				t.Fatalf("the call ended with the recording: %v", err)
			}
			for _, ev := range phone.Events() {
				if ev["type"] == "CALL_CLOSED" {
					t.Fatal("baresip's call was closed by the finish digit")
				}
			}
			res, err := http.Get(f.Get("RecordURL"))
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("RecordURL: HTTP %d", res.StatusCode)
			}
			pcm := decodeRecording(t, data, format)
			if len(pcm) < 8000 {
				t.Fatalf("recording holds %d samples, want at least 1 s", len(pcm))
			}
			if !dominant(pcm, 440, 1000) || goertzel(pcm, 440) < 1e4 {
				t.Fatalf("recording lacks baresip's 440 Hz tone (440: %.0f, 1000: %.0f)", goertzel(pcm, 440), goertzel(pcm, 1000))
			}
			// A tampered RecordURL downloads nothing.
			bad := strings.Replace(f.Get("RecordURL"), "sig=", "sig=0", 1)
			if res, err := http.Get(bad); err == nil {
				res.Body.Close()
				if res.StatusCode != 404 {
					t.Fatalf("tampered RecordURL: HTTP %d, want 404", res.StatusCode)
				}
			}
			// The same API at /api on the HTTP listener.
			hres, err := http.PostForm(n.baseURL()+"/api", url.Values{"command": {"Hangup"}, "Username": {"HTTP_User_1"}, "Password": {"qwe123"}, "CallId": {id}})
			if err != nil {
				t.Fatal(err)
			}
			hb, _ := io.ReadAll(hres.Body)
			hres.Body.Close()
			if r := parseOz(t, string(hb)); r.Code != 200 {
				t.Fatalf("Hangup by POST: %s", hb)
			}
			if _, err := phone.WaitEvent("CALL_CLOSED", 10*time.Second); err != nil {
				t.Fatal(err)
			}
			if c := recv.count("RecordCompleted"); c != 1 {
				t.Fatalf("%d RecordCompleted notifications, want 1", c)
			}
		})
	}
}

func callID(s string) call.ChannelID { return call.ChannelID(s) }

// seedOzML is the seed's OzML document as written, but for the receiver's
// FinishedUrl and a Delay of delay seconds instead of 60.
func seedOzML(finishedURL, delay string) string {
	return `<?xml version="1.0"?> <Response> <Speak>Your call will be recorded. You can stop recording by pressing 1. You have 1 minutes to talk.</Speak> <Record FinishedUrl="` +
		finishedURL + `" FinishDigits="1" Format="wav"></Record> <Delay>` + delay + `</Delay> <Hangup></Hangup> </Response>`
}

// TestOzekiSeedOzML: the seed's OzML document, served by a web app on
// loopback for the IncomingCall notification of Script(url), runs on a
// real baresip call: the caller hears the speech (energy in its received
// audio), the recording starts and RecordCompleted arrives, and the call
// is hung up after the Delay.
func TestOzekiSeedOzML(t *testing.T) {
	testutil.RequireTool(t, "espeak-ng")
	recv := startReceiver(t)
	const delay = 3
	recv.answer = func(path string, form url.Values) (int, string) {
		if path == "/incoming" {
			return 200, seedOzML(recv.url("/record_finished.php"), strconv.Itoa(delay))
		}
		return 200, ""
	}
	n := ozekiNode(t, "_6XX", "Script("+recv.url("/incoming")+")")
	phone := baresip.Start(t, baresip.Options{User: "ozml", Record: true})
	if err := phone.Dial(n.target("600")); err != nil {
		t.Fatal(err)
	}
	in := recv.waitPost("IncomingCall", 10*time.Second)
	id := in.Form.Get("CallId")
	if id == "" || in.Form.Get("Callee") != "600" || in.Form.Get("Caller") != "ozml" {
		t.Fatalf("IncomingCall %v", in.Form)
	}
	// IncomingCall also names the call as the Twilio API knows it: its
	// CallSid, which the integrator uses there (here: the call's
	// recordings, listed below).
	callSid := in.Form.Get("CallSid")
	if !regexp.MustCompile(`^CA[0-9a-f]{32}$`).MatchString(callSid) {
		t.Fatalf("IncomingCall's CallSid %q, want the call's CA... id (form %v)", callSid, in.Form)
	}
	if _, err := phone.WaitEvent("CALL_ESTABLISHED", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	established := time.Now()
	if _, err := phone.WaitEvent("CALL_CLOSED", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	took := time.Since(established)
	if took < delay*time.Second {
		t.Fatalf("call hung up %v after the answer, before the %d s Delay", took, delay)
	}
	p := recv.waitPost("RecordCompleted", 15*time.Second)
	if p.Form.Get("CallId") != id || p.Form.Get("Format") != "wav" || p.Form.Get("Reason") != "hangup" {
		t.Fatalf("RecordCompleted %v", p.Form)
	}
	if d, _ := strconv.Atoi(p.Form.Get("Duration")); d < delay-1 || d > delay+2 {
		t.Fatalf("recording lasted %d s, want about the %d s Delay", d, delay)
	}
	// The Twilio API lists the script's recording under IncomingCall's
	// CallSid.
	acc := defaultAccount(t, n)
	code, body := rc(t, n, acc, "GET", "/2010-04-01/Accounts/"+acc.Sid+"/Recordings.json?CallSid="+callSid)
	var list struct {
		Recordings []struct {
			CallSid string `json:"call_sid"`
		} `json:"recordings"`
	}
	if err := json.Unmarshal(body, &list); code != 200 || err != nil || len(list.Recordings) != 1 || list.Recordings[0].CallSid != callSid {
		t.Fatalf("Twilio's recordings of CallSid %s: %d %s", callSid, code, body)
	}
	// What baresip received: the speech.
	var dec string
	testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, func() bool {
		m, _ := filepath.Glob(filepath.Join(phone.RecordDir, "*dec*.wav"))
		if len(m) == 0 {
			return false
		}
		dec = m[0]
		st, err := os.Stat(dec)
		return err == nil && st.Size() > 8000
	}, "baresip recorded nothing it received")
	clip, err := sounds.DecodeFile(dec)
	if err != nil {
		t.Fatal(err)
	}
	pcm := clip.Samples()
	if len(pcm) < 3*8000 {
		t.Fatalf("received %d samples", len(pcm))
	}
	// The speech is in the first seconds: loud windows there, none in the
	// Delay's tail.
	loud := 0
	for off := 0; off+1600 <= min(len(pcm), 6*8000); off += 1600 {
		if rms(pcm[off:off+1600]) > 500 {
			loud++
		}
	}
	if loud < 5 {
		t.Fatalf("the caller heard no speech: %d loud 200 ms windows in the first 6 s", loud)
	}
	var profile []string
	for off := 0; off+4000 <= len(pcm); off += 4000 {
		profile = append(profile, strconv.Itoa(int(rms(pcm[off:off+4000]))))
	}
	t.Logf("received audio, rms per 500 ms: %s", strings.Join(profile, " "))
	// baresip writes what it receives; the Delay sends nothing. The call
	// lasted the speech and then the Delay.
	speech := time.Duration(len(pcm)) * time.Second / 8000
	if speech < 4*time.Second || speech > 10*time.Second || dominant(pcm, 440, 1000) {
		t.Fatalf("received %v of audio (440 Hz dominant: %v): not the seed's sentence spoken", speech, dominant(pcm, 440, 1000))
	}
	if took < speech+delay*time.Second-time.Second {
		t.Fatalf("call lasted %v: less than the speech (%v) and the %d s Delay", took, speech, delay)
	}
}

// TestOzekiScriptFailures: a script that cannot run leaves no call
// hanging: not XML, an unknown verb, an error answer, an unreachable app
// or a slow one; each call is refused (hung up before the answer).
func TestOzekiScriptFailures(t *testing.T) {
	recv := startReceiver(t)
	recv.answer = func(path string, form url.Values) (int, string) {
		switch path {
		case "/notxml":
			return 200, "this is not xml"
		case "/unknown":
			return 200, `<?xml version="1.0"?><Response><Dance>now</Dance></Response>`
		case "/badattr":
			return 200, `<Response><Record Colour="red"/></Response>`
		case "/error":
			return 500, "boom"
		case "/huge":
			return 200, "<Response>" + strings.Repeat("<Hangup/>", 20000) + "</Response>"
		case "/failed":
			return 200, ""
		case "/fallback":
			return 200, `<Response><Hangup/></Response>`
		}
		return 404, ""
	}
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "http://" + dead.Addr().String() + "/x"
	dead.Close()
	n := startNode(t, func(c *config.Config) {
		c.Dialplan = []config.Route{
			{Exten: "701", App: "Script(" + recv.url("/notxml") + ")"},
			{Exten: "702", App: "Script(" + recv.url("/unknown") + ")"},
			{Exten: "703", App: "Script(" + recv.url("/badattr") + ")"},
			{Exten: "704", App: "Script(" + recv.url("/error") + ")"},
			{Exten: "705", App: "Script(" + deadURL + ")"},
			{Exten: "706", App: "Script(" + recv.url("/huge") + ")"},
			{Exten: "707", App: "Script(http://127.0.0.2:9/forbidden)"},
			{Exten: "708", App: "Script(" + deadURL + "," + recv.url("/fallback") + ")"},
		}
		c.Webhook.Allow = []string{"127.0.0.1"}
		c.Ozeki.ScriptFailureURL = recv.url("/failed")
	})
	phone := newPhone(t, "udp")
	for _, ext := range []string{"701", "702", "703", "704", "705", "706", "707"} {
		res := wait(t, dialAsync(phone, n.target(ext), sipua.CallOptions{}), 20*time.Second, "dial "+ext)
		if res.err == nil {
			res.call.Hangup(context.Background())
			t.Fatalf("%s: the call was answered by a failing script", ext)
		}
		testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool { return n.srv.Calls().Count() == 0 },
			"%s: a call is left", ext)
	}
	// Every failure is notified to script_failure_url, naming the
	// application and the reason.
	failed := func() (n int, dead bool) {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		for _, p := range recv.posts {
			if p.Path == "/failed" && p.Form.Get("NotificationName") == "ScriptFailed" {
				if p.Form.Get("CallId") == "" || p.Form.Get("Reason") == "" {
					t.Errorf("ScriptFailed without CallId or Reason: %v", p.Form)
				}
				n++
				dead = dead || (p.Form.Get("Url") == deadURL && strings.Contains(p.Form.Get("Reason"), "unreachable"))
			}
		}
		return n, dead
	}
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool { n, _ := failed(); return n == 7 },
		"ScriptFailed notifications: want 7")
	if _, dead := failed(); !dead {
		t.Error("no ScriptFailed names the unreachable application and why")
	}

	// A fallback application is asked, with the error, when the first
	// cannot answer; its document runs and nothing is reported failed.
	dialAsync(phone, n.target("708"), sipua.CallOptions{})
	var fb recvPost
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		for _, p := range recv.posts {
			if p.Path == "/fallback" && p.Form.Get("NotificationName") == "IncomingCall" {
				fb = p
				return true
			}
		}
		return false
	}, "the fallback was not asked")
	if !strings.Contains(fb.Form.Get("ErrorMessage"), "unreachable") {
		t.Errorf("fallback's ErrorMessage = %q", fb.Form.Get("ErrorMessage"))
	}
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool { return n.srv.Calls().Count() == 0 },
		"708: the fallback's Hangup did not end the call")
	if c, _ := failed(); c != 7 {
		t.Errorf("ScriptFailed notifications after a fallback that worked: %d, want 7", c)
	}
}

// TestOzekiCommandErrors: every command's bad parameters, the
// authentication and access-list failures answer Ozeki's code and
// message, always with HTTP 200.
func TestOzekiCommandErrors(t *testing.T) {
	allowed := t.TempDir()
	n := startNode(t, withRoute("500", "Wait(30)"), func(c *config.Config) {
		c.Ozeki.Listen = "127.0.0.1:0"
		c.Ozeki.Users = []config.OzekiUser{
			{Username: "HTTP_User_1", Password: "qwe123"},
			{Username: "lister", Password: "pw", Commands: []string{"listactivecalls"}},
			{Username: "faraway", Password: "pw", AllowFrom: []string{"10.0.0.0/8"}},
		}
		c.Ozeki.RecordPaths = []string{allowed}
		c.Webhook.Allow = []string{"127.0.0.1"}
	})
	phone := newPhone(t, "udp")
	dialAsync(phone, n.target("500"), sipua.CallOptions{}) // rings: Wait() does not answer
	id := n.activeCall()
	const auth = "Username=HTTP_User_1&Password=qwe123&"
	cid := "CallId=" + url.QueryEscape(id) + "&"
	cases := []struct {
		query string
		code  int
		msg   string
	}{
		{"command=Record&CallId=x", 304, "Authentication required"},
		{"command=Record&Username=nobody&Password=x", 305, "Authentication failed, bad username or password"},
		{"command=Record&Username=HTTP_User_1&Password=wrong", 305, "Authentication failed, bad username or password"},
		{"command=Record&Username=lister&Password=pw", 306, "User is not allowed to use API in ACL"},
		{"command=ListActiveCalls&Username=faraway&Password=pw", 307, "Use API from this address is forbidden"},
		{"command=Record&" + auth + "CallId=%zz", 300, "Error occured during parsing message"},
		{auth + "command=Nope", 301, "Not implemented command: 'Nope'"},
		{auth, 302, "Missing or invalid parameter 'Command'"},

		{auth + "command=Record", 302, "Missing or invalid parameter 'CallId' for command 'Record'"},
		{auth + "command=Record&CallId=nope", 601, "Call not found with ID 'nope'"},
		{auth + "command=Record&" + cid + "Duration=abc", 302, "'Duration' for command 'Record'"},
		{auth + "command=Record&" + cid + "Duration=0", 302, "'Duration' for command 'Record'"},
		{auth + "command=Record&" + cid + "Inactivity=-3", 302, "'Inactivity' for command 'Record'"},
		{auth + "command=Record&" + cid + "FinishDigits=1x", 302, "'FinishDigits' for command 'Record'"},
		{auth + "command=Record&" + cid + "Format=ogg", 302, "'Format' for command 'Record'"},
		{auth + "command=Record&" + cid + "Format=wav&RecordPath=relative/dir", 302, "'RecordPath' for command 'Record'"},
		{auth + "command=Record&" + cid + "Format=wav&RecordPath=/etc", 302, "'RecordPath' for command 'Record'"},
		{auth + "command=Record&" + cid + "Format=wav&RecordPath=" + url.QueryEscape(allowed+"/../.."), 302, "'RecordPath' for command 'Record'"},
		{auth + "command=Record&" + cid + "Format=wav&FinishedUrl=" + url.QueryEscape("http://127.0.0.2/x"), 302, "'FinishedUrl' for command 'Record'"},
		{auth + "command=Record&" + cid + "Format=wav&FinishedURL=" + url.QueryEscape("http://10.0.0.1/x"), 302, "'FinishedUrl' for command 'Record'"},
		{auth + "command=Record&" + cid + "Format=wav&FinishedUrl=" + url.QueryEscape("ftp://127.0.0.1/x"), 302, "'FinishedUrl' for command 'Record'"},

		{auth + "command=Call", 302, "Missing or invalid parameter 'Dialed' for command 'Call'"},
		{auth + "command=Call&Dialed=nonsense", 302, "'Dialed' for command 'Call'"},
		{auth + "command=Call&Dialed=" + url.QueryEscape("sip:bob@127.0.0.1:5") + "&Timeout=x", 302, "'Timeout' for command 'Call'"},

		{auth + "command=Hangup", 302, "Missing or invalid parameter 'CallId' for command 'Hangup'"},
		{auth + "command=Hangup&CallId=nope", 601, "Call not found with ID 'nope'"},

		{auth + "command=Play", 302, "Missing or invalid parameter 'CallId' for command 'Play'"},
		{auth + "command=Play&CallId=nope&Url=beep", 601, "Call not found with ID 'nope'"},
		{auth + "command=Play&" + cid, 302, "Missing or invalid parameter 'Url' for command 'Play'"},

		{auth + "command=Speak", 302, "Missing or invalid parameter 'CallId' for command 'Speak'"},
		{auth + "command=Speak&CallId=nope&Text=hi", 601, "Call not found with ID 'nope'"},
		{auth + "command=Speak&" + cid, 302, "Missing or invalid parameter 'Text' for command 'Speak'"},
		{auth + "command=Speak&" + cid + "Text=hi&Voice=" + url.QueryEscape("en;rm -rf"), 302, "'Voice' for command 'Speak'"},

		{auth + "command=SendDTMF", 302, "Missing or invalid parameter 'CallId' for command 'SendDTMF'"},
		{auth + "command=SendDTMF&CallId=nope&DTMF=1", 601, "Call not found with ID 'nope'"},
		{auth + "command=SendDTMF&" + cid, 302, "Missing or invalid parameter 'DTMF' for command 'SendDTMF'"},
		{auth + "command=SendDTMF&" + cid + "DTMF=12x", 302, "Missing or invalid parameter 'DTMF' for command 'SendDTMF'"},
	}
	for _, c := range cases {
		for _, method := range []string{"GET", "POST"} {
			var body string
			if method == "GET" {
				body = n.ozekiGet("/api?" + c.query)
			} else {
				res, err := http.Post("http://"+n.srv.OzekiAddr()+"/api", "application/x-www-form-urlencoded", strings.NewReader(c.query))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					t.Fatalf("POST %s: HTTP %d", c.query, res.StatusCode)
				}
				body = string(b)
			}
			r := parseOz(t, body)
			if r.Code != c.code || !strings.Contains(r.Message, c.msg) {
				t.Errorf("%s %s: %d %q, want %d %q", method, c.query, r.Code, r.Message, c.code, c.msg)
			}
		}
	}
	// The call is still there and was never touched.
	if _, err := n.srv.Calls().Channel(callID(id)); err != nil {
		t.Fatal(err)
	}
}

// TestOzekiRecordLimits: Duration and Inactivity end a recording by
// themselves (the call goes on); RecordPath writes into an allowed
// directory; the reasons reach the FinishedUrl.
func TestOzekiRecordLimits(t *testing.T) {
	allowed := t.TempDir()
	n := ozekiNode(t, "_5XX", "Wait(60)", func(c *config.Config) { c.Ozeki.RecordPaths = []string{allowed} })
	recv := startReceiver(t)
	mic := filepath.Join(t.TempDir(), "silence.wav")
	if err := os.WriteFile(mic, testutil.SilentWAV(8000*30), 0o644); err != nil {
		t.Fatal(err)
	}
	phone := baresip.Start(t, baresip.Options{User: "quiet", AudioFile: mic})
	if err := phone.Dial(n.target("500")); err != nil {
		t.Fatal(err)
	}
	id := n.activeCall()
	base := "/api?command=Record&Username=HTTP_User_1&Password=qwe123&Format=wav&CallId=" + url.QueryEscape(id) +
		"&FinishedUrl=" + url.QueryEscape(recv.url("/done"))
	if r := parseOz(t, n.ozekiGet(base+"&Duration=1&RecordPath="+url.QueryEscape(allowed+"/sub"))); r.Code != 200 {
		t.Fatalf("Record: %d %s", r.Code, r.Message)
	}
	p := recv.waitPost("RecordCompleted", 10*time.Second)
	if p.Form.Get("Reason") != "duration" || p.Form.Get("Duration") != "1" {
		t.Fatalf("Duration=1: %v", p.Form)
	}
	if m, _ := filepath.Glob(filepath.Join(allowed, "sub", "*.wav")); len(m) != 1 {
		t.Fatalf("RecordPath: files %v", m)
	}
	recv.mu.Lock()
	recv.posts = nil
	recv.mu.Unlock()
	if r := parseOz(t, n.ozekiGet(base+"&Inactivity=1")); r.Code != 200 {
		t.Fatalf("Record: %d %s", r.Code, r.Message)
	}
	p = recv.waitPost("RecordCompleted", 10*time.Second)
	if p.Form.Get("Reason") != "inactivity" {
		t.Fatalf("Inactivity=1: %v", p.Form)
	}
	if _, err := n.srv.Calls().Channel(callID(id)); err != nil {
		t.Fatalf("the call ended with the recording: %v", err)
	}
}

// TestOzekiWithoutLameAndEspeak: without the lame program an MP3 Record
// (the default format) answers 302 naming Format and how to enable it,
// never a silent wav; without espeak-ng Speak answers with the cause and
// the call goes on.
func TestOzekiWithoutLameAndEspeak(t *testing.T) {
	n := ozekiNode(t, "500", "Wait(30)")
	phone := newPhone(t, "udp")
	dialAsync(phone, n.target("500"), sipua.CallOptions{})
	id := n.activeCall()
	t.Setenv("PATH", t.TempDir()) // neither lame nor espeak-ng
	if _, err := recorder.Lookup("mp3"); err == nil {
		t.Skip("SKIPPED: this build encodes mp3 in process (-tags lame); nothing to refuse")
	}
	auth := "/api?Username=HTTP_User_1&Password=qwe123&CallId=" + url.QueryEscape(id)
	r := parseOz(t, n.ozekiGet(auth+"&command=Record"))
	if r.Code != 302 || !strings.Contains(r.Message, "Missing or invalid parameter 'Format' for command 'Record'") ||
		!strings.Contains(r.Message, "apt-get install lame") {
		t.Fatalf("Record without lame: %d %q", r.Code, r.Message)
	}
	if m, _ := filepath.Glob(filepath.Join(n.cfg.RecordingsDir(), "HttpRecordings", "*")); len(m) != 0 {
		t.Fatalf("files made anyway: %v", m)
	}
	r = parseOz(t, n.ozekiGet(auth+"&command=Speak&Text=hello"))
	if r.Code != 303 || !strings.Contains(r.Message, "espeak-ng is not installed") {
		t.Fatalf("Speak without espeak-ng: %d %q", r.Code, r.Message)
	}
	if _, err := n.srv.Calls().Channel(callID(id)); err != nil {
		t.Fatal(err)
	}
}

// TestOzekiUserInputAndReplies: an OzML UserInput collects the caller's
// digits (RFC 4733) and POSTs them; the answer continues the call with a
// Record whose RecordCompleted is answered by OzML that hangs the call up.
func TestOzekiUserInputAndReplies(t *testing.T) {
	recv := startReceiver(t)
	recv.answer = func(path string, form url.Values) (int, string) {
		switch path {
		case "/incoming":
			return 200, `<Response><UserInput Url="` + recv.url("/input") + `" MaxDigits="2" Timeout="10"></UserInput><Hangup/></Response>`
		case "/input":
			if form.Get("Digits") != "42" {
				return 200, `<Response><Hangup/></Response>`
			}
			return 200, `<Response><Record Format="wav" Duration="1" FinishedUrl="` + recv.url("/done") + `"/><Delay>30</Delay></Response>`
		case "/done":
			return 200, `<?xml version="1.0"?><Response><Hangup></Hangup></Response>`
		}
		return 404, ""
	}
	n := ozekiNode(t, "800", "Script("+recv.url("/incoming")+")")
	phone := newPhone(t, "udp")
	res := wait(t, dialAsync(phone, n.target("800"), sipua.CallOptions{}), 15*time.Second, "answer")
	if res.err != nil {
		t.Fatal(res.err)
	}
	if err := res.call.SendDTMF("42", 80*time.Millisecond, 60*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	in := recv.waitPost("UserInput", 10*time.Second)
	if in.Form.Get("Digits") != "42" {
		t.Fatalf("UserInput %v", in.Form)
	}
	// The caller talks: the recording's Duration counts its audio.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go res.call.SendAudio(ctx, sine(440, 8000*5, 8000))
	done := recv.waitPost("RecordCompleted", 10*time.Second)
	if done.Form.Get("Reason") != "duration" {
		t.Fatalf("RecordCompleted %v", done.Form)
	}
	// The reply's <Hangup> ends the call long before the 30 s Delay.
	select {
	case <-res.call.Ended():
	case <-time.After(10 * time.Second):
		t.Fatal("the OzML reply to RecordCompleted did not hang up")
	}
}

// TestOzekiCallAndForward: the Call command places a call (to a phone that
// answers) and returns its CallId, listed by ListActiveCalls and ended by
// Hangup; an OzML Forward calls another phone and bridges the two calls,
// and when that party hangs up the script goes on.
func TestOzekiCallAndForward(t *testing.T) {
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	bob, err := sipua.New(sipua.Options{User: "bob", AutoAnswer: true, RTPMin: rtpLo, RTPMax: rtpHi,
		IncomingHandler: func() rtpsess.Handler { return sipua.NoopHandler{} }})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	recv := startReceiver(t)
	recv.answer = func(path string, form url.Values) (int, string) {
		return 200, `<Response><Forward>` + bob.URI() + `</Forward><Speak>bye</Speak><Hangup/></Response>`
	}
	n := ozekiNode(t, "900", "Script("+recv.url("/incoming")+")")
	auth := "/api?Username=HTTP_User_1&Password=qwe123&"
	r := parseOz(t, n.ozekiGet(auth+"command=Call&Dialed="+url.QueryEscape(bob.URI())))
	if r.Code != 200 || r.CallID == "" {
		t.Fatalf("Call: %d %s %q", r.Code, r.Message, r.CallID)
	}
	in := wait(t, bob.Incoming(), 10*time.Second, "bob answering the Call command")
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
		j, err := n.srv.Calls().Channel(callID(r.CallID))
		return err == nil && j.State == "Up"
	}, "the placed call is not up")
	if r := parseOz(t, n.ozekiGet(auth+"command=Hangup&CallId="+url.QueryEscape(r.CallID))); r.Code != 200 {
		t.Fatalf("Hangup: %d %s", r.Code, r.Message)
	}
	wait(t, in.Ended(), 10*time.Second, "bob's call to end")

	phone := newPhone(t, "udp")
	res := wait(t, dialAsync(phone, n.target("900"), sipua.CallOptions{}), 15*time.Second, "answer")
	if res.err != nil {
		t.Fatal(res.err)
	}
	leg := wait(t, bob.Incoming(), 10*time.Second, "the forwarded call")
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool { return len(n.srv.Calls().Bridges()) == 1 },
		"the two calls are not connected")
	if err := leg.Hangup(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The script goes on (Speak, then Hangup) and ends the caller's call.
	wait(t, res.call.Ended(), 20*time.Second, "the caller's call to end after the forward")
}

// TestOzekiCallbackSurvivesRestart: the FinishedUrl receiver is down when
// the recording ends; tapedeck is stopped and started again on the same
// data directory; the receiver comes up; RecordCompleted is delivered,
// once.
func TestOzekiCallbackSurvivesRestart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hookAddr := l.Addr().String()
	l.Close() // the receiver is down
	dataDir := t.TempDir()
	same := func(c *config.Config) { c.DataDir = dataDir; c.NodeID = "oz1" }
	n := ozekiNode(t, "500", "Wait(30)", same)
	phone := newPhone(t, "udp")
	dialAsync(phone, n.target("500"), sipua.CallOptions{})
	id := n.activeCall()
	q := "/api?command=Record&Username=HTTP_User_1&Password=qwe123&Format=wav&CallId=" + url.QueryEscape(id) +
		"&FinishedUrl=" + url.QueryEscape("http://"+hookAddr+"/done")
	if r := parseOz(t, n.ozekiGet(q)); r.Code != 200 {
		t.Fatalf("Record: %d %s", r.Code, r.Message)
	}
	if r := parseOz(t, n.ozekiGet("/api?command=Hangup&Username=HTTP_User_1&Password=qwe123&CallId="+url.QueryEscape(id))); r.Code != 200 {
		t.Fatalf("Hangup: %d %s", r.Code, r.Message)
	}
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool { return n.srv.Calls().Count() == 0 }, "call not ended")
	n.srv.Close() // the notification is in the outbox, undelivered

	recv := &receiver{t: t, wake: make(chan struct{}, 1)}
	rl, err := net.Listen("tcp", hookAddr)
	if err != nil {
		t.Fatal(err)
	}
	recv.l = rl
	recv.srv = &http.Server{Handler: http.HandlerFunc(recv.serve)}
	go recv.srv.Serve(rl)
	t.Cleanup(func() { recv.srv.Close() })
	if recv.count("RecordCompleted") != 0 {
		t.Fatal("delivered before the restart")
	}
	ozekiNode(t, "500", "Wait(30)", same)
	p := recv.waitPost("RecordCompleted", 15*time.Second)
	if p.Form.Get("CallId") != id || p.Form.Get("Reason") != "hangup" {
		t.Fatalf("RecordCompleted %v", p.Form)
	}
	// Exactly once so far.
	if c := recv.count("RecordCompleted"); c != 1 {
		t.Fatalf("%d deliveries", c)
	}
}

// TestOzekiRecordBothParties: a Record command on a call that an OzML
// Forward has connected to another phone records both parties: the
// caller's 440 Hz and the other party's 1000 Hz are both in the file.
func TestOzekiRecordBothParties(t *testing.T) {
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	bob, err := sipua.New(sipua.Options{User: "bob", AutoAnswer: true, RTPMin: rtpLo, RTPMax: rtpHi,
		IncomingHandler: func() rtpsess.Handler { return sipua.NoopHandler{} }})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	recv := startReceiver(t)
	recv.answer = func(path string, form url.Values) (int, string) {
		if path == "/incoming" {
			return 200, `<Response><Forward>` + bob.URI() + `</Forward><Hangup/></Response>`
		}
		return 200, ""
	}
	n := ozekiNode(t, "900", "Script("+recv.url("/incoming")+")")
	phone := newPhone(t, "udp")
	res := wait(t, dialAsync(phone, n.target("900"), sipua.CallOptions{}), 15*time.Second, "answer")
	if res.err != nil {
		t.Fatal(res.err)
	}
	leg := wait(t, bob.Incoming(), 10*time.Second, "the forwarded call")
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool { return len(n.srv.Calls().Bridges()) == 1 },
		"the two calls are not connected")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go res.call.SendAudio(ctx, sine(440, 8000*20, 8000))
	go leg.SendAudio(ctx, sine(1000, 8000*20, 8000))
	in := recv.waitPost("IncomingCall", 5*time.Second)
	id := in.Form.Get("CallId")
	q := "/api?command=Record&Username=HTTP_User_1&Password=qwe123&Format=wav&Duration=2&CallId=" + url.QueryEscape(id) +
		"&FinishedUrl=" + url.QueryEscape(recv.url("/done"))
	if r := parseOz(t, n.ozekiGet(q)); r.Code != 200 {
		t.Fatalf("Record: %d %s", r.Code, r.Message)
	}
	p := recv.waitPost("RecordCompleted", 15*time.Second)
	if p.Form.Get("Reason") != "duration" {
		t.Fatalf("RecordCompleted %v", p.Form)
	}
	got, err := http.Get(p.Form.Get("RecordURL"))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(got.Body)
	got.Body.Close()
	pcm := decodeRecording(t, data, "wav")
	quiet := goertzel(pcm, 2500)
	if goertzel(pcm, 440) < 20*quiet || goertzel(pcm, 1000) < 20*quiet {
		t.Fatalf("not both parties: 440 Hz %.0f, 1000 Hz %.0f, 2500 Hz %.0f", goertzel(pcm, 440), goertzel(pcm, 1000), quiet)
	}
	// The call goes on after the recording.
	if _, err := n.srv.Calls().Channel(callID(id)); err != nil {
		t.Fatal(err)
	}
}

// TestOzekiDurationWithoutAudio: Duration is also kept by the clock: a
// caller that sends no audio at all is still recorded for at most Duration.
func TestOzekiDurationWithoutAudio(t *testing.T) {
	n := ozekiNode(t, "500", "Wait(30)")
	recv := startReceiver(t)
	phone := newPhone(t, "udp")
	dialAsync(phone, n.target("500"), sipua.CallOptions{})
	id := n.activeCall()
	q := "/api?command=Record&Username=HTTP_User_1&Password=qwe123&Format=wav&Duration=1&CallId=" + url.QueryEscape(id) +
		"&FinishedUrl=" + url.QueryEscape(recv.url("/done"))
	start := time.Now()
	if r := parseOz(t, n.ozekiGet(q)); r.Code != 200 {
		t.Fatalf("Record: %d %s", r.Code, r.Message)
	}
	p := recv.waitPost("RecordCompleted", 10*time.Second)
	if p.Form.Get("Reason") != "duration" || time.Since(start) > 5*time.Second {
		t.Fatalf("RecordCompleted after %v: %v", time.Since(start), p.Form)
	}
	if _, err := n.srv.Calls().Channel(callID(id)); err != nil {
		t.Fatal(err)
	}
}

// TestOzekiRecordURLFromObjectStorage: a RecordURL keeps downloading the
// recording after its file was uploaded to object storage and removed
// from this disk (s3.keep_local false): the catalog serves it.
func TestOzekiRecordURLFromObjectStorage(t *testing.T) {
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	n := ozekiNode(t, "_5XX", "Wait(60)", func(c *config.Config) {
		c.Catalog.S3 = config.S3{Endpoint: gw.Endpoint(), AccessKey: versitygw.AccessKey,
			SecretKey: versitygw.SecretKey, Bucket: bucket, KeepLocal: false}
	})
	recv := startReceiver(t)
	phone := baresip.Start(t, baresip.Options{User: "recs3"})
	if err := phone.Dial(n.target("500")); err != nil {
		t.Fatal(err)
	}
	id := n.activeCall()
	body := n.ozekiGet("/api?command=Record&Username=HTTP_User_1&Password=qwe123&Format=wav&FinishDigits=1&CallId=" +
		url.QueryEscape(id) + "&FinishedUrl=" + url.QueryEscape(recv.url("/done")))
	if normXML(body) != seedResponse {
		t.Fatalf("Record: %s", body)
	}
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
		st, err := n.srv.Calls().RTPStats(callID(id))
		return err == nil && st.Received > 100
	}, "no RTP from baresip")
	if err := phone.SendDTMF("1"); err != nil {
		t.Fatal(err)
	}
	recURL := recv.waitPost("RecordCompleted", 15*time.Second).Form.Get("RecordURL")
	u, err := url.Parse(recURL)
	if err != nil {
		t.Fatal(err)
	}
	rawPath, err := base64.RawURLEncoding.DecodeString(strings.TrimSuffix(path.Base(u.Path), ".wav"))
	if err != nil {
		t.Fatalf("RecordURL %q: %v", recURL, err)
	}
	testutil.Eventually(t, 20*time.Second, 50*time.Millisecond, func() bool {
		_, err := os.Stat(string(rawPath))
		return os.IsNotExist(err)
	}, "the local file %s was not moved to object storage", rawPath)
	res, err := http.Get(recURL)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("RecordURL after the upload: HTTP %d %s", res.StatusCode, data)
	}
	pcm := decodeRecording(t, data, "wav")
	if len(pcm) < 8000 || !dominant(pcm, 440, 1000) {
		t.Fatalf("downloaded %d samples without baresip's 440 Hz tone", len(pcm))
	}
}

// TestOzekiRecordThenForward: the seed-like script Record then Forward: the
// recording started before the Forward goes on in the bridge the Forward
// makes and holds both parties: the caller's 440 Hz and, once connected,
// the other party's 1000 Hz. One recording, ended by the call's hangup.
func TestOzekiRecordThenForward(t *testing.T) {
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	bob, err := sipua.New(sipua.Options{User: "bob", AutoAnswer: true, RTPMin: rtpLo, RTPMax: rtpHi,
		IncomingHandler: func() rtpsess.Handler { return sipua.NoopHandler{} }})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	recv := startReceiver(t)
	recv.answer = func(path string, form url.Values) (int, string) {
		if path == "/incoming" {
			return 200, `<?xml version="1.0"?><Response><Record FinishedUrl="` + recv.url("/record_finished") +
				`" Format="wav"></Record><Forward>` + bob.URI() + `</Forward><Delay>2</Delay><Hangup></Hangup></Response>`
		}
		return 200, ""
	}
	n := ozekiNode(t, "900", "Script("+recv.url("/incoming")+")")
	phone := newPhone(t, "udp")
	res := wait(t, dialAsync(phone, n.target("900"), sipua.CallOptions{}), 15*time.Second, "answer")
	if res.err != nil {
		t.Fatal(res.err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go res.call.SendAudio(ctx, sine(440, 8000*30, 8000))
	leg := wait(t, bob.Incoming(), 10*time.Second, "the forwarded call")
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool { return len(n.srv.Calls().Bridges()) == 1 },
		"the two calls are not connected")
	go leg.SendAudio(ctx, sine(1000, 8000*30, 8000))
	// Both parties talk for a while; the recording is still going.
	time.Sleep(2 * time.Second)
	if c := recv.count("RecordCompleted"); c != 0 {
		t.Fatalf("the recording ended when the Forward connected (%d RecordCompleted)", c)
	}
	if err := leg.Hangup(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The script goes on (a 2 s Delay, then Hangup); the recording, back on
	// the caller's own audio, ends with the call.
	wait(t, res.call.Ended(), 20*time.Second, "the caller's call to end after the forward")
	p := recv.waitPost("RecordCompleted", 15*time.Second)
	if p.Form.Get("Reason") != "hangup" || p.Form.Get("Format") != "wav" {
		t.Fatalf("RecordCompleted %v", p.Form)
	}
	if c := recv.count("RecordCompleted"); c != 1 {
		t.Fatalf("%d RecordCompleted notifications, want one recording", c)
	}
	got, err := http.Get(p.Form.Get("RecordURL"))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(got.Body)
	got.Body.Close()
	pcm := decodeRecording(t, data, "wav")
	// The parties talked for 2 s of wall time; on a loaded host less
	// audio may have arrived by the hangup, so ask for at least 1 s.
	if len(pcm) < 8000 {
		t.Fatalf("recording holds %d samples", len(pcm))
	}
	quiet := goertzel(pcm, 2500)
	if goertzel(pcm, 440) < 20*quiet || goertzel(pcm, 1000) < 20*quiet {
		t.Fatalf("not both parties: 440 Hz %.0f, 1000 Hz %.0f, 2500 Hz %.0f", goertzel(pcm, 440), goertzel(pcm, 1000), quiet)
	}
	// After the other party left, the recording went on with the caller
	// alone: the file's last second (of the 2 s Delay) is the caller's
	// 440 Hz, not the other party's 1000 Hz nor silence.
	tail := pcm[len(pcm)-8000:]
	if !dominant(tail, 440, 1000) || rms(tail) < 500 {
		t.Fatalf("the recording's last second is not the caller alone: 440 Hz %.0f, 1000 Hz %.0f, rms %.0f",
			goertzel(tail, 440), goertzel(tail, 1000), rms(tail))
	}
}

// TestOzekiInactivityWithoutAudio: Inactivity counts silence by absence: a
// caller that sends no RTP at all is stopped by the inactivity limit
// (Reason inactivity) long before Duration, and the call goes on.
func TestOzekiInactivityWithoutAudio(t *testing.T) {
	n := ozekiNode(t, "500", "Wait(30)")
	recv := startReceiver(t)
	phone := newPhone(t, "udp")
	dialAsync(phone, n.target("500"), sipua.CallOptions{})
	id := n.activeCall()
	q := "/api?command=Record&Username=HTTP_User_1&Password=qwe123&Format=wav&Duration=20&Inactivity=1&CallId=" +
		url.QueryEscape(id) + "&FinishedUrl=" + url.QueryEscape(recv.url("/done"))
	start := time.Now()
	if r := parseOz(t, n.ozekiGet(q)); r.Code != 200 {
		t.Fatalf("Record: %d %s", r.Code, r.Message)
	}
	p := recv.waitPost("RecordCompleted", 10*time.Second)
	if p.Form.Get("Reason") != "inactivity" || time.Since(start) > 8*time.Second {
		t.Fatalf("RecordCompleted after %v: %v", time.Since(start), p.Form)
	}
	if _, err := n.srv.Calls().Channel(callID(id)); err != nil {
		t.Fatal(err)
	}
}
