package call

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/contain"
	"github.com/tapedeck/tapedeck/internal/media"
	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/sip"
)

// Each test below sets off a panic in one unit of work; without
// containment it ends the test process. With it, that unit alone fails
// (logged, counted in tapedeck_panics_total{site}) and the rest goes on.

type panicDialer struct{}

func (panicDialer) Dial(context.Context, sip.DialOptions) (*sip.OutDialog, error) {
	panic("dialer bug")
}

// A panic while dialing an outgoing call hangs up that call (cause 38).
func TestDialPanicFailsOnlyThatCall(t *testing.T) {
	r := newRig(t, func(o *Options) { o.Dialer = panicDialer{} })
	before := contain.Count("dial")
	ch, err := r.originate(OriginateOptions{Endpoint: "PJSIP/bob@127.0.0.1:5090", Extension: "300"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the call whose dialing panicked is still up")
	}
	if got := contain.Count("dial") - before; got != 1 {
		t.Fatalf("%v dial panics counted", got)
	}
	// The manager still places calls.
	ch2, err := r.originate(OriginateOptions{Endpoint: "PJSIP/carol@127.0.0.1:5090", Extension: "300"})
	if err != nil {
		t.Fatal(err)
	}
	<-ch2.Done()
}

type panicDirectory struct{}

func (panicDirectory) UserBySIPUsername(context.Context, string) (*DirUser, error) {
	panic("directory bug")
}
func (panicDirectory) UserByExten(context.Context, string, string) (*DirUser, error) {
	panic("directory bug")
}

// A panic in the Dial application hangs up its caller only.
func TestDialAppPanicFailsOnlyThatCall(t *testing.T) {
	r := newRig(t, func(o *Options) { o.Directory = panicDirectory{} })
	ch, d, _ := r.inbound("", offer(t, 5000, ""))
	other, _, _ := r.inbound("", offer(t, 5002, ""))
	before := contain.Count("dial")
	dialApp.Run(&Invocation{Args: []string{"200"}, Log: slog.New(slog.DiscardHandler), Calls: r.m, ChannelID: ChannelID(ch.id), ch: ch})
	select {
	case <-ch.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the caller whose Dial panicked is still up")
	}
	if _, _, hangups := d.snapshot(); len(hangups) != 1 || hangups[0] < 500 {
		t.Fatalf("the caller was answered %v, want one 5xx", hangups)
	}
	if got := contain.Count("dial") - before; got != 1 {
		t.Fatalf("%v dial panics counted", got)
	}
	select {
	case <-other.Done():
		t.Fatal("another call went down")
	default:
	}
}

type panicResolver struct{}

func (panicResolver) Resolve(context.Context, string, string) (media.Source, error) {
	panic("media bug")
}

// A panic in a playback fails that playback (PlaybackFinished, failed);
// the channel's queue goes on to the next one and the call stays up.
func TestPlaybackPanicFailsOnlyThatPlayback(t *testing.T) {
	r := newRig(t, func(o *Options) { o.Media = panicResolver{} })
	ch, _, _ := r.inbound("app", offer(t, 5000, ""))
	if err := ch.answer(); err != nil {
		t.Fatal(err)
	}
	before := contain.Count("playback")
	for range 2 {
		if _, err := ch.play(PlayOptions{Media: []string{"sound:hello"}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		ev := r.ev.expect("PlaybackFinished")
		if st := ev["playback"].(map[string]any)["state"]; st != "failed" {
			t.Fatalf("playback %v", st)
		}
	}
	if got := contain.Count("playback") - before; got != 2 {
		t.Fatalf("%v playback panics counted", got)
	}
	select {
	case <-ch.Done():
		t.Fatal("the call went down with its playback")
	default:
	}
}

// panicFile panics on any write past the header.
type panicFile struct{ *os.File }

func (f panicFile) WriteAt(p []byte, off int64) (int, error) {
	if off >= 44 {
		panic("encoder bug")
	}
	return f.File.WriteAt(p, off)
}

// A panic in a recording's writer step fails that recording
// (RecordingFailed); the call stays up and records again.
func TestRecordingWriterPanicFailsOnlyThatRecording(t *testing.T) {
	open := func(name string, flag int, perm fs.FileMode) (recorder.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil || !strings.Contains(name, "boom") {
			return f, err
		}
		return panicFile{f}, nil
	}
	r := newRig(t, func(o *Options) { o.RecorderOptions = append(o.RecorderOptions, recorder.WithOpenFile(open)) })
	ch, _, fm := r.inbound("app", offer(t, 5000, ""))
	before := contain.Count("recording-writer")
	rec := startRecording(t, r, ch, RecordOptions{Name: "boom", Format: "wav"})
	feed(ch, fm, 1, 0, 20, 0x10)
	go rec.Stop()
	ev := r.ev.expect("RecordingFailed")
	if j := ev["recording"].(map[string]any); j["state"] != "failed" || !strings.Contains(j["cause"].(string), "internal error") {
		t.Fatalf("failed %v", j)
	}
	if got := contain.Count("recording-writer") - before; got < 1 {
		t.Fatal("no writer panic counted")
	}
	select {
	case <-ch.Done():
		t.Fatal("the call went down with its recording")
	default:
	}
	rec2 := startRecording(t, r, ch, RecordOptions{Name: "fine", Format: "wav"})
	feed(ch, fm, 1, 20*160, 10, 0x10)
	rec2.Stop()
	if ev := r.ev.expect("RecordingFinished"); ev["recording"].(map[string]any)["state"] != "done" {
		t.Fatalf("second recording %v", ev)
	}
}

// laterPanicFile writes the header and the first write of audio, then
// panics on every later write of audio (an encoder's or a file system's
// bug that keeps firing); it notes that it was closed.
type laterPanicFile struct {
	*os.File
	audio  *atomic.Int32
	closed *atomic.Bool
}

func (f laterPanicFile) WriteAt(p []byte, off int64) (int, error) {
	if off >= 44 && f.audio.Add(1) > 1 {
		panic("encoder bug")
	}
	return f.File.WriteAt(p, off)
}

func (f laterPanicFile) Close() error {
	f.closed.Store(true)
	return f.File.Close()
}

// After a writer panic nothing more is written through that writer (its
// state is unknown, and a bug that keeps firing panicked again in the
// close, which left the file open, its header unwritten and its
// in-progress marker behind): the file is closed as after a write error,
// its header covers the audio of its last good write, and the cause says
// that the audio still buffered or queued is lost. wav writes from the
// queue (stepDirect), wav16 through the recorder's buffer.
func TestRecordingWriterPanicKeepsTheLastGoodWrite(t *testing.T) {
	for _, format := range []string{"wav", "wav16"} {
		t.Run(format, func(t *testing.T) {
			var audioWrites atomic.Int32
			var closed atomic.Bool
			open := func(name string, flag int, perm fs.FileMode) (recorder.File, error) {
				f, err := os.OpenFile(name, flag, perm)
				if err != nil {
					return f, err
				}
				return laterPanicFile{f, &audioWrites, &closed}, nil
			}
			r := newRig(t, func(o *Options) { o.RecorderOptions = append(o.RecorderOptions, recorder.WithOpenFile(open)) })
			ch, _, fm := r.inbound("app", offer(t, 5000, ""))
			rec := startRecording(t, r, ch, RecordOptions{Name: "boom", Format: format})
			// 1.2 s: the writer writes a full buffer (1 s) ...
			ts := feed(ch, fm, 1, 0, 60, 0x10)
			for deadline := time.Now().Add(5 * time.Second); audioWrites.Load() == 0; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("no audio written")
				}
			}
			// ... and its next write, of the rest, panics.
			feed(ch, fm, 1, ts, 90, 0x10)
			go rec.Stop()
			ev := r.ev.expect("RecordingFailed")
			cause, _ := ev["recording"].(map[string]any)["cause"].(string)
			if !strings.Contains(cause, "internal error") || !strings.Contains(cause, "last good write") ||
				!strings.Contains(cause, "is lost") {
				t.Errorf("cause %q does not say what the file lacks", cause)
			}
			if audioWrites.Load() < 2 {
				t.Fatalf("%d writes of audio: the writer did not panic", audioWrites.Load())
			}
			if !closed.Load() {
				t.Error("the file of the writer that panicked is still open")
			}
			path := rec.path
			if _, err := os.Stat(recorder.InProgressMarker(path)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("in-progress marker: %v", err)
			}
			// The length reported is that of the file's audio.
			inFile := wavAudio(t, path)
			q := ev["recording"].(map[string]any)["quality"].(map[string]any)
			if got := time.Duration(q["recorded_ms"].(float64)) * time.Millisecond; got < inFile-30*time.Millisecond || got > inFile+30*time.Millisecond {
				t.Errorf("RecordingFailed's recorded_ms says %v, the file holds %v of audio", got, inFile)
			}
		})
	}
}
