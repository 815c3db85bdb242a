package recorder

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// IfExists says what Create does when the file already exists.
type IfExists int

const (
	// Fail refuses to touch an existing file (O_EXCL): ErrExists.
	Fail IfExists = iota
	// Overwrite truncates an existing file.
	Overwrite
	// Append continues an existing file of the same format.
	Append
)

func (m IfExists) String() string {
	switch m {
	case Fail:
		return "fail"
	case Overwrite:
		return "overwrite"
	case Append:
		return "append"
	}
	return fmt.Sprintf("IfExists(%d)", int(m))
}

// Writer writes one recording. Write, Flush and Close are called from one
// goroutine; Samples and Path may be called from any goroutine.
//
// After any I/O failure the Writer is failed: that call and every later
// Write/Flush return the same error (an *IOError matching ErrWriteFailed, and
// ErrDiskFull for ENOSPC), and Close still finalises what it can, closes the
// file and removes the in-progress marker.
type Writer interface {
	// Write appends 8 kHz mono samples. The slice is not retained.
	Write(pcm []int16) error
	// Flush writes buffered audio and updates the file header, so the file
	// on disk is playable up to here.
	Flush() error
	// Sync flushes and then fsyncs the file, so that a power cut (not only
	// a crash of the process) keeps the audio written so far, playable.
	Sync() error
	// Close flushes, finalises the file and removes the in-progress marker.
	// It is idempotent: later calls return the first call's result.
	Close() error
	// Samples is the number of 8 kHz samples accepted in this session.
	Samples() int64
	// Path is the recording file's path ("" for NewWith without a name).
	Path() string
}

// File is what a Writer needs from an open file. *os.File implements it;
// tests substitute fault-injecting files.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	Stat() (fs.FileInfo, error)
	Truncate(size int64) error
	Sync() error
}

// OpenFunc opens a recording file, like os.OpenFile.
type OpenFunc func(name string, flag int, perm fs.FileMode) (File, error)

func osOpen(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

type options struct {
	channels     int
	open         OpenFunc
	flushSamples int
	sync         bool
	headerAtEnd  bool
	lameProgram  string
	journal      *Journal
}

// Option configures Create and NewWith.
type Option func(*options) error

// WithOpenFile replaces os.OpenFile for the recording file (fault injection
// in tests, special file systems).
func WithOpenFile(fn OpenFunc) Option {
	return func(o *options) error {
		if fn == nil {
			return errors.New("recorder: WithOpenFile(nil)")
		}
		o.open = fn
		return nil
	}
}

// WithFlushInterval sets how much audio is buffered before it is written and
// the header updated (default 1 s, at least 20 ms, at most 10 s). It bounds
// what a crash can lose.
func WithFlushInterval(d time.Duration) Option {
	return func(o *options) error {
		if d < 20*time.Millisecond || d > 10*time.Second {
			return fmt.Errorf("recorder: flush interval %v out of range [20ms, 10s]", d)
		}
		o.flushSamples = int(d * SampleRate / time.Second)
		return nil
	}
}

// WithChannels records n interleaved channels (1 or 2; 2 only for wav):
// Write then takes interleaved samples (left, right, left, ...), e.g. a
// two-party bridge with one party per channel.
func WithChannels(n int) Option {
	return func(o *options) error {
		if n != 1 && n != 2 {
			return fmt.Errorf("recorder: %d channels (1 or 2)", n)
		}
		o.channels = n
		return nil
	}
}

// WithSync makes every periodic flush fsync the file, so a power cut (not
// just a process crash) keeps audio up to the last flush. Off by default.
func WithSync(on bool) Option {
	return func(o *options) error {
		o.sync = on
		return nil
	}
}

// WithHeaderAtEnd makes a wav writer's periodic writes of buffered audio
// leave the header alone: it is rewritten by Flush, Sync and Close only,
// which halves the writes to the file (about one a second instead of two). A
// file cut short by a crash then has the header of its start (no audio),
// and Recover, at the next start, sets its sizes from the file's length
// (the in-progress marker says it must); a reader of the file while it is
// recorded sees an empty header. A full buffer is then written up to
// the last page of the file it reaches, the rest kept (writeFull): what a
// crash loses is still at most the buffer. Other formats are not affected.
func WithHeaderAtEnd() Option {
	return func(o *options) error {
		o.headerAtEnd = true
		return nil
	}
}

func buildOptions(opts []Option) (options, error) {
	o := options{open: osOpen, flushSamples: SampleRate}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// backend is one format's encoder bound to a file.
type backend interface {
	write(pcm []int16) error
	flush() error
	// close finalises the file (best effort when failed is true) and closes it.
	close(failed bool) error
}

// InProgressMarker returns the hidden marker path that exists while path is
// being recorded.
func InProgressMarker(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".inprogress")
}

// RecoveredMarker returns the hidden marker path left by Recover next to a
// repaired file.
func RecoveredMarker(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".recovered")
}

