package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// TestAriOriginateParams: originate's formats restrict the codecs offered
// (alaw only: the callee answers PCMA), with Asterisk's 400s for an unknown
// format and for formats with an originator; a label that is not a number
// is 404 and label 0 is 400; an otherChannelId in use is 409; a priority
// other than 1 has nothing to run in a tapedeck route, so the answered
// call is hung up.
func TestAriOriginateParams(t *testing.T) {
	n := startNode(t, func(c *config.Config) {
		c.Dialplan = []config.Route{{Exten: "300", App: "Stasis(orig)"}}
	})
	ev := n.connect("orig")
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	callee, err := sipua.New(sipua.Options{User: "bob", AutoAnswer: true, RTPMin: rtpLo, RTPMax: rtpHi})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { callee.Close() })
	ep := urlq(fmt.Sprintf("PJSIP/bob@127.0.0.1:%d", callee.Port()))

	for _, c := range []struct {
		query string
		code  int
		msg   string
	}{
		{"&app=orig&formats=nosuch", 400, "Provided format (nosuch) was not found"},
		{"&app=orig&formats=g722", 400, "None of the formats"},
		{"&app=orig&formats=ulaw&originator=x", 400, "Originator and formats can't both be specified"},
		{"&extension=300&label=start", 404, "Requested label can not be found"},
		{"&extension=300&label=0", 400, "Requested priority is illegal"},
	} {
		code, body := n.do("POST", "/channels?endpoint="+ep+c.query, nil)
		if code != c.code || !strings.Contains(string(body), c.msg) {
			t.Errorf("originate%s: %d %s, want %d %q", c.query, code, body, c.code, c.msg)
		}
	}

	// formats=alaw: the callee is offered, and answers, PCMA only.
	n.mustDo("POST", "/channels?endpoint="+ep+"&app=orig&channelId=alaw-leg&formats=alaw", 200)
	var in *sipua.Call
	select {
	case in = <-callee.Incoming():
	case <-time.After(10 * time.Second):
		t.Fatal("the callee got no call")
	}
	if in.Codec().Name != "PCMA" {
		t.Errorf("formats=alaw: the callee answered %s", in.Codec().Name)
	}
	ev.skipTo("StasisStart", 10*time.Second)
	if code, body := n.do("POST", "/channels?endpoint="+ep+"&app=orig&otherChannelId=alaw-leg", nil); code != 409 {
		t.Errorf("otherChannelId in use: %d %s, want 409", code, body)
	}
	n.mustDo("DELETE", "/channels/alaw-leg", 204)
	ev.skipTo("ChannelDestroyed", 10*time.Second)

	// priority=2 of extension 300: the route's Stasis(orig) is at priority
	// 1, so once answered the dialplan ends: the channel goes without
	// entering orig.
	n.mustDo("POST", "/channels?endpoint="+ep+"&extension=300&priority=2&channelId=pri2", 200)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := n.do("GET", "/channels/pri2", nil)
		if code == 404 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("priority 2: the channel is still there (%d)", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for {
		e := ev.nextEvent(300 * time.Millisecond)
		if e == nil {
			break
		}
		if e["type"] == "StasisStart" {
			t.Fatalf("priority 2 ran the route's application: %v", e)
		}
	}
}

