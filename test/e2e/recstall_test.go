package e2e

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tdcall "github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/recorder"
)

// stallingFile is a recording file whose audio writes block until release
// is closed: a disk that stops answering (a dead NFS server, a failing drive).
type stallingFile struct {
	*os.File
	release <-chan struct{}
	stalled chan<- struct{}
	once    *sync.Once
}

func (f stallingFile) WriteAt(b []byte, off int64) (int, error) {
	if off == 0 && len(b) <= 44 {
		return f.File.WriteAt(b, off) // the WAV header at creation: the disk stalls later
	}
	f.once.Do(func() { close(f.stalled) })
	<-f.release
	return f.File.WriteAt(b, off)
}

func (f stallingFile) Sync() error {
	<-f.release
	return f.File.Sync()
}

// TestRecordingDiskStall: a recording whose disk stalls fails by itself
// (RecordingFailed, its queue overflowed), while another call's recording
// on the same server — and so on the same batched RTP reader — gets every
// packet, and neither call's hangup waits for the stalled disk.
func TestRecordingDiskStall(t *testing.T) {
	n := startNode(t)
	release, stalled := make(chan struct{}), make(chan struct{})
	var releaseOnce, stallOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	n.srv.Calls().(*tdcall.Manager).SetRecorderOptions(recorder.WithOpenFile(func(name string, flag int, perm fs.FileMode) (recorder.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil || !strings.Contains(filepath.ToSlash(name), "/stall/") {
			return f, err
		}
		return stallingFile{File: f, release: release, stalled: stalled, once: &stallOnce}, nil
	}))

	events := n.connect("test")
	phone := newPhone(t, "udp")
	stallID, stallCall := answeredCall(t, n, events, phone, "331")
	fineID, fineCall := answeredCall(t, n, events, phone, "332")
	n.mustDo("POST", "/channels/"+stallID+"/record?name=stall%2Fa&format=wav", 201)
	events.skipTo("RecordingStarted", 5*time.Second)
	n.mustDo("POST", "/channels/"+fineID+"/record?name=fine&format=wav", 201)
	events.skipTo("RecordingStarted", 5*time.Second)

	const seconds = 6
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- stallCall.SendAudio(ctx, sweep(8000*seconds)) }()
	go func() { errs <- fineCall.SendAudio(ctx, sweep(8000*seconds)) }()

	select {
	case <-stalled:
	case <-time.After(10 * time.Second):
		t.Fatal("the stalled recording never wrote")
	}
	stallPath := filepath.Join(n.recDir(), "stall", "a.wav")
	before, err := os.Stat(stallPath)
	must(t, err)
	failed := events.skipTo("RecordingFailed", 10*time.Second)
	rec := failed["recording"].(map[string]any)
	if rec["name"] != "stall/a" || !strings.Contains(rec["cause"].(string), "overflow") {
		t.Fatalf("RecordingFailed %v, want stall/a with a queue overflow", rec)
	}
	// The catalog says so too, with the cause.
	row, err := n.srv.Catalog().Meta.RecordingByName(context.Background(), "stall/a")
	must(t, err)
	if row.Status != "failed" || !strings.Contains(row.StatusDetail, "overflow") {
		t.Fatalf("catalog row of stall/a: %s %q, want failed with the cause", row.Status, row.StatusDetail)
	}
	// Its end left the file to the stalled writer: a repair of the header
	// there would wait for the same disk on a real one.
	after, err := os.Stat(stallPath)
	must(t, err)
	if !after.ModTime().Equal(before.ModTime()) || after.Size() != before.Size() || row.Size != after.Size() {
		t.Fatalf("the stalled file changed at the recording's end (modified %v, was %v; %d bytes, was %d; row %d): something wrote it while its write had not returned",
			after.ModTime(), before.ModTime(), after.Size(), before.Size(), row.Size)
	}
	// Its length is the audio in the file (none reached it), not the
	// audio queued for the write that never returned.
	if want := float64(after.Size()-44) / 16000; row.Duration != want {
		t.Fatalf("catalog row of stall/a: duration %v s, want %v (the audio in its file)", row.Duration, want)
	}
	must(t, <-errs)
	must(t, <-errs)

	// The other recording got all its audio while the disk was stalled.
	start := time.Now()
	n.mustDo("POST", "/recordings/live/fine/stop", 204)
	fin := events.skipTo("RecordingFinished", 5*time.Second)
	if r := fin["recording"].(map[string]any); r["name"] != "fine" {
		t.Fatalf("RecordingFinished %v", r)
	}
	if _, pcm := readWAV(t, filepath.Join(n.recDir(), "fine.wav")); len(pcm) < 8000*seconds-320 {
		t.Fatalf("the other recording holds %d samples of %d", len(pcm), 8000*seconds)
	}
	// Neither hangup waits for the stalled disk, which is still stalled.
	hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer hcancel()
	must(t, stallCall.Hangup(hctx))
	must(t, fineCall.Hangup(hctx))
	events.skipTo("ChannelDestroyed", 5*time.Second)
	events.skipTo("ChannelDestroyed", 5*time.Second)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("stop and hangups took %v with a stalled disk", d)
	}
	select {
	case <-release:
		t.Fatal("released before the end")
	default:
	}

	// The disk comes back: the write returns, the writer closes the file
	// (its header finalised) and the failed row takes the file's size and
	// audio, no longer what stat gave while the write was stalled.
	releaseOnce.Do(func() { close(release) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		row, err = n.srv.Catalog().Meta.RecordingByName(context.Background(), "stall/a")
		must(t, err)
		fi, err := os.Stat(stallPath)
		must(t, err)
		if fi.Size() > before.Size() && row.Size == fi.Size() {
			_, pcm := readWAV(t, stallPath)
			if want := float64(len(pcm)) / 8000; row.Status != "failed" || row.Duration != want {
				t.Fatalf("catalog row of stall/a once its file was closed: %s, %v s, want failed, %v s (the file's audio)", row.Status, row.Duration, want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("catalog row of stall/a after the disk came back: %d bytes, %v s; the file has %d bytes: the row did not take the closed file's size and audio",
				row.Size, row.Duration, fi.Size())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRecordingOpenStall: while a recording's file takes long to create
// (a stalled disk at open), the API still answers for it — the file is
// created without the recording's lock held — and the recording starts
// when the disk comes back.
func TestRecordingOpenStall(t *testing.T) {
	n := startNode(t)
	release, opening := make(chan struct{}), make(chan struct{})
	var releaseOnce, openOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	n.srv.Calls().(*tdcall.Manager).SetRecorderOptions(recorder.WithOpenFile(func(name string, flag int, perm fs.FileMode) (recorder.File, error) {
		if strings.Contains(filepath.ToSlash(name), "/slowopen/") {
			openOnce.Do(func() { close(opening) })
			<-release
		}
		return os.OpenFile(name, flag, perm)
	}))
	events := n.connect("test")
	phone := newPhone(t, "udp")
	id, _ := answeredCall(t, n, events, phone, "333")
	n.mustDo("POST", "/channels/"+id+"/record?name=slowopen%2Fa&format=wav", 201)
	select {
	case <-opening:
	case <-time.After(5 * time.Second):
		t.Fatal("the recording never opened its file")
	}
	answered := make(chan []byte, 1)
	go func() { _, body := n.do("GET", "/recordings/live/slowopen%2Fa", nil); answered <- body }()
	select {
	case body := <-answered:
		if !strings.Contains(string(body), `"state":"queued"`) {
			t.Fatalf("live recording while its file is created: %s", body)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("GET of a live recording waited for its disk")
	}
	releaseOnce.Do(func() { close(release) })
	events.skipTo("RecordingStarted", 5*time.Second)
	n.mustDo("POST", "/recordings/live/slowopen%2Fa/stop", 204)
	events.skipTo("RecordingFinished", 5*time.Second)
}