// IsRecovered reports whether Recover repaired path after a crash.
func IsRecovered(path string) bool {
	_, err := os.Lstat(RecoveredMarker(path))
	return err == nil
}

// Create opens path for recording in format f. Parent directories are
// created. mode decides what happens to an existing file: Fail (ErrExists),
// Overwrite, or Append (ErrAppendUnsupported unless f.AppendOK; an existing
// file that is not a compatible file of format f gives ErrAppendMismatch).
// While the Writer is open, InProgressMarker(path) exists, or, with
// WithJournal, the journal lists path.
func Create(path string, f Format, mode IfExists, opts ...Option) (Writer, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	known, ok := byName(f.Name)
	if !ok {
		return nil, ErrUnknownFormat
	}
	f = known
	if err := available(f); err != nil {
		return nil, err
	}
	var flag int
	switch mode {
	case Fail:
		flag = os.O_RDWR | os.O_CREATE | os.O_EXCL
	case Overwrite:
		flag = os.O_RDWR | os.O_CREATE | os.O_TRUNC
	case Append:
		if !f.AppendOK {
			return nil, fmt.Errorf("%w: %s", ErrAppendUnsupported, f.Name)
		}
		flag = os.O_RDWR | os.O_CREATE
	default:
		return nil, fmt.Errorf("recorder: invalid IfExists %d", int(mode))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, ioErr("create directory for", path, err)
	}
	file, err := o.open(path, flag, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%w: %s", ErrExists, path)
		}
		return nil, ioErr("open", path, err)
	}
	// In progress: a line in the journal, or else a marker file.
	marker := ""
	if o.journal != nil && !o.journal.covers(path) {
		o.journal = nil // outside its root: a marker file
	}
	if o.journal != nil {
		err = o.journal.begin(path, f.Name)
	} else {
		marker = InProgressMarker(path)
		err = os.WriteFile(marker, []byte("format="+f.Name+"\n"), 0o644)
	}
	if err != nil {
		file.Close()
		if mode != Append {
			os.Remove(path)
		}
		return nil, ioErr("create marker for", path, err)
	}
	if mode != Append {
		// One unlink (os.Remove would try rmdir as well when it fails, and
		// it fails for nearly every recording: no file was recovered).
		_ = syscall.Unlink(RecoveredMarker(path))
	}
	be, err := newBackend(file, path, f, mode == Append, &o)
	if err != nil {
		file.Close()
		if o.journal != nil {
			o.journal.end(path)
		} else {
			os.Remove(marker)
		}
		if mode != Append {
			os.Remove(path)
		}
		return nil, err
	}
	return &writer{path: path, marker: marker, journal: o.journal, be: be, file: file, start: fileEnd(be)}, nil
}

// NewWith records format f into an already open, empty file. No marker is
// created and Path returns "". The file is closed by Close.
func NewWith(file File, f Format, opts ...Option) (Writer, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	known, ok := byName(f.Name)
	if !ok {
		return nil, ErrUnknownFormat
	}
	if err := available(known); err != nil {
		return nil, err
	}
	name := ""
	if n, ok := file.(interface{ Name() string }); ok {
		name = n.Name()
	}
	be, err := newBackend(file, name, known, false, &o)
	if err != nil {
		return nil, err
	}
	return &writer{be: be, file: file, start: fileEnd(be)}, nil
}

