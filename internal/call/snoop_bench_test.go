package call

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/codec"
	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/rtp"
)

// benchManager is a Manager whose channels have fake media (benchmarks).
func benchManager(b *testing.B) *Manager {
	ports, err := rtp.NewPorts("127.0.0.1", 48000, 48999)
	if err != nil {
		b.Fatal(err)
	}
	m := NewManager(Options{Bus: event.NewBus("bench"), Ports: ports, RecordingsDir: b.TempDir(),
		NewMedia: func(cfg rtp.Config) (Media, error) { cfg.CloseSockets(); return newFakeMedia(), nil }})
	b.Cleanup(func() { m.HangupAll(CauseNormalClearing) })
	return m
}

func benchChannel(b *testing.B, m *Manager) *Channel {
	cfg, err := m.opts.Ports.ListenConfig(nil)
	if err != nil {
		b.Fatal(err)
	}
	ch, err := m.newChannel(channelSpec{user: "alice", callID: "c1", dialplan: DialplanCEP{Context: "default", Exten: "300"},
		state: StateUp, dialog: newFakeDialog()}, cfg)
	if err != nil {
		b.Fatal(err)
	}
	ch.enterStasis("bench", nil)
	return ch
}

// stillRecording fails b unless every recording of recs is recording
// still; why, when not empty, is added to the failure.
func stillRecording(b testing.TB, recs []*LiveRecording, why string) {
	b.Helper()
	for _, r := range recs {
		r.mu.Lock()
		st := r.state
		r.mu.Unlock()
		if st != RecRecording {
			b.Fatalf("recording %s: %s%s", r.name, st, why)
		}
	}
}

func benchRecord(b testing.TB, ch *Channel, name string) *LiveRecording {
	r, err := ch.Record(RecordOptions{Name: name, Format: "wav", IfExists: "overwrite"})
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		st := r.state
		r.mu.Unlock()
		if st == RecRecording {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("recording %s is %s", name, st)
		}
		time.Sleep(time.Millisecond)
	}
	// RecRecording is not yet attached: the channel's audio reaches the
	// recording from its attach (start sets the state first), and a frame
	// that came in between would be missing from the file.
	select {
	case <-r.attached:
	case <-r.done:
		b.Fatalf("recording %s ended before it attached", name)
	case <-time.After(5 * time.Second):
		b.Fatalf("recording %s did not attach to its channel", name)
	}
	return r
}