// TestAriBridgeJoinParams: setChannelVar's report_events puts the variable
// into the channel's events (channelvars); two channels bridged get each
// other's caller id as connected line (ChannelConnectedLine), unless the
// joiner inhibits it; absorbDTMF keeps a party's digits from the other;
// an unknown recorder_format or announcer_format is 422.
func TestAriBridgeJoinParams(t *testing.T) {
	n := startNode(t, withRoute("_3XX", "Stasis(join)"))
	ev := n.connect("join")
	callIn := func(user, exten string, h *digitCollector) (string, *sipua.Call) {
		t.Helper()
		rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
		p, err := sipua.New(sipua.Options{User: user, RTPMin: rtpLo, RTPMax: rtpHi})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		res := dialAsync(p, n.target(exten), sipua.CallOptions{Handler: h})
		id := channelID(ev.skipTo("StasisStart", 5*time.Second))
		n.mustDo("POST", "/channels/"+id+"/answer", 204)
		r := wait(t, res, 10*time.Second, "answer")
		must(t, r.err)
		return id, r.call
	}
	aDigits, bDigits := &digitCollector{}, &digitCollector{}
	a, aCall := callIn("alice", "301", aDigits)
	b, bCall := callIn("bob", "302", bDigits)

	n.mustDo("POST", "/channels/"+a+"/variable?variable=TEAM&value=red&report_events=true", 204)
	vs := ev.skipTo("ChannelVarset", 5*time.Second)
	if cv, _ := vs["channel"].(map[string]any)["channelvars"].(map[string]any); cv["TEAM"] != "red" {
		t.Fatalf("ChannelVarset channel.channelvars %v", vs["channel"])
	}

	// CALLERID() is a function: ChannelCallerId, not ChannelVarset.
	n.mustDo("POST", "/channels/"+a+"/variable?variable="+urlq("CALLERID(name)")+"&value=Alice", 204)
	cid := ev.nextEvent(5 * time.Second)
	if cid["type"] != "ChannelCallerId" || cid["channel"].(map[string]any)["caller"].(map[string]any)["name"] != "Alice" ||
		fmt.Sprint(cid["caller_presentation"]) != "0" {
		t.Fatalf("after setting CALLERID(name): %v, want ChannelCallerId with the new name", cid)
	}

	n.mustDo("POST", "/bridges/join", 200)
	n.mustDo("POST", "/bridges/join/addChannel?channel="+a+"&absorbDTMF=true", 204)
	n.mustDo("POST", "/bridges/join/addChannel?channel="+b+"&inhibitConnectedLineUpdates=true", 204)
	cl := ev.skipTo("ChannelConnectedLine", 5*time.Second)
	ch := cl["channel"].(map[string]any)
	if ch["id"] != b || ch["connected"].(map[string]any)["number"] != "alice" {
		t.Fatalf("ChannelConnectedLine %v, want bob's channel connected to alice", ch)
	}
	if cv, _ := ch["channelvars"].(map[string]any); cv != nil {
		t.Errorf("bob's channel reports %v", cv)
	}
	code, body := n.do("GET", "/channels/"+a, nil)
	if code != 200 || strings.Contains(string(body), `"number":"bob"`) || !strings.Contains(string(body), `"TEAM":"red"`) {
		t.Errorf("alice's channel after bob joined with inhibitConnectedLineUpdates: %s", body)
	}

	// Alice's digits are absorbed; bob's pass to alice.
	must(t, aCall.SendDTMF("1", 100*time.Millisecond, 100*time.Millisecond))
	must(t, bCall.SendDTMF("2", 100*time.Millisecond, 100*time.Millisecond))
	deadline := time.Now().Add(5 * time.Second)
	for aDigits.String() != "2" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if aDigits.String() != "2" || bDigits.String() != "" {
		t.Errorf("alice heard %q (want 2), bob heard %q (want nothing: alice's digits are absorbed)", aDigits.String(), bDigits.String())
	}

	if code, body := n.do("POST", "/bridges/join/record?name=x&format=wav&recorder_format=nosuch", nil); code != 422 {
		t.Errorf("recorder_format=nosuch: %d %s, want 422", code, body)
	}
	if code, body := n.do("POST", "/bridges/join/play?media=tone:ring&announcer_format=nosuch", nil); code != 422 {
		t.Errorf("announcer_format=nosuch: %d %s, want 422", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = aCall.Hangup(ctx)
	_ = bCall.Hangup(ctx)
}

// digitCollector keeps the digits a phone receives.
type digitCollector struct {
	mu sync.Mutex
	s  string
}

func (d *digitCollector) OnAudio(*rtp.Packet, uint64) {}

func (d *digitCollector) OnDTMF(digit rune, _ int, end bool) {
	if end {
		d.mu.Lock()
		d.s += string(digit)
		d.mu.Unlock()
	}
}

func (d *digitCollector) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.s
}

// TestAriBridgeVariables: bridge create's variables body sets variables
// (a string, or {"value", "report_events"}: reported ones are in the
// bridge's bridgevars), and the bridge variable operations get and set
// them with Asterisk's status codes.
func TestAriBridgeVariables(t *testing.T) {
	n := startNode(t)
	code, body := n.do("POST", "/bridges/vars", map[string]any{"variables": map[string]any{"A": "1", "B": map[string]any{"value": "2", "report_events": true}}})
	if code != 200 || !strings.Contains(string(body), `"bridgevars":{"B":"2"}`) {
		t.Fatalf("create with variables: %d %s", code, body)
	}
	if b := string(n.mustDo("GET", "/bridges/vars/variable?variable=A", 200)); !strings.Contains(b, `"value":"1"`) {
		t.Errorf("A: %s", b)
	}
	n.mustDo("POST", "/bridges/vars/variable?variable=C&value=3&report_events=true", 204)
	if b := string(n.mustDo("GET", "/bridges/vars/variables?variables=A,B,C", 200)); !strings.Contains(b, `"A":"1"`) || !strings.Contains(b, `"C":"3"`) {
		t.Errorf("variables: %s", b)
	}
	if b := string(n.mustDo("GET", "/bridges/vars", 200)); !strings.Contains(b, `"bridgevars":{"B":"2","C":"3"}`) {
		t.Errorf("bridge: %s", b)
	}
	n.mustDo("POST", "/bridges/vars/variables", 400)
	code, _ = n.do("POST", "/bridges/vars/variables", map[string]any{"variables": map[string]any{"D": "4"}})
	if code != 204 {
		t.Errorf("setBridgeVars: %d", code)
	}
	n.mustDo("GET", "/bridges/vars/variable?variable=D", 200)
	n.mustDo("GET", "/bridges/vars/variable?variable=nosuch", 404)
	n.mustDo("GET", "/bridges/vars/variable", 400)
	n.mustDo("GET", "/bridges/nosuch/variable?variable=A", 404)
	n.mustDo("POST", "/bridges/nosuch/variable?variable=A&value=1", 404)
	if code, body := n.do("POST", "/bridges/bad", map[string]any{"variables": map[string]any{"A": 1}}); code != 400 {
		t.Errorf("a number as a variable: %d %s", code, body)
	}
	n.mustDo("GET", "/bridges/bad", 404)
}
