package ozeki

import (
	"encoding/xml"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/event"
)

// FuzzParseOzML: any bytes parse or fail cleanly; a parsed document holds
// only known verbs and attributes, within the bounds.
func FuzzParseOzML(f *testing.F) {
	f.Add([]byte(`<?xml version="1.0"?> <Response> <Speak>Your call will be recorded. You can stop recording by pressing 1. You have 1 minutes to talk.</Speak> <Record FinishedUrl="http://yourapp.com/record_finished.php" FinishDigits="1" Format="wav"></Record> <Delay>60</Delay> <Hangup></Hangup> </Response>`))
	f.Add([]byte(`<Response><UserInput Url="http://a/b" MaxDigits="3"><InitialPrompt><Speak>Press</Speak><Play>beep</Play></InitialPrompt></UserInput></Response>`))
	f.Add([]byte(`<Response><Forward>sip:bob@127.0.0.1</Forward><Reject/></Response>`))
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "aaaa">]><Response>&a;</Response>`))
	f.Add([]byte(`<Response><Speak>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		doc, err := ParseOzML(b)
		if err != nil {
			return
		}
		n := 0
		var check func(vs []Verb)
		check = func(vs []Verb) {
			for _, v := range vs {
				n++
				allowed, ok := verbAttrs[v.Name]
				if !ok || v.Name == "InitialPrompt" {
					t.Fatalf("verb %q in a parsed document", v.Name)
				}
				for k := range v.Attrs {
					found := false
					for _, a := range allowed {
						found = found || a == k
					}
					if !found {
						t.Fatalf("attribute %q of %s in a parsed document", k, v.Name)
					}
				}
				if len(v.Prompt) > 0 && v.Name != "UserInput" {
					t.Fatalf("%s has nested verbs", v.Name)
				}
				check(v.Prompt)
			}
		}
		check(doc.Verbs)
		if n > MaxVerbs {
			t.Fatalf("%d verbs", n)
		}
	})
}

var ozekiCodes = map[int]bool{200: true, 300: true, 301: true, 302: true, 303: true, 304: true, 305: true, 306: true, 307: true, 601: true}

// FuzzCommandParams: any query string or form body, through the whole
// handler (parameters, authentication, every command's checks) over a
// real call manager with no calls: HTTP 200 and Ozeki's XML with one of
// its codes, always.
func FuzzCommandParams(f *testing.F) {
	m := call.NewManager(call.Options{Bus: event.NewBus("fuzz"), RecordingsDir: f.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	a := New(Options{Calls: m, Users: []config.OzekiUser{{Username: "u", Password: "p"}, {Username: "l", Password: "p", Commands: []string{"Hangup"}}},
		RecordPaths: []string{f.TempDir()}, Log: slog.New(slog.DiscardHandler), SignKey: []byte("k")})
	for _, s := range []string{
		"command=Record&Username=HTTP_User_1&Password=qwe123&CallId=345fad34&Format=mp3&FinishedUrl=http%3a%2f%2fyourapp.com%2frecord_finished.php",
		"command=Record&Username=u&Password=p&CallId=x&Duration=5&Inactivity=3&FinishDigits=1234567890*%23&RecordPath=D:/recordings",
		"command=ListActiveCalls&Username=u&Password=p",
		"command=Call&Username=u&Password=p&Dialed=sip:bob@127.0.0.1:5060&Timeout=9",
		"COMMAND=sEnDdTmF&username=u&PASSWORD=p&callid=a&dtmf=12",
		"command=Speak&Username=l&Password=p&CallId=a&Text=hi&Voice=en",
		"command=%zz", "", "&&&=&", "command=Play&Username=u&Password=p&CallId=a&Url=http://x/y.wav",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, q string, post bool) {
		var req *http.Request
		if post {
			req = httptest.NewRequest("POST", "/api", strings.NewReader(q))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req = httptest.NewRequest("GET", "/api", nil)
			req.URL.RawQuery = q
		}
		w := httptest.NewRecorder()
		a.ServeHTTP(w, req)
		if w.Code != 200 {
			t.Fatalf("HTTP %d", w.Code)
		}
		var r struct {
			Code    int    `xml:"Code"`
			Message string `xml:"Message"`
		}
		if err := xml.Unmarshal(w.Body.Bytes(), &r); err != nil {
			t.Fatalf("not XML: %v\n%s", err, w.Body)
		}
		if !ozekiCodes[r.Code] || r.Message == "" {
			t.Fatalf("code %d message %q", r.Code, r.Message)
		}
	})
}

// TestMarshalMatchesEncodingXML: the hand-written XML reads back as the
// response, escapes included.
func TestMarshalMatchesEncodingXML(t *testing.T) {
	r := &Response{Code: 200, Message: `a<b>&"c"`, CallID: "x&y", ActiveCalls: &callInfos{Calls: []CallInfo{
		{CallState: "InCall", CallID: "1.2", Source: "1000", CallerID: "John <Smith>", Destination: "1001", StartTime: "t", RingDuration: 2, TalkDuration: 956}}}}
	var back Response
	if err := xml.Unmarshal(r.Marshal(), &back); err != nil {
		t.Fatal(err)
	}
	back.XMLName = r.XMLName
	back.XSI, back.XSD = "", ""
	if back.Code != r.Code || back.Message != r.Message || back.CallID != r.CallID || len(back.ActiveCalls.Calls) != 1 ||
		back.ActiveCalls.Calls[0] != r.ActiveCalls.Calls[0] {
		t.Fatalf("read back %+v", back)
	}
	if !strings.HasPrefix(string(r.Marshal()), `<?xml version="1.0"?>`+"\n"+`<Response xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">`) {
		t.Fatalf("prolog %s", r.Marshal())
	}
}
