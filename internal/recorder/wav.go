package recorder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unsafe"
)

const (
	wavHeaderLen = 44
	// maxWAVData keeps the RIFF size field (data + 36) within 32 bits.
	maxWAVData = 0xFFFFFFFF - wavHeaderLen
)

// WAVInfo describes a RIFF/WAVE file's format and where its samples are.
type WAVInfo struct {
	Format     uint16 // 1 = PCM
	Channels   uint16
	SampleRate uint32
	Bits       uint16
	DataOffset int64  // offset of the first sample byte
	SizeOffset int64  // offset of the data chunk's size field
	DataLen    uint32 // data chunk size as declared in the header
	// ChunkAfterData is true when a well-formed chunk follows the declared
	// data (e.g. a LIST chunk), so the data cannot simply be extended.
	ChunkAfterData bool
}

var errNotWAV = errors.New("not a RIFF/WAVE file")

// ParseWAV reads the header of a RIFF/WAVE file of the given size. It stops at
// the data chunk and does not require the declared sizes to match the file
// length (a recording cut short by a crash still parses).
func ParseWAV(r io.ReaderAt, size int64) (WAVInfo, error) {
	var info WAVInfo
	var b [40]byte
	if size < 12 {
		return info, errNotWAV
	}
	if _, err := r.ReadAt(b[:12], 0); err != nil {
		return info, err
	}
	if string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return info, errNotWAV
	}
	off := int64(12)
	haveFmt := false
	for i := 0; i < 64; i++ {
		if off+8 > size {
			return info, fmt.Errorf("%w: no data chunk", errNotWAV)
		}
		if _, err := r.ReadAt(b[:8], off); err != nil {
			return info, err
		}
		id := string(b[0:4])
		n := int64(binary.LittleEndian.Uint32(b[4:8]))
		switch id {
		case "fmt ":
			if n < 16 || off+8+16 > size {
				return info, fmt.Errorf("%w: short fmt chunk", errNotWAV)
			}
			if _, err := r.ReadAt(b[:16], off+8); err != nil {
				return info, err
			}
			info.Format = binary.LittleEndian.Uint16(b[0:2])
			info.Channels = binary.LittleEndian.Uint16(b[2:4])
			info.SampleRate = binary.LittleEndian.Uint32(b[4:8])
			info.Bits = binary.LittleEndian.Uint16(b[14:16])
			haveFmt = true
		case "data":
			if !haveFmt {
				return info, fmt.Errorf("%w: data before fmt", errNotWAV)
			}
			info.SizeOffset = off + 4
			info.DataOffset = off + 8
			info.DataLen = uint32(n)
			end := info.DataOffset + n + n&1
			if end+8 <= size {
				if _, err := r.ReadAt(b[:8], end); err == nil && isChunkID(b[:4]) &&
					end+8+int64(binary.LittleEndian.Uint32(b[4:8])) <= size {
					info.ChunkAfterData = true
				}
			}
			return info, nil
		}
		off += 8 + n + n&1
	}
	return info, fmt.Errorf("%w: too many chunks", errNotWAV)
}

func isChunkID(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// putWAVHeader fills a canonical 44-byte PCM mono 16-bit header.
func putWAVHeader(h []byte, rate uint32, dataLen uint32) {
	putWAVHeaderCh(h, rate, 1, dataLen)
}

// putWAVHeaderCh fills a canonical 44-byte PCM 16-bit header for channels
// interleaved channels.
func putWAVHeaderCh(h []byte, rate uint32, channels uint16, dataLen uint32) {
	copy(h[0:4], "RIFF")
	binary.LittleEndian.PutUint32(h[4:8], 36+dataLen)
	copy(h[8:16], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:20], 16)
	binary.LittleEndian.PutUint16(h[20:22], 1) // PCM
	binary.LittleEndian.PutUint16(h[22:24], channels)
	binary.LittleEndian.PutUint32(h[24:28], rate)
	binary.LittleEndian.PutUint32(h[28:32], rate*2*uint32(channels)) // byte rate
	binary.LittleEndian.PutUint16(h[32:34], 2*channels)              // block align
	binary.LittleEndian.PutUint16(h[34:36], 16)                      // bits per sample
	copy(h[36:40], "data")
	binary.LittleEndian.PutUint32(h[40:44], dataLen)
}

// wavWriter writes RIFF/WAVE PCM 16-bit mono at 8 kHz (factor 1) or
// 16 kHz (factor 2, upsampled).
type wavWriter struct {
	out       fileOut
	rate      uint32
	dataOff   int64
	sizeOff   int64
	canonical bool // our own 44-byte header: rewrite it with one WriteAt
	// headerAtEnd: a full buffer is written without a header rewrite
	// (WithHeaderAtEnd); flush (Flush, Sync, Close) still rewrites it.
	headerAtEnd bool
	channels    uint16
	limit       int // buffered bytes that trigger a flush
	up          *upsampler
	scratch     [2 * upChunk]int16
	hdr         [wavHeaderLen]byte
}

