package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// dialplanOf is an event's channel's dialplan as
// "context,exten,priority app_name(app_data)".
func dialplanOf(ev map[string]any) string {
	ch, _ := ev["channel"].(map[string]any)
	d, _ := ch["dialplan"].(map[string]any)
	return fmt.Sprintf("%v,%v,%v %v(%v)", d["context"], d["exten"], d["priority"], d["app_name"], d["app_data"])
}

// TestAriChannelDialplan: ChannelDialplan goes out where Asterisk sends it
// (channel_dialplan in res/stasis/app.c: a channel gets a dialplan
// application where it had none, or changes location while it has one) and
// only to the applications subscribed to the channel at that moment. An
// incoming call's channel is created with no application and then runs
// Stasis(front): an application subscribed to everything hears
// ChannelCreated then ChannelDialplan; "front" is not subscribed yet and
// its first event is StasisStart. After continueInDialplan the channel
// runs Stasis(front,continued) elsewhere: ChannelDialplan again, not to
// "front", which left it (StasisEnd, then StasisStart). An originate to an
// extension: AppDial2 while it rings, then the extension's application
// once answered.
func TestAriChannelDialplan(t *testing.T) {
	n := startNode(t, func(c *config.Config) {
		c.Dialplan = []config.Route{
			{Exten: "300", App: "Stasis(front)"},
			{Exten: "_5XX", Context: "switchboard", App: "Stasis(front,continued)"},
		}
	})
	front := n.connect("front")
	all := n.connect("watcher&subscribeAll=true")

	phone := newPhone(t, "udp")
	res := dialAsync(phone, n.target("300"), sipua.CallOptions{})
	created := all.skipTo("ChannelCreated", 10*time.Second)
	id := channelID(created)
	if got := dialplanOf(created); got != "default,300,1 ()" {
		t.Errorf("ChannelCreated's dialplan %s, want default,300,1 with no application", got)
	}
	dp := all.expect("ChannelDialplan", 5*time.Second)
	if channelID(dp) != id || dp["dialplan_app"] != "Stasis" || dp["dialplan_app_data"] != "front" || dialplanOf(dp) != "default,300,1 Stasis(front)" {
		t.Errorf("entering Stasis: %v", dp)
	}
	if st := front.expect("StasisStart", 5*time.Second); channelID(st) != id || dialplanOf(st) != "default,300,1 Stasis(front)" {
		t.Fatalf("front's first event %v", st)
	}
	n.mustDo("POST", "/channels/"+id+"/answer", 204)
	must(t, wait(t, res, 10*time.Second, "answer").err)

	n.mustDo("POST", "/channels/"+id+"/continue?context=switchboard&extension=501", 204)
	front.skipTo("StasisEnd", 5*time.Second)
	// The next event of front's after StasisEnd is the new StasisStart:
	// it was not sent the ChannelDialplan between them.
	if st := front.expect("StasisStart", 5*time.Second); fmt.Sprint(st["args"]) != "[continued]" || dialplanOf(st) != "switchboard,501,1 Stasis(front,continued)" {
		t.Fatalf("after continue: %v", st)
	}
	dp = all.skipTo("ChannelDialplan", 5*time.Second)
	if channelID(dp) != id || dp["dialplan_app_data"] != "front,continued" || dialplanOf(dp) != "switchboard,501,1 Stasis(front,continued)" {
		t.Errorf("after continue: %v", dp)
	}
	n.mustDo("DELETE", "/channels/"+id, 204)
	all.skipTo("ChannelDestroyed", 5*time.Second)

	// An originate to an extension, answered by a phone.
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	callee, err := sipua.New(sipua.Options{User: "bob", AutoAnswer: true, RTPMin: rtpLo, RTPMax: rtpHi})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { callee.Close() })
	n.mustDo("POST", fmt.Sprintf("/channels?channelId=orig&endpoint=%s&context=switchboard&extension=502",
		urlq(fmt.Sprintf("PJSIP/sip:bob@127.0.0.1:%d", callee.Port()))), 200)
	created = all.skipTo("ChannelCreated", 10*time.Second)
	if channelID(created) != "orig" || dialplanOf(created) != "default,s,1 ()" {
		t.Errorf("originated ChannelCreated %v", dialplanOf(created))
	}
	dp = all.expect("ChannelDialplan", 5*time.Second)
	if channelID(dp) != "orig" || dialplanOf(dp) != "default,s,1 AppDial2((Outgoing Line))" {
		t.Errorf("originated channel dialing: %v", dp)
	}
	dp = all.skipTo("ChannelDialplan", 10*time.Second)
	if channelID(dp) != "orig" || dialplanOf(dp) != "switchboard,502,1 Stasis(front,continued)" {
		t.Errorf("originated channel answered: %v", dp)
	}
	if st := front.skipTo("StasisStart", 5*time.Second); channelID(st) != "orig" {
		t.Fatalf("front: %v", st)
	}
	n.mustDo("DELETE", "/channels/orig", 204)
	all.skipTo("ChannelDestroyed", 5*time.Second)
}
