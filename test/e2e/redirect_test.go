package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/users"
)

// TestAriRedirectUnansweredIs302: redirecting a call that is not answered
// answers its INVITE 302 Moved Temporarily with the target as Contact (an
// extension of tapedeck's own becomes a URI at tapedeck), then StasisEnd
// and ChannelDestroyed; the parameter errors answer as Asterisk's.
func TestAriRedirectUnansweredIs302(t *testing.T) {
	n := startNode(t, withRoute("_3XX", "Stasis(front)"))
	front := n.connect("front")
	phone := newPhone(t, "udp")
	res := dialAsync(phone, n.target("300"), sipua.CallOptions{})
	id := channelID(front.skipTo("StasisStart", 5*time.Second))

	for _, c := range []struct {
		query string
		code  int
		msg   string
	}{
		{"", 400, "endpoint"},
		{"?endpoint=PJSIP", 400, "does not contain tech/resource"},
		{"?endpoint=PJSIP/", 400, "No resource provided"},
		{"?endpoint=IAX2/401", 422, "does not match channel technology 'PJSIP'"},
		{"?endpoint=" + urlq("PJSIP/a b"), 400, "neither a URI nor an extension"},
	} {
		code, body := n.do("POST", "/channels/"+id+"/redirect"+c.query, nil)
		if code != c.code || !strings.Contains(string(body), c.msg) {
			t.Errorf("redirect%s: %d %s, want %d %q", c.query, code, body, c.code, c.msg)
		}
	}
	if code, _ := n.do("POST", "/channels/nosuch/redirect?endpoint=PJSIP/401", nil); code != 404 {
		t.Errorf("redirect of an unknown channel: %d, want 404", code)
	}

	n.mustDo("POST", "/channels/"+id+"/redirect?endpoint=PJSIP/401", 204)
	r := wait(t, res, 10*time.Second, "the 302")
	var rej *sipua.ErrRejected
	if !errorsAs(r.err, &rej) || rej.Code != 302 {
		t.Fatalf("dial: %v, want 302", r.err)
	}
	if want := "sip:401@" + n.srv.SIPAddr(); !strings.HasPrefix(rej.Contact, want) {
		t.Errorf("302 Contact %q, want %s", rej.Contact, want)
	}
	if got := channelID(front.skipTo("StasisEnd", 5*time.Second)); got != id {
		t.Errorf("StasisEnd for %s", got)
	}
	if d := front.skipTo("ChannelDestroyed", 5*time.Second); fmt.Sprint(d["cause"]) != "16" {
		t.Errorf("ChannelDestroyed %v", d)
	}
}

