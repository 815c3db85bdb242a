package ozeki

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// encodingXML is the response as encoding/xml writes it, with Ozeki's
// declaration: what the hand-written XML must equal byte for byte.
func encodingXML(t *testing.T, r *Response) []byte {
	t.Helper()
	c := *r
	c.XSI, c.XSD = nsXSI, nsXSD
	b, err := xml.MarshalIndent(&c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(append([]byte(`<?xml version="1.0"?>`+"\n"), b...), '\n')
}

// trickyTexts are values that XML must escape, or that encoding/xml
// rewrites (control characters, invalid UTF-8).
var trickyTexts = []string{"", "plain", `John <Smith> & "Co" 'x'`, "a\nb\tc\rd", "J\u00fcrgen \u00c9mile \U0001F600",
	"bad\xffutf8\xc3", "ctl\x01\x1f\x7f", "]]>", "\ufffd\ufffe", "&amp;"}

// The hand-written XML is encoding/xml's, byte for byte: every message,
// tricky text, an empty and a full list of calls.
func TestMarshalBytesMatchEncodingXML(t *testing.T) {
	var rs []*Response
	for _, s := range trickyTexts {
		rs = append(rs, &Response{Code: 302, Message: s}, &Response{Code: 200, Message: "ok", CallID: s, NotificationName: s})
	}
	rs = append(rs, &Response{Code: 200, Message: "ok", ActiveCalls: &callInfos{Calls: []CallInfo{}}})
	var calls []CallInfo
	for i, s := range trickyTexts {
		calls = append(calls, CallInfo{CallState: "InCall", CallID: s, Source: s + "1", CallerID: s, Destination: s,
			StartTime: s, RingDuration: i, TalkDuration: -i})
	}
	rs = append(rs, &Response{Code: 200, Message: "ok", ActiveCalls: &callInfos{Calls: calls}})
	for _, r := range rs {
		if got, want := r.Marshal(), encodingXML(t, r); !bytes.Equal(got, want) {
			t.Errorf("hand-written:\n%s\nencoding/xml:\n%s", got, want)
		}
	}
}

// appendEscaped escapes as encoding/xml does, whatever the text.
func FuzzAppendEscaped(f *testing.F) {
	for _, s := range trickyTexts {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		xml.EscapeText(&want, []byte(s))
		if got := appendEscaped([]byte("x"), s); !bytes.Equal(got[1:], want.Bytes()) {
			t.Fatalf("%q: %q, encoding/xml %q", s, got[1:], want.Bytes())
		}
	})
}

// oldCallInfos is ListActiveCalls' list as it was built before the call
// summaries: from every channel's ChannelJSON.
func oldCallInfos(m call.Calls, now time.Time) *callInfos {
	list := &callInfos{Calls: []CallInfo{}}
	for _, ch := range m.Channels() {
		start := time.Time(ch.Creationtime)
		ci := CallInfo{CallState: callState(stateOf(ch.State)), CallID: string(ch.ID), Source: ch.Caller.Number,
			CallerID: ch.Caller.Name, Destination: ch.Dialplan.Exten, StartTime: start.Format(startTimeLayout)}
		if ci.CallerID == "" {
			ci.CallerID = ch.Caller.Number
		}
		if ch.State == "Up" {
			ci.TalkDuration = int(now.Sub(start) / time.Second)
		} else {
			ci.RingDuration = int(now.Sub(start) / time.Second)
		}
		list.Calls = append(list.Calls, ci)
	}
	return list
}

func stateOf(name string) call.State {
	for s := call.StateDown; s <= call.StateUnknown; s++ {
		if s.String() == name {
			return s
		}
	}
	return call.StateUnknown
}

