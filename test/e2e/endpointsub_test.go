package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/nodeari"
)

// TestAriEndpointSubscriptionAndStasisRouting: two npm ari-client apps
// watch calls that are in a third application ("front"): "watcher"
// subscribed to endpoint:PJSIP/alice and "spy" subscribed to everything.
// As in Asterisk (chan_pjsip forwards a channel's topic to its endpoint's;
// res_stasis sends StasisStart/StasisEnd with app_send to the channel's
// application only):
//   - watcher hears the channel events of alice's calls (created, state,
//     destroyed) and nothing of bob's;
//   - neither watcher nor spy hears StasisStart or StasisEnd, which front
//     alone gets;
//   - after unsubscribing, watcher hears nothing of alice's next call, and
//     a technology subscription (endpoint:PJSIP) brings bob's calls.
func TestAriEndpointSubscriptionAndStasisRouting(t *testing.T) {
	n := startNode(t, withRoute("_3XX", "Stasis(front)"))
	front := n.connect("front")
	app := nodeari.Start(t, "endpoint-watch.js", map[string]string{"ARI_URL": n.baseURL(), "WATCH_ENDPOINT": "endpoint:PJSIP/alice"})
	sub, err := app.WaitLine("SUBSCRIBED", 20*time.Second)
	if err != nil {
		t.Fatalf("watcher did not subscribe: %v\n%s", err, app.Output())
	}
	if got := fmt.Sprint(sub["endpoint_ids"]); got != "[PJSIP/alice]" {
		t.Errorf("endpoint_ids after subscribing: %s", got)
	}
	if _, err := app.WaitLine("READY", 20*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, app.Output())
	}
	alice := newPhone(t, "udp")
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	bob, err := sipua.New(sipua.Options{User: "bob", RTPMin: rtpLo, RTPMax: rtpHi})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bob.Close() })

	// call makes a call that front answers and hangs up; it returns the
	// channel's id.
	call := func(p *sipua.Phone, exten string) string {
		t.Helper()
		res := dialAsync(p, n.target(exten), sipua.CallOptions{})
		id := channelID(front.skipTo("StasisStart", 10*time.Second))
		n.mustDo("POST", "/channels/"+id+"/answer", 204)
		must(t, wait(t, res, 10*time.Second, "answer").err)
		n.mustDo("DELETE", "/channels/"+id, 204)
		if got := channelID(front.skipTo("StasisEnd", 10*time.Second)); got != id {
			t.Fatalf("front's StasisEnd for %s, want %s", got, id)
		}
		return id
	}
	// lines are app's event lines for one application and channel, once
	// that channel's ChannelDestroyed arrived.
	lines := func(appName, id string) []string {
		t.Helper()
		var out []string
		pollFor(t, 10*time.Second, func() bool {
			out = out[:0]
			done := false
			for _, l := range app.Lines() {
				if l["app"] == appName && l["channel"] == id {
					out = append(out, fmt.Sprint(l["type"]))
					done = done || l["type"] == "ChannelDestroyed"
				}
			}
			return done
		}, appName+" hearing "+id+" destroyed")
		return out
	}
	heard := func(appName, id string) bool {
		for _, l := range app.Lines() {
			if l["app"] == appName && l["channel"] == id {
				return true
			}
		}
		return false
	}
	checkChannel := func(appName, id string) {
		t.Helper()
		seq := lines(appName, id)
		got := strings.Join(seq, " ")
		for _, want := range []string{"ChannelCreated", "ChannelStateChange", "ChannelDestroyed"} {
			if !strings.Contains(got, want) {
				t.Errorf("%s heard %s of %s: %s", appName, want, id, got)
			}
		}
		if strings.Contains(got, "StasisStart") || strings.Contains(got, "StasisEnd") {
			t.Errorf("%s heard the Stasis events of %s, which is in front: %s", appName, id, got)
		}
	}

	a1 := call(alice, "300")
	b1 := call(bob, "301")
	a2 := call(alice, "302")
	for _, id := range []string{a1, a2} {
		checkChannel("watcher", id)
	}
	for _, id := range []string{a1, b1, a2} {
		checkChannel("spy", id)
	}
	// The watcher's events keep the bus's order: once it heard a2 end, it
	// would have heard b1 before.
	if heard("watcher", b1) {
		t.Errorf("watcher, subscribed to alice's endpoint, heard bob's channel %s", b1)
	}
	for _, l := range app.Lines() {
		if l["app"] == "watcher" && l["channel"] == a1 {
			if name, _ := l["name"].(string); !strings.HasPrefix(name, "PJSIP/alice-") {
				t.Errorf("watcher heard channel %s named %q", a1, name)
			}
		}
		if l["application"] != nil {
			t.Errorf("event of %v stamped application %v", l["app"], l["application"])
		}
	}

	n.mustDo("DELETE", "/applications/watcher/subscription?eventSource="+urlq("endpoint:PJSIP/alice"), 200)
	if code, body := n.do("DELETE", "/applications/watcher/subscription?eventSource="+urlq("endpoint:PJSIP/alice"), nil); code != 409 {
		t.Errorf("unsubscribing twice: %d %s, want 409", code, body)
	}
	a3 := call(alice, "303")
	n.mustDo("POST", "/applications/watcher/subscription?eventSource="+urlq("endpoint:PJSIP"), 200)
	b2 := call(bob, "304")
	checkChannel("watcher", b2)
	if heard("watcher", a3) {
		t.Errorf("watcher heard alice's channel %s after unsubscribing", a3)
	}
}

