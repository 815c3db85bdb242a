package call

import (
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/tapedeck/tapedeck/internal/recorder"
)

// addrFile counts the audio bytes written from the recording's queue's
// memory (fromQ) and from elsewhere (other), once from is set.
type addrFile struct {
	*os.File
	from  *atomic.Pointer[LiveRecording]
	mu    *sync.Mutex
	fromQ *int
	other *int
	ends  *[]int64 // where each write ended
}

func (f addrFile) WriteAt(p []byte, off int64) (int, error) {
	if rec := f.from.Load(); rec != nil && off >= 44 {
		rec.q.mu.Lock()
		base := uintptr(unsafe.Pointer(unsafe.SliceData(rec.q.pending)))
		end := base + 2*uintptr(cap(rec.q.pending))
		rec.q.mu.Unlock()
		at := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
		f.mu.Lock()
		if base != 0 && at >= base && at+uintptr(len(p)) <= end {
			*f.fromQ += len(p)
		} else {
			*f.other += len(p)
		}
		*f.ends = append(*f.ends, off+int64(len(p)))
		f.mu.Unlock()
	}
	return f.File.WriteAt(p, off)
}

// A wav recording's audio goes to the file straight from its queue's
// memory: the writer pool does not copy each pass's samples into the
// recorder's one-second buffer (recorder.DirectWriter). Writes still
// cover whole pages and the file is exact: 3 s of audio fed in the
// writer's 200 ms passes, then a gap of silence (a sender's pause), then
// more, then the stop with audio queued.
func TestRecordingWritesFromQueueMemory(t *testing.T) {
	var (
		rec          atomic.Pointer[LiveRecording]
		mu           sync.Mutex
		fromQ, other int
		ends         []int64
	)
	open := func(name string, flag int, perm fs.FileMode) (recorder.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		return addrFile{File: f, from: &rec, mu: &mu, fromQ: &fromQ, other: &other, ends: &ends}, nil
	}
	r := newRig(t, func(o *Options) { o.RecorderOptions = append(o.RecorderOptions, recorder.WithOpenFile(open)) })
	ch, _, fm := r.inbound("app", offer(t, 5000, ""))
	lr := startRecording(t, r, ch, RecordOptions{Name: "calls/direct", Format: "wav", IfExists: "fail"})
	rec.Store(lr)
	// pass feeds n frames and waits for a writer step to take them.
	pass := func(ts uint32, n int) uint32 {
		ts = feed(ch, fm, 7, ts, n, 0x10)
		lr.q.signal()
		deadline := time.Now().Add(5 * time.Second)
		for {
			lr.q.mu.Lock()
			busy := lr.q.scheduled
			lr.q.mu.Unlock()
			if !busy {
				return ts
			}
			if time.Now().After(deadline) {
				t.Fatal("the writer step did not run")
			}
			time.Sleep(time.Millisecond)
		}
	}
	ts := uint32(0)
	for i := 0; i < 15; i++ {
		ts = pass(ts, 10)
	}
	ts += 25 * 160 // 500 ms the sender did not send: silence
	for i := 0; i < 8; i++ {
		ts = pass(ts, 10)
	}
	feed(ch, fm, 7, ts, 7, 0x10)
	lr.Stop()
	r.ev.expect("RecordingFinished")
	pcm := readWAV(t, filepath.Join(r.m.opts.RecordingsDir, "calls", "direct.wav"))
	if want := (150 + 25 + 87) * 160; len(pcm) != want {
		t.Fatalf("the file holds %d samples, want %d", len(pcm), want)
	}
	v := pcm[0]
	for i, s := range pcm {
		silent := i >= 150*160 && i < 175*160
		if (silent && s != 0) || (!silent && s != v) {
			t.Fatalf("sample %d is %d (silent: %v)", i, s, silent)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if fromQ != 2*len(pcm) || other != 0 {
		t.Errorf("%d bytes written from the queue's memory and %d from elsewhere (copied), want all %d from the queue", fromQ, other, 2*len(pcm))
	}
	for i, e := range ends[:len(ends)-1] { // the last write is the end's
		if e%4096 != 0 {
			t.Errorf("write %d of %d ends at %d, not on a page", i+1, len(ends), e)
		}
	}
	if len(ends) < 5 {
		t.Errorf("%d writes, want at least 5 (about one a second)", len(ends))
	}
}
