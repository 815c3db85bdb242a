package recorder

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// faultFile fails writes past a byte budget with err (ENOSPC, EIO), writing a
// partial prefix like a real full disk.
type faultFile struct {
	*os.File
	budget int64
	err    error
	closed bool
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > f.budget {
		n := max(f.budget-off, 0)
		n = min(n, int64(len(p)))
		if n > 0 {
			f.File.WriteAt(p[:n], off)
		}
		return int(n), f.err
	}
	return f.File.WriteAt(p, off)
}

func (f *faultFile) Close() error {
	f.closed = true
	return f.File.Close()
}

func TestDiskFull(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		diskFull bool
	}{{"ENOSPC", syscall.ENOSPC, true}, {"EIO", syscall.EIO, false}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "full.wav")
			var ff *faultFile
			open := func(name string, flag int, perm fs.FileMode) (File, error) {
				f, err := os.OpenFile(name, flag, perm)
				if err != nil {
					return nil, err
				}
				ff = &faultFile{File: f, budget: 44 + 16000 + 1000, err: tc.err}
				return ff, nil
			}
			w, err := Create(path, Format{Name: "wav"}, Fail, WithOpenFile(open))
			if err != nil {
				t.Fatal(err)
			}
			pcm := ramp(8000*3, 1)
			var werr error
			frames := 0
			for i := 0; i+160 <= len(pcm); i += 160 {
				if werr = w.Write(pcm[i : i+160]); werr != nil {
					break
				}
				frames++
			}
			if werr == nil {
				t.Fatal("no error from a full disk")
			}
			if frames != 99 {
				t.Errorf("failed after %d frames, want at the 2nd flush (frame 100)", frames)
			}
			if !errors.Is(werr, ErrWriteFailed) || !errors.Is(werr, tc.err) || errors.Is(werr, ErrDiskFull) != tc.diskFull {
				t.Fatalf("error %v: ErrWriteFailed/%v/ErrDiskFull(%v) not matched", werr, tc.err, tc.diskFull)
			}
			var ie *IOError
			if !errors.As(werr, &ie) || ie.Path != path {
				t.Errorf("error %#v lacks path", werr)
			}
			if tc.diskFull && !strings.Contains(werr.Error(), "disk full") {
				t.Errorf("message %q", werr)
			}
			if err := w.Write(pcm[:160]); err != werr {
				t.Errorf("later Write = %v, want the same error", err)
			}
			if err := w.Flush(); err != werr {
				t.Errorf("Flush = %v, want the same error", err)
			}
			if err := w.Close(); err != werr {
				t.Errorf("Close = %v, want the same error", err)
			}
			if err := w.Close(); err != werr {
				t.Errorf("second Close = %v", err)
			}
			if !ff.closed {
				t.Error("file not closed")
			}
			if exists(InProgressMarker(path)) {
				t.Error("marker left behind")
			}
			// What reached the disk is a valid wav: 1 s plus the whole
			// samples of the partial write.
			_, got := readWAV(t, path)
			if len(got) != 8000+500 {
				t.Fatalf("%d samples on disk", len(got))
			}
			equalPCM(t, "surviving audio", got, pcm[:len(got)])
		})
	}
}

func TestNewWithFault(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "n.sln"))
	if err != nil {
		t.Fatal(err)
	}
	ff := &faultFile{File: f, budget: 50, err: syscall.ENOSPC}
	w, err := NewWith(ff, Format{Name: "sln"})
	if err != nil {
		t.Fatal(err)
	}
	if w.Path() != "" {
		t.Errorf("Path() = %q", w.Path())
	}
	w.Write(ramp(40, 2))
	if err := w.Flush(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Flush = %v", err)
	}
	if err := w.Close(); !errors.Is(err, ErrDiskFull) || !ff.closed {
		t.Fatalf("Close = %v", err)
	}
}

func TestCreateUnwritable(t *testing.T) {
	dir := t.TempDir()
	// A file where a parent directory should be.
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
	_, err := Create(filepath.Join(dir, "file", "x.wav"), Format{Name: "wav"}, Fail)
	if !errors.Is(err, ErrWriteFailed) {
		t.Fatalf("Create under a file: %v", err)
	}
	// Header write failing at Create removes the new file and marker.
	path := filepath.Join(dir, "h.wav")
	open := func(name string, flag int, perm fs.FileMode) (File, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		return &faultFile{File: f, budget: 0, err: syscall.ENOSPC}, nil
	}
	if _, err := Create(path, Format{Name: "wav"}, Fail, WithOpenFile(open)); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Create with full disk: %v", err)
	}
	if exists(path) || exists(InProgressMarker(path)) {
		t.Error("failed Create left files")
	}
}

// Abandon (a writer whose Write panicked) writes nothing it buffers: the
// file keeps its last good write, its header covers that audio only, the
// file is closed, the in-progress marker removed, and Close says cause.
func TestAbandonKeepsTheLastGoodWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "abandoned.wav")
	w, err := Create(path, Format{Name: "wav"}, Fail, WithHeaderAtEnd())
	if err != nil {
		t.Fatal(err)
	}
	// 1.5 s: a full buffer is written up to the last page it reaches, the
	// rest stays buffered.
	if err := w.Write(ramp(12000, 1)); err != nil {
		t.Fatal(err)
	}
	cause := errors.New("writer panicked")
	if err := Abandon(w, cause); !errors.Is(err, cause) {
		t.Errorf("Abandon: %v", err)
	}
	if err := w.Close(); !errors.Is(err, cause) {
		t.Errorf("Close after Abandon: %v", err)
	}
	if _, err := os.Stat(InProgressMarker(path)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("in-progress marker: %v", err)
	}
	// readWAV checks that the header covers what the file holds.
	info, _ := readWAV(t, path)
	held := int64(info.DataLen)
	if held == 0 || held >= 2*12000 || held%filePage != filePage-wavHeaderLen {
		t.Fatalf("the file holds %d bytes of audio (wrote 24000: want some, not all, ending with the last good write on a page)", held)
	}
}

