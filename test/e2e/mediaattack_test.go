package e2e

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	tdcall "github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/codec"
	"github.com/tapedeck/tapedeck/internal/config"
	rtpsess "github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/sipua"
)

// Issue 12's media attacks on a running server: RTP injected into a recorded
// call, timestamps and SSRCs that stretch a file, recordings with no end.

func peak(pcm []int16) int {
	p := 0
	for _, v := range pcm {
		a := int(v)
		if a < 0 {
			a = -a
		}
		p = max(p, a)
	}
	return p
}

// TestInjectedRTPNotRecorded: while the phone sends 2 s of a 9000-peak sweep
// to a recorded call, a second socket (another port, another SSRC) sends
// 2 s of full-scale packets, sequential and paced like a real stream, to the
// same server port. None of it reaches the file, and the channel counts
// every injected packet as dropped. (Before strict RTP the peak went to
// full scale and the file doubled.)
func TestInjectedRTPNotRecorded(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	phone := newPhone(t, "udp")
	id, call := recordingCall(t, n, events, phone, "331", "name=inject&format=wav")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Let the server learn the phone's source before the attack starts.
	must(t, call.SendAudio(ctx, make([]int16, 160*10)))
	waitRx(t, n, id, 10)

	attacker, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	must(t, err)
	defer attacker.Close()
	serverRTP := call.Media().Remote()
	loud := make([]int16, 160)
	for i := range loud {
		loud[i] = 32000
		if i%2 == 1 {
			loud[i] = -32000
		}
	}
	payload := make([]byte, 160)
	codec.EncodeMulaw(payload, loud)
	const injected = 100
	done := make(chan error, 1)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		buf := make([]byte, 1500)
		for i := 0; i < injected; i++ {
			<-tick.C
			p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(7000 + i),
				Timestamp: uint32(90000 + 160*i), SSRC: 0xBADBAD, Marker: i == 0}, Payload: payload}
			k, err := p.MarshalTo(buf)
			if err == nil {
				_, err = attacker.WriteToUDP(buf[:k], serverRTP)
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	src := sweep(8000 * 2)
	must(t, call.SendAudio(ctx, src))
	must(t, wait(t, done, 10*time.Second, "the attacker"))

	ch := rtpStatsOf(t, n, id)
	pollFor(t, 5*time.Second, func() bool { return ch.RTPStats().SourceDropped >= injected },
		"the injected packets counted as dropped")
	if st := ch.RTPStats(); st.SourceDropped != injected || st.SSRCChanges != 0 {
		t.Fatalf("rtp statistics: dropped %d, SSRC changes %d", st.SourceDropped, st.SSRCChanges)
	}
	waitRx(t, n, id, 10+100)
	n.mustDo("POST", "/recordings/live/inject/stop", 204)
	events.skipTo("RecordingFinished", 5*time.Second)
	_, got := readWAV(t, filepath.Join(n.recDir(), "inject.wav"))
	want := append(make([]int16, 160*10), g711(src)...)
	if d := len(got) - len(want); d < 0 || d > 160*5 {
		t.Fatalf("%d samples recorded for %d sent", len(got), len(want))
	}
	if p := peak(got); p > peak(want) {
		t.Fatalf("peak %d: injected audio in the file (the phone's peak is %d)", p, peak(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sample %d: %d, want %d", i, got[i], want[i])
		}
	}
}

// sendWalk sends 100 PCMU packets paced every gap, packet i with timestamp
// ts(i) and SSRC ssrc(i), through the phone's own socket.
func sendWalk(t *testing.T, call *sipua.Call, gap time.Duration, ts func(i int) uint32, ssrc func(i int) uint32) {
	t.Helper()
	payload := make([]byte, 160)
	codec.EncodeMulaw(payload, sweep(160))
	tick := time.NewTicker(gap)
	defer tick.Stop()
	for i := 0; i < 100; i++ {
		<-tick.C
		must(t, call.Media().WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0,
			SequenceNumber: uint16(100 + i), Timestamp: ts(i), SSRC: ssrc(i)}, Payload: payload}))
	}
}

