package e2e

import (
	"path/filepath"
	"testing"
	"time"
)

// TestRecordingSilenceSuppressionGap: a phone that suppresses silence
// sends 1 s of audio, nothing for 3 s (its RTP timestamps go on, its
// sequence numbers do not: RFC 3551 silence suppression), then 1 s more.
// The recording is done, not failed, and holds the pause as 3 s of silence
// between the two stretches at their RTP positions. Before, the 3 s of
// silence were handed to the recording's writer queue (2 s) at once when
// the talk resumed: it overflowed and the recording failed.
func TestRecordingSilenceSuppressionGap(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	phone := newPhone(t, "udp")
	id, call := recordingCall(t, n, events, phone, "320", "name=dtx&format=wav")
	src := sweep(8000)
	sendPackets(t, call, src, 0x5151, 90000, 1000, nil, nil, nil)
	waitRx(t, n, id, 50)
	// The pause lasts as long as it says (the timeline gives a gap no more
	// silence than the time that passed).
	time.Sleep(3 * time.Second)
	sendPackets(t, call, src, 0x5151, 90000+8000+24000, 1050, nil, nil, nil)
	waitRx(t, n, id, 100)
	if code, _ := n.do("GET", "/recordings/live/dtx", nil); code != 200 {
		ev := events.skipTo("RecordingFailed", 5*time.Second)
		t.Fatalf("the recording ended with the talk after the pause: %v", ev["recording"])
	}
	n.mustDo("POST", "/recordings/live/dtx/stop", 204)
	fin := events.skipTo("RecordingFinished", 5*time.Second)
	if r := fin["recording"].(map[string]any); r["state"] != "done" {
		t.Fatalf("RecordingFinished %v", r)
	}
	rate, got := readWAV(t, filepath.Join(n.recDir(), "dtx.wav"))
	if rate != 8000 || len(got) != 5*8000 {
		t.Fatalf("%d Hz, %d samples; want 5 s: 1 s, the 3 s pause, 1 s", rate, len(got))
	}
	want := g711(src)
	for i, c := range []struct{ at, from int }{{0, 0}, {32000, 0}} {
		for j := range 8000 {
			if got[c.at+j] != want[j] {
				t.Fatalf("stretch %d: sample %d = %d, want %d", i+1, j, got[c.at+j], want[j])
			}
		}
	}
	for j := 8000; j < 32000; j++ {
		if got[j] != 0 {
			t.Fatalf("pause: sample %d = %d, want silence", j, got[j])
		}
	}
}
