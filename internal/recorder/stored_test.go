package recorder

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mewkiz/flac"

	"github.com/tapedeck/tapedeck/internal/testutil"
)

// These tests check Stored and StoredSoFar for the encoded formats: the
// audio a decoder plays back from the file, not the audio accepted (the
// buffered second that a failed write loses).

// flacAudio decodes the whole frames of a flac file (a torn last frame,
// which a failed write leaves, ends it).
func flacAudio(t *testing.T, path string) []int16 {
	t.Helper()
	s, err := flac.ParseFile(path)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	defer s.Close()
	var out []int16
	for {
		fr, err := s.ParseNext()
		if err != nil {
			break
		}
		for _, v := range fr.Subframes[0].Samples {
			out = append(out, int16(v))
		}
	}
	return out
}

// oggHeld is what a decoder plays back from an Ogg Opus file, as 8 kHz
// samples: the last whole page's granule position less the pre-skip.
func oggHeld(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	s := scanOgg(mustOpen(t, path), fi.Size())
	if !s.opus || s.pages < 2 {
		t.Fatalf("%s: not an Ogg Opus file (%+v)", path, s)
	}
	return max(s.granule-s.preskip, 0) / (opusGranuleRate / SampleRate)
}

// mp3Audio is how many samples of the input a decoder plays back from an
// mp3 file whose input was silence with one click at sample click: what
// lame decodes from its whole frames, less the samples before the click's
// place. (A torn last frame is cut first, as Recover and Repair cut it:
// lame would decode it as a whole frame of what it guesses.)
func mp3Audio(t *testing.T, lame, path string, click int) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	end, _, _ := scanMP3(mustOpen(t, path), fi.Size())
	whole := filepath.Join(t.TempDir(), "whole.mp3")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(whole, b[:end], 0o644); err != nil {
		t.Fatal(err)
	}
	dec := decodeMP3(t, lame, whole)
	peak := 0
	for i, v := range dec {
		if abs16(v) > abs16(dec[peak]) {
			peak = i
		}
	}
	if abs16(dec[peak]) < 2000 {
		t.Fatalf("no click in the %d decoded samples", len(dec))
	}
	return int64(len(dec) - (peak - click))
}

// click is silence with one loud sample at at.
func click(n, at int) []int16 {
	pcm := make([]int16, n)
	pcm[at] = 20000
	return pcm
}

// faultOpen opens files that fail (ENOSPC) past budget bytes, writing the
// part of a write that fits, as a full disk does.
func faultOpen(budget int64) OpenFunc {
	return func(name string, flag int, perm fs.FileMode) (File, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		return &faultFile{File: f, budget: budget, err: syscall.ENOSPC}, nil
	}
}