// TestRecordingStretchBoundedByWallClock: timestamps stepping 9.9 s ahead on
// every packet (980 s of file out of 2 s of sending before the fix), and a
// new SSRC on every packet 30 ms apart (each 10 ms gap was rounded up to a
// 20 ms frame): the file is no longer than the wall-clock time the sending
// took, plus the jitter margin.
func TestRecordingStretchBoundedByWallClock(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	phone := newPhone(t, "udp")
	for _, tc := range []struct {
		name string
		gap  time.Duration
		ts   func(i int) uint32
		ssrc func(i int) uint32
	}{
		{"walk", 20 * time.Millisecond, func(i int) uint32 { return uint32(i) * 79200 }, func(int) uint32 { return 5 }},
		{"ssrc", 30 * time.Millisecond, func(i int) uint32 { return uint32(i) * 7777 }, func(i int) uint32 { return uint32(i + 1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now() // the recording can hold no more than the time since
			id, call := recordingCall(t, n, events, phone, "332", "name="+tc.name+"&format=wav")
			sendWalk(t, call, tc.gap, tc.ts, tc.ssrc)
			ch := rtpStatsOf(t, n, id)
			pollFor(t, 5*time.Second, func() bool {
				return ch.RTPStats().Received >= 1 && ch.RTPStats().LastPacketAt.After(start.Add(99*tc.gap))
			},
				"the last packet at the server")
			n.mustDo("POST", "/recordings/live/"+tc.name+"/stop", 204)
			wall := time.Since(start)
			events.skipTo("RecordingFinished", 5*time.Second)
			_, got := readWAV(t, filepath.Join(n.recDir(), tc.name+".wav"))
			// The margin: the 60 ms reorder window and 250 ms of jitter, and
			// 1/128 for a sender's fast clock.
			limit := wall + wall/128 + 310*time.Millisecond
			d := time.Duration(len(got)) * time.Second / 8000
			if d > limit {
				t.Fatalf("%v of file after %v of sending (limit %v)", d, wall, limit)
			}
			t.Logf("%v of file after %v of sending (limit %v)", d, wall, limit)
			if len(got) < 100*160 {
				t.Fatalf("%d samples: the audio itself is missing", len(got))
			}
			must(t, call.Hangup(context.Background()))
			events.skipTo("StasisEnd", 5*time.Second)
		})
	}
}

// TestRecordingMaxDuration: every recording has a maximum length. The
// global one (recording.max_duration_seconds) applies to an ARI recording
// asking for no limit; a Record() route's own max_duration_seconds ends the
// recording and the call. Both files hold exactly the cap.
func TestRecordingMaxDuration(t *testing.T) {
	n := startNode(t, func(c *config.Config) {
		c.Recording.MaxDurationSeconds = 1
		c.Dialplan = append(c.Dialplan, config.Route{Exten: "2002", App: "Record(capped/${UNIQUEID},wav)", MaxDurationSeconds: 1})
	})
	events := n.connect("test")
	phone := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// ARI, maxDurationSeconds absent (unlimited in ARI): the global cap.
	id, call := recordingCall(t, n, events, phone, "333", "name=global&format=wav")
	must(t, call.SendAudio(ctx, sweep(8000*2)))
	fin := events.skipTo("RecordingFinished", 5*time.Second)
	if rec := fin["recording"].(map[string]any); rec["duration"].(float64) != 1 || rec["state"] != "done" {
		t.Fatalf("global cap: %v", rec)
	}
	if _, got := readWAV(t, filepath.Join(n.recDir(), "global.wav")); len(got) != 8000 {
		t.Fatalf("global cap: %d samples, want 8000", len(got))
	}
	// A larger ARI maxDurationSeconds is capped too.
	n.mustDo("POST", "/channels/"+id+"/record?name=asked&format=wav&maxDurationSeconds=60", 201)
	events.skipTo("RecordingStarted", 5*time.Second)
	must(t, call.SendAudio(ctx, sweep(8000*2)))
	events.skipTo("RecordingFinished", 5*time.Second)
	if _, got := readWAV(t, filepath.Join(n.recDir(), "asked.wav")); len(got) != 8000 {
		t.Fatalf("maxDurationSeconds=60 under a 1 s cap: %d samples", len(got))
	}
	must(t, call.Hangup(ctx))

	// Record() route with its own cap: the recording stops at it and the
	// server hangs up, while the phone would go on sending.
	rcall, err := phone.Dial(ctx, n.target("2002"), sipua.CallOptions{})
	must(t, err)
	go func() { _ = rcall.SendAudio(ctx, sweep(8000*4)) }()
	select {
	case <-rcall.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not hang up at the route's maximum length")
	}
	var path string
	pollFor(t, 5*time.Second, func() bool {
		entries, _ := os.ReadDir(filepath.Join(n.recDir(), "capped"))
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".wav") {
				path = filepath.Join(n.recDir(), "capped", e.Name())
			}
		}
		return path != "" && n.srv.Calls().Count() == 0
	}, "the capped recording and the end of the call")
	if _, got := readWAV(t, path); len(got) != 8000 {
		t.Fatalf("Record() route cap: %d samples, want 8000", len(got))
	}
}

// channelStats reads one channel's RTP statistics through the Calls
// interface.
type channelStats struct {
	t  *testing.T
	n  *node
	id tdcall.ChannelID
}

func rtpStatsOf(t *testing.T, n *node, id string) channelStats {
	t.Helper()
	if _, err := n.srv.Calls().Channel(tdcall.ChannelID(id)); err != nil {
		t.Fatal(err)
	}
	return channelStats{t, n, tdcall.ChannelID(id)}
}

func (c channelStats) RTPStats() rtpsess.Stats {
	st, err := c.n.srv.Calls().RTPStats(c.id)
	if err != nil {
		c.t.Fatal(err)
	}
	return st
}
