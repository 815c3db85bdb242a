package recorder

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// countingFile counts WriteAt calls.
type countingFile struct {
	*os.File
	mu      sync.Mutex
	writes  int
	headers int
}

func (c *countingFile) WriteAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	if off == 0 {
		c.headers++
	} else {
		c.writes++
	}
	c.mu.Unlock()
	return c.File.WriteAt(p, off)
}

func TestWAVRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "rec.wav")
	w, err := Create(path, Format{Name: "wav"}, Fail)
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "a", "b", ".rec.wav.inprogress")
	if !exists(marker) {
		t.Fatal("no in-progress marker while recording")
	}
	pcm := ramp(8000*3+123, 7)
	writeFrames(t, w, pcm)
	if got := w.Samples(); got != int64(len(pcm)) {
		t.Errorf("Samples() = %d", got)
	}
	if w.Path() != path {
		t.Errorf("Path() = %q", w.Path())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if exists(marker) {
		t.Error("marker left after Close")
	}
	if err := w.Write(pcm[:10]); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v", err)
	}
	info, got := readWAV(t, path)
	if info.Format != 1 || info.Channels != 1 || info.Bits != 16 || info.SampleRate != 8000 || info.DataOffset != 44 {
		t.Errorf("header %+v", info)
	}
	b, _ := os.ReadFile(path)
	// Byte rate and block align as Asterisk writes them.
	if binary.LittleEndian.Uint32(b[28:32]) != 16000 || binary.LittleEndian.Uint16(b[32:34]) != 2 {
		t.Errorf("byte rate/block align wrong: % x", b[:44])
	}
	equalPCM(t, "wav data", got, pcm)
}

func TestWAVEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.wav")
	w, err := Create(path, Format{Name: "wav"}, Fail)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, pcm := readWAV(t, path)
	if len(pcm) != 0 {
		t.Fatalf("%d samples", len(pcm))
	}
}

// The file on disk is valid and current after every flush, and the writer
// issues one data write and one header write per second of audio.
func TestWAVPeriodicFlush(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.wav")
	var cf *countingFile
	open := func(name string, flag int, perm fs.FileMode) (File, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		cf = &countingFile{File: f}
		return cf, nil
	}
	w, err := Create(path, Format{Name: "wav"}, Fail, WithOpenFile(open))
	if err != nil {
		t.Fatal(err)
	}
	pcm := ramp(8000*5, 3)
	headers0 := cf.headers
	writeFrames(t, w, pcm[:8000*5-160])
	// 4.98 s written: 4 full seconds on disk.
	if cf.writes != 4 || cf.headers-headers0 != 4 {
		t.Errorf("after 4.98 s: %d data writes, %d header writes; want 4 and 4", cf.writes, cf.headers-headers0)
	}
	_, got := readWAV(t, path)
	equalPCM(t, "flushed data", got, pcm[:8000*4])
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	_, got = readWAV(t, path)
	equalPCM(t, "after Flush", got, pcm[:8000*5-160])
	writeFrames(t, w, pcm[8000*5-160:])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, got = readWAV(t, path)
	equalPCM(t, "after Close", got, pcm)
}

func TestFlushInterval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.wav")
	w, err := Create(path, Format{Name: "wav"}, Fail, WithFlushInterval(100*time.Millisecond), WithSync(true))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	pcm := ramp(800, 5)
	writeFrames(t, w, pcm)
	_, got := readWAV(t, path)
	equalPCM(t, "after 100 ms", got, pcm)
	if _, err := Create(path+"x", Format{Name: "wav"}, Fail, WithFlushInterval(time.Millisecond)); err == nil {
		t.Error("1 ms flush interval accepted")
	}
}

