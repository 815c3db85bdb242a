package mix

import (
	"fmt"
	"testing"

	"github.com/tapedeck/tapedeck/internal/codec"
)

// benchBridge measures one bridge tick with n parties: each party's reader
// pushes one 20 ms packet, then TickRecord mixes and hands every party its
// frame and the recorder the mix plus per-party frames.
func benchBridge(b *testing.B, n int, record bool) {
	m := New()
	ps := make([]*Participant, n)
	for i := range ps {
		ps[i] = m.Add(fmt.Sprintf("p%d", i))
	}
	pcm := sine(400, 5000, 0, FrameSamples)
	var sink int
	out := func(_ *Participant, f []int16) { sink += int(f[7]) }
	var rec func([]int16, []Frame)
	if record {
		rec = func(mixed []int16, parts []Frame) {
			sink += int(mixed[3])
			for _, f := range parts {
				sink += int(f.PCM[5])
			}
		}
	}
	ts := uint32(0)
	step := func() {
		for i, p := range ps {
			p.Push(uint32(i), ts, pcm)
		}
		ts += FrameSamples
		m.TickRecord(out, rec)
	}
	for range 5 {
		step()
	}
	b.ReportAllocs()
	b.SetBytes(int64(n * FrameSamples * 2))
	b.ResetTimer()
	for b.Loop() {
		step()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/tick")
	_ = sink
}

func BenchmarkBridge2Record(b *testing.B)  { benchBridge(b, 2, true) }
func BenchmarkBridge2(b *testing.B)        { benchBridge(b, 2, false) }
func BenchmarkBridge10Record(b *testing.B) { benchBridge(b, 10, true) }

// BenchmarkJitterPushPull is one participant's buffer alone: the reader
// pushes a 20 ms packet and the clock plays a frame.
func BenchmarkJitterPushPull(b *testing.B) {
	var j jitter
	pcm := sine(400, 5000, 0, FrameSamples)
	dst := make([]int16, FrameSamples)
	ts := uint32(0)
	b.ReportAllocs()
	for b.Loop() {
		j.push(1, ts, pcm)
		ts += FrameSamples
		j.pull(dst)
	}
}

// BenchmarkPartiesPush: a received G.711 packet into its party's play-out
// buffer, as a bridged channel's media path does it, for 200 parties (100
// bridges) or 2000 one after the other, each then playing a frame (with
// 2000 the rings, 4 MiB, outgrow the L2 cache: each party's ring is cold
// again at its next packet, as in a server): decoded into the reader's
// buffer and copied in (decode-push, before), or decoded straight into the
// ring (g711). One op is one packet.
func BenchmarkPartiesPush(b *testing.B) {
	for _, parties := range []int{200, 2000} {
		for _, mode := range []string{"decode-push", "g711"} {
			b.Run(fmt.Sprintf("%d/%s", parties, mode), func(b *testing.B) { benchPartiesPush(b, parties, mode) })
		}
	}
}

func benchPartiesPush(b *testing.B, parties int, mode string) {
	payload := make([]byte, FrameSamples)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	ps := make([]*Participant, parties)
	for i := range ps {
		ps[i] = &Participant{}
	}
	pcm := make([]int16, FrameSamples)
	ts := uint32(0)
	b.SetBytes(FrameSamples)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		p := ps[n%parties]
		if mode == "g711" {
			p.PushG711(1, ts, payload, false)
		} else {
			codec.DecodeMulaw(pcm, payload)
			p.Push(1, ts, pcm)
		}
		p.pull()
		if n++; n%parties == 0 {
			ts += FrameSamples
		}
	}
}
