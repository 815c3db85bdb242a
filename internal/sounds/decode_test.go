package sounds

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tapedeck/tapedeck/internal/codec"
)

func decodeOK(t *testing.T, b []byte, ext string) []int16 {
	t.Helper()
	c, err := Decode(bytesReader(b), ext)
	if err != nil {
		t.Fatalf("Decode(%s): %v", ext, err)
	}
	return c.Samples()
}

func TestDecodeExact8k(t *testing.T) {
	want := ramp(1234)
	if got := decodeOK(t, wavBytes(8000, 1, want), "wav"); !slices.Equal(got, want) {
		t.Fatal("wav 8k mono not exact")
	}
	if got := decodeOK(t, slnBytes(want), ".sln"); !slices.Equal(got, want) {
		t.Fatal("sln not exact")
	}
	if got := decodeOK(t, slnBytes(want), "raw"); !slices.Equal(got, want) {
		t.Fatal("raw not exact")
	}
	u := ulawBytes(want)
	wu := make([]int16, len(u))
	codec.DecodeMulaw(wu, u)
	for _, ext := range []string{"ulaw", "pcm", "mu", "ul"} {
		if got := decodeOK(t, u, ext); !slices.Equal(got, wu) {
			t.Fatalf("%s not G.711-exact", ext)
		}
	}
	if got := decodeOK(t, wavRaw(wavMulaw, 8000, 1, 8, u), "wav"); !slices.Equal(got, wu) {
		t.Fatal("μ-law WAV not exact")
	}
	a := make([]byte, len(want))
	codec.EncodeAlaw(a, want)
	wa := make([]int16, len(a))
	codec.DecodeAlaw(wa, a)
	if got := decodeOK(t, a, "alaw"); !slices.Equal(got, wa) {
		t.Fatal("alaw not exact")
	}
	if got := decodeOK(t, wavRaw(wavAlaw, 8000, 1, 8, a), "wav"); !slices.Equal(got, wa) {
		t.Fatal("A-law WAV not exact")
	}
	// stereo 8 kHz: channels averaged
	l, r := ramp(500), sine(500, 8000, 300, 1000)
	got := decodeOK(t, wavBytes(8000, 2, interleave(l, r)), "wav")
	for i := range got {
		if w := int16(math.Round((float64(l[i]) + float64(r[i])) / 2)); got[i] != w {
			t.Fatalf("stereo sample %d = %d, want %d", i, got[i], w)
		}
	}
	// an empty data chunk is a valid empty clip
	if got := decodeOK(t, wavBytes(8000, 1, nil), "wav"); len(got) != 0 {
		t.Fatal(len(got))
	}
}

