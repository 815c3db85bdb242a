package recorder

import (
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
)

// mp3Bitrate is the constant bit rate of MP3 recordings (kbit/s). At 8 kHz
// the stream is MPEG-2.5 layer III; 32 kbit/s is clear telephone speech
// (lame's own default at 8 kHz is 8 kbit/s).
const mp3Bitrate = 32

// The recordings' MP3 (MPEG-2.5 layer III at 8 kHz, mp3Bitrate constant):
// every frame holds mp3FrameSamples samples in mp3FrameBytes bytes (never
// padded: 72*mp3Bitrate*1000 is a multiple of SampleRate), so the bytes of
// a session's file tell its frames. A decoder plays back mp3Delay samples
// (LAME's encoder delay of 576 and the layer III decoder's 529) before the
// first sample encoded.
const (
	mp3FrameSamples = 576
	mp3FrameBytes   = 72 * mp3Bitrate * 1000 / SampleRate
	mp3Delay        = 576 + 529
)

// Frames are whole bytes: no padding slot (a compile-time check).
var _ [0]struct{} = [72 * mp3Bitrate * 1000 % SampleRate]struct{}{}

// mp3Held is how many of a session's samples the mp3 frames in its n bytes
// of file hold (the whole frames, less the delay).
func mp3Held(n int64) int64 {
	return max(n/mp3FrameBytes*mp3FrameSamples-mp3Delay, 0)
}

// lameArgs are the arguments of the lame program: raw signed 16-bit
// little-endian mono PCM at 8 kHz on stdin, MP3 on stdout, no LAME/Xing tag
// (so files can be continued and cut anywhere between frames).
var lameArgs = []string{
	"-r", "-s", "8", "--bitwidth", "16", "--signed", "--little-endian",
	"-m", "m", "-b", fmt.Sprint(mp3Bitrate), "-t", "--quiet", "-", "-",
}

// mp3Encoder is an in-process MP3 encoder (libmp3lame through cgo).
type mp3Encoder interface {
	// encode appends MP3 bytes for pcm (at most upChunk samples) to dst;
	// cap(dst)-len(dst) must be at least mp3ChunkMax.
	encode(dst []byte, pcm []int16) ([]byte, error)
	// finish appends the encoder's remaining frames to dst.
	finish(dst []byte) ([]byte, error)
	release()
}

// mp3ChunkMax bounds the MP3 output of one encode call (LAME's documented
// worst case 1.25*samples + 7200).
const mp3ChunkMax = upChunk*5/4 + 7200

func newMP3(out fileOut, appending bool, o *options) (backend, error) {
	if appending {
		size, err := out.size()
		if err != nil {
			return nil, err
		}
		end, _, _ := scanMP3(out.f, size)
		if end != size {
			if err := out.f.Truncate(end); err != nil {
				return nil, ioErr("truncate", out.path, err)
			}
		}
		out.off = end
	}
	if lameInProcess && o.lameProgram == "" {
		enc, err := newLameEncoder()
		if err != nil {
			return nil, err
		}
		w := &mp3LibWriter{out: out, enc: enc, limit: o.flushSamples * mp3Bitrate / 8 / 8}
		w.out.buf = make([]byte, 0, w.limit+2*mp3ChunkMax)
		return w, nil
	}
	prog := o.lameProgram
	if prog == "" {
		prog = lameProgram()
	}
	if prog == "" {
		return nil, &UnavailableError{Format: "mp3", Hint: mp3Hint}
	}
	return startLameProcess(out, prog, o)
}

// mp3LibWriter encodes in process.
type mp3LibWriter struct {
	out   fileOut
	enc   mp3Encoder
	limit int
}

