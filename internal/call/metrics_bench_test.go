package call

import (
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/rtp"
)

// BenchmarkMetricsScrapeRTP200: one scrape of the RTP and recording
// figures with 200 live channels (what a Prometheus scrape costs the node;
// the packet path itself runs no metrics code).
func BenchmarkMetricsScrapeRTP200(b *testing.B) {
	ports, err := rtp.NewPorts("127.0.0.1", 48000, 48999)
	if err != nil {
		b.Fatal(err)
	}
	m := NewManager(Options{Logger: slog.New(slog.DiscardHandler), Bus: event.NewBus("bench"), Ports: ports, NewMedia: func(cfg rtp.Config) (Media, error) {
		cfg.CloseSockets()
		return newFakeMedia(), nil
	}})
	for i := 0; i < 200; i++ {
		cfg, err := ports.ListenConfig(nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.newChannel(channelSpec{user: "bench", state: StateUp}, cfg); err != nil {
			b.Fatal(err)
		}
	}
	defer m.HangupAll(CauseNormalClearing)
	b.ReportAllocs()
	b.ResetTimer()
	ch := make(chan prometheus.Metric, 16)
	for i := 0; i < b.N; i++ {
		rtpFigures.Collect(ch)
		if n := len(ch); n != 8 {
			b.Fatalf("%d series", n)
		}
		for len(ch) > 0 {
			<-ch
		}
	}
}

// BenchmarkRecordingBytesCounter: the one counter on a recording's write
// path, added once per writer batch (not per packet).
func BenchmarkRecordingBytesCounter(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		promRecBytes.Add(320)
	}
}
