package e2e

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil/baresip"
	"github.com/tapedeck/tapedeck/internal/testutil/nodeari"
)

// lineTypes lists the "type" of each line the node app printed.
func lineTypes(lines []nodeari.Line) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		out = append(out, l["type"].(string))
	}
	return out
}

// TestAriClientAnswersGoPhone: an unmodified npm ari-client 2.x app
// connects with ari.connect(url, 'asterisk', 'asterisk'), answers a call the
// Go phone places, collects its DTMF and hangs up — the calls the seed's
// vm-record.js skeleton makes.
func TestAriClientAnswersGoPhone(t *testing.T) {
	n := startNode(t)
	app := nodeari.Start(t, "answer.js", map[string]string{
		"ARI_URL": n.baseURL(), "ARI_APP": "test", "EXPECT_DIGITS": "123", "TIMEOUT_MS": "20000",
	})
	if _, err := app.WaitLine("READY", 20*time.Second); err != nil {
		t.Fatalf("ari-client did not connect: %v\n%s", err, app.Output())
	}
	phone := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	call, err := phone.Dial(ctx, n.target("305"), sipua.CallOptions{})
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, app.Output())
	}
	if _, err := app.WaitLine("ANSWERED", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := call.SendDTMF("123", 100*time.Millisecond, 80*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	wait(t, call.Ended(), 15*time.Second, "BYE from the ari-client app")
	if err := app.Wait(10 * time.Second); err != nil {
		t.Fatalf("app: %v\n%s", err, app.Output())
	}
	lines := app.Lines()
	start := lines[1]
	if start["type"] != "StasisStart" || !reflect.DeepEqual(start["args"], []any{"305"}) {
		t.Fatalf("first event %v, want StasisStart [305]", start)
	}
	got := strings.Join(lineTypes(lines), " ")
	// ARI events alone (the app's own lines, such as HUNGUP printed when its
	// hangup request returns, may interleave with them).
	var ariOnly []string
	for _, typ := range lineTypes(lines) {
		if typ != strings.ToUpper(typ) {
			ariOnly = append(ariOnly, typ)
		}
	}
	events := strings.Join(ariOnly, " ")
	if !strings.Contains(events, "ChannelHangupRequest StasisEnd") {
		t.Errorf("ARI events %q lack ChannelHangupRequest, StasisEnd in order", events)
	}
	for _, want := range []string{
		"READY StasisStart",
		"ChannelDtmfReceived ChannelDtmfReceived ChannelDtmfReceived DIGITS",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("event sequence %q lacks %q", got, want)
		}
	}
	// (The app's hangup is proven by the BYE the phone received; its HUNGUP
	// line may be cut off by its exit on StasisEnd.)
	if !strings.Contains(got, "ChannelStateChange") || !strings.Contains(got, "ANSWERED") {
		t.Errorf("event sequence %q lacks the answer", got)
	}
}

// TestBaresipVMRecord: baresip (a real softphone) dials extension 305 of
// the seed's dialplan; the app gets StasisStart with args ["305"], answers,
// receives the digits baresip sends as RFC 4733, and hangs up.
func TestBaresipVMRecord(t *testing.T) {
	n := startNode(t, withRoute("_3XX", "Stasis(vm-record, ${EXTEN})"))
	events := n.connect("vm-record")
	phone := baresip.Start(t, baresip.Options{User: "bob"})
	if err := phone.Dial(n.target("305")); err != nil {
		t.Fatal(err)
	}
	start := events.expect("StasisStart", 10*time.Second)
	if !reflect.DeepEqual(start["args"], []any{"305"}) {
		t.Fatalf("args %v, want [305]", start["args"])
	}
	ch := start["channel"].(map[string]any)
	if ch["caller"].(map[string]any)["number"] != "bob" || !strings.HasPrefix(ch["name"].(string), "PJSIP/bob-") {
		t.Fatalf("channel %v", ch)
	}
	id := ch["id"].(string)
	n.mustDo("POST", "/channels/"+id+"/answer", 204)
	if _, err := phone.WaitEvent("CALL_ESTABLISHED", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	events.expect("ChannelStateChange", 5*time.Second)
	if err := phone.SendDTMF("12#"); err != nil {
		t.Fatal(err)
	}
	var digits string
	for range 3 {
		ev := events.skipTo("ChannelDtmfReceived", 10*time.Second)
		digits += ev["digit"].(string)
	}
	if digits != "12#" {
		t.Fatalf("digits %q, want 12#", digits)
	}
	// Media reached us from baresip.
	stats := string(n.mustDo("GET", "/channels/"+id+"/rtp_statistics", 200))
	if strings.Contains(stats, `"rxcount":0,`) {
		t.Fatalf("no RTP from baresip: %s", stats)
	}
	n.mustDo("DELETE", "/channels/"+id, 204)
	if _, err := phone.WaitEvent("CALL_CLOSED", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	events.skipTo("ChannelHangupRequest", 5*time.Second)
	events.expect("StasisEnd", 5*time.Second)
	events.expect("ChannelDestroyed", 5*time.Second)
}

// TestBaresipWithAriClient: both real clients at once — baresip calls,
// the npm ari-client app answers, takes the digits and hangs up.
func TestBaresipWithAriClient(t *testing.T) {
	n := startNode(t, withRoute("_3XX", "Stasis(vm-record, ${EXTEN})"))
	app := nodeari.Start(t, "answer.js", map[string]string{
		"ARI_URL": n.baseURL(), "ARI_APP": "vm-record", "EXPECT_DIGITS": "1#", "TIMEOUT_MS": "25000",
	})
	if _, err := app.WaitLine("READY", 20*time.Second); err != nil {
		t.Fatalf("ari-client did not connect: %v\n%s", err, app.Output())
	}
	phone := baresip.Start(t, baresip.Options{User: "carol"})
	if err := phone.Dial(n.target("305")); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.WaitEvent("CALL_ESTABLISHED", 15*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, app.Output())
	}
	if err := phone.SendDTMF("1#"); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.WaitEvent("CALL_CLOSED", 15*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, app.Output())
	}
	if err := app.Wait(10 * time.Second); err != nil {
		t.Fatalf("app: %v\n%s", err, app.Output())
	}
	l, err := app.WaitLine("DIGITS", time.Second)
	if err != nil || l["digits"] != "1#" {
		t.Fatalf("digits line %v %v", l, err)
	}
}
