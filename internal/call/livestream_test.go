package call

import (
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/codec"
	"github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// liveReaders counts the goroutines reading a socket on arrival.
func liveReaders() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "rtp.(*liveReader).run")
}

func rtpLive(tb testing.TB, ch *Channel) bool {
	tb.Helper()
	s, ok := ch.media.(*rtp.Session)
	if !ok {
		tb.Fatalf("channel %s has media %T, not an RTP session", ch.id, ch.media)
	}
	return s.Live()
}

// A recorded call whose snoop streams to an RTP external media channel (a
// transcription app) has its socket read as each frame arrives, not on the
// Poller's 100 ms schedule that its recording alone would get: its frames
// reach the stream's far end within 30 ms (9 in 10 at least; the old
// schedule made them wait 50 ms on average, up to 100). When the stream
// stops (the external channel leaves the bridge), the call's socket goes
// back to the Poller (the worker's on-arrival reader goroutine ends, having no
// socket left), and the
// recording holds every frame sent before, during and after the stream.
func TestSnoopStreamReadsTheCallOnArrival(t *testing.T) {
	r := newRTPStreamRig(t, "snoop")
	if !rtpLive(t, r.call) {
		t.Fatal("the streamed call's socket is left on the Poller's schedule")
	}
	if !rtpLive(t, r.ext) {
		t.Fatal("the external channel's socket is left on the Poller's schedule")
	}
	testutil.Eventually(t, 5*time.Second, time.Millisecond, func() bool { return liveReaders() == 1 },
		"%d on-arrival readers, want 1 (the Poller worker's, for the call's and the external channel's sockets)", liveReaders())
	const n = 50
	lat := r.latencies(n, 0)
	if len(lat) < n*9/10 {
		t.Fatalf("the far end got %d of %d frames", len(lat), n)
	}
	slices.Sort(lat)
	if p90 := lat[len(lat)*9/10-1]; p90 >= 30*time.Millisecond {
		t.Fatalf("a streamed frame took %v to reach the far end (p90; p50 %v, max %v), want < 30 ms", p90, lat[len(lat)/2], lat[len(lat)-1])
	}

	// The stream stops: the call goes back to the Poller.
	if err := r.br.RemoveChannel(r.ext); err != nil {
		t.Fatal(err)
	}
	if rtpLive(t, r.call) {
		t.Fatal("the call is still read on arrival after its stream stopped")
	}
	testutil.Eventually(t, 5*time.Second, time.Millisecond, func() bool { return liveReaders() == 0 },
		"%d on-arrival readers left after the stream stopped", liveReaders())
	// The recording keeps every frame: 20 more sent after the stream
	// stopped, read by the Poller again.
	lat = r.latencies(20, n)
	if len(lat) != 0 {
		t.Fatalf("the far end got %d frames after the stream stopped", len(lat))
	}
	r.rec.Stop()
	<-r.rec.Done()
	pcm := readWAV(t, r.rec.path)
	if want := (n + 20) * 160; len(pcm) != want {
		t.Fatalf("the recording has %d samples, want %d (every frame sent)", len(pcm), want)
	}
	for i := range n + 20 {
		want := codec.MulawDecode(byte(0x10 + i%64))
		if got := pcm[i*160]; got != want {
			t.Fatalf("frame %d starts with %d, want %d", i, got, want)
		}
	}
}

// A call bridged directly with its RTP external media channel (a voice
// bot) is read on arrival on both sides, so the bridge's 20 ms clock adds
// nothing to either direction; anything that makes the bridge mix again (a
// recording of the bridge) puts both back on the bridge's clock, and the
// end of the recording takes them off it again. When the call leaves,
// neither is read on arrival any more and no reader goroutine is left.
func TestDirectStreamBridgeReadsOnArrival(t *testing.T) {
	r := newRTPStreamRig(t, "call")
	if !rtpLive(t, r.call) || !rtpLive(t, r.ext) {
		t.Fatalf("live reads: call %v, external %v; want both", rtpLive(t, r.call), rtpLive(t, r.ext))
	}
	lat := r.latencies(20, 0)
	if len(lat) < 18 {
		t.Fatalf("the far end got %d of 20 frames", len(lat))
	}
	rec, err := r.br.Record(RecordOptions{Name: "mix", Format: "wav", IfExists: "overwrite"}, false)
	if err != nil {
		t.Fatal(err)
	}
	// The recording attaches to the bridge once its file is open.
	testutil.Eventually(t, 5*time.Second, time.Millisecond, func() bool {
		return !r.br.direct.Load() && !rtpLive(t, r.call) && !rtpLive(t, r.ext)
	}, "a recorded bridge: direct %v, live call %v, external %v; want none", r.br.direct.Load(), rtpLive(t, r.call), rtpLive(t, r.ext))
	rec.Stop()
	<-rec.Done()
	testutil.Eventually(t, 5*time.Second, time.Millisecond, func() bool { return rtpLive(t, r.call) && rtpLive(t, r.ext) },
		"the bridge forwards directly again (direct %v) but its parties are not read on arrival", r.br.direct.Load())
	if err := r.br.RemoveChannel(r.call); err != nil {
		t.Fatal(err)
	}
	if rtpLive(t, r.call) || rtpLive(t, r.ext) {
		t.Fatalf("after the call left: live call %v, external %v; want neither", rtpLive(t, r.call), rtpLive(t, r.ext))
	}
	testutil.Eventually(t, 5*time.Second, time.Millisecond, func() bool { return liveReaders() == 0 },
		"%d on-arrival readers left after the call left", liveReaders())
}

// A direct bridge forwards each frame as it arrives, so its 20 ms clock has
// nothing to do: it is paused (its Poller worker does not wake every
// interval for it) while the bridge is direct, runs while the bridge mixes
// (a recording), and is paused again after.
func TestDirectBridgeClockPaused(t *testing.T) {
	for _, via := range []string{"call", "snoop"} {
		t.Run(via, func(t *testing.T) {
			r := newRTPStreamRig(t, via)
			paused := func() bool {
				r.br.mu.Lock()
				defer r.br.mu.Unlock()
				return r.br.clock != nil && r.br.clock.Paused()
			}
			if !r.br.direct.Load() || !paused() {
				t.Fatalf("direct %v, clock paused %v; want both", r.br.direct.Load(), paused())
			}
			if lat := r.latencies(10, 0); len(lat) < 8 {
				t.Fatalf("the far end got %d of 10 frames", len(lat))
			}
			rec, err := r.br.Record(RecordOptions{Name: "mix-" + via, Format: "wav", IfExists: "overwrite"}, false)
			if err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, 5*time.Second, time.Millisecond, func() bool { return !r.br.direct.Load() && !paused() },
				"a recorded bridge: direct %v, clock paused %v; want neither", r.br.direct.Load(), paused())
			rec.Stop()
			<-rec.Done()
			testutil.Eventually(t, 5*time.Second, time.Millisecond, func() bool { return r.br.direct.Load() && paused() },
				"after the recording: direct %v, clock paused %v; want both", r.br.direct.Load(), paused())
		})
	}
}