func newBackend(file File, path string, f Format, appending bool, o *options) (backend, error) {
	out := fileOut{f: file, path: path, sync: o.sync, reached: new(atomic.Int64)}
	if o.channels == 2 && f.Name != "wav" {
		return nil, fmt.Errorf("%w: stereo recording needs format wav, not %s", ErrStereoUnsupported, f.Name)
	}
	switch f.Name {
	case "wav":
		return newWAV(out, 1, appending, o)
	case "wav16":
		return newWAV(out, 2, appending, o)
	case "sln", "ulaw", "alaw", "g722":
		return newRaw(out, f.Name, appending, o)
	case "flac":
		return newFLAC(out, o)
	case "mp3":
		return newMP3(out, appending, o)
	case "ogg":
		return newOgg(out, o)
	}
	return nil, ErrUnknownFormat
}

type writer struct {
	path     string
	marker   string
	journal  *Journal
	be       backend
	file     File
	samples  atomic.Int64
	start    int64 // fileEnd when it was made (an appended file's audio before)
	err      error // sticky failure
	closed   bool
	closeErr error
}

func (w *writer) Write(pcm []int16) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrClosed
	}
	if err := w.be.write(pcm); err != nil {
		w.err = err
		return err
	}
	w.samples.Add(int64(len(pcm)))
	return nil
}

// DirectWriter is a Writer that can write a caller's samples straight
// from the caller's memory, without copying them into its buffer: the
// caller keeps its samples until WriteDirect says they are written.
type DirectWriter interface {
	Writer
	// DirectSamples is how many samples (interleaved, all channels) make
	// the writer's full buffer; 0 when WriteDirect copies as Write does
	// (any format but wav at 8 kHz written WithHeaderAtEnd).
	DirectSamples() int
	// WriteDirect appends pcm as Write does, except that it may write
	// only a prefix of pcm and return its length: once what it buffers
	// and pcm make a full buffer, it writes them up to the last page end
	// of the file they reach (WithHeaderAtEnd's writes), pcm's part from
	// pcm's memory; short of that it writes nothing and returns 0. The
	// caller passes the rest again, with what follows, next time (what is
	// not written stays, as with Write, at most a buffer and what the
	// caller adds before its next call). With all it takes all of pcm, as
	// Write (before silence written with Write, or the end).
	WriteDirect(pcm []int16, all bool) (int, error)
}

var _ DirectWriter = (*writer)(nil)

func (w *writer) DirectSamples() int {
	if wv, ok := w.be.(*wavWriter); ok && wv.direct() {
		return wv.limit / 2
	}
	return 0
}

func (w *writer) WriteDirect(pcm []int16, all bool) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, ErrClosed
	}
	wv, ok := w.be.(*wavWriter)
	if !ok {
		if err := w.Write(pcm); err != nil {
			return 0, err
		}
		return len(pcm), nil
	}
	n, err := wv.writeDirect(pcm, all)
	w.samples.Add(int64(n))
	if err != nil {
		w.err = err
	}
	return n, err
}

func (w *writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrClosed
	}
	if err := w.be.flush(); err != nil {
		w.err = err
		return err
	}
	return nil
}

func (w *writer) Sync() error {
	if err := w.Flush(); err != nil {
		return err
	}
	if err := w.file.Sync(); err != nil {
		w.err = ioErr("sync", w.path, err)
		return w.err
	}
	return nil
}

func (w *writer) Close() error {
	if w.closed {
		return w.closeErr
	}
	w.closed = true
	err := w.be.close(w.err != nil)
	if w.marker != "" {
		if rerr := os.Remove(w.marker); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
			err = ioErr("remove marker of", w.path, rerr)
		}
	}
	if w.journal != nil {
		if jerr := w.journal.end(w.path); jerr != nil && err == nil {
			err = ioErr("journal the end of", w.path, jerr)
		}
	}
	if w.err != nil {
		err = w.err
	}
	w.closeErr = err
	return err
}

// Abandon closes w for a caller that can no longer trust its state (a
// Write panicked, an encoder's bug): as after an I/O failure, nothing it
// buffers is written, the file is made playable up to what reached it (a
// wav's header covers the audio written, the part of a failed write that
// reached the file included), the file is closed and the in-progress marker or journal line removed. Close then
// returns cause. A Writer not made here is closed with Close.
func Abandon(w Writer, cause error) error {
	if ww, ok := w.(*writer); ok && !ww.closed && ww.err == nil {
		ww.err = cause
	}
	return w.Close()
}

