package call

import (
	"errors"
	"testing"
	"time"
)

// TestCallsByID drives the manager through the Calls interface with ids
// only, and checks the error kind of each missing object.
func TestCallsByID(t *testing.T) {
	m := testManager(t, "n1")
	var c Calls = m
	ch := testChannel(t, m)
	id := ChannelID(ch.ID())

	snap, err := c.Channel(id)
	if err != nil || snap.ID != id || snap.State != "Down" {
		t.Fatalf("Channel: %+v, %v", snap, err)
	}
	if got := c.Channels(); len(got) != 1 || got[0].ID != id {
		t.Fatalf("Channels: %+v", got)
	}
	// Not in an application: the kind, with Asterisk's wording.
	if err := c.Answer(id); !errors.Is(err, ErrNotInApplication) || err.Error() != "Channel not in Stasis application" {
		t.Errorf("Answer outside Stasis: %v", err)
	}
	b, err := c.CreateBridge("", "mixing", "")
	if err != nil {
		t.Fatal(err)
	}
	bid := b.ID
	if _, err := c.CreateBridge(bid, "mixing", ""); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate bridge: %v", err)
	}
	if err := c.AddToBridge(bid, "nope", JoinOptions{}); !errors.Is(err, ErrChannelNotFound) || !errors.Is(err, ErrNotFound) {
		t.Errorf("AddToBridge, missing channel: %v", err)
	}
	if err := c.AddToBridge("nope", id, JoinOptions{}); !errors.Is(err, ErrBridgeNotFound) || errors.Is(err, ErrChannelNotFound) {
		t.Errorf("AddToBridge, missing bridge: %v", err)
	}
	if err := c.AddToBridge(bid, id, JoinOptions{}); !errors.Is(err, ErrNotInApplication) {
		t.Errorf("AddToBridge outside Stasis: %v", err)
	}
	if err := c.RemoveFromBridge(bid, id); !errors.Is(err, ErrInvalidState) {
		t.Errorf("RemoveFromBridge, not a member: %v", err)
	}
	if err := c.ControlPlayback("nope", PbPause); !errors.Is(err, ErrPlaybackNotFound) {
		t.Errorf("ControlPlayback: %v", err)
	}
	if err := c.PauseRecording("nope", true); !errors.Is(err, ErrRecordingNotFound) {
		t.Errorf("PauseRecording: %v", err)
	}
	if err := c.DestroyBridge(bid); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Bridge(bid); !errors.Is(err, ErrBridgeNotFound) {
		t.Errorf("destroyed bridge: %v", err)
	}
	if err := c.Hangup(id, CauseUserBusy); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		_, err := c.Channel(id)
		if errors.Is(err, ErrChannelNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hung-up channel still there: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if err := c.Hangup(id, CauseNormalClearing); !errors.Is(err, ErrChannelNotFound) {
		t.Errorf("second hangup: %v", err)
	}
}

func TestTypedValuesString(t *testing.T) {
	if s := CauseUserBusy.String(); s != "User busy" {
		t.Errorf("cause 17: %q", s)
	}
	if s := Cause(99).String(); s != "Unknown" {
		t.Errorf("cause 99: %q", s)
	}
	if PbContinuing.String() != "continuing" || PbForward.String() != "forward" {
		t.Error("playback state or operation String")
	}
}

func TestRecordingStateString(t *testing.T) {
	if RecCanceled.String() != "canceled" || RecRecording.String() != "recording" {
		t.Error("recording state String")
	}
}
