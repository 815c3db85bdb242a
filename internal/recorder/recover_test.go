package recorder

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// crashCopy copies a recording and its marker into dir/rel as a kill -9 would
// leave them (the writer is still open).
func crashCopy(t *testing.T, src, root, rel string) string {
	t.Helper()
	dst := filepath.Join(root, rel)
	os.MkdirAll(filepath.Dir(dst), 0o755)
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(dst, b, 0o644)
	m, err := os.ReadFile(InProgressMarker(src))
	if err != nil {
		t.Fatalf("no marker while recording: %v", err)
	}
	os.WriteFile(InProgressMarker(dst), m, 0o644)
	return dst
}

func TestRecoverWAV(t *testing.T) {
	work, root := t.TempDir(), t.TempDir()
	path := filepath.Join(work, "r.wav")
	w, err := Create(path, Format{Name: "wav"}, Fail)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	pcm := ramp(8000*3, 5)
	writeFrames(t, w, pcm[:8000*2+800]) // 2 s flushed, 0.1 s buffered
	p1 := crashCopy(t, path, root, "a/b/one.wav")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	writeFrames(t, w, pcm[8000*2+800:])
	p2 := crashCopy(t, path, root, "two.wav")
	// A crash in the middle of a data write: audio past the header's size
	// and a half sample.
	b, _ := os.ReadFile(p2)
	for i := 0; i < 49; i++ {
		b = append(b, byte(i+1))
	}
	os.WriteFile(p2, b, 0o644)
	// A crash before the header: file of 10 bytes.
	p3 := filepath.Join(root, "three.wav")
	os.WriteFile(p3, []byte("RIFF\x00\x00"), 0o644)
	os.WriteFile(InProgressMarker(p3), []byte("format=wav\n"), 0o644)
	// A marker whose file is gone.
	os.WriteFile(InProgressMarker(filepath.Join(root, "gone.wav")), []byte("format=wav\n"), 0o644)
	// A finished file is not touched.
	done := filepath.Join(root, "done.wav")
	wd, _ := Create(done, Format{Name: "wav"}, Fail)
	writeFrames(t, wd, pcm[:160])
	wd.Close()

	recs, err := Recover(root)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Recovered{}
	for _, r := range recs {
		byName[r.Name] = r
	}
	if len(recs) != 3 {
		t.Fatalf("recovered %+v", recs)
	}
	r1 := byName["a/b/one"]
	_, got := readWAV(t, p1)
	equalPCM(t, "one", got, pcm[:8000*2])
	if r1.Path != p1 || r1.Format.Name != "wav" || r1.Duration != 2*time.Second || r1.Bytes != 44+32000 {
		t.Errorf("one: %+v", r1)
	}
	_, got = readWAV(t, p2)
	// Flushed at 2.1 s, then 0.9 s buffered (lost), plus 24 whole samples
	// of a torn write.
	if len(got) != 8000*2+800+24 {
		t.Fatalf("two: %d samples", len(got))
	}
	equalPCM(t, "two", got[:8000*2+800], pcm[:8000*2+800])
	_, got = readWAV(t, p3)
	if len(got) != 0 {
		t.Errorf("three: %d samples", len(got))
	}
	for _, p := range []string{p1, p2, p3} {
		if !IsRecovered(p) || exists(InProgressMarker(p)) {
			t.Errorf("%s: markers not swapped", p)
		}
	}
	if exists(InProgressMarker(filepath.Join(root, "gone.wav"))) {
		t.Error("orphan marker kept")
	}
	if IsRecovered(done) {
		t.Error("finished file marked recovered")
	}
	// Idempotent: nothing left to do.
	if recs, err := Recover(root); err != nil || len(recs) != 0 {
		t.Errorf("second Recover: %+v, %v", recs, err)
	}
	// A new recording over a recovered file clears the recovered marker.
	w3, err := Create(p1, Format{Name: "wav"}, Overwrite)
	if err != nil {
		t.Fatal(err)
	}
	w3.Close()
	if IsRecovered(p1) {
		t.Error("overwritten file still marked recovered")
	}
}

func TestRecoverRaw(t *testing.T) {
	work, root := t.TempDir(), t.TempDir()
	pcm := ramp(8000*2, 8)
	for _, name := range []string{"sln", "ulaw", "alaw", "g722"} {
		path := filepath.Join(work, "r."+name)
		w, err := Create(path, Format{Name: name}, Fail)
		if err != nil {
			t.Fatal(err)
		}
		writeFrames(t, w, pcm[:8000+480])
		dst := crashCopy(t, path, root, "x."+name)
		w.Close()
		if name == "sln" {
			f, _ := os.OpenFile(dst, os.O_WRONLY|os.O_APPEND, 0)
			f.Write([]byte{7})
			f.Close()
		}
	}
	recs, err := Recover(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 {
		t.Fatalf("%+v", recs)
	}
	for _, r := range recs {
		// One flush happened (>= 1 s of encoded bytes); the rest was lost.
		perSample := int64(1)
		if r.Format.Name == "sln" {
			perSample = 2
		}
		if r.Bytes < 8000*perSample || r.Bytes > 8480*perSample || r.Duration != samplesDuration(r.Bytes/perSample, 8000) {
			t.Errorf("%s: duration %v, bytes %d", r.Format.Name, r.Duration, r.Bytes)
		}
		fi, _ := os.Stat(r.Path)
		if fi.Size() != r.Bytes {
			t.Errorf("%s: size %d, reported %d", r.Format.Name, fi.Size(), r.Bytes)
		}
		if r.Name != "x" {
			t.Errorf("name %q", r.Name)
		}
	}
}

func TestRecoverMP3(t *testing.T) {
	requireLame(t)
	work, root := t.TempDir(), t.TempDir()
	path := filepath.Join(work, "r.mp3")
	w, err := Create(path, Format{Name: "mp3"}, Fail)
	if err != nil {
		t.Fatal(err)
	}
	writeFrames(t, w, sine(8000*3, 400, 9000, 8000))
	w.Close()
	os.WriteFile(InProgressMarker(path), []byte("format=mp3\n"), 0o644)
	dst := crashCopy(t, path, root, "m.mp3")
	b, _ := os.ReadFile(dst)
	os.WriteFile(dst, b[:len(b)-30], 0o644) // torn last frame
	recs, err := Recover(root)
	if err != nil || len(recs) != 1 {
		t.Fatalf("%+v %v", recs, err)
	}
	f := mustOpen(t, dst)
	fi, _ := f.Stat()
	end, n, _ := scanMP3(f, fi.Size())
	if end != fi.Size() || n == 0 {
		t.Errorf("after repair: frames end %d, size %d", end, fi.Size())
	}
	if d := recs[0].Duration; d < 2500*time.Millisecond || d > 3100*time.Millisecond {
		t.Errorf("duration %v", d)
	}
}