// newOggWith is an ogg Writer on the fake Opus encoder (the default build
// has no Opus encoder) whose file is opened by open, as Create makes one.
func newOggWith(t *testing.T, path string, enc opusEncoder, open OpenFunc, opts ...Option) Writer {
	t.Helper()
	f, err := open(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	o, err := buildOptions(opts)
	if err != nil {
		t.Fatal(err)
	}
	be, err := newOggWriter(fileOut{f: f, path: path, reached: new(atomic.Int64)}, enc, &o)
	if err != nil {
		t.Fatal(err)
	}
	return &writer{path: path, be: be, file: f}
}

// writeUntilError writes pcm in 20 ms frames until a Write fails, and
// closes w (a failed close is expected).
func writeUntilError(w Writer, pcm []int16) {
	for i := 0; i+160 <= len(pcm); i += 160 {
		if w.Write(pcm[i:i+160]) != nil {
			break
		}
	}
	w.Close()
}

// TestStoredEncodedIsTheAudioInTheFile: after a full disk cut a write
// short, Stored is the audio a decoder plays back from the file (the whole
// frames or pages of the partial write included), not the audio accepted.
func TestStoredEncodedIsTheAudioInTheFile(t *testing.T) {
	t.Run("flac", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "full.flac")
		// Noise encodes verbatim, ~8.2 KB a 4096-sample block, two blocks
		// a write: the second write fails part way through its second
		// block, after its first one.
		w, err := Create(path, Format{Name: "flac"}, Fail, WithOpenFile(faultOpen(42+3*8200+4000)))
		if err != nil {
			t.Fatal(err)
		}
		pcm := ramp(8000*4, 5)
		writeUntilError(w, pcm)
		got := flacAudio(t, path)
		equalPCM(t, "flac audio", got, pcm[:len(got)])
		if len(got) != 3*flacBlock {
			t.Fatalf("the file holds %d samples; the test wants 3 blocks (the partial write's first)", len(got))
		}
		// Lost: the torn second block (less the failed Write's 160
		// samples, never accepted).
		if s := Stored(w); s != int64(len(got)) || s > w.Samples()-flacBlock+160 {
			t.Errorf("Stored %d, the file holds %d samples (%d accepted)", s, len(got), w.Samples())
		}
	})
	t.Run("mp3", func(t *testing.T) {
		lame := requireLame(t)
		path := filepath.Join(t.TempDir(), "full.mp3")
		// The recordings' MP3 frames are 288 bytes: 30 whole frames and a
		// part reach the file.
		w, err := Create(path, Format{Name: "mp3"}, Fail, WithOpenFile(faultOpen(30*288+100)))
		if err != nil {
			t.Fatal(err)
		}
		writeUntilError(w, click(8000*4, 200))
		held := mp3Audio(t, lame, path, 200)
		if s := Stored(w); s != held || s > w.Samples()-8000 {
			t.Errorf("Stored %d, the file plays back %d samples of the input (%d accepted)", s, held, w.Samples())
		}
	})
	for _, tc := range []struct {
		name   string
		flush  time.Duration
		budget int64
	}{
		// One page a write: the third write fails.
		{"ogg", time.Second, 2*15000 + 5000},
		// Pages of 255 lacing values (~2.7 s of the fake packets), several
		// a write: the first write fails after its first page.
		{"ogg-long-pages", 10 * time.Second, 60000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "full.ogg")
			w := newOggWith(t, path, &fakeOpus{skip: 312}, faultOpen(tc.budget), WithFlushInterval(tc.flush))
			writeUntilError(w, ramp(8000*12, 7))
			held := oggHeld(t, path)
			if held <= 0 {
				t.Fatalf("the file holds no audio (%d)", held)
			}
			// Lost: at least the torn page's second (less the failed
			// Write's 160 samples).
			if s := Stored(w); s != held || s > w.Samples()-8000+160 {
				t.Errorf("Stored %d, the file plays back %d samples (%d accepted)", s, held, w.Samples())
			}
		})
	}
}

// TestStoredEncodedWhenTheRecordingEnds: a recording closed without a
// failure stores all it accepted (an ogg's padding and an mp3's delay
// and last frame are not counted twice: never more than Samples).
func TestStoredEncodedWhenTheRecordingEnds(t *testing.T) {
	pcm := click(8000*2+77, 300)
	for _, format := range []string{"flac", "mp3"} {
		t.Run(format, func(t *testing.T) {
			if format == "mp3" {
				requireLame(t)
			}
			w, err := Create(filepath.Join(t.TempDir(), "a."+format), Format{Name: format}, Fail)
			if err != nil {
				t.Fatal(err)
			}
			writeFrames(t, w, pcm)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if Stored(w) != int64(len(pcm)) || StoredSoFar(w) != int64(len(pcm)) {
				t.Errorf("Stored %d, StoredSoFar %d, want %d", Stored(w), StoredSoFar(w), len(pcm))
			}
		})
	}
	t.Run("ogg", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "a.ogg")
		w := newOggWith(t, path, &fakeOpus{skip: 312}, osOpen)
		writeFrames(t, w, pcm)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if held := oggHeld(t, path); Stored(w) != held || held != int64(len(pcm)) || StoredSoFar(w) != held {
			t.Errorf("Stored %d, StoredSoFar %d, the file plays back %d, want %d", Stored(w), StoredSoFar(w), held, len(pcm))
		}
	})
}