func TestDecodeWAVVariants(t *testing.T) {
	ref := sine(800, 8000, 500, 20000)
	// 8-bit unsigned
	b8 := make([]byte, len(ref))
	for i, s := range ref {
		b8[i] = byte(int(s)>>8 + 128)
	}
	got := decodeOK(t, wavRaw(wavPCM, 8000, 1, 8, b8), "wav")
	for i := range got {
		if d := int(got[i]) - int(ref[i]); d < -256 || d > 256 {
			t.Fatalf("8-bit sample %d = %d, want ~%d", i, got[i], ref[i])
		}
	}
	// 24-bit
	b24 := make([]byte, 3*len(ref))
	for i, s := range ref {
		v := int32(s)<<8 | 0x55
		b24[3*i], b24[3*i+1], b24[3*i+2] = byte(v), byte(v>>8), byte(v>>16)
	}
	if got := decodeOK(t, wavRaw(wavPCM, 8000, 1, 24, b24), "wav"); !slices.Equal(got, ref) {
		t.Fatal("24-bit not exact after rounding")
	}
	// 32-bit float
	bf := make([]byte, 4*len(ref))
	for i, s := range ref {
		binary.LittleEndian.PutUint32(bf[4*i:], math.Float32bits(float32(s)/32768))
	}
	if got := decodeOK(t, wavRaw(wavFloat, 8000, 1, 32, bf), "wav"); !slices.Equal(got, ref) {
		t.Fatal("float32 not exact")
	}
	// WAVE_FORMAT_EXTENSIBLE with PCM subformat, and an extra chunk before data
	w := wavBytes(8000, 1, ref)
	ext := make([]byte, 0, len(w)+64)
	ext = append(ext, w[:12]...)
	ext = append(ext, "LIST\x04\x00\x00\x00abcd"...)
	fmtc := make([]byte, 8+40)
	copy(fmtc, "fmt ")
	binary.LittleEndian.PutUint32(fmtc[4:], 40)
	copy(fmtc[8:24], w[20:36])
	binary.LittleEndian.PutUint16(fmtc[8:], wavExtensible)
	binary.LittleEndian.PutUint16(fmtc[8+16:], 22)
	binary.LittleEndian.PutUint16(fmtc[8+24:], wavPCM)
	ext = append(ext, fmtc...)
	ext = append(ext, w[36:]...)
	if got := decodeOK(t, ext, "wav"); !slices.Equal(got, ref) {
		t.Fatal("extensible WAV not exact")
	}
	// truncated file: decodes what is there
	if got := decodeOK(t, w[:44+200], "wav"); !slices.Equal(got, ref[:100]) {
		t.Fatal("truncated WAV")
	}

	for name, b := range map[string][]byte{
		"gsm":        wavRaw(wavGSM, 8000, 1, 0, make([]byte, 65)),
		"mp3-in-wav": wavRaw(0x55, 8000, 1, 0, make([]byte, 100)),
		"5ch-16":     wavRaw(wavPCM, 8000, 17, 16, make([]byte, 100)),
		"rate":       wavRaw(wavPCM, 100, 1, 16, make([]byte, 100)),
	} {
		if _, err := Decode(bytesReader(b), "wav"); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: err = %v, want ErrUnsupported", name, err)
		}
	}
	for name, b := range map[string][]byte{
		"text":    []byte("hello, this is not audio at all"),
		"no data": wavBytes(8000, 1, nil)[:36],
		"short":   []byte("RIFF"),
	} {
		if _, err := Decode(bytesReader(b), "wav"); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	if _, err := Decode(bytesReader(nil), "mp3"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("mp3: %v", err)
	}
	if _, err := Decode(bytesReader(nil), "gsm"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("gsm: %v", err)
	}
}

func TestDecodeResampled(t *testing.T) {
	for _, c := range []struct {
		name string
		rate int
		ch   int
		ext  string
	}{
		{"wav16k", 16000, 1, "wav"},
		{"wav16 ext", 16000, 1, "wav16"},
		{"wav11025", 11025, 1, "wav"},
		{"wav22050", 22050, 2, "wav"},
		{"wav32k", 32000, 1, "wav"},
		{"wav44.1k", 44100, 1, "wav"},
		{"wav44.1k stereo", 44100, 2, "wav"},
		{"wav48k", 48000, 1, "wav"},
		{"wav48k stereo", 48000, 2, "wav"},
		{"wav96k", 96000, 1, "wav"},
		{"wav6k up", 6000, 1, "wav"},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := 2 * c.rate // 2 s
			tone := sine(n, c.rate, 1000, 10000)
			// 5 kHz (above 4 kHz): must not alias into the band (it would land on 3 kHz)
			hi := sine(n, c.rate, 5000, 10000)
			if c.rate <= 10000 {
				hi = make([]int16, n)
			}
			mixed := make([]int16, n)
			for i := range mixed {
				mixed[i] = tone[i]/2 + hi[i]/2
			}
			var b []byte
			if c.ch == 2 {
				// left: tone+hi, right: tone-hi → mix = tone (per channel halves)
				r := make([]int16, n)
				for i := range r {
					r[i] = tone[i]/2 - hi[i]/2
				}
				b = wavBytes(c.rate, 2, interleave(mixed, r))
			} else {
				b = wavBytes(c.rate, 1, mixed)
			}
			got := decodeOK(t, b, c.ext)
			if len(got) != 16000 {
				t.Fatalf("2 s decoded to %d samples, want 16000", len(got))
			}
			mid := got[2000:14000]
			if a := toneAmp(mid, 1000); a < 4950 || a > 5050 {
				t.Errorf("1 kHz amplitude %.1f, want 5000 ±1%%", a)
			}
			if c.ch == 1 && c.rate > 10000 {
				if a := toneAmp(mid, 3000); a > 5 { // alias of 5 kHz
					t.Errorf("5 kHz aliased to 3 kHz with amplitude %.1f (want < 5, i.e. -60 dB)", a)
				}
			}
			// nothing else: residual after removing the tone is small
			var res float64
			for i, v := range mid {
				w := 5000 * math.Sin(2*math.Pi*1000*float64(i+2000)/8000)
				res += (float64(v) - w) * (float64(v) - w)
			}
			if r := math.Sqrt(res / float64(len(mid))); r > 15 {
				t.Errorf("residual rms %.1f (want < 15)", r)
			}
		})
	}
	// passband: 3 kHz survives 48k→8k nearly unattenuated
	got := decodeOK(t, slnBytes(sine(48000, 48000, 3000, 10000)), "sln48")
	if a := toneAmp(got[1000:7000], 3000); a < 9700 || a > 10100 {
		t.Errorf("3 kHz through 48k→8k: amplitude %.0f, want ~10000", a)
	}
	// DC stays DC
	dc := make([]int16, 16000)
	for i := range dc {
		dc[i] = 1234
	}
	got = decodeOK(t, slnBytes(dc), "sln16")
	for i := 100; i < len(got)-100; i++ {
		if got[i] != 1234 {
			t.Fatalf("DC sample %d = %d", i, got[i])
		}
	}
}