// Stored is how many of the samples that w accepted (Samples) reached its
// file: after a failed write or Abandon, Close writes nothing that w
// buffered, and Samples overstates the file's audio by that (the lost
// second) and by the part of a write that failed. Per format, counted in
// this session, as 8 kHz samples (Samples' unit):
//
//   - wav (8 or 16 kHz, mono or stereo) and raw: from the file's bytes
//     written, the whole samples of a partial write included: exact.
//   - flac: the blocks whose frames were written whole (a partial write's
//     complete frames included): exact, as a decoder plays them back.
//   - ogg: the granule position of the last page written whole, less the
//     pre-skip: exact, what a decoder plays back (the packets' audio less
//     the encoder's lookahead, about 6.5 ms, which the next packet holds).
//   - mp3 (libmp3lame in process or the lame program): from the file's
//     bytes written, as whole constant-bit-rate frames of 576 samples, less
//     the 1105 samples of the encoder's and decoder's delay that a decoder
//     plays back before the first one: exact as long as lame writes 288-byte
//     frames (the recordings' 32 kbit/s at 8 kHz, no tag frame), which is
//     what lameArgs and the in-process settings ask for.
//
// It is never more than Samples; for a Writer not made here it is Samples.
// Call it from the goroutine that writes, or after Close.
func Stored(w Writer) int64 {
	return storedTo(w, false)
}

// StoredSoFar is Stored for a caller on another goroutine while w may be
// inside a write (a stalled disk): the audio of the writes that had
// returned, counted per format as Stored counts it, which a write still in
// progress does not change; for a Writer not made here, Samples.
func StoredSoFar(w Writer) int64 {
	return storedTo(w, true)
}

// storedTo is Stored (soFar false: read by the writing goroutine or after
// Close) or StoredSoFar (soFar: the atomic copies of the writes that
// returned).
func storedTo(w Writer, soFar bool) int64 {
	ww, ok := w.(*writer)
	if !ok {
		return w.Samples()
	}
	n := ww.samples.Load()
	switch b := ww.be.(type) {
	case *flacWriter:
		return min(n, b.out.heldAt(soFar))
	case *oggWriter:
		return min(n, b.out.heldAt(soFar))
	case *mp3LibWriter:
		return min(n, mp3Held(b.out.offAt(soFar)-ww.start))
	case *mp3ProcWriter:
		// Its file is written by the copier goroutine: the atomic copy,
		// whoever asks.
		return min(n, mp3Held(b.out.offAt(true)-ww.start))
	}
	out, perSample := pcmOut(ww.be)
	if out == nil {
		return n
	}
	return min(n, max(out.offAt(soFar)-ww.start, 0)/perSample)
}

// pcmOut is a wav or raw backend's file and its bytes per 8 kHz sample
// (nil for other formats).
func pcmOut(be backend) (*fileOut, int64) {
	switch b := be.(type) {
	case *wavWriter:
		return &b.out, 2 * int64(b.rate/SampleRate)
	case *rawWriter:
		return &b.out, int64(rawBytesPerSample(b.kind))
	}
	return nil, 0
}

// fileEnd is the file offset after the last audio a wav, raw or mp3
// backend wrote (0 for other formats): an appended file's audio before
// this session.
func fileEnd(be backend) int64 {
	switch b := be.(type) {
	case *mp3LibWriter:
		return b.out.off
	case *mp3ProcWriter:
		return b.start
	}
	if out, _ := pcmOut(be); out != nil {
		return out.off
	}
	return 0
}

func (w *writer) Samples() int64 { return w.samples.Load() }
func (w *writer) Path() string   { return w.path }

// fileOut is a bounded buffer in front of positional writes to a file.
type fileOut struct {
	f    File
	path string
	off  int64 // file offset of the next byte written
	buf  []byte
	sync bool
	// reached is off (held, when counted) as of the last write that
	// returned, for reading from another goroutine while a write is in
	// progress (StoredSoFar).
	reached *atomic.Int64

	// An encoded format's audio (flac, ogg) is counted as it is written:
	// held is the 8 kHz samples of this session that the file holds as of
	// the last write that returned, bufHeld what it holds once the buffer
	// is written whole (the backend sets it as frames or pages complete in
	// the buffer), and torn, after a write that put only the buffer's
	// prefix p in the file, what it holds then (the frames or pages whole
	// in p). Header rewrites (WriteAt outside writeBuf) add no audio.
	counted bool
	held    int64
	bufHeld int64
	torn    func(p []byte) int64
}

