package mix

import (
	"fmt"
	"testing"
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
