package call

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"strings"
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
