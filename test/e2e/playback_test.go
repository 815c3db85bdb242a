package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/sipua"
)

func pbOf(ev map[string]any) map[string]any { return ev["playback"].(map[string]any) }

// TestPlaybackListAndControls: a list plays item by item with Started /
// Continuing events; pause (no event), unpause (Started again), restart and
// forward are accepted while playing, refused (409) while paused; stop
// mid-list ends with Finished naming the current item.
func TestPlaybackListAndControls(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	sink := &audioSink{}
	phone := newPhone(t, "udp")
	res := dialAsync(phone, n.target("340"), sipua.CallOptions{Handler: sink})
	id := channelID(events.expect("StasisStart", 5*time.Second))
	n.mustDo("POST", "/channels/"+id+"/answer", 204)
	must(t, wait(t, res, 10*time.Second, "answer").err)
	events.skipTo("ChannelStateChange", 5*time.Second)

	// A short list: digits, then a tone that stops by itself.
	code, body := n.do("POST", "/channels/"+id+"/play/pb1?media=digits:12,tone:!1000/300", nil)
	if code != 201 || !strings.Contains(string(body), `"id":"pb1"`) {
		t.Fatalf("play: %d %s", code, body)
	}
	s1 := pbOf(events.skipTo("PlaybackStarted", 5*time.Second))
	if s1["media_uri"] != "digits:12" || s1["next_media_uri"] != "tone:!1000/300" || s1["state"] != "playing" || s1["target_uri"] != "channel:"+id {
		t.Fatalf("first Started %v", s1)
	}
	c1 := pbOf(events.expect("PlaybackContinuing", 10*time.Second))
	if c1["media_uri"] != "digits:12" || c1["state"] != "continuing" {
		t.Fatalf("Continuing %v", c1)
	}
	s2 := pbOf(events.expect("PlaybackStarted", 5*time.Second))
	if s2["media_uri"] != "tone:!1000/300" || s2["next_media_uri"] != nil {
		t.Fatalf("second Started %v", s2)
	}
	f := pbOf(events.expect("PlaybackFinished", 5*time.Second))
	if f["state"] != "done" || f["media_uri"] != "tone:!1000/300" {
		t.Fatalf("Finished %v", f)
	}
	n.mustDo("GET", "/playbacks/pb1", 404)
	if pcm := sink.samples(); rms(pcm) < 200 || goertzel(pcm[len(pcm)-2400:], 1000) < 100*goertzel(pcm[len(pcm)-2400:], 440) {
		t.Fatalf("the phone did not hear the playback (rms %.0f)", rms(pcm))
	}

	// Controls on an endless tone.
	n.mustDo("POST", "/channels/"+id+"/play/pb2?media=tone:ring%3Btonezone%3Dfr", 201)
	if s := pbOf(events.skipTo("PlaybackStarted", 5*time.Second)); s["media_uri"] != "tone:ring;tonezone=fr" {
		t.Fatalf("tone media_uri %v", s["media_uri"])
	}
	n.mustDo("POST", "/playbacks/pb2/control?operation=restart", 204)
	n.mustDo("POST", "/playbacks/pb2/control?operation=forward", 204)
	n.mustDo("POST", "/playbacks/pb2/control?operation=pause", 204)
	pollFor(t, 2*time.Second, func() bool {
		_, b := n.do("GET", "/playbacks/pb2", nil)
		return strings.Contains(string(b), `"state":"paused"`)
	}, "paused state")
	for _, op := range []string{"restart", "reverse", "forward"} {
		if code, _ := n.do("POST", "/playbacks/pb2/control?operation="+op, nil); code != 409 {
			t.Errorf("%s while paused: %d, want 409", op, code)
		}
	}
	if code, _ := n.do("POST", "/playbacks/pb2/control?operation=explode", nil); code != 400 {
		t.Errorf("bad operation: %d", code)
	}
	n.mustDo("POST", "/playbacks/pb2/control?operation=unpause", 204)
	events.expect("PlaybackStarted", 5*time.Second) // unpause emits Started again
	n.mustDo("DELETE", "/playbacks/pb2", 204)
	if f := pbOf(events.expect("PlaybackFinished", 5*time.Second)); f["state"] != "done" {
		t.Fatalf("stopped tone %v", f)
	}

	// Two plays run strictly one after the other.
	n.mustDo("POST", "/channels/"+id+"/play/q1?media=tone:!500/200", 201)
	n.mustDo("POST", "/channels/"+id+"/play/q2?media=tone:!700/200", 201)
	var order []string
	for len(order) < 4 {
		ev := events.nextEvent(5 * time.Second)
		if ev == nil {
			t.Fatalf("queued plays: got %v", order)
		}
		if typ := ev["type"].(string); strings.HasPrefix(typ, "Playback") {
			order = append(order, typ+":"+pbOf(ev)["id"].(string))
		}
	}
	if strings.Join(order, " ") != "PlaybackStarted:q1 PlaybackFinished:q1 PlaybackStarted:q2 PlaybackFinished:q2" {
		t.Fatalf("queue order %v", order)
	}

	// Bad media: missing sound, unknown scheme, bad tone → Finished failed.
	for _, m := range []string{"sound:no-such-sound-anywhere", "bogus:thing", "tone:notatone", "number:12x", "recording:nope"} {
		n.mustDo("POST", "/channels/"+id+"/play?media="+urlq(m), 201)
		f := pbOf(events.skipTo("PlaybackFinished", 10*time.Second))
		if f["state"] != "failed" {
			t.Errorf("%s finished as %v, want failed", m, f["state"])
		}
	}
	// Bad requests.
	for _, q := range []string{"", "media=nocolon", "media=tone:ring&skipms=-1", "media=tone:ring&offsetms=-5"} {
		if code, _ := n.do("POST", "/channels/"+id+"/play?"+q, nil); code != 400 {
			t.Errorf("play?%s = %d, want 400", q, code)
		}
	}
	n.mustDo("POST", "/channels/"+id+"/play/dup?media=tone:ring", 201)
	if code, _ := n.do("POST", "/channels/"+id+"/play/dup?media=tone:ring", nil); code != 409 {
		t.Errorf("playback id reused: %d", code)
	}
	// Hanging up finishes the playing one.
	n.mustDo("DELETE", "/channels/"+id, 204)
	if f := pbOf(events.skipTo("PlaybackFinished", 5*time.Second)); f["id"] != "dup" {
		t.Fatalf("finished on hangup: %v", f)
	}
}