func TestIfExists(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.wav")
	first := ramp(1000, 1)
	w, err := Create(path, Format{Name: "wav"}, Fail)
	if err != nil {
		t.Fatal(err)
	}
	writeFrames(t, w, first)
	w.Close()

	if _, err := Create(path, Format{Name: "wav"}, Fail); !errors.Is(err, ErrExists) {
		t.Fatalf("Fail on existing file: %v", err)
	}
	if exists(InProgressMarker(path)) {
		t.Fatal("failed Create left a marker")
	}
	_, got := readWAV(t, path)
	equalPCM(t, "untouched by Fail", got, first)

	// Append continues after the existing data.
	second := ramp(8000+77, 2)
	w, err = Create(path, Format{Name: "wav"}, Append)
	if err != nil {
		t.Fatal(err)
	}
	writeFrames(t, w, second)
	if w.Samples() != int64(len(second)) {
		t.Errorf("Samples() after append = %d, want this session's %d", w.Samples(), len(second))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, got = readWAV(t, path)
	equalPCM(t, "appended", got, append(append([]int16{}, first...), second...))

	// Append to a missing file creates it.
	p2 := filepath.Join(dir, "new", "y.wav")
	w, err = Create(p2, Format{Name: "wav"}, Append)
	if err != nil {
		t.Fatal(err)
	}
	writeFrames(t, w, first)
	w.Close()
	_, got = readWAV(t, p2)
	equalPCM(t, "append-created", got, first)

	// Overwrite truncates.
	w, err = Create(path, Format{Name: "wav"}, Overwrite)
	if err != nil {
		t.Fatal(err)
	}
	writeFrames(t, w, second[:320])
	w.Close()
	_, got = readWAV(t, path)
	equalPCM(t, "overwritten", got, second[:320])

	// Append to a wav of another rate, or to a non-wav, is refused.
	if _, err := Create(path, Format{Name: "wav16"}, Append); !errors.Is(err, ErrAppendMismatch) {
		t.Errorf("append wav16 to 8 kHz wav: %v", err)
	}
	junk := filepath.Join(dir, "junk.wav")
	os.WriteFile(junk, []byte("this is not a wav file at all, no sir"), 0o644)
	if _, err := Create(junk, Format{Name: "wav"}, Append); !errors.Is(err, ErrAppendMismatch) {
		t.Errorf("append to junk: %v", err)
	}
	if b, _ := os.ReadFile(junk); string(b) != "this is not a wav file at all, no sir" {
		t.Error("refused append modified the file")
	}
	if exists(InProgressMarker(junk)) {
		t.Error("refused append left a marker")
	}
	if _, err := Create(filepath.Join(dir, "z.flac"), Format{Name: "flac"}, Append); !errors.Is(err, ErrAppendUnsupported) {
		t.Errorf("append flac: %v", err)
	}
	if _, err := Create(filepath.Join(dir, "z.gsm"), Format{Name: "gsm"}, Fail); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("unknown format: %v", err)
	}
}

// Appending to a wav whose header was not updated (a crash not yet
// repaired) keeps the audio that is in the file.
func TestWAVAppendUnrepaired(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.wav")
	first := ramp(500, 9)
	w, _ := Create(path, Format{Name: "wav"}, Fail)
	writeFrames(t, w, first)
	w.Close()
	// Zero the sizes as if the header had never been rewritten, and add a
	// stray odd byte.
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	f.WriteAt(make([]byte, 4), 40)
	st, _ := f.Stat()
	f.WriteAt([]byte{0x55}, st.Size())
	f.Close()
	w, err := Create(path, Format{Name: "wav"}, Append)
	if err != nil {
		t.Fatal(err)
	}
	writeFrames(t, w, first)
	w.Close()
	_, got := readWAV(t, path)
	equalPCM(t, "append after crash", got, append(append([]int16{}, first...), first...))
}

func TestWAV16(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.wav16")
	w, err := Create(path, Format{Name: "wav16"}, Fail)
	if err != nil {
		t.Fatal(err)
	}
	const n = 8000
	in := sine(n, 1000, 10000, 8000)
	writeFrames(t, w, in)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	info, got := readWAV(t, path)
	if info.SampleRate != 16000 {
		t.Fatalf("rate %d", info.SampleRate)
	}
	if len(got) != 2*n {
		t.Fatalf("%d samples, want %d", len(got), 2*n)
	}
	// Even samples are the input itself (aligned, no delay).
	for i := 0; i < n; i++ {
		if got[2*i] != in[i] {
			t.Fatalf("sample %d: %d, want input %d", 2*i, got[2*i], in[i])
		}
	}
	// The interpolated signal is the 1 kHz sine at 16 kHz (ignore the
	// filter's edges).
	want := sine(2*n, 1000, 10000, 16000)
	if s := snr(want[64:2*n-64], got[64:2*n-64]); s < 50 {
		t.Errorf("wav16 1 kHz SNR %.1f dB, want >= 50", s)
	}
	// Not a zero-order hold: odd samples differ from their predecessors.
	same := 0
	for i := 1; i < 2*n; i += 2 {
		if got[i] == got[i-1] {
			same++
		}
	}
	if same > n/10 {
		t.Errorf("%d of %d interpolated samples repeat the previous one", same, n)
	}
}

func TestUpsamplerImageRejection(t *testing.T) {
	for _, tc := range []struct {
		f, minDB float64
	}{{1000, 60}, {2000, 50}, {3000, 35}} {
		in := sine(8000, tc.f, 16000, 8000)
		u := newUpsampler()
		out := make([]int16, 0, 16000)
		var buf [2 * upChunk]int16
		for i := 0; i < len(in); i += upChunk {
			n := u.process(buf[:], in[i:i+upChunk])
			out = append(out, buf[:n]...)
		}
		n := u.drain(buf[:])
		out = append(out, buf[:n]...)
		if len(out) != 16000 {
			t.Fatalf("%d samples out", len(out))
		}
		sig := goertzel(out[100:15900], tc.f, 16000)
		img := goertzel(out[100:15900], 8000-tc.f, 16000)
		if r := 10 * math.Log10(sig/img); r < tc.minDB {
			t.Errorf("%v Hz: image at %v Hz only %.1f dB down, want %v", tc.f, 8000-tc.f, r, tc.minDB)
		} else {
			t.Logf("%v Hz: image %.1f dB down", tc.f, r)
		}
	}
}
