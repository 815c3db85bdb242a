package call

import (
	"context"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/recorder"
)

// fullAfterFile writes the header and the first write of audio, then
// fails every later write of audio with ENOSPC (the disk filled up).
type fullAfterFile struct {
	*os.File
	audio *atomic.Int32
}

func (f fullAfterFile) WriteAt(p []byte, off int64) (int, error) {
	if off >= 44 && f.audio.Add(1) > 1 {
		return 0, syscall.ENOSPC
	}
	return f.File.WriteAt(p, off)
}

// finalCatalog keeps the final row's figures (Finished).
type finalCatalog struct {
	Catalog // not called by these tests
	mu      sync.Mutex
	final   *catalog.Info
}

func (c *finalCatalog) Started(context.Context, catalog.Info) (string, error) { return "RE1", nil }

func (c *finalCatalog) Finished(_ context.Context, in catalog.Info) error {
	c.mu.Lock()
	c.final = &in
	c.mu.Unlock()
	return nil
}

func (c *finalCatalog) AccountSid(context.Context, string) (string, error) { return "", nil }

// A recording that fails mid-way (the disk filled up) reports the length
// of the audio in its file (the catalog row, its quality's recorded_ms and
// RecordingFailed's duration), not that of the audio queued for it, most
// of which never reached the file. wav writes from the queue (stepDirect),
// wav16 through the recorder's buffer.
func TestFailedRecordingReportsTheAudioInItsFile(t *testing.T) {
	for _, format := range []string{"wav", "wav16"} {
		t.Run(format, func(t *testing.T) {
			var audioWrites atomic.Int32
			open := func(name string, flag int, perm fs.FileMode) (recorder.File, error) {
				f, err := os.OpenFile(name, flag, perm)
				if err != nil {
					return f, err
				}
				return fullAfterFile{f, &audioWrites}, nil
			}
			fc := &finalCatalog{}
			r := newRig(t, func(o *Options) {
				o.RecorderOptions = append(o.RecorderOptions, recorder.WithOpenFile(open))
				o.Catalog = fc
			})
			ch, _, fm := r.inbound("app", offer(t, 5000, ""))
			rec := startRecording(t, r, ch, RecordOptions{Name: "full", Format: format})
			// 1.2 s: the writer writes a full buffer (about 0.8 s of it,
			// up to a page's end) ...
			ts := feed(ch, fm, 1, 0, 60, 0x10)
			for deadline := time.Now().Add(5 * time.Second); audioWrites.Load() == 0; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("no audio written")
				}
			}
			// ... and its next write, of 3 s in all, fails: the disk is full.
			feed(ch, fm, 1, ts, 90, 0x10)
			go rec.Stop()
			ev := r.ev.expect("RecordingFailed")
			if audioWrites.Load() < 2 {
				t.Fatalf("%d writes of audio: none failed", audioWrites.Load())
			}
			inFile := wavAudio(t, rec.path)
			if inFile <= 0 || inFile >= 2*time.Second {
				t.Fatalf("the file holds %v of audio: the test's fault did not cut it short", inFile)
			}
			const slack = 30 * time.Millisecond // the upsampler's delay (wav16), a frame
			near := func(what string, d time.Duration) {
				t.Helper()
				if d < inFile-slack || d > inFile+slack {
					t.Errorf("%s says %v, the file holds %v of audio", what, d, inFile)
				}
			}
			j := ev["recording"].(map[string]any)
			if want := int(inFile.Round(time.Second) / time.Second); j["duration"] != float64(want) {
				t.Errorf("RecordingFailed's duration %v s, the file holds %v of audio", j["duration"], inFile)
			}
			q := j["quality"].(map[string]any)
			near("RecordingFailed's recorded_ms", time.Duration(q["recorded_ms"].(float64))*time.Millisecond)
			<-rec.Done()
			fc.mu.Lock()
			final := fc.final
			fc.mu.Unlock()
			if final == nil || final.Status != "failed" {
				t.Fatalf("final row %+v", final)
			}
			near("the catalog row's duration", final.Duration)
			near("the catalog row's recorded_ms", time.Duration(final.Quality.RecordedMs)*time.Millisecond)
		})
	}
}
