package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/sipua"
)

// TestMoveBetweenApplications: POST /channels/{id}/move hands a call from
// one application to another: StasisEnd to the first, StasisStart with the
// new arguments to the second, which then drives the channel.
func TestMoveBetweenApplications(t *testing.T) {
	n := startNode(t, withRoute("_3XX", "Stasis(first)"))
	first := n.connect("first")
	second := n.connect("second")
	phone := newPhone(t, "udp")
	res := dialAsync(phone, n.target("300"), sipua.CallOptions{})
	id := channelID(first.skipTo("StasisStart", 5*time.Second))
	// Asterisk accepts a move to an application that is not registered
	// (204) and then tells the channel's application, which keeps it.
	n.mustDo("POST", "/channels/"+id+"/move?app=nobody&appArgs="+urlq("x,,y z"), 204)
	mf := first.skipTo("ApplicationMoveFailed", 5*time.Second)
	if channelID(mf) != id || mf["destination"] != "nobody" || fmt.Sprintf("%q", mf["args"]) != `["x" "y z"]` || mf["application"] != "first" {
		t.Fatalf("ApplicationMoveFailed %v", mf)
	}
	n.mustDo("POST", "/channels/"+id+"/move?app=second&appArgs="+urlq("a,b"), 204)
	if got := channelID(first.skipTo("StasisEnd", 5*time.Second)); got != id {
		t.Fatalf("StasisEnd for %s", got)
	}
	// The second application's first event is its StasisStart: it was
	// not sent the ApplicationMoveFailed published before.
	st := second.expect("StasisStart", 5*time.Second)
	if channelID(st) != id || fmt.Sprint(st["args"]) != "[a b]" {
		t.Fatalf("second app's StasisStart %v", st)
	}
	n.mustDo("POST", "/channels/"+id+"/answer", 204)
	r := wait(t, res, 10*time.Second, "answer")
	must(t, r.err)
	if got := second.skipTo("ChannelStateChange", 5*time.Second); channelID(got) != id {
		t.Fatalf("state change %v", got)
	}
	n.mustDo("DELETE", "/channels/"+id, 204)
	second.skipTo("ChannelDestroyed", 5*time.Second)
}
