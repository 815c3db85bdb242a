package recorder

import (
	"encoding/binary"
	"math"
	"os"
	"testing"
)

// sine returns n samples of a sine wave at rate.
func sine(n int, freq, amp float64, rate int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return out
}

// ramp returns distinct, deterministic samples (pseudo-random, full range).
func ramp(n int, seed uint32) []int16 {
	out := make([]int16, n)
	x := seed | 1
	for i := range out {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		out[i] = int16(x)
	}
	return out
}

// readWAV parses a wav file strictly: declared sizes must match the file.
func readWAV(t *testing.T, path string) (WAVInfo, []int16) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := ParseWAV(f, int64(len(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if riff := binary.LittleEndian.Uint32(b[4:8]); int64(riff) != int64(len(b))-8 {
		t.Fatalf("%s: RIFF size %d, file size %d", path, riff, len(b))
	}
	if end := info.DataOffset + int64(info.DataLen); end != int64(len(b)) {
		t.Fatalf("%s: data ends at %d, file size %d", path, end, len(b))
	}
	data := b[info.DataOffset:]
	pcm := make([]int16, len(data)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
	}
	return info, pcm
}

func equalPCM(t *testing.T, what string, got, want []int16) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d samples, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: sample %d = %d, want %d", what, i, got[i], want[i])
		}
	}
}

// writeFrames writes pcm in 20 ms frames.
func writeFrames(t testing.TB, w Writer, pcm []int16) {
	t.Helper()
	for len(pcm) > 0 {
		n := min(160, len(pcm))
		if err := w.Write(pcm[:n]); err != nil {
			t.Fatal(err)
		}
		pcm = pcm[n:]
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// snr returns the signal-to-noise ratio of got against want in dB.
func snr(want, got []int16) float64 {
	var s, e float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		s += float64(want[i]) * float64(want[i])
		e += d * d
	}
	if e == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(s/e)
}

// goertzel returns the power of freq in x.
func goertzel(x []int16, freq float64, rate int) float64 {
	w := 2 * math.Pi * freq / float64(rate)
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s0 := float64(v) + c*s1 - s2
		s2, s1 = s1, s0
	}
	return s1*s1 + s2*s2 - c*s1*s2
}