func newWAV(out fileOut, factor int, appending bool, o *options) (*wavWriter, error) {
	w := &wavWriter{out: out, rate: uint32(SampleRate * factor), canonical: true,
		dataOff: wavHeaderLen, sizeOff: 40, channels: uint16(max(o.channels, 1)), headerAtEnd: o.headerAtEnd}
	w.limit = o.flushSamples * 2 * factor * int(w.channels)
	if factor == 2 {
		w.up = newUpsampler()
	}
	if !w.direct() {
		// (A writer that writes from its caller's memory, writeDirect,
		// seldom buffers: put allocates the buffer when it must.)
		w.out.buf = make([]byte, 0, w.limit)
	}
	size := int64(0)
	if appending {
		var err error
		if size, err = w.out.size(); err != nil {
			return nil, err
		}
	}
	if size == 0 {
		w.out.off = wavHeaderLen
		if err := w.header(); err != nil {
			return nil, err
		}
		return w, nil
	}
	info, err := ParseWAV(out.f, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrAppendMismatch, out.path, err)
	}
	if info.Format != 1 || info.Channels != w.channels || info.Bits != 16 || info.SampleRate != w.rate {
		return nil, fmt.Errorf("%w: %s is %d Hz %d-bit %d-channel format %d, want %d Hz 16-bit %d-channel PCM",
			ErrAppendMismatch, out.path, info.SampleRate, info.Bits, info.Channels, info.Format, w.rate, w.channels)
	}
	end := info.DataOffset + int64(info.DataLen)
	if info.DataLen == 0xFFFFFFFF || end > size || (!info.ChunkAfterData && end < size) {
		// Streaming size or audio past the declared size (a crash that was
		// not repaired): the data runs to the end of the file.
		end = size
	} else if info.ChunkAfterData {
		return nil, fmt.Errorf("%w: %s has chunks after its data", ErrAppendMismatch, out.path)
	}
	end -= (end - info.DataOffset) & 1
	w.dataOff, w.sizeOff, w.out.off = info.DataOffset, info.SizeOffset, end
	w.canonical = info.DataOffset == wavHeaderLen && info.SizeOffset == 40
	if end < size {
		if err := out.f.Truncate(end); err != nil {
			return nil, ioErr("truncate", out.path, err)
		}
	}
	return w, nil
}

func (w *wavWriter) write(pcm []int16) error {
	if w.up == nil {
		return w.put(pcm)
	}
	for len(pcm) > 0 {
		n := min(len(pcm), upChunk)
		m := w.up.process(w.scratch[:], pcm[:n])
		if err := w.put(w.scratch[:m]); err != nil {
			return err
		}
		pcm = pcm[n:]
	}
	return nil
}

