package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/sipua"
)

// TestObserverIsNoApplication: an in-process observer sees the events of
// every call, but it is not an ARI application: /ari/applications does not
// list it, and a Stasis route to its name is declined with 603.
func TestObserverIsNoApplication(t *testing.T) {
	n := startNode(t)
	obs, err := n.srv.Bus().Observe("nobody", 64, nil) // 999 routes to Stasis(nobody)
	if err != nil {
		t.Fatal(err)
	}
	events := n.connect("test")
	phone := newPhone(t, "udp")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err = phone.Dial(ctx, n.target("999"), sipua.CallOptions{})
	cancel()
	var rej *sipua.ErrRejected
	if !errors.As(err, &rej) || rej.Code != 603 {
		t.Fatalf("call to Stasis(nobody) with only an observer named nobody: err = %v, want 603", err)
	}
	if body := n.mustDo("GET", "/applications", 200); contains(string(body), "nobody") {
		t.Fatalf("/ari/applications lists the observer: %s", body)
	}

	// A call to the application "test" reaches the observer too.
	res := dialAsync(phone, n.target("300"), sipua.CallOptions{})
	id := channelID(events.expect("StasisStart", 5*time.Second))
	n.mustDo("DELETE", "/channels/"+id, 204)
	if r := wait(t, res, 10*time.Second, "call end"); r.err == nil && r.call != nil {
		r.call.Hangup(context.Background())
	}
	events.skipTo("ChannelDestroyed", 5*time.Second)
	var seen []string
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(strings.Join(seen, ","), "ChannelDestroyed") {
		if time.Now().After(deadline) {
			t.Fatalf("observer saw %v, want StasisStart ... ChannelDestroyed", seen)
		}
		done := make(chan struct{})
		timer := time.AfterFunc(time.Until(deadline), func() { close(done) })
		for _, msg := range obs.Next(done) {
			var ev map[string]any
			if err := jsonUnmarshal(msg, &ev); err != nil {
				t.Fatal(err)
			}
			if cid := channelID(ev); cid == id {
				seen = append(seen, ev["type"].(string))
			}
		}
		timer.Stop()
	}
	// Nothing from the start of the call is missed: the channel's
	// creation, its dialplan application (Stasis), then its entry into
	// the application.
	if len(seen) < 3 || seen[0] != "ChannelCreated" || seen[1] != "ChannelDialplan" || seen[2] != "StasisStart" {
		t.Fatalf("observer saw %v, want ChannelCreated, ChannelDialplan, StasisStart first", seen)
	}
}
