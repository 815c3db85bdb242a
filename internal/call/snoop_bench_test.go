package call

import (
	"testing"
	"time"

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

func benchRecord(b *testing.B, ch *Channel, name string) *LiveRecording {
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
			return r
		}
		if time.Now().After(deadline) {
			b.Fatalf("recording %s is %s", name, st)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkSnoopVsSecondRecording: what one more copy of a channel's
// received audio costs on its media path (per 20 ms frame): a second
// recording of the channel, or a snoop channel (spy=in) that is recorded.
// Both start from a channel that already has one recording. Frames come
// faster than real time and the recording queues hold 2 s: run it with
// -benchtime=50x (1 s of audio).
func BenchmarkSnoopVsSecondRecording(b *testing.B) {
	for _, mode := range []string{"one-recording", "second-recording", "snoop-recorded"} {
		b.Run(mode, func(b *testing.B) {
			m := benchManager(b)
			ch := benchChannel(b, m)
			recs := []*LiveRecording{benchRecord(b, ch, "first")}
			switch mode {
			case "second-recording":
				recs = append(recs, benchRecord(b, ch, "second"))
			case "snoop-recorded":
				j, err := m.Snoop(ChannelID(ch.id), SnoopOptions{Spy: "in", App: "bench"})
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
			}
			b.StopTimer()
			for _, r := range recs {
				r.mu.Lock()
				st := r.state
				r.mu.Unlock()
				if st != RecRecording {
					b.Fatalf("recording %s: %s (run with -benchtime=50x: 1 s of audio fits the 2 s queue)", r.name, st)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}
