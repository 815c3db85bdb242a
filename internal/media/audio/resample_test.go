package audio

import (
	"math"
	"testing"
)

func sine(freq float64, rate, n int, amp float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	return out
}

// power of freq in x (Goertzel), normalised per sample.
func power(x []int16, freq float64, rate int) float64 {
	w := 2 * math.Pi * freq / float64(rate)
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s := float64(v) + c*s1 - s2
		s2, s1 = s1, s
	}
	return (s1*s1 + s2*s2 - c*s1*s2) / float64(len(x)*len(x))
}

// Every slin rate to and from 8 kHz, fed in 20 ms frames: exactly 20 ms
// comes out of each frame, a 1 kHz tone keeps its frequency and level,
// and a tone above the 8 kHz band does not fold into it.
func TestResamplerFramesAndTone(t *testing.T) {
	for _, rate := range []int{8000, 12000, 16000, 24000, 32000, 44100, 48000, 96000, 192000} {
		for _, dir := range []string{"up", "down"} {
			in, out := 8000, rate
			if dir == "down" {
				in, out = rate, 8000
			}
			r := NewResampler(in, out)
			x := sine(1000, in, in, 10000) // 1 s
			var y []int16
			for off := 0; off < len(x); off += in / 50 {
				before := len(y)
				y = r.Process(y, x[off:off+in/50])
				if got := len(y) - before; got != out/50 {
					t.Fatalf("%d->%d: frame at %d gave %d samples, want %d", in, out, off, got, out/50)
				}
			}
			tail := y[out/10:] // past the start-up
			p1k := power(tail, 1000, out)
			want := 10000.0 * 10000 / 4
			if p1k < want*0.8 || p1k > want*1.2 {
				t.Errorf("%d->%d: 1 kHz power %.0f, want about %.0f", in, out, p1k, want)
			}
			if p := power(tail, 1500, out); p > p1k/1000 {
				t.Errorf("%d->%d: 1.5 kHz power %.0f beside 1 kHz %.0f", in, out, p, p1k)
			}
		}
	}
	// Aliasing: a 6 kHz tone at 16 kHz must not appear at 2 kHz at 8 kHz.
	r := NewResampler(16000, 8000)
	y := r.Process(nil, sine(6000, 16000, 16000, 10000))
	if p := power(y[800:], 2000, 8000); p > 10000.0*10000/4/1000 {
		t.Errorf("6 kHz folded to 2 kHz with power %.0f", p)
	}
}

func BenchmarkResample48kTo8k(b *testing.B) {
	r := NewResampler(48000, 8000)
	x := sine(1000, 48000, 960, 10000)
	var y []int16
	b.ReportAllocs()
	for b.Loop() {
		y = r.Process(y[:0], x)
	}
}

func BenchmarkResample8kTo16k(b *testing.B) {
	r := NewResampler(8000, 16000)
	x := sine(1000, 8000, 160, 10000)
	var y []int16
	b.ReportAllocs()
	for b.Loop() {
		y = r.Process(y[:0], x)
	}
}