// TestAriRedirectReferFailureKeepsChannel: when the caller reports that
// its call to the REFER's target failed (NOTIFY 486), the channel stays in
// its application, bridged and up, as Asterisk's transfer failure leaves it.
func TestAriRedirectReferFailureKeepsChannel(t *testing.T) {
	n := startNode(t, withRoute("_3XX", "Stasis(front)"))
	front := n.connect("front")
	phone := newPhone(t, "udp")
	res := dialAsync(phone, n.target("300"), sipua.CallOptions{})
	id := channelID(front.skipTo("StasisStart", 5*time.Second))
	n.mustDo("POST", "/channels/"+id+"/answer", 204)
	r := wait(t, res, 10*time.Second, "answer")
	must(t, r.err)
	n.mustDo("POST", "/channels/"+id+"/redirect?endpoint="+urlq("PJSIP/sip:carol@127.0.0.1:9"), 204)
	var ref sipua.Refer
	select {
	case ref = <-phone.Refers():
	case <-time.After(10 * time.Second):
		t.Fatal("no REFER")
	}
	if ref.Target != "sip:carol@127.0.0.1:9" {
		t.Errorf("Refer-To %q", ref.Target)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if code, err := ref.Call.NotifyTransfer(ctx, 486, "Busy Here"); err != nil || code != 200 {
		t.Fatalf("NOTIFY 486: %d %v", code, err)
	}
	// A later NOTIFY belongs to no transfer any more.
	if code, _ := ref.Call.NotifyTransfer(ctx, 200, "OK"); code != 481 {
		t.Errorf("NOTIFY after the transfer ended: %d, want 481", code)
	}
	select {
	case <-r.call.Ended():
		t.Fatal("the call ended although the transfer failed")
	case <-time.After(500 * time.Millisecond):
	}
	if code, body := n.do("GET", "/channels/"+id, nil); code != 200 || !strings.Contains(string(body), `"state":"Up"`) {
		t.Fatalf("channel after a failed transfer: %d %s", code, body)
	}
	// Still in the application: it can be hung up through ARI.
	n.mustDo("DELETE", "/channels/"+id, 204)
	front.skipTo("ChannelDestroyed", 5*time.Second)
}

// TestAriContinueInDialplan: continueInDialplan ends the application
// (StasisEnd) and runs tapedeck's dialplan where it is told: a route in
// another context puts the channel into another application with that
// location; with no location the channel goes on at the next priority,
// where a tapedeck route has nothing, so the dialplan ends and the call is
// hung up. A label that is not a number is not found (404), label 0 is
// illegal (400), as in Asterisk.
func TestAriContinueInDialplan(t *testing.T) {
	n := startNode(t, func(c *config.Config) {
		c.Dialplan = []config.Route{
			{Exten: "300", App: "Stasis(front)"},
			{Exten: "700", Context: "other", App: "Stasis(back,again)"},
		}
	})
	front := n.connect("front")
	back := n.connect("back")
	phone := newPhone(t, "udp")
	res := dialAsync(phone, n.target("300"), sipua.CallOptions{})
	id := channelID(front.skipTo("StasisStart", 5*time.Second))
	n.mustDo("POST", "/channels/"+id+"/answer", 204)
	r := wait(t, res, 10*time.Second, "answer")
	must(t, r.err)

	for _, c := range []struct {
		query string
		code  int
	}{
		{"?label=start", 404},
		{"?label=0", 400},
		{"?priority=x", 400},
	} {
		if code, body := n.do("POST", "/channels/"+id+"/continue"+c.query, nil); code != c.code {
			t.Errorf("continue%s: %d %s, want %d", c.query, code, body, c.code)
		}
	}
	if code, _ := n.do("POST", "/channels/nosuch/continue", nil); code != 404 {
		t.Errorf("continue of an unknown channel: %d", code)
	}

	n.mustDo("POST", "/channels/"+id+"/continue?context=other&extension=700", 204)
	if got := channelID(front.skipTo("StasisEnd", 5*time.Second)); got != id {
		t.Fatalf("StasisEnd for %s", got)
	}
	st := back.skipTo("StasisStart", 5*time.Second)
	dp, _ := st["channel"].(map[string]any)["dialplan"].(map[string]any)
	if channelID(st) != id || fmt.Sprint(st["args"]) != "[again]" || dp["context"] != "other" || dp["exten"] != "700" ||
		fmt.Sprint(dp["priority"]) != "1" || dp["app_name"] != "Stasis" || dp["app_data"] != "back,again" {
		t.Fatalf("back's StasisStart %v", st)
	}
	// Continuing from "back" with no location goes to priority 2, where
	// the route has nothing: the dialplan ends.
	n.mustDo("POST", "/channels/"+id+"/continue", 204)
	back.skipTo("StasisEnd", 5*time.Second)
	select {
	case <-r.call.Ended():
	case <-time.After(10 * time.Second):
		t.Fatal("the dialplan's end did not hang the call up")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _ := n.do("GET", "/channels/"+id, nil)
		if code == 404 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("channel still there: %d", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAriMusicOnHold: startMoh plays the class asked for (an unknown class
// plays the default one, as Asterisk falls back to it) until stopMoh; a
// bridge's startMoh is heard by its members, and stopping a bridge's music
// when none plays is 409, an unknown bridge 404.
func TestAriMusicOnHold(t *testing.T) {
	n := startNode(t, withMOHDir(mohDir(t)), withRoute("_3XX", "Stasis(front)"))
	front := n.connect("front")
	phone := newPhone(t, "udp")
	sink := &audioSink{}
	res := dialAsync(phone, n.target("300"), sipua.CallOptions{Handler: sink})
	id := channelID(front.skipTo("StasisStart", 5*time.Second))
	n.mustDo("POST", "/channels/"+id+"/answer", 204)
	must(t, wait(t, res, 10*time.Second, "answer").err)

	hear := func(what string, f, other float64) {
		t.Helper()
		sink.reset()
		deadline := time.Now().Add(10 * time.Second)
		for len(sink.samples()) < 8000 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: heard only %d samples", what, len(sink.samples()))
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Skip the first frames: they may still carry what played before.
		pcm := sink.samples()[1600:]
		if !dominant(pcm, f, other) || rms(pcm) < 1000 {
			t.Fatalf("%s: rms %.0f, %.0f Hz %.3g, %.0f Hz %.3g", what, rms(pcm), f, goertzel(pcm, f), other, goertzel(pcm, other))
		}
	}
	n.mustDo("POST", "/channels/"+id+"/moh?mohClass=tone", 204)
	hear("class tone", 440, 1000)
	n.mustDo("POST", "/channels/"+id+"/moh?mohClass=nosuchclass", 204)
	hear("unknown class", 1000, 440)
	n.mustDo("DELETE", "/channels/"+id+"/moh", 204)
	n.mustDo("DELETE", "/channels/"+id+"/moh", 204) // nothing playing: fine
	time.Sleep(100 * time.Millisecond)
	sink.reset()
	time.Sleep(600 * time.Millisecond)
	if pcm := sink.samples(); len(pcm) > 0 && rms(pcm) > 100 {
		t.Errorf("music after stopMoh: rms %.0f over %d samples", rms(pcm), len(pcm))
	}
	if code, _ := n.do("POST", "/channels/nosuch/moh", nil); code != 404 {
		t.Errorf("moh on an unknown channel: %d", code)
	}

	n.mustDo("POST", "/bridges/mohbridge", 200)
	n.mustDo("POST", "/bridges/mohbridge/addChannel?channel="+id, 204)
	if code, body := n.do("DELETE", "/bridges/mohbridge/moh", nil); code != 409 {
		t.Errorf("stopMoh on a bridge without music: %d %s, want 409", code, body)
	}
	n.mustDo("POST", "/bridges/mohbridge/moh?mohClass=tone", 204)
	hear("bridge class tone", 440, 1000)
	n.mustDo("DELETE", "/bridges/mohbridge/moh", 204)
	if code, _ := n.do("POST", "/bridges/nosuch/moh", nil); code != 404 {
		t.Errorf("moh on an unknown bridge: %d", code)
	}
	if code, _ := n.do("DELETE", "/bridges/nosuch/moh", nil); code != 404 {
		t.Errorf("stopMoh on an unknown bridge: %d", code)
	}
}

// TestARIEndpointStateChange: an application subscribed to the PJSIP
// endpoints hears, when a user's phone registers, ContactStatusChange
// (Created, with the phone's contact) then EndpointStateChange (online),
// and when it unregisters ContactStatusChange (Removed) then
// EndpointStateChange (offline); the endpoint's state in GET /endpoints
// follows.
func TestARIEndpointStateChange(t *testing.T) {
	n, _ := startStorePBX(t, users.User{Firstname: "Alice", Exten: "1001"})
	ev := n.connect("epwatch")
	n.mustDo("POST", "/applications/epwatch/subscription?eventSource="+urlq("endpoint:PJSIP"), 200)
	port := 0 // the phone's SIP port, in its contact
	until := func(typ string) []string {
		t.Helper()
		var seq []string
		for {
			e := ev.nextEvent(10 * time.Second)
			if e == nil {
				t.Fatalf("no %s after %v", typ, seq)
			}
			ep, _ := e["endpoint"].(map[string]any)
			line := fmt.Sprintf("%v/%v/%v", e["type"], ep["resource"], ep["state"])
			if ci, ok := e["contact_info"].(map[string]any); ok {
				line += fmt.Sprintf("/%v/%v", ci["contact_status"], port > 0 && strings.Contains(fmt.Sprint(ci["uri"]), fmt.Sprintf(":%d", port)))
			}
			seq = append(seq, line)
			if e["type"] == typ {
				return seq
			}
		}
	}
	alice := registeredPhone(t, n, "1001", 440, "manual")
	port = alice.SIPPort
	if got, want := strings.Join(until("EndpointStateChange"), " "),
		"ContactStatusChange/sip1001/online/Created/true EndpointStateChange/sip1001/online"; got != want {
		t.Fatalf("on registration: %s, want %s", got, want)
	}
	if b := string(n.mustDo("GET", "/endpoints/PJSIP/sip1001", 200)); !strings.Contains(b, `"state":"online"`) {
		t.Fatalf("endpoint %s", b)
	}
	if _, err := alice.Command("uadel", alice.AOR()); err != nil {
		t.Fatalf("baresip uadel: %v", err)
	}
	if got, want := strings.Join(until("EndpointStateChange"), " "),
		"ContactStatusChange/sip1001/offline/Removed/true EndpointStateChange/sip1001/offline"; got != want {
		t.Fatalf("on unregistration: %s, want %s", got, want)
	}
	if b := string(n.mustDo("GET", "/endpoints/PJSIP/sip1001", 200)); !strings.Contains(b, `"state":"offline"`) {
		t.Fatalf("endpoint %s", b)
	}
}

// TestAriRedirectOutboundLeg: a call tapedeck placed (originate into an
// application) is redirected with a REFER to the callee; once the callee
// reports 200 the leg is hung up (BYE to the callee), StasisEnd and
// ChannelDestroyed follow.
func TestAriRedirectOutboundLeg(t *testing.T) {
	n := startNode(t)
	ev := n.connect("out")
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	callee, err := sipua.New(sipua.Options{User: "bob", AutoAnswer: true, RTPMin: rtpLo, RTPMax: rtpHi})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { callee.Close() })
	ep := urlq(fmt.Sprintf("PJSIP/bob@127.0.0.1:%d", callee.Port()))
	n.mustDo("POST", "/channels?endpoint="+ep+"&app=out&channelId=leg", 200)
	var in *sipua.Call
	select {
	case in = <-callee.Incoming():
	case <-time.After(10 * time.Second):
		t.Fatal("the callee got no call")
	}
	ev.skipTo("StasisStart", 10*time.Second)
	n.mustDo("POST", "/channels/leg/redirect?endpoint="+urlq("PJSIP/sip:carol@127.0.0.1:9"), 204)
	var ref sipua.Refer
	select {
	case ref = <-callee.Refers():
	case <-time.After(10 * time.Second):
		t.Fatal("the callee got no REFER")
	}
	if ref.Call != in || ref.Target != "sip:carol@127.0.0.1:9" {
		t.Fatalf("REFER on %p to %q, want the originated call to sip:carol@127.0.0.1:9", ref.Call, ref.Target)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if code, err := in.NotifyTransfer(ctx, 200, "OK"); err != nil || code != 200 {
		t.Fatalf("NOTIFY 200: %d %v", code, err)
	}
	select {
	case <-in.Ended():
	case <-time.After(10 * time.Second):
		t.Fatal("tapedeck did not hang up the transferred leg")
	}
	if got := channelID(ev.skipTo("StasisEnd", 5*time.Second)); got != "leg" {
		t.Errorf("StasisEnd for %s", got)
	}
	if d := ev.skipTo("ChannelDestroyed", 5*time.Second); fmt.Sprint(d["cause"]) != "16" {
		t.Errorf("ChannelDestroyed %v", d)
	}
}

// TestAriRedirectToRegisteredUser: PJSIP/<user> names a registered user's
// endpoint: the 302's Contact is that phone's registered contact.
func TestAriRedirectToRegisteredUser(t *testing.T) {
	n, _ := startStorePBXWith(t, func(c *config.Config) {
		c.Dialplan = []config.Route{{Exten: "300", App: "Stasis(front)"}}
	}, users.User{Firstname: "Alice", Exten: "1001"})
	alice := registeredPhone(t, n, "1001", 440, "manual")
	front := n.connect("front")
	phone := newPhone(t, "udp")
	res := dialAsync(phone, n.target("300"), sipua.CallOptions{})
	id := channelID(front.skipTo("StasisStart", 5*time.Second))
	n.mustDo("POST", "/channels/"+id+"/redirect?endpoint=PJSIP/sip1001", 204)
	r := wait(t, res, 10*time.Second, "the 302")
	var rej *sipua.ErrRejected
	if !errorsAs(r.err, &rej) || rej.Code != 302 {
		t.Fatalf("dial: %v, want 302", r.err)
	}
	if !strings.Contains(rej.Contact, fmt.Sprintf(":%d", alice.SIPPort)) {
		t.Errorf("302 Contact %q, want alice's registered contact (port %d)", rej.Contact, alice.SIPPort)
	}
}