// listManager is a real call manager with n external media channels (and
// their RTP sockets) whose caller ids are the tricky texts.
func listManager(t *testing.T, n int) (*call.Manager, []call.ChannelID) {
	t.Helper()
	lo, hi := testutil.FreeUDPPortRange(t, 4*n+20)
	ports, err := rtp.NewPorts("127.0.0.1", lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	bus := event.NewBus("list")
	bus.Register(event.NewSubscriber("list", 1<<16, false), nil)
	m := call.NewManager(call.Options{Bus: bus, Ports: ports, Logger: slog.New(slog.DiscardHandler)})
	var ids []call.ChannelID
	for i := range n {
		j, err := m.ExternalMedia(call.ExternalMediaOptions{App: "list", ExternalHost: "127.0.0.1:9", Format: "ulaw",
			ChannelID: call.ChannelID(fmt.Sprintf("list-%d<&>", i))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
		s := trickyTexts[i%len(trickyTexts)]
		if err := m.SetVar(j.ID, "CALLERID(name)", s, false); err != nil {
			t.Fatal(err)
		}
		if err := m.SetVar(j.ID, "CALLERID(num)", trickyTexts[(i+3)%len(trickyTexts)], false); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, id := range ids {
			m.Hangup(id, call.CauseNormalClearing)
		}
	})
	return m, ids
}

// ListActiveCalls answers, byte for byte, what encoding/xml writes for the
// list built from every channel's ChannelJSON (the old way), with tricky
// caller ids, oldest call first; and with no call up, an empty list as
// encoding/xml writes it.
func TestListActiveCallsMatchesEncodingXML(t *testing.T) {
	m, _ := listManager(t, 0)
	a := New(Options{Calls: m, Users: []config.OzekiUser{{Username: "u", Password: "p"}}, Log: slog.New(slog.DiscardHandler)})
	get := func() []byte {
		w := httptest.NewRecorder()
		a.ServeHTTP(w, httptest.NewRequest("GET", "/api?Username=u&Password=p&command=ListActiveCalls", nil))
		return w.Body.Bytes()
	}
	want := encodingXML(t, &Response{Code: 200, Message: "Command successfully executed", ActiveCalls: &callInfos{Calls: []CallInfo{}}})
	if got := get(); !bytes.Equal(got, want) {
		t.Fatalf("no calls:\n%s\nencoding/xml:\n%s", got, want)
	}

	m, _ = listManager(t, 25)
	a = New(Options{Calls: m, Users: []config.OzekiUser{{Username: "u", Password: "p"}}, Log: slog.New(slog.DiscardHandler)})
	for try := 0; ; try++ {
		t0 := time.Now()
		got := get()
		t1 := time.Now()
		want0 := encodingXML(t, &Response{Code: 200, Message: "Command successfully executed", ActiveCalls: oldCallInfos(m, t0)})
		want1 := encodingXML(t, &Response{Code: 200, Message: "Command successfully executed", ActiveCalls: oldCallInfos(m, t1)})
		if !bytes.Equal(want0, want1) && try < 5 { // a duration's second ticked over during the request
			continue
		}
		if !bytes.Equal(got, want0) {
			t.Fatalf("ListActiveCalls:\n%s\nencoding/xml of the channels:\n%s", got, want0)
		}
		var r Response
		if err := xml.Unmarshal(got, &r); err != nil || len(r.ActiveCalls.Calls) != 25 || r.ActiveCalls.Calls[0].CallID != "list-0<&>" {
			t.Fatalf("read back: %v %+v", err, r.ActiveCalls)
		}
		break
	}
}

// ListActiveCalls allocates per request, not per call: with 200 calls up a
// request allocates no more than with 2 (its list of calls and its buffer
// are reused; no ChannelJSON, channelvars map or StartTime string per
// call).
func TestListActiveCallsAllocatesPerRequest(t *testing.T) {
	allocs := func(n int) float64 {
		m, _ := listManager(t, n)
		a := New(Options{Calls: m, Users: []config.OzekiUser{{Username: "u", Password: "p"}}, Log: slog.New(slog.DiscardHandler)})
		req := httptest.NewRequest("GET", "/api?Username=u&Password=p&command=ListActiveCalls", nil)
		w := httptest.NewRecorder()
		w.Body.Grow(512 << 10)
		return testing.AllocsPerRun(50, func() {
			w.Body.Reset()
			a.ServeHTTP(w, req)
		})
	}
	few, many := allocs(2), allocs(200)
	t.Logf("allocations per request: %.0f with 2 calls, %.0f with 200", few, many)
	if many > few+5 {
		t.Fatalf("%.0f allocations per request with 200 calls against %.0f with 2: the list allocates per call", many, few)
	}
}