// put appends samples to the buffer, flushing each time it fills.
func (w *wavWriter) put(s []int16) error {
	if cap(w.out.buf) == 0 && len(s) > 0 {
		w.out.buf = make([]byte, 0, w.limit)
	}
	for len(s) > 0 {
		k := min((w.limit-len(w.out.buf))/2, len(s))
		if w.out.off+int64(len(w.out.buf)+2*k)-w.dataOff > maxWAVData {
			return fmt.Errorf("%w: %s reached 4 GiB", ErrTooLarge, w.out.path)
		}
		w.out.buf = appendLE16(w.out.buf, s[:k])
		s = s[k:]
		if len(w.out.buf) >= w.limit {
			var err error
			if w.headerAtEnd {
				err = w.writeFull()
			} else {
				err = w.flush()
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// writeFull writes a full buffer without the header rewrite
// (WithHeaderAtEnd): up to its last byte that ends a page of the file, the
// rest kept buffered for the next write, so that each write covers whole
// pages (a 16,000-byte write touches 5 pages on average, a write that ends
// on a page's end 4; the kernel's cost goes by the page). What stays
// unwritten is still at most the buffer (one second of audio): the tail
// kept is less than a page and the buffer is written again once full. A
// buffer shorter than two pages is written whole.
func (w *wavWriter) writeFull() error {
	end := (w.out.off + int64(len(w.out.buf))) &^ (filePage - 1)
	end -= (end - w.dataOff) % int64(2*w.channels) // whole sample frames
	n := int(end - w.out.off)
	if len(w.out.buf) < 2*filePage || n <= 0 {
		return w.out.writeBuf()
	}
	return w.out.writePrefix(n)
}

// direct says whether writeDirect writes from the caller's memory: a
// wav at 8 kHz written WithHeaderAtEnd on a machine whose int16s are the
// file's byte order.
func (w *wavWriter) direct() bool { return w.headerAtEnd && w.up == nil && nativeLE }

// writeDirect is put for a caller that keeps its samples until they are
// written (WriteDirect): once what the writer buffers and s make a full
// buffer, it writes them up to the last page end of the file they reach,
// s's part straight from s's memory (no copy into the buffer), and returns
// how many of s's samples it wrote; the caller keeps the rest and passes
// them again, with what follows, next time. Short of a full buffer it
// writes and keeps nothing (0). all: it takes all of s (a gap of silence
// or the end follows): written from s's memory if the buffer is empty,
// else the tail (less than a page) copied into the buffer.
// The cases it does not cover (an upsampled or streamed file, a buffer
// under two pages, the 4 GiB limit, a buffer that holds audio and would
// not take the rest of its page) take all of s as put does.
func (w *wavWriter) writeDirect(s []int16, all bool) (int, error) {
	own := len(w.out.buf)
	total := own + 2*len(s)
	if !w.direct() || w.limit < 2*filePage || w.out.off+int64(total)-w.dataOff > maxWAVData {
		return len(s), w.put(s)
	}
	switch {
	case own == 0 && all:
		// Before silence or the end: all of s, from its memory.
		if len(s) > 0 {
			if err := w.out.writeSamples(s); err != nil {
				return 0, err
			}
		}
		return len(s), nil
	case total < w.limit && !all:
		return 0, nil
	case total < w.limit:
		return len(s), w.put(s)
	}
	frame := int64(2 * w.channels)
	end := (w.out.off + int64(total)) &^ (filePage - 1)
	end -= (end - w.dataOff) % frame
	if end <= w.out.off+int64(own) {
		return len(s), w.put(s)
	}
	at := 0 // samples of s written
	if own > 0 {
		// What the buffer holds first, up to its page's end, in one write.
		p := (w.out.off + int64(own) + filePage - 1) &^ (filePage - 1)
		p -= (p - w.dataOff) % frame
		c := int(p-w.out.off) - own // bytes of s that complete the page
		if c < 0 || own+c > cap(w.out.buf) {
			return len(s), w.put(s)
		}
		w.out.buf = appendLE16(w.out.buf, s[:c/2])
		if err := w.out.writeBuf(); err != nil {
			return 0, err
		}
		w.out.buf = nil // (put allocates it again when needed)
		at = c / 2
	}
	if n := int(end-w.out.off) / 2; n > 0 {
		if err := w.out.writeSamples(s[at : at+n]); err != nil {
			return at, err
		}
		at += n
	}
	if all {
		return len(s), w.put(s[at:])
	}
	return at, nil
}

func (w *wavWriter) flush() error {
	if err := w.out.writeBuf(); err != nil {
		return err
	}
	if err := w.header(); err != nil {
		return err
	}
	return w.out.doSync()
}

// header rewrites the RIFF and data sizes for the data written so far.
func (w *wavWriter) header() error {
	n := w.out.off - w.dataOff
	n -= n % int64(2*w.channels)
	if w.canonical {
		putWAVHeaderCh(w.hdr[:], w.rate, w.channels, uint32(n))
		_, err := w.out.f.WriteAt(w.hdr[:], 0)
		return ioErr("write header of", w.out.path, err)
	}
	binary.LittleEndian.PutUint32(w.hdr[0:4], uint32(w.dataOff+n-8))
	if _, err := w.out.f.WriteAt(w.hdr[0:4], 4); err != nil {
		return ioErr("write header of", w.out.path, err)
	}
	binary.LittleEndian.PutUint32(w.hdr[4:8], uint32(n))
	_, err := w.out.f.WriteAt(w.hdr[4:8], w.sizeOff)
	return ioErr("write header of", w.out.path, err)
}

func (w *wavWriter) close(failed bool) error {
	var err error
	if failed {
		// Make what did reach the disk playable; ignore further errors.
		w.out.buf = w.out.buf[:0]
		w.header()
	} else {
		if w.up != nil {
			m := w.up.drain(w.scratch[:])
			err = w.put(w.scratch[:m])
		}
		if err == nil {
			err = w.flush()
		}
	}
	if cerr := w.out.closeFile(); err == nil {
		err = cerr
	}
	return err
}

// appendLE16 appends samples as 16-bit little-endian; the caller guarantees
// capacity. On a little-endian machine that is a copy of the samples'
// memory (a tenth of the time of the loop).
func appendLE16(b []byte, s []int16) []byte {
	l := len(b)
	b = b[:l+2*len(s)]
	d := b[l:]
	if nativeLE && len(s) > 0 {
		copy(d, unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), 2*len(s)))
		return b
	}
	for i, v := range s {
		binary.LittleEndian.PutUint16(d[2*i:], uint16(v))
	}
	return b
}

// nativeLE is true when int16s are stored little-endian (as WAV and sln
// store them).
var nativeLE = binary.NativeEndian.Uint16([]byte{1, 0}) == 1
