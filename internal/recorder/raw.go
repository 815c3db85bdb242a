package recorder

import (
	"github.com/gotranspile/g722"

	"github.com/tapedeck/tapedeck/internal/codec"
)

// rawWriter writes headerless streams: sln (16-bit little-endian), ulaw,
// alaw (G.711 bytes) and g722 (64 kbit/s from 16 kHz upsampled audio).
type rawWriter struct {
	out     fileOut
	kind    string
	limit   int // buffered bytes that trigger a write
	up      *upsampler
	g       *g722.Encoder
	scratch [2 * upChunk]int16
}

// rawBytesPerSample returns bytes per 8 kHz input sample (g722: 1 byte per
// two 16 kHz samples = 1 per 8 kHz sample).
func rawBytesPerSample(kind string) int {
	if kind == "sln" {
		return 2
	}
	return 1
}

func newRaw(out fileOut, kind string, appending bool, o *options) (*rawWriter, error) {
	w := &rawWriter{out: out, kind: kind}
	bps := rawBytesPerSample(kind)
	w.limit = o.flushSamples * bps
	// Room for one extra chunk so encoders never overflow the buffer.
	w.out.buf = make([]byte, 0, w.limit+upChunk*bps)
	if kind == "g722" {
		w.up = newUpsampler()
		w.g = g722.NewEncoder(g722.Rate64000, 0)
	}
	if appending {
		size, err := w.out.size()
		if err != nil {
			return nil, err
		}
		end := size - size%int64(bps)
		if end != size {
			if err := out.f.Truncate(end); err != nil {
				return nil, ioErr("truncate", out.path, err)
			}
		}
		w.out.off = end
	}
	return w, nil
}

func (w *rawWriter) write(pcm []int16) error {
	for len(pcm) > 0 {
		n := min(len(pcm), upChunk)
		w.encode(pcm[:n])
		pcm = pcm[n:]
		if len(w.out.buf) >= w.limit {
			if err := w.out.writeBuf(); err != nil {
				return err
			}
			if err := w.out.doSync(); err != nil {
				return err
			}
		}
	}
	return nil
}

// encode appends at most upChunk samples to the buffer.
func (w *rawWriter) encode(pcm []int16) {
	b := w.out.buf
	l := len(b)
	switch w.kind {
	case "sln":
		b = appendLE16(b, pcm)
	case "ulaw":
		b = b[:l+len(pcm)]
		codec.EncodeMulaw(b[l:], pcm)
	case "alaw":
		b = b[:l+len(pcm)]
		codec.EncodeAlaw(b[l:], pcm)
	case "g722":
		m := w.up.process(w.scratch[:], pcm)
		b = w.g722(b, w.scratch[:m])
	}
	w.out.buf = b
}

func (w *rawWriter) g722(b []byte, s []int16) []byte {
	l := len(b)
	b = b[:l+len(s)/2]
	n := w.g.Encode(b[l:], s)
	return b[:l+n]
}

func (w *rawWriter) flush() error {
	if err := w.out.writeBuf(); err != nil {
		return err
	}
	return w.out.doSync()
}

func (w *rawWriter) close(failed bool) error {
	var err error
	if !failed {
		if w.up != nil {
			m := w.up.drain(w.scratch[:])
			w.out.buf = w.g722(w.out.buf, w.scratch[:m])
		}
		err = w.flush()
	}
	if cerr := w.out.closeFile(); err == nil {
		err = cerr
	}
	return err
}
