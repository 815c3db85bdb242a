package call

import (
	"testing"
	"time"
)

// TestBridgeJoinLeave: joining takes the channel's media over (owned reads,
// a participant tap), publishes ChannelEnteredBridge; leaving gives it back,
// publishes ChannelLeftBridge, and the party's digits no longer reach the
// other side. A recording channel cannot join; a hung-up party leaves.
func TestBridgeJoinLeave(t *testing.T) {
	r := newRig(t)
	a, _, fa := r.inbound("app", offer(t, 5000, ""))
	b, _, fb := r.inbound("app", offer(t, 5002, ""))
	br := r.newBridge("br")
	r.ev.expect("BridgeCreated")
	for _, ch := range []*Channel{a, b} {
		if err := br.AddChannel(ch, false); err != nil {
			t.Fatal(err)
		}
		r.ev.expect("ChannelEnteredBridge")
	}
	if !fa.isOwned() || len(a.tapList()) != 1 {
		t.Fatalf("joined: owned %v, taps %d", fa.isOwned(), len(a.tapList()))
	}
	if got := br.JSON().Channels; len(got) != 2 {
		t.Fatalf("bridge channels %v", got)
	}
	// The bridge's clock reads the parties and sends them the mix.
	eventually(t, "the mix sent to a party", func() bool {
		fb.mu.Lock()
		defer fb.mu.Unlock()
		return fb.written > 0
	})
	if err := br.AddChannel(a, false); err != nil {
		t.Fatalf("adding a member again: %v", err)
	}

	if err := br.RemoveChannel(a); err != nil {
		t.Fatal(err)
	}
	r.ev.expect("ChannelLeftBridge")
	if fa.isOwned() || len(a.tapList()) != 0 {
		t.Fatalf("left: owned %v, taps %d", fa.isOwned(), len(a.tapList()))
	}
	a.OnDTMF('7', 100, true)
	r.ev.expect("ChannelDtmfReceived")
	select {
	case d := <-fb.sentDigits():
		t.Fatalf("digit %q of a party that left reached the bridge", d)
	case <-time.After(50 * time.Millisecond):
	}
	if err := br.RemoveChannel(a); err == nil {
		t.Fatal("removing a non-member succeeded")
	}

	// A recording channel cannot join.
	if _, err := a.Record(RecordOptions{Name: "rec-a", Format: "wav"}); err != nil {
		t.Fatal(err)
	}
	r.ev.expect("RecordingStarted")
	if err := br.AddChannel(a, false); err == nil {
		t.Fatal("a recording channel joined a bridge")
	}

	// Hanging up takes the party out.
	b.hangup(CauseNormalClearing, true)
	r.ev.expect("ChannelLeftBridge")
	if got := br.JSON().Channels; len(got) != 0 {
		t.Fatalf("bridge channels after hangup %v", got)
	}
	br.Destroy()
	r.ev.expect("BridgeDestroyed")
	if r.bridgeExists("br") {
		t.Fatal("destroyed bridge still found")
	}
}