func (w *mp3LibWriter) write(pcm []int16) error {
	for len(pcm) > 0 {
		n := min(len(pcm), upChunk)
		b, err := w.enc.encode(w.out.buf, pcm[:n])
		if err != nil {
			return err
		}
		w.out.buf = b
		pcm = pcm[n:]
		if len(w.out.buf) >= w.limit {
			if err := w.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *mp3LibWriter) flush() error {
	if err := w.out.writeBuf(); err != nil {
		return err
	}
	return w.out.doSync()
}

func (w *mp3LibWriter) close(failed bool) error {
	var err error
	if !failed {
		if err = w.out.writeBuf(); err == nil {
			var b []byte
			if b, err = w.enc.finish(w.out.buf); err == nil {
				w.out.buf = b
				err = w.out.writeBuf()
			}
		}
	}
	w.enc.release()
	if cerr := w.out.closeFile(); err == nil {
		err = cerr
	}
	return err
}

// mp3ProcWriter pipes PCM through the lame program; a goroutine copies its
// output into the file.
type mp3ProcWriter struct {
	out    fileOut // owned by the copier goroutine until done is closed
	path   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *tailBuffer
	pcm    []byte
	limit  int
	sync   bool
	file   File
	start  int64 // out.off when it started (an appended file's end)
	done   chan struct{}

	mu      sync.Mutex
	copyErr error
}

func startLameProcess(out fileOut, prog string, o *options) (*mp3ProcWriter, error) {
	cmd := exec.Command(prog, lameArgs...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("%w: lame: %v", ErrEncoder, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%w: lame: %v", ErrEncoder, err)
	}
	w := &mp3ProcWriter{out: out, path: out.path, cmd: cmd, stdin: stdin, stderr: &tailBuffer{max: 2048},
		limit: o.flushSamples * 2, sync: o.sync, file: out.f, start: out.off, done: make(chan struct{})}
	cmd.Stderr = w.stderr
	w.pcm = make([]byte, 0, w.limit)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: start lame: %v", ErrEncoder, err)
	}
	go w.copyOut(stdout)
	return w, nil
}

func (w *mp3ProcWriter) copyOut(r io.Reader) {
	defer close(w.done)
	buf := make([]byte, 16<<10)
	failed := false
	for {
		n, rerr := r.Read(buf)
		if n > 0 && !failed {
			w.out.buf = buf[:n]
			if err := w.out.writeBuf(); err != nil {
				failed = true // keep draining so lame never blocks
				w.mu.Lock()
				w.copyErr = err
				w.mu.Unlock()
			}
		}
		if rerr != nil {
			return
		}
	}
}

func (w *mp3ProcWriter) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.copyErr
}

func (w *mp3ProcWriter) write(pcm []int16) error {
	if err := w.failure(); err != nil {
		return err
	}
	for len(pcm) > 0 {
		k := min((w.limit-len(w.pcm))/2, len(pcm))
		w.pcm = appendLE16(w.pcm, pcm[:k])
		pcm = pcm[k:]
		if len(w.pcm) >= w.limit {
			if err := w.send(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *mp3ProcWriter) send() error {
	if len(w.pcm) == 0 {
		return nil
	}
	_, err := w.stdin.Write(w.pcm)
	w.pcm = w.pcm[:0]
	if err != nil {
		if cerr := w.failure(); cerr != nil {
			return cerr
		}
		return fmt.Errorf("%w: lame: %v %s", ErrEncoder, err, w.stderr.String())
	}
	return nil
}

func (w *mp3ProcWriter) flush() error {
	if err := w.send(); err != nil {
		return err
	}
	if err := w.failure(); err != nil {
		return err
	}
	if w.sync {
		return ioErr("sync", w.path, w.file.Sync())
	}
	return nil
}

func (w *mp3ProcWriter) close(failed bool) error {
	var err error
	if !failed {
		err = w.send()
	}
	w.stdin.Close()
	if failed {
		w.cmd.Process.Kill()
	}
	<-w.done
	werr := w.cmd.Wait()
	if err == nil {
		err = w.failure()
	}
	if err == nil && werr != nil && !failed {
		err = fmt.Errorf("%w: lame: %v %s", ErrEncoder, werr, w.stderr.String())
	}
	if cerr := ioErr("close", w.path, w.file.Close()); err == nil {
		err = cerr
	}
	return err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.Write(p)
	if t.b.Len() > t.max {
		t.b.Next(t.b.Len() - t.max)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(t.b.String())
}

// MPEG audio layer III tables.
var (
	mp3Rates = [4][3]int{ // by version bits: 0 = 2.5, 2 = MPEG-2, 3 = MPEG-1
		{11025, 12000, 8000}, {}, {22050, 24000, 16000}, {44100, 48000, 32000},
	}
	mp3Kbps1 = [15]int{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320}
	mp3Kbps2 = [15]int{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160}
)

// scanMP3 walks MPEG layer III frames from the start of the file (after an
// optional ID3v2 tag) and returns the offset just past the last complete
// frame, the number of samples in complete frames and the sample rate.
func scanMP3(r io.ReaderAt, size int64) (end int64, samples int64, rate int) {
	var h [10]byte
	off := int64(0)
	if n, _ := r.ReadAt(h[:10], 0); n == 10 && string(h[:3]) == "ID3" {
		tag := int64(h[6]&0x7f)<<21 | int64(h[7]&0x7f)<<14 | int64(h[8]&0x7f)<<7 | int64(h[9]&0x7f)
		off = 10 + tag
		if h[5]&0x10 != 0 {
			off += 10
		}
		if off > size {
			return 0, 0, 0
		}
	}
	end = off
	for off+4 <= size {
		if n, _ := r.ReadAt(h[:4], off); n < 4 {
			break
		}
		if h[0] != 0xff || h[1]&0xe0 != 0xe0 {
			break
		}
		ver := int(h[1]>>3) & 3
		layer := int(h[1]>>1) & 3
		bri := int(h[2] >> 4)
		sri := int(h[2]>>2) & 3
		if ver == 1 || layer != 1 || bri == 0 || bri == 15 || sri == 3 {
			break
		}
		sr := mp3Rates[ver][sri]
		pad := int64(h[2]>>1) & 1
		var flen, spf int64
		if ver == 3 {
			flen = int64(144000*mp3Kbps1[bri]/sr) + pad
			spf = 1152
		} else {
			flen = int64(72000*mp3Kbps2[bri]/sr) + pad
			spf = 576
		}
		if off+flen > size {
			break
		}
		off += flen
		end = off
		samples += spf
		rate = sr
	}
	return end, samples, rate
}
