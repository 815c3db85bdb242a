package recorder

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func requireLame(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("lame")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("lame program missing (apt-get install lame)")
		}
		t.Skip("SKIPPED: lame program not installed (apt-get install lame); mp3 not tested")
	}
	return p
}

// decodeMP3 decodes with the lame program to 8 kHz raw PCM.
func decodeMP3(t *testing.T, lame, path string) []int16 {
	t.Helper()
	out := filepath.Join(t.TempDir(), "dec.wav")
	if b, err := exec.Command(lame, "--quiet", "--decode", path, out).CombinedOutput(); err != nil {
		t.Fatalf("lame --decode: %v %s", err, b)
	}
	info, pcm := readWAV(t, out)
	if info.SampleRate != 8000 || info.Channels != 1 {
		t.Fatalf("decoded %+v", info)
	}
	return pcm
}

func testMP3(t *testing.T, opts ...Option) {
	lame := requireLame(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "m.mp3")
	w, err := Create(path, Format{Name: "mp3"}, Fail, opts...)
	if err != nil {
		t.Fatal(err)
	}
	pcm := sine(8000*3, 500, 10000, 8000)
	writeFrames(t, w, pcm)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	end, n, rate := scanMP3(mustOpen(t, path), fi.Size())
	if end != fi.Size() || rate != 8000 {
		t.Fatalf("scan: end %d of %d, rate %d", end, fi.Size(), rate)
	}
	// 32 kbit/s CBR: about 4000 bytes per second.
	if fi.Size() < 11000 || fi.Size() > 13500 {
		t.Errorf("%d bytes for 3 s", fi.Size())
	}
	if n < 24000 || n > 24000+3*576 {
		t.Errorf("%d samples in frames", n)
	}
	dec := decodeMP3(t, lame, path)
	if len(dec) < 24000 {
		t.Fatalf("decoded %d samples", len(dec))
	}
	mid := dec[4000:20000]
	tone := goertzel(mid, 500, 8000)
	other := goertzel(mid, 1500, 8000) + goertzel(mid, 2500, 8000)
	if tone < 1000*other {
		t.Errorf("decoded mp3 does not carry the 500 Hz tone (%g vs %g)", tone, other)
	}

	// Append continues the frame stream.
	w, err = Create(path, Format{Name: "mp3"}, Append, opts...)
	if err != nil {
		t.Fatal(err)
	}
	writeFrames(t, w, pcm)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fi2, _ := os.Stat(path)
	end, n2, _ := scanMP3(mustOpen(t, path), fi2.Size())
	if end != fi2.Size() || n2 < 2*24000 {
		t.Errorf("after append: end %d of %d, %d samples", end, fi2.Size(), n2)
	}
}

func mustOpen(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestMP3Program(t *testing.T) {
	lame := requireLame(t)
	testMP3(t, func(o *options) error { o.lameProgram = lame; return nil })
}

func TestMP3Default(t *testing.T) {
	if lameInProcess {
		t.Log("using libmp3lame in process (-tags lame)")
	}
	testMP3(t)
}
