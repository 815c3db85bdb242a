package e2e

import (
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/sipua"
)

// TestAriMohAndPlayback: a playback started while music on hold plays,
// told apart by frequency (the music is 440 Hz, the playback 1000 Hz), as
// in Asterisk. On a channel alone, the playback's file stream stops the
// channel's music (its generator): the caller hears the playback only,
// and no music after it. On a bridged channel on hold, the same, then the
// music starts again after the playback (ast_bridge_channel_playfile). On
// a bridge with music, a bridge playback is another party of the mix: both
// are heard, and the music goes on after.
func TestAriMohAndPlayback(t *testing.T) {
	n := startNode(t, withMOHDir(mohDir(t)), withRoute("_3XX", "Stasis(front)"))
	front := n.connect("front")
	phone := newPhone(t, "udp")
	sink := &audioSink{}
	res := dialAsync(phone, n.target("300"), sipua.CallOptions{Handler: sink})
	id := channelID(front.skipTo("StasisStart", 5*time.Second))
	n.mustDo("POST", "/channels/"+id+"/answer", 204)
	must(t, wait(t, res, 10*time.Second, "answer").err)

	// listen returns the next 0.8 s the caller hears, less its first
	// 0.2 s (which may still carry what played before).
	listen := func(what string) []int16 {
		t.Helper()
		sink.reset()
		deadline := time.Now().Add(10 * time.Second)
		for len(sink.samples()) < 8000 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: heard only %d samples", what, len(sink.samples()))
			}
			time.Sleep(20 * time.Millisecond)
		}
		return sink.samples()[1600:8000]
	}
	hear := func(what string, f, other float64) {
		t.Helper()
		if pcm := listen(what); !dominant(pcm, f, other) || rms(pcm) < 1000 {
			t.Fatalf("%s: rms %.0f, %.0f Hz %.3g, %.0f Hz %.3g", what, rms(pcm), f, goertzel(pcm, f), other, goertzel(pcm, other))
		}
	}
	playback := func(target, pb string) {
		t.Helper()
		n.mustDo("POST", target+"/play/"+pb+"?media="+urlq("tone:!1000/2000"), 201)
		for {
			ev := front.skipTo("PlaybackStarted", 5*time.Second)
			if ev["playback"].(map[string]any)["id"] == pb {
				return
			}
		}
	}
	finished := func(pb string) {
		t.Helper()
		for {
			ev := front.skipTo("PlaybackFinished", 10*time.Second)
			if ev["playback"].(map[string]any)["id"] == pb {
				return
			}
		}
	}

	// A channel alone.
	n.mustDo("POST", "/channels/"+id+"/moh?mohClass=tone", 204)
	hear("music on hold", 440, 1000)
	playback("/channels/"+id, "alone")
	hear("a playback over the music", 1000, 440)
	finished("alone")
	// The music does not come back: whatever the caller hears in the
	// next second (silence, or nothing at all) has no 440 Hz.
	sink.reset()
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if pcm := sink.samples(); len(pcm) >= 1600 && rms(pcm) > 300 {
			t.Fatalf("after the playback the caller hears rms %.0f, 440 Hz %.3g: the music came back", rms(pcm), goertzel(pcm, 440))
		}
	}
	n.mustDo("DELETE", "/channels/"+id+"/moh", 204)

	// A bridged channel on hold.
	n.mustDo("POST", "/bridges/b1", 200)
	n.mustDo("POST", "/bridges/b1/addChannel?channel="+id, 204)
	n.mustDo("POST", "/channels/"+id+"/moh?mohClass=tone", 204)
	hear("bridged, music on hold", 440, 1000)
	playback("/channels/"+id, "bridged")
	hear("bridged, a playback over the music", 1000, 440)
	finished("bridged")
	hear("bridged, the music again after the playback", 440, 1000)
	n.mustDo("DELETE", "/channels/"+id+"/moh", 204)

	// A bridge's music and a bridge playback.
	n.mustDo("POST", "/bridges/b1/moh?mohClass=tone", 204)
	hear("bridge music", 440, 1000)
	playback("/bridges/b1", "onbridge")
	pcm := listen("bridge music and playback")
	if m, p := goertzel(pcm, 440), goertzel(pcm, 1000); m < p/10 || p < m/10 || rms(pcm) < 1000 {
		t.Fatalf("bridge music and playback: rms %.0f, 440 Hz %.3g, 1000 Hz %.3g: want both", rms(pcm), m, p)
	}
	finished("onbridge")
	hear("bridge music after the playback", 440, 1000)
}
