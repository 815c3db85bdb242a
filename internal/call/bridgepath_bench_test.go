package call

import (
	"fmt"
	"log/slog"
	"syscall"
	"testing"
	"time"

	pionrtp "github.com/pion/rtp"

	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/rtp"
)

// BenchmarkBridgedCallCPU: scenario c's work without the sockets: 100
// two-party bridges, each recorded in stereo, their clocks on a Poller's
// rounds as in the server; every 20 ms (real time) each of the 200 bridged
// channels gets one µ-law packet (OnAudio, as its session's Flush hands it
// over). One op is one 20 ms frame of all 100 bridges; cpu-ms/call-s is the
// process's CPU time (user+sys) per call-second, loadgen's unit. Run it
// with -benchtime=250x (5 s of audio).
func BenchmarkBridgedCallCPU(b *testing.B) {
	const calls = 100
	old := slog.Default()
	slog.SetDefault(slog.New(slog.DiscardHandler))
	b.Cleanup(func() { slog.SetDefault(old) })
	poller, err := rtp.NewPoller(10*time.Millisecond, 100*time.Millisecond, 1)
	if err != nil {
		b.Skip("no Poller here:", err)
	}
	ports, err := rtp.NewPorts("127.0.0.1", 45000, 45999)
	if err != nil {
		b.Fatal(err)
	}
	m := NewManager(Options{Bus: event.NewBus("bench"), Ports: ports, RecordingsDir: b.TempDir(), Poller: poller,
		NewMedia: func(cfg rtp.Config) (Media, error) { cfg.CloseSockets(); return newFakeMedia(), nil }})
	b.Cleanup(func() { m.HangupAll(CauseNormalClearing); poller.Close() })
	m.opts.Bus.Register(event.NewSubscriber("bench", 100000, false), nil)
	var chans []*Channel
	var recs []*LiveRecording
	for i := range calls {
		br, err := m.createBridge(fmt.Sprintf("br%d", i), "mixing", "")
		if err != nil {
			b.Fatal(err)
		}
		for range 2 {
			ch := benchChannel(b, m)
			if err := br.AddChannel(ch, false); err != nil {
				b.Fatal(err)
			}
			chans = append(chans, ch)
		}
		r, err := br.Record(RecordOptions{Name: fmt.Sprintf("bench/%d", i), Format: "wav", IfExists: "overwrite"}, true)
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, r)
	}
	pkts := make([]pionrtp.Packet, len(chans))
	for i := range pkts {
		payload := make([]byte, 160)
		for j := range payload {
			payload[j] = byte(i*7 + j)
		}
		pkts[i] = pionrtp.Packet{Header: pionrtp.Header{PayloadType: 0, SSRC: uint32(i + 1)}, Payload: payload}
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	// A second of warm-up: recordings started, play-out buffers primed.
	round := func(start time.Time, n int) {
		for i, ch := range chans {
			p := &pkts[i]
			ch.OnAudio(p, 0)
			p.SequenceNumber++
			p.Timestamp += 160
		}
		if d := time.Duration(n+1)*20*time.Millisecond - time.Since(start); d > 0 {
			time.Sleep(d)
		}
	}
	t0 := time.Now()
	for n := range 50 {
		round(t0, n)
	}
	stillRecording(b, recs, "")
	b.ResetTimer()
	c0, start := cpu(), time.Now()
	for n := range b.N {
		round(start, n)
	}
	used := cpu() - c0
	b.StopTimer()
	stillRecording(b, recs, "")
	b.ReportMetric(float64(used.Nanoseconds())/1e6/(float64(b.N)*0.02*calls), "cpu-ms/call-s")
}
