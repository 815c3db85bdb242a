package call

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	pionrtp "github.com/pion/rtp"
)

// BenchmarkRecordedPacketPath: the media path of calls that are each
// recorded once (dialplan Record, loadgen's scenario a), as the RTP poller
// drives it: a round hands each of 100 channels its 5 packets (100 ms of
// 20 ms µ-law frames), one channel after the other, so each channel's
// state is cold again at its next round. One op is one packet; the
// recordings' writers (the pool, its file writes) run alongside.
func BenchmarkRecordedPacketPath(b *testing.B) {
	const calls, perRound = 100, 5
	// Quiet: a line per recording would interleave with the results.
	old := slog.Default()
	slog.SetDefault(slog.New(slog.DiscardHandler))
	b.Cleanup(func() { slog.SetDefault(old) })
	m := benchManager(b)
	chans := make([]*Channel, calls)
	recs := make([]*LiveRecording, calls)
	pkts := make([]pionrtp.Packet, calls)
	for i := range chans {
		chans[i] = benchChannel(b, m)
		recs[i] = benchRecord(b, chans[i], fmt.Sprintf("bench/%d", i))
		payload := make([]byte, 160)
		for j := range payload {
			payload[j] = byte(i + j)
		}
		pkts[i] = pionrtp.Packet{Header: pionrtp.Header{PayloadType: 0, SSRC: uint32(i + 1)}, Payload: payload}
	}
	b.ReportAllocs()
	b.SetBytes(160)
	b.ResetTimer()
	start := time.Now()
	for n := 0; n < b.N; {
		for i, ch := range chans {
			p := &pkts[i]
			for k := 0; k < perRound && n < b.N; k++ {
				ch.OnAudio(p, 0)
				p.SequenceNumber++
				p.Timestamp += 160
				n++
			}
		}
		// Real time for the writers, as a poller paces them (a round is 100 ms):
		// their queues then hold what they hold in a server.
		if d := time.Duration(n/(calls*perRound)) * 100 * time.Millisecond; time.Since(start) < d {
			b.StopTimer()
			time.Sleep(d - time.Since(start))
			b.StartTimer()
		}
	}
	b.StopTimer()
	stillRecording(b, recs, "")
}