func TestDecodeSizeLimit(t *testing.T) {
	if _, err := Decode(io.LimitReader(zeroReader{}, MaxFileSize+1), "sln"); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Decode over limit: %v", err)
	}
	p := filepath.Join(t.TempDir(), "big.wav")
	fh, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	fh.Truncate(MaxFileSize + 1) // sparse
	fh.Close()
	if _, err := DecodeFile(p); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("DecodeFile over limit: %v", err)
	}
	if _, err := DecodeFile(filepath.Join(t.TempDir(), "x.mp3")); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("DecodeFile mp3: %v", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestClipReadSeek(t *testing.T) {
	pcm := ramp(400)
	c := NewClip(pcm)
	if c.Length() != 400 || c.Duration().Milliseconds() != 50 {
		t.Fatal(c.Length(), c.Duration())
	}
	buf := make([]int16, 160)
	for _, want := range []int{160, 160, 80} {
		n, err := c.Read(buf)
		if n != want || err != nil {
			t.Fatalf("Read = %d, %v; want %d", n, err, want)
		}
	}
	if n, err := c.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("at end: %d, %v", n, err)
	}
	for _, s := range []struct {
		off    int64
		whence int
		want   int64
	}{
		{0, io.SeekStart, 0}, {100, io.SeekCurrent, 100}, {-50, io.SeekCurrent, 50},
		{-1000, io.SeekCurrent, 0}, {-10, io.SeekEnd, 390}, {10, io.SeekEnd, 400},
		{5000, io.SeekStart, 400}, {-1, io.SeekStart, 0},
	} {
		if p, err := c.Seek(s.off, s.whence); p != s.want || err != nil {
			t.Fatalf("Seek(%d,%d) = %d, %v; want %d", s.off, s.whence, p, err, s.want)
		}
	}
	if _, err := c.Seek(0, 7); err == nil {
		t.Fatal("bad whence accepted")
	}
	c.Seek(390, io.SeekStart)
	if n, _ := c.Read(buf); n != 10 || !slices.Equal(buf[:10], pcm[390:]) {
		t.Fatal("read after seek")
	}
	d := c.Clone()
	if d.Position() != 0 || d.Length() != 400 {
		t.Fatal("clone")
	}
	if allocs := testing.AllocsPerRun(100, func() {
		if _, err := c.Read(buf); err == io.EOF {
			c.Seek(0, io.SeekStart)
		}
	}); allocs != 0 {
		t.Fatalf("Read allocates %.1f times", allocs)
	}
	if n, err := NewClip(nil).Read(buf); n != 0 || err != io.EOF {
		t.Fatal("empty clip")
	}
}

func BenchmarkClipRead(b *testing.B) {
	c := NewClip(ramp(8000 * 60))
	buf := make([]int16, 160)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Read(buf); err == io.EOF {
			c.Seek(0, io.SeekStart)
		}
	}
}

func BenchmarkDecode48kStereo10s(b *testing.B) {
	tone := sine(480000, 48000, 1000, 10000)
	w := wavBytes(48000, 2, interleave(tone, tone))
	b.SetBytes(int64(len(w)))
	for b.Loop() {
		if _, err := Decode(bytesReader(w), "wav"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode44k1Mono10s(b *testing.B) {
	w := wavBytes(44100, 1, sine(441000, 44100, 1000, 10000))
	b.SetBytes(int64(len(w)))
	for b.Loop() {
		if _, err := Decode(bytesReader(w), "wav"); err != nil {
			b.Fatal(err)
		}
	}
}