// TestStoredSoFarEncodedWhileAWriteStalls is TestStoredSoFarWhileAWriteStalls
// for the encoded formats: while a write does not return, StoredSoFar is
// the audio a decoder plays back from the writes that returned (for mp3:
// the whole frames' audio less the decoder's delay) (run with -race).
func TestStoredSoFarEncodedWhileAWriteStalls(t *testing.T) {
	for _, format := range []string{"flac", "ogg", "mp3"} {
		t.Run(format, func(t *testing.T) {
			if format == "mp3" {
				requireLame(t)
			}
			path := filepath.Join(t.TempDir(), "stall."+format)
			sf, open := stallingOpen()
			var w Writer
			if format == "ogg" {
				w = newOggWith(t, path, &fakeOpus{skip: 312}, open)
			} else {
				var err error
				if w, err = Create(path, Format{Name: format}, Fail, WithOpenFile(open)); err != nil {
					t.Fatal(err)
				}
			}
			pcm := ramp(8000*4, 1)
			if format == "mp3" {
				// The lame program's output reaches the file in the
				// copier's reads (up to 16 KiB): 20 s of it (80 KB) are
				// read in 5 or more, so the third write stalls.
				pcm = ramp(8000*20, 1)
			}
			done := writeUntilStalled(t, sf, w, pcm)
			// What the file holds while the write stalls (a copy: the
			// writer owns the file).
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			cp := filepath.Join(t.TempDir(), "copy."+format)
			if err := os.WriteFile(cp, b, 0o644); err != nil {
				t.Fatal(err)
			}
			var held int64
			switch format {
			case "flac":
				got := flacAudio(t, cp)
				equalPCM(t, "flac audio", got, pcm[:len(got)])
				held = int64(len(got))
			case "ogg":
				held = oggHeld(t, cp)
			case "mp3":
				// The whole frames found in the file, less the delay
				// that TestStoredEncodedIsTheAudioInTheFile checks
				// against lame's decoder (the writes before the stall
				// may hold too few frames to decode a click).
				_, samples, _ := scanMP3(mustOpen(t, cp), int64(len(b)))
				held = max(samples-mp3Delay, 0)
			}
			if held <= 0 && format != "mp3" || len(b) == 0 {
				t.Fatalf("the first write put no audio in the file (%d bytes)", len(b))
			}
			if got := StoredSoFar(w); got != held || got >= w.Samples() {
				t.Fatalf("StoredSoFar %d during the stalled write; the file plays back %d samples (%d accepted)", got, held, w.Samples())
			}
			close(sf.release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := StoredSoFar(w); got != int64(len(pcm)) || Stored(w) != got {
				t.Fatalf("after the stall: StoredSoFar %d, Stored %d, want %d", got, Stored(w), len(pcm))
			}
		})
	}
}

// TestStoredOnAFullTmpfs: on a real disk that fills up part way through a
// write (a tmpfs of 48 KiB), the kernel writes what fits and fails the
// rest, and os.File.WriteAt returns the error with none of it counted:
// Stored, and a wav's header, still take the part that reached the file.
func TestStoredOnAFullTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		testutil.SkipOrFail(t, "SKIPPED: the full-disk test mounts a tmpfs and needs root")
	}
	for _, format := range []string{"wav", "flac"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", dir).CombinedOutput(); err != nil {
				testutil.SkipOrFail(t, "cannot mount a tmpfs: %v %s", err, out)
			}
			t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
			path := filepath.Join(dir, "full."+format)
			w, err := Create(path, Format{Name: format}, Fail)
			if err != nil {
				t.Fatal(err)
			}
			pcm := ramp(8000*12, 3)
			writeUntilError(w, pcm)
			var held int64
			switch format {
			case "wav":
				info, err := ParseWAV(mustOpen(t, path), fileSize(t, path))
				if err != nil {
					t.Fatal(err)
				}
				if end := info.DataOffset + int64(info.DataLen); end != fileSize(t, path) {
					t.Fatalf("the wav header covers %d bytes of the file's %d", end, fileSize(t, path))
				}
				held = int64(info.DataLen) / 2
			case "flac":
				got := flacAudio(t, path)
				equalPCM(t, "flac audio", got, pcm[:len(got)])
				held = int64(len(got))
			}
			if held < 8000 || held >= w.Samples() {
				t.Fatalf("the full disk's file holds %d samples of %d accepted: not a disk that filled up part way", held, w.Samples())
			}
			if s := Stored(w); s != held {
				t.Errorf("Stored %d, the file holds %d samples (%d accepted)", s, held, w.Samples())
			}
		})
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
