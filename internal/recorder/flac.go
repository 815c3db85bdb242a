package recorder

import (
	"bytes"
	"fmt"
	"io"

	"github.com/mewkiz/flac"
	"github.com/mewkiz/flac/frame"
	"github.com/mewkiz/flac/meta"
)

// flacBlock is the FLAC block size in samples (512 ms at 8 kHz).
const flacBlock = 4096

// flacWriter encodes 8 kHz 16-bit mono FLAC with mewkiz/flac, letting the
// encoder's prediction analysis choose constant/fixed/verbatim subframes.
// Complete frames are written at least every flush interval; a crash loses at
// most the unwritten frames (Recover trims a partial frame and fixes the
// sample count). Flush writes complete frames only: FLAC frames of a
// fixed-blocksize stream must all have the block size except the last.
type flacWriter struct {
	out     fileOut
	sink    flacSink
	enc     *flac.Encoder
	fr      frame.Frame
	sub     frame.Subframe
	n       int // samples in the current block
	pending int // samples encoded but not yet written to the file
	limit   int // samples between file writes
}

// flacSink collects the encoder's output in the writer's buffer. After the
// encoder seeks (on Close, to rewrite STREAMINFO), writes are collected as a
// patch that close applies with one WriteAt.
type flacSink struct {
	out   *fileOut
	patch []byte
	off   int64
	seek  bool
	err   error
}

func (s *flacSink) Write(p []byte) (int, error) {
	if s.seek {
		s.patch = append(s.patch, p...)
	} else {
		s.out.buf = append(s.out.buf, p...)
	}
	return len(p), nil
}

func (s *flacSink) WriteByte(c byte) error {
	if s.seek {
		s.patch = append(s.patch, c)
	} else {
		s.out.buf = append(s.out.buf, c)
	}
	return nil
}

func (s *flacSink) Seek(offset int64, whence int) (int64, error) {
	if whence != io.SeekStart {
		return 0, fmt.Errorf("recorder: flac sink: unsupported seek")
	}
	if err := s.out.writeBuf(); err != nil {
		s.err = err
		return 0, err
	}
	s.seek, s.off, s.patch = true, offset, s.patch[:0]
	return offset, nil
}

// applyPatch writes what the encoder wrote after its seek.
func (s *flacSink) applyPatch() error {
	if len(s.patch) == 0 {
		return nil
	}
	_, err := s.out.f.WriteAt(s.patch, s.off)
	return ioErr("write header of", s.out.path, err)
}

func newFLAC(out fileOut, o *options) (*flacWriter, error) {
	w := &flacWriter{out: out, limit: max(o.flushSamples, flacBlock)}
	// A 4096-sample block of 16-bit audio encodes to at most ~8.2 KiB.
	w.out.buf = make([]byte, 0, (w.limit/flacBlock+2)*(flacBlock*2+64))
	w.sink.out = &w.out
	info := &meta.StreamInfo{
		BlockSizeMin:  flacBlock,
		BlockSizeMax:  flacBlock,
		SampleRate:    SampleRate,
		NChannels:     1,
		BitsPerSample: 16,
	}
	enc, err := flac.NewEncoder(&w.sink, info)
	if err != nil {
		return nil, fmt.Errorf("%w: flac: %v", ErrEncoder, err)
	}
	enc.EnablePredictionAnalysis(true)
	w.enc = enc
	w.sub.Samples = make([]int32, flacBlock)
	w.fr.Subframes = []*frame.Subframe{&w.sub}
	w.out.counted, w.out.torn = true, w.tornHeld
	// Write the stream header now so even an empty recording is a valid file.
	if err := w.out.writeBuf(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *flacWriter) write(pcm []int16) error {
	for len(pcm) > 0 {
		k := min(flacBlock-w.n, len(pcm))
		dst := w.sub.Samples[w.n : w.n+k]
		for i, v := range pcm[:k] {
			dst[i] = int32(v)
		}
		w.n += k
		pcm = pcm[k:]
		if w.n == flacBlock {
			if err := w.encodeBlock(); err != nil {
				return err
			}
			if w.pending >= w.limit {
				if err := w.flush(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (w *flacWriter) encodeBlock() error {
	n := w.n
	w.fr.Header = frame.Header{
		HasFixedBlockSize: true,
		BlockSize:         uint16(n),
		SampleRate:        SampleRate,
		Channels:          frame.ChannelsMono,
		BitsPerSample:     16,
	}
	w.sub.SubHeader = frame.SubHeader{Pred: frame.PredVerbatim}
	w.sub.Samples = w.sub.Samples[:n]
	w.sub.NSamples = n
	err := w.enc.WriteFrame(&w.fr)
	w.sub.Samples = w.sub.Samples[:flacBlock]
	w.n = 0
	w.pending += n
	if err != nil {
		return fmt.Errorf("%w: flac: %v", ErrEncoder, err)
	}
	w.out.bufHeld += int64(n) // the frame is whole in the buffer
	return nil
}

// tornHeld is the audio the file holds after a write that put only p, a
// prefix of the buffer (whole frames), in it: the frames whole in p.
func (w *flacWriter) tornHeld(p []byte) int64 {
	held := w.out.held
	r := bytes.NewReader(p)
	for r.Len() > 0 {
		fr, err := frame.Parse(r)
		if err != nil {
			break
		}
		held += int64(fr.BlockSize)
	}
	return held
}

func (w *flacWriter) flush() error {
	w.pending = 0
	if err := w.out.writeBuf(); err != nil {
		return err
	}
	return w.out.doSync()
}

func (w *flacWriter) close(failed bool) error {
	var err error
	if !failed {
		if w.n > 0 {
			err = w.encodeBlock()
		}
		if err == nil {
			err = w.out.writeBuf()
		}
		if err == nil {
			// Rewrites STREAMINFO (sample count, MD5, block sizes) in place.
			if cerr := w.enc.Close(); cerr != nil {
				err = w.sink.err
				if err == nil {
					err = fmt.Errorf("%w: flac: %v", ErrEncoder, cerr)
				}
			} else {
				// The library records the last (short) block as the
				// minimum block size; the format excludes the last block.
				if p := w.sink.patch; len(p) >= 8 {
					p[4], p[5], p[6], p[7] = flacBlock>>8, flacBlock&0xff, flacBlock>>8, flacBlock&0xff
				}
				err = w.sink.applyPatch()
			}
		}
	}
	if cerr := w.out.closeFile(); err == nil {
		err = cerr
	}
	return err
}
