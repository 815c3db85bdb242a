package sounds

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/tapedeck/tapedeck/internal/codec"
)

// wavBytes builds a canonical PCM WAV (tag 1) of interleaved int16 samples.
func wavBytes(rate, channels int, samples []int16) []byte {
	data := make([]byte, 2*len(samples))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(data[2*i:], uint16(s))
	}
	return wavRaw(1, rate, channels, 16, data)
}

// wavRaw builds a WAV with any tag/bits around data (fmt chunk of 16 bytes).
func wavRaw(tag, rate, channels, bits int, data []byte) []byte {
	bps := (bits + 7) / 8
	h := make([]byte, 44)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(36+len(data)))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], uint16(tag))
	binary.LittleEndian.PutUint16(h[22:], uint16(channels))
	binary.LittleEndian.PutUint32(h[24:], uint32(rate))
	binary.LittleEndian.PutUint32(h[28:], uint32(rate*channels*bps))
	binary.LittleEndian.PutUint16(h[32:], uint16(channels*bps))
	binary.LittleEndian.PutUint16(h[34:], uint16(bits))
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(len(data)))
	return append(h, data...)
}

func slnBytes(samples []int16) []byte {
	b := make([]byte, 2*len(samples))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(s))
	}
	return b
}

func ulawBytes(samples []int16) []byte {
	b := make([]byte, len(samples))
	codec.EncodeMulaw(b, samples)
	return b
}

// sine returns n samples of amp*sin(2πf t) at rate.
func sine(n, rate int, f, amp float64) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(math.Round(amp * math.Sin(2*math.Pi*f*float64(i)/float64(rate))))
	}
	return s
}

// ramp returns n distinct-ish test samples.
func ramp(n int) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = int16((i*7919)%65536 - 32768)
	}
	return s
}

// interleave makes stereo from left and right.
func interleave(l, r []int16) []int16 {
	out := make([]int16, 2*len(l))
	for i := range l {
		out[2*i], out[2*i+1] = l[i], r[i]
	}
	return out
}

// toneAmp measures the amplitude of frequency f (8 kHz samples) over x.
func toneAmp(x []int16, f float64) float64 {
	var re, im float64
	for i, v := range x {
		ph := 2 * math.Pi * f * float64(i) / OutputRate
		re += float64(v) * math.Cos(ph)
		im += float64(v) * math.Sin(ph)
	}
	return 2 * math.Hypot(re, im) / float64(len(x))
}

func rms(x []int16) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(max(len(x), 1)))
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// readAll drains a source in 160-sample frames.
func readAll(t testing.TB, m Media) []int16 {
	t.Helper()
	var out []int16
	buf := make([]int16, 160)
	for i := 0; ; i++ {
		n, err := m.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			if n != 0 {
				t.Fatalf("Read returned n=%d with err %v", n, err)
			}
			return out
		}
		if n == 0 {
			t.Fatal("Read returned 0, nil")
		}
		if i > 10_000_000 {
			t.Fatal("source does not end")
		}
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