// TestAriEndpointStateChangeChannels: an npm ari-client app subscribed to
// endpoint:PJSIP/alice hears EndpointStateChange when one of alice's
// channels joins the endpoint and when it leaves, as Asterisk publishes
// the endpoint's snapshot from ast_endpoint_add_channel (when the channel
// is allocated, before its ChannelCreated) and ast_endpoint_remove_channel
// (when it is destroyed, after its ChannelDestroyed): channel_ids holds the
// channel, then no longer; the state stays the endpoint's (alice's phone
// is not registered: offline). Nothing of bob's endpoint reaches it; the
// app subscribed to everything hears both endpoints' changes.
func TestAriEndpointStateChangeChannels(t *testing.T) {
	n := startNode(t, withRoute("_3XX", "Stasis(front)"))
	front := n.connect("front")
	app := nodeari.Start(t, "endpoint-watch.js", map[string]string{"ARI_URL": n.baseURL(), "WATCH_ENDPOINT": "endpoint:PJSIP/alice"})
	if _, err := app.WaitLine("READY", 20*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, app.Output())
	}
	alice := newPhone(t, "udp")
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	bob, err := sipua.New(sipua.Options{User: "bob", RTPMin: rtpLo, RTPMax: rtpHi})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bob.Close() })
	call := func(p *sipua.Phone, exten string) string {
		t.Helper()
		res := dialAsync(p, n.target(exten), sipua.CallOptions{})
		id := channelID(front.skipTo("StasisStart", 10*time.Second))
		n.mustDo("POST", "/channels/"+id+"/answer", 204)
		must(t, wait(t, res, 10*time.Second, "answer").err)
		n.mustDo("DELETE", "/channels/"+id, 204)
		return id
	}
	a := call(alice, "300")
	b := call(bob, "301")

	// seq is what appName heard of endpoint ep and of channel id, in
	// order, once the endpoint event after the channel's destruction came:
	// "E[ids]/state" for an EndpointStateChange, the event type otherwise.
	seq := func(appName, ep, id string) []string {
		t.Helper()
		var out []string
		pollFor(t, 10*time.Second, func() bool {
			out = out[:0]
			destroyed := false
			for _, l := range app.Lines() {
				if l["app"] != appName {
					continue
				}
				switch {
				case l["type"] == "EndpointStateChange" && l["endpoint"] == ep:
					out = append(out, fmt.Sprintf("E%v/%v", l["channel_ids"], l["state"]))
					if destroyed {
						return true
					}
				case l["channel"] == id:
					out = append(out, fmt.Sprint(l["type"]))
					destroyed = destroyed || l["type"] == "ChannelDestroyed"
				}
			}
			return false
		}, appName+" hearing "+ep+" after "+id+" was destroyed")
		return out
	}
	check := func(appName, ep, id string) {
		t.Helper()
		got := seq(appName, ep, id)
		want := []string{fmt.Sprintf("E[%s]/offline", id), "ChannelCreated"}
		if len(got) < 4 || got[0] != want[0] || got[1] != want[1] || got[len(got)-2] != "ChannelDestroyed" || got[len(got)-1] != "E[]/offline" {
			t.Errorf("%s heard %v; want %s, ChannelCreated, …, ChannelDestroyed, E[]/offline", appName, got, want[0])
		}
	}
	check("watcher", "PJSIP/alice", a)
	check("spy", "PJSIP/alice", a)
	check("spy", "PJSIP/bob", b)
	for _, l := range app.Lines() {
		if l["app"] == "watcher" && (l["endpoint"] == "PJSIP/bob" || l["channel"] == b) {
			t.Errorf("watcher, subscribed to alice's endpoint, heard %v", l)
		}
	}
}