// BenchmarkSnoopVsSecondRecording: what one more copy of a channel's
// received audio costs on its media path (per 20 ms frame): a second
// recording of the channel, a snoop channel (spy=in, or spy=both through
// its clocked mixer) that is recorded, or an external media stream
// (AudioSocket in ulaw, slin or slin16 to a real loopback TCP receiver: each frame is
// also sent to the stream as a two-party bridge sends it, decoded,
// resampled for slin16 and queued for the stream's writer goroutine, whose
// socket write, one per frame as in Asterisk, runs off the media path and
// is not counted here; BenchmarkExternalMediaLatency has it). All
// start from a channel that already has one recording. Frames come faster
// than real time and the recording queues hold 2 s: run it with
// -benchtime=50x (1 s of audio).
func BenchmarkSnoopVsSecondRecording(b *testing.B) {
	for _, mode := range []string{"one-recording", "second-recording", "snoop-recorded", "snoop-both-recorded", "audiosocket-ulaw", "audiosocket-slin", "audiosocket-slin16"} {
		b.Run(mode, func(b *testing.B) {
			m := benchManager(b)
			ch := benchChannel(b, m)
			recs := []*LiveRecording{benchRecord(b, ch, "first")}
			var stream *benchStreamRig
			switch mode {
			case "second-recording":
				recs = append(recs, benchRecord(b, ch, "second"))
			case "audiosocket-ulaw", "audiosocket-slin", "audiosocket-slin16":
				stream = benchStream(b, m, strings.TrimPrefix(mode, "audiosocket-"))
			case "snoop-recorded", "snoop-both-recorded":
				spy := "in"
				if mode == "snoop-both-recorded" {
					spy = "both"
				}
				j, err := m.Snoop(ChannelID(ch.id), SnoopOptions{Spy: spy, App: "bench"})
				if err != nil {
					b.Fatal(err)
				}
				sn, err := m.channel(string(j.ID))
				if err != nil {
					b.Fatal(err)
				}
				recs = append(recs, benchRecord(b, sn, "snooped"))
			}
			b.ReportAllocs()
			b.SetBytes(160 * 2)
			b.ResetTimer()
			var ts uint32
			for i := 0; i < b.N; i++ {
				ts = feedOne(ch, ts)
				if stream != nil {
					stream.send(b)
				}
			}
			b.StopTimer()
			if stream != nil {
				stream.drain(b, b.N)
			}
			stillRecording(b, recs, " (run with -benchtime=50x: 1 s of audio fits the 2 s queue)")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}

// benchStreamRig is an AudioSocket external media channel (slin16)
// connected to a loopback receiver that counts the bytes it gets.
type benchStreamRig struct {
	ch    *Channel
	sm    *streamMedia
	got   atomic.Int64
	pcm   []int16
	buf   []byte
	sent  int
	frame int // bytes of one message
	batch int // frames per write
}

func benchStream(b *testing.B, m *Manager, format string) *benchStreamRig {
	return benchStreamBatch(b, m, format, 1)
}

// benchStreamBatch is benchStream writing batch frames at a time.
func benchStreamBatch(b *testing.B, m *Manager, format string, batch int) *benchStreamRig {
	return benchStreamRigOf(b, m, format, batch, false)
}

// benchStreamRigOf is benchStreamBatch; with lazy the receiver reads every
// 100 ms instead of as each frame comes, so that its own reads and
// wake-ups (an external program's, in a server) weigh little on the
// process's CPU time.
func benchStreamRigOf(b *testing.B, m *Manager, format string, batch int, lazy bool) *benchStreamRig {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	r := &benchStreamRig{pcm: make([]int16, 160), buf: make([]byte, 160)}
	codec.DecodeMulaw(r.pcm, benchPayload)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			r.got.Add(int64(n))
			if err != nil {
				return
			}
			if lazy {
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	f := streamFormats[format]
	r.frame = 3 + f.frameBytes()
	r.batch = batch
	conn, err := dialAudioSocket(ln.Addr().String(), [16]byte{1}, f.kind, batch, f.frameBytes())
	if err != nil {
		b.Fatal(err)
	}
	ch, sm, err := m.newStreamChannel(ExternalMediaOptions{App: "bench"}, "AudioSocket/bench", StateUp, f, nil)
	if err != nil {
		b.Fatal(err)
	}
	sm.connect(conn)
	go conn.run(sm)
	r.ch, r.sm = ch, sm
	return r
}

// send hands one frame to the stream as a bridge does; it waits, off the
// clock, while the receiver is more than 20 frames behind rather than let
// the stream's 1 s queue overflow (the benchmark outruns real time).
func (r *benchStreamRig) send(b *testing.B) {
	if r.behind() {
		b.StopTimer()
		for r.behind() {
			time.Sleep(50 * time.Microsecond) // not spinning: BenchmarkStreamSendCPU counts the CPU
		}
		b.StartTimer()
	}
	r.ch.sendBridged(r.pcm, r.buf)
	r.sent++
}

// behind: the receiver has not got all but the last 20 frames sent.
func (r *benchStreamRig) behind() bool {
	return r.got.Load() < int64(19+(r.sent-20)*r.frame)
}

// drain waits until the receiver has every frame sent.
func (r *benchStreamRig) drain(b *testing.B, frames int) {
	want := int64(19 + r.sent/r.batch*r.batch*r.frame) // the UUID message, then the frames written
	deadline := time.Now().Add(10 * time.Second)
	for r.got.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("the receiver got %d bytes of %d (dropped %d)", r.got.Load(), want, r.sm.dropped.Load())
		}
		time.Sleep(50 * time.Microsecond)
	}
	if d := r.sm.dropped.Load(); d > 0 {
		b.Fatalf("%d frames dropped", d)
	}
}

// BenchmarkStreamedCallCPU: the whole cost, in CPU time of the process,
// of one more copy of recorded channels' audio at the real pace of one
// frame per 20 ms, 50 channels at once, with the clocks on a Poller as in
// the server: a second recording of each, or a stream of each to an
// external media receiver the way a transcription app makes one (a snoop
// channel, spy=in, and an AudioSocket ulaw channel to a loopback receiver
// in this process, reading every 100 ms, in a mixing bridge; batch5
// writes five frames at once, ari.audiosocket_batch_ms 100).
// one-recording is the baseline the others add to; every figure includes
// the process's idle work (the Poller's wake-ups, the recordings'
// writers) and, for the streams, the receivers' reads, 10 a second. Run it with -benchtime=250x (5 s of audio);
// cpu-ns/frame is the figure (per channel and frame).
func BenchmarkStreamedCallCPU(b *testing.B) {
	const calls = 50
	for _, mode := range []string{"one-recording", "second-recording", "snoop-stream", "snoop-stream-batch5"} {
		b.Run(mode, func(b *testing.B) {
			poller, err := rtp.NewPoller(10*time.Millisecond, 100*time.Millisecond, 1)
			if err != nil {
				b.Skip("no Poller here:", err)
			}
			ports, err := rtp.NewPorts("127.0.0.1", 48000, 48999)
			if err != nil {
				b.Fatal(err)
			}
			m := NewManager(Options{Bus: event.NewBus("bench"), Ports: ports, RecordingsDir: b.TempDir(), Poller: poller,
				NewMedia: func(cfg rtp.Config) (Media, error) { cfg.CloseSockets(); return newFakeMedia(), nil }})
			b.Cleanup(func() { m.HangupAll(CauseNormalClearing); poller.Close() })
			var chans []*Channel
			var streams []*benchStreamRig
			for i := range calls {
				ch := benchChannel(b, m)
				chans = append(chans, ch)
				benchRecord(b, ch, fmt.Sprintf("first-%d", i))
				switch mode {
				case "second-recording":
					benchRecord(b, ch, fmt.Sprintf("second-%d", i))
				case "snoop-stream", "snoop-stream-batch5":
					j, err := m.Snoop(ChannelID(ch.id), SnoopOptions{Spy: "in", App: "bench"})
					if err != nil {
						b.Fatal(err)
					}
					sn, err := m.channel(string(j.ID))
					if err != nil {
						b.Fatal(err)
					}
					batch := 1
					if mode == "snoop-stream-batch5" {
						batch = 5
					}
					st := benchStreamRigOf(b, m, "ulaw", batch, true)
					st.ch.enterStasis("bench", nil)
					streams = append(streams, st)
					br, err := m.createBridge("", "mixing", "")
					if err != nil {
						b.Fatal(err)
					}
					for _, c := range []*Channel{sn, st.ch} {
						if err := br.AddChannel(c, false); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			runtime.GC()
			before := cpuTime(b)
			b.ResetTimer()
			var ts uint32
			for range b.N {
				<-tick.C
				for _, ch := range chans {
					feedOne(ch, ts)
				}
				ts += 160
			}
			<-tick.C // the last frame's tick
			b.StopTimer()
			b.ReportMetric(float64(cpuTime(b)-before)/float64(b.N*calls), "cpu-ns/frame")
			for _, st := range streams {
				if st.got.Load() < int64(19+b.N/2*st.frame) {
					b.Fatalf("a receiver got %d bytes for %d frames", st.got.Load(), b.N)
				}
			}
		})
	}
}