// Stored counts the samples that reached the file, not those accepted:
// after a write that the full disk cut short, what the writer buffered
// and the part of the write that failed are not in it. An appended file's
// earlier audio is not this session's.
func TestStoredIsTheAudioInTheFile(t *testing.T) {
	for _, tc := range []struct {
		format    string
		append    bool
		perSample int64 // file bytes per 8 kHz sample
	}{{"wav", false, 2}, {"wav", true, 2}, {"wav16", false, 4}, {"ulaw", false, 1}, {"sln", true, 2}} {
		name := tc.format
		if tc.append {
			name += "-append"
		}
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "full."+tc.format)
			f := Format{Name: tc.format}
			mode := Fail
			var before int64
			if tc.append {
				mode = Append
				w, err := Create(path, f, Fail)
				if err != nil {
					t.Fatal(err)
				}
				writeFrames(t, w, ramp(4000, 2))
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				before = fi.Size()
			}
			open := func(name string, flag int, perm fs.FileMode) (File, error) {
				fl, err := os.OpenFile(name, flag, perm)
				if err != nil {
					return nil, err
				}
				return &faultFile{File: fl, budget: max(before, 44) + 10000*tc.perSample + 1000, err: syscall.ENOSPC}, nil
			}
			w, err := Create(path, f, mode, WithOpenFile(open))
			if err != nil {
				t.Fatal(err)
			}
			pcm := ramp(8000*4, 1)
			var werr error
			for i := 0; i+160 <= len(pcm) && werr == nil; i += 160 {
				werr = w.Write(pcm[i : i+160])
			}
			if werr == nil {
				t.Fatal("no error from a full disk")
			}
			w.Close()
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			start := before
			if start == 0 && (tc.format == "wav" || tc.format == "wav16") {
				start = 44
			}
			want := (fi.Size() - start) / tc.perSample
			if got := Stored(w); got != want || got >= w.Samples() {
				t.Errorf("Stored %d, the file holds %d of this session's samples (%d accepted)", got, want, w.Samples())
			}
		})
	}
}

// stallFile blocks its second and later audio writes (past the header)
// until release is closed: a disk that stops answering part way.
type stallFile struct {
	*os.File
	writes  int
	stalled chan struct{}
	release chan struct{}
}

func (f *stallFile) WriteAt(p []byte, off int64) (int, error) {
	if off > 0 {
		if f.writes++; f.writes == 2 {
			close(f.stalled)
			<-f.release
		}
	}
	return f.File.WriteAt(p, off)
}

// stallingOpen returns a stallFile and an OpenFunc that opens the file
// it wraps (the second write after the header stalls).
func stallingOpen() (*stallFile, OpenFunc) {
	sf := &stallFile{stalled: make(chan struct{}), release: make(chan struct{})}
	return sf, func(name string, flag int, perm fs.FileMode) (File, error) {
		fl, err := os.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		sf.File = fl
		return sf, nil
	}
}

// writeUntilStalled writes pcm to w in the background (writeInBackground)
// and returns once a write to sf stalls, failing the test if the writer
// ends first.
func writeUntilStalled(t *testing.T, sf *stallFile, w Writer, pcm []int16) <-chan error {
	t.Helper()
	done := writeInBackground(w, pcm)
	select {
	case <-sf.stalled:
	case err := <-done:
		t.Fatalf("the writer ended (%v) without a second write", err)
	}
	return done
}

// writeInBackground writes pcm to w in 20 ms frames and closes it on a
// goroutine of its own, and sends the first error (or Close's result).
func writeInBackground(w Writer, pcm []int16) <-chan error {
	done := make(chan error, 1)
	go func() {
		var werr error
		for i := 0; i+160 <= len(pcm) && werr == nil; i += 160 {
			werr = w.Write(pcm[i : i+160])
		}
		if werr == nil {
			werr = w.Close()
		}
		done <- werr
	}()
	return done
}

// TestStoredSoFarWhileAWriteStalls: while the writer's goroutine is inside
// a write that does not return, another goroutine reads how much audio
// reached the file: the writes that returned, not the one in progress
// and not the audio accepted (run with -race: no data race with the
// writer). Once the write returns, Stored agrees with the file.
func TestStoredSoFarWhileAWriteStalls(t *testing.T) {
	for _, format := range []string{"wav", "sln"} {
		t.Run(format, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "stall."+format)
			sf, open := stallingOpen()
			w, err := Create(path, Format{Name: format}, Fail, WithOpenFile(open))
			if err != nil {
				t.Fatal(err)
			}
			pcm := ramp(8000*3, 1) // 3 s: a write each second (the default flush)
			done := writeUntilStalled(t, sf, w, pcm)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			start := int64(0)
			if format == "wav" {
				start = 44
			}
			first := (fi.Size() - start) / 2
			if first <= 0 {
				t.Fatalf("the first write put %d bytes in the file", fi.Size())
			}
			if got := StoredSoFar(w); got != first || got >= w.Samples() {
				t.Fatalf("StoredSoFar %d during the stalled write; the file holds %d samples (%d accepted)", got, first, w.Samples())
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