// TestEarlyMedia: play to an unanswered inbound channel → 183 with SDP and
// audio before the answer; answering does not stop the playback.
func TestEarlyMedia(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	sink := &audioSink{}
	phone := newPhone(t, "udp")
	got183 := make(chan bool, 4)
	res := dialAsync(phone, n.target("341"), sipua.CallOptions{Handler: sink, OnProvisional: func(code int, body []byte) {
		if code == 183 {
			got183 <- len(body) > 0
		}
	}})
	id := channelID(events.expect("StasisStart", 5*time.Second))
	n.mustDo("POST", "/channels/"+id+"/play/early?media=tone:!440/3000", 201)
	if withSDP := wait(t, got183, 5*time.Second, "183"); !withSDP {
		t.Fatal("183 without SDP")
	}
	events.skipTo("PlaybackStarted", 5*time.Second)
	pollFor(t, 5*time.Second, func() bool { return len(sink.samples()) >= 4000 }, "early media at the phone")
	if pcm := sink.samples(); goertzel(pcm, 440) < 100*goertzel(pcm, 1000) {
		t.Fatal("early media is not the 440 Hz tone")
	}
	n.mustDo("POST", "/channels/"+id+"/answer", 204)
	must(t, wait(t, res, 10*time.Second, "answer").err)
	before := len(sink.samples())
	pollFor(t, 5*time.Second, func() bool { return len(sink.samples()) > before+4000 }, "playback going on after the answer")
	f := pbOf(events.skipTo("PlaybackFinished", 10*time.Second))
	if f["state"] != "done" {
		t.Fatalf("early playback %v", f)
	}
}

// TestSoundsResource: /sounds lists what the sounds directories hold.
func TestSoundsResource(t *testing.T) {
	n := startNode(t)
	code, body := n.do("GET", "/sounds", nil)
	if code != 200 {
		t.Fatalf("sounds: %d", code)
	}
	if code, _ := n.do("GET", "/sounds/no-such-sound", nil); code != 404 {
		t.Errorf("unknown sound: %d", code)
	}
	if !strings.Contains(string(body), "tt-monkeys") {
		t.Skip("Debian asterisk-core-sounds-en-wav not installed; /sounds content not checked")
	}
	code, body = n.do("GET", "/sounds/tt-monkeys", nil)
	if code != 200 || !strings.Contains(string(body), `"language":"en"`) || !strings.Contains(string(body), `"format":"wav"`) {
		t.Fatalf("tt-monkeys: %d %s", code, body)
	}
}