// noteReached publishes off (held, when counted) after a write returned.
func (o *fileOut) noteReached() {
	if o.reached == nil {
		return
	}
	if o.counted {
		o.reached.Store(o.held)
	} else {
		o.reached.Store(o.off)
	}
}

// offAt is off as of the last write that returned: read by the writing
// goroutine (soFar false) or its atomic copy (soFar) from any goroutine.
func (o *fileOut) offAt(soFar bool) int64 {
	if !soFar || o.reached == nil {
		return o.off
	}
	return o.reached.Load()
}

// heldAt is held as offAt is off.
func (o *fileOut) heldAt(soFar bool) int64 {
	if !soFar || o.reached == nil {
		return o.held
	}
	return o.reached.Load()
}

// writeAt writes b at off with one WriteAt and returns how many of its
// bytes reached the file. os.File.WriteAt reports none of a write that the
// disk took in part before it failed: on a disk that fills up part way the
// kernel's pwrite writes what fits and returns that count, the pwrite that
// WriteAt retries for the rest fails (ENOSPC), and WriteAt returns the
// error with n 0, the first count dropped. The file, which ended at off,
// then tells by its size how far the write reached.
func (o *fileOut) writeAt(b []byte) (int, error) {
	n, err := o.f.WriteAt(b, o.off)
	if err != nil && n < len(b) {
		if fi, serr := o.f.Stat(); serr == nil {
			if end := fi.Size() - o.off; end > int64(n) {
				n = int(min(end, int64(len(b))))
			}
		}
	}
	return n, err
}

// writeBuf writes the buffer at off with one WriteAt.
func (o *fileOut) writeBuf() error {
	if len(o.buf) == 0 {
		return nil
	}
	n, err := o.writeAt(o.buf)
	o.off += int64(n)
	if o.counted {
		if n == len(o.buf) {
			o.held = o.bufHeld
		} else if n > 0 && o.torn != nil {
			o.held = o.torn(o.buf[:n])
		}
		o.bufHeld = o.held // (a failed write's buffer is dropped)
	}
	o.noteReached()
	if err == nil && n < len(o.buf) {
		err = io.ErrShortWrite
	}
	o.buf = o.buf[:0]
	return ioErr("write", o.path, err)
}

// filePage is the page size that writeFull's writes end on (4 KiB, the
// page cache's on Linux' usual configurations; a different one only makes
// the writes less aligned).
const filePage = 4096

// writePrefix writes the buffer's first n bytes at off with one WriteAt
// and keeps the rest at the buffer's start.
func (o *fileOut) writePrefix(n int) error {
	w, err := o.writeAt(o.buf[:n])
	o.off += int64(w)
	o.noteReached()
	if err == nil && w < n {
		err = io.ErrShortWrite
	}
	if err != nil {
		o.buf = o.buf[:0]
		return ioErr("write", o.path, err)
	}
	o.buf = o.buf[:copy(o.buf, o.buf[n:])]
	return nil
}

// writeSamples writes s at off with one WriteAt straight from s's memory
// (int16s in the file's byte order: nativeLE); the buffer must be empty.
func (o *fileOut) writeSamples(s []int16) error {
	b := unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), 2*len(s))
	w, err := o.writeAt(b)
	o.off += int64(w)
	o.noteReached()
	if err == nil && w < len(b) {
		err = io.ErrShortWrite
	}
	return ioErr("write", o.path, err)
}

func (o *fileOut) doSync() error {
	if !o.sync {
		return nil
	}
	return ioErr("sync", o.path, o.f.Sync())
}

func (o *fileOut) closeFile() error {
	return ioErr("close", o.path, o.f.Close())
}

func (o *fileOut) size() (int64, error) {
	fi, err := o.f.Stat()
	if err != nil {
		return 0, ioErr("stat", o.path, err)
	}
	return fi.Size(), nil
}
