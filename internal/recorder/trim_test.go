package recorder

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// writeWAV writes interleaved 16-bit samples as a canonical WAV file.
func writeTrimWAV(t *testing.T, channels int, samples []int16) string {
	t.Helper()
	b := make([]byte, wavHeaderLen+2*len(samples))
	putWAVHeaderCh(b[:wavHeaderLen], 8000, uint16(channels), uint32(2*len(samples)))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(b[wavHeaderLen+2*i:], uint16(s))
	}
	p := filepath.Join(t.TempDir(), "t.wav")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func readTrimWAV(t *testing.T, p string) (WAVInfo, []int16) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(p)
	defer f.Close()
	info, err := ParseWAV(f, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if int(binary.LittleEndian.Uint32(b[4:8])) != len(b)-8 || int64(info.DataLen) != int64(len(b))-info.DataOffset {
		t.Fatalf("header sizes: riff %d data %d for a file of %d", binary.LittleEndian.Uint32(b[4:8]), info.DataLen, len(b))
	}
	out := make([]int16, info.DataLen/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(b[info.DataOffset+int64(2*i):]))
	}
	return info, out
}

// TestTrimWAV: leading and trailing silence (quiet noise under the
// threshold) go, the audio between stays sample for sample, silence inside
// stays; across read chunks; stereo frames by any channel; a silent file
// keeps nothing; a file without silence is untouched.
func TestTrimWAV(t *testing.T) {
	lead, body, tail := 3*trimChunk/2+7, 40000, 2*trimChunk+3 // samples, spanning chunks
	var in []int16
	for i := 0; i < lead; i++ {
		in = append(in, int16(i%50-25)) // noise under the threshold
	}
	var want []int16
	for i := 0; i < body; i++ {
		s := int16(3000 * ((i % 40) - 20) / 20)
		if i > 1000 && i < 9000 {
			s = 0 // a pause inside the audio stays
		}
		if i == 0 || i == body-1 {
			s = -2000 // the first and last loud samples
		}
		want = append(want, s)
	}
	in = append(in, want...)
	for i := 0; i < tail; i++ {
		in = append(in, int16(-(i % 100)))
	}
	p := writeTrimWAV(t, 1, in)
	kept, err := TrimWAV(p, TrimThreshold)
	if err != nil || kept != int64(body) {
		t.Fatalf("kept %d (%v), want %d", kept, err, body)
	}
	_, got := readTrimWAV(t, p)
	if len(got) != len(want) {
		t.Fatalf("%d samples, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sample %d: %d, want %d", i, got[i], want[i])
		}
	}
	// Untouched when there is nothing to trim.
	if kept, err := TrimWAV(p, TrimThreshold); err != nil || kept != int64(body) {
		t.Fatalf("again: %d %v", kept, err)
	}

	// Stereo: a frame is loud when either channel is.
	st := []int16{0, 0, 5, -5, 0, 900, 1, 1, 700, 0, 0, 3, 0, 0}
	p = writeTrimWAV(t, 2, st)
	if kept, err := TrimWAV(p, TrimThreshold); err != nil || kept != 3 {
		t.Fatalf("stereo kept %d %v", kept, err)
	}
	info, got := readTrimWAV(t, p)
	if info.Channels != 2 || len(got) != 6 || got[1] != 900 || got[4] != 700 {
		t.Fatalf("stereo: %v", got)
	}

	// All silence: nothing kept.
	p = writeTrimWAV(t, 1, make([]int16, 5000))
	if kept, err := TrimWAV(p, TrimThreshold); err != nil || kept != 0 {
		t.Fatalf("silent kept %d %v", kept, err)
	}
	if _, got := readTrimWAV(t, p); len(got) != 0 {
		t.Fatalf("silent file keeps %d samples", len(got))
	}
}
