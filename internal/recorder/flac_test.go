package recorder

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/mewkiz/flac"
)

func decodeFLAC(t *testing.T, path string) (*flac.Stream, []int16) {
	t.Helper()
	s, err := flac.ParseFile(path)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	defer s.Close()
	var out []int16
	for {
		fr, err := s.ParseNext()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("decode %s: %v", path, err)
		}
		for _, v := range fr.Subframes[0].Samples {
			out = append(out, int16(v))
		}
	}
	return s, out
}

func TestFLAC(t *testing.T) {
	dir := t.TempDir()
	cases := map[string][]int16{
		"tone":    sine(8000*3+100, 440, 9000, 8000),
		"noise":   ramp(8000+17, 11),
		"silence": make([]int16, 5000),
		"short":   ramp(10, 4),
		"empty":   nil,
	}
	for name, pcm := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".flac")
			w, err := Create(path, Format{Name: "flac"}, Fail)
			if err != nil {
				t.Fatal(err)
			}
			writeFrames(t, w, pcm)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			s, got := decodeFLAC(t, path)
			equalPCM(t, "flac "+name, got, pcm)
			if s.Info.SampleRate != 8000 || s.Info.NChannels != 1 || s.Info.BitsPerSample != 16 {
				t.Errorf("stream info %+v", s.Info)
			}
			if s.Info.NSamples != uint64(len(pcm)) {
				t.Errorf("NSamples %d, want %d", s.Info.NSamples, len(pcm))
			}
			fi, _ := os.Stat(path)
			t.Logf("%s: %d samples -> %d bytes", name, len(pcm), fi.Size())
			// Prediction analysis compresses a tone and silence well below
			// 16-bit verbatim.
			if (name == "tone" || name == "silence") && fi.Size() > int64(len(pcm))*2*6/10 {
				t.Errorf("%s: %d bytes for %d samples: not compressed", name, fi.Size(), len(pcm))
			}
		})
	}
}

// FLAC frames are on disk at least every second, and Recover trims a torn
// last frame and sets the sample count.
func TestFLACCrash(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "crash.flac")
	w, err := Create(path, Format{Name: "flac"}, Fail)
	if err != nil {
		t.Fatal(err)
	}
	pcm := sine(8000*3, 300, 9000, 8000)
	writeFrames(t, w, pcm)
	// Simulate kill -9: copy the file and marker as they are now. 24000
	// samples make 5 blocks of 4096; blocks are written once >= 1 s is
	// pending, i.e. after blocks 2 and 4: 16384 samples are on disk.
	b, _ := os.ReadFile(path)
	m, _ := os.ReadFile(InProgressMarker(path))
	w.Close()
	for _, tc := range []struct {
		name string
		cut  int
		want int
	}{{"whole", 0, 4 * flacBlock}, {"torn", 5, 3 * flacBlock}} {
		t.Run(tc.name, func(t *testing.T) {
			crash := filepath.Join(dir, tc.name)
			os.MkdirAll(crash, 0o755)
			p := filepath.Join(crash, "crash.flac")
			os.WriteFile(p, b[:len(b)-tc.cut], 0o644)
			os.WriteFile(InProgressMarker(p), m, 0o644)
			recs, err := Recover(crash)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 || recs[0].Format.Name != "flac" || recs[0].Name != "crash" {
				t.Fatalf("recovered %+v", recs)
			}
			s, got := decodeFLAC(t, p)
			if len(got) != tc.want {
				t.Fatalf("recovered %d samples, want %d", len(got), tc.want)
			}
			equalPCM(t, "recovered flac", got, pcm[:len(got)])
			if s.Info.NSamples != uint64(len(got)) {
				t.Errorf("NSamples %d, want %d", s.Info.NSamples, len(got))
			}
			if recs[0].Duration != samplesDuration(int64(len(got)), 8000) {
				t.Errorf("duration %v", recs[0].Duration)
			}
			if !IsRecovered(p) || exists(InProgressMarker(p)) {
				t.Error("markers not swapped")
			}
		})
	}
}
