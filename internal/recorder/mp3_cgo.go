//go:build lame && cgo

package recorder

/*
#cgo LDFLAGS: -lmp3lame
#include <lame/lame.h>
#include <stdlib.h>

static lame_global_flags *td_lame_new(int rate, int kbps) {
	lame_global_flags *g = lame_init();
	if (g == NULL) return NULL;
	lame_set_in_samplerate(g, rate);
	lame_set_out_samplerate(g, rate);
	lame_set_num_channels(g, 1);
	lame_set_mode(g, MONO);
	lame_set_brate(g, kbps);
	lame_set_VBR(g, vbr_off);
	lame_set_bWriteVbrTag(g, 0);
	lame_set_write_id3tag_automatic(g, 0);
	if (lame_init_params(g) < 0) {
		lame_close(g);
		return NULL;
	}
	return g;
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// lameInProcess is true when built with -tags lame (cgo + libmp3lame).
const lameInProcess = true

type lameEncoder struct {
	g *C.lame_global_flags
}

func newLameEncoder() (mp3Encoder, error) {
	g := C.td_lame_new(C.int(SampleRate), C.int(mp3Bitrate))
	if g == nil {
		return nil, fmt.Errorf("%w: libmp3lame initialisation failed", ErrEncoder)
	}
	return &lameEncoder{g: g}, nil
}

func (e *lameEncoder) encode(dst []byte, pcm []int16) ([]byte, error) {
	if len(pcm) == 0 {
		return dst, nil
	}
	room := dst[len(dst):cap(dst)]
	if len(room) < mp3ChunkMax {
		return dst, fmt.Errorf("%w: libmp3lame: output buffer too small", ErrEncoder)
	}
	n := C.lame_encode_buffer(e.g,
		(*C.short)(unsafe.Pointer(&pcm[0])), nil, C.int(len(pcm)),
		(*C.uchar)(unsafe.Pointer(&room[0])), C.int(len(room)))
	if n < 0 {
		return dst, fmt.Errorf("%w: libmp3lame: lame_encode_buffer returned %d", ErrEncoder, int(n))
	}
	return dst[:len(dst)+int(n)], nil
}

func (e *lameEncoder) finish(dst []byte) ([]byte, error) {
	room := dst[len(dst):cap(dst)]
	if len(room) < 7200 {
		return dst, fmt.Errorf("%w: libmp3lame: output buffer too small", ErrEncoder)
	}
	n := C.lame_encode_flush(e.g, (*C.uchar)(unsafe.Pointer(&room[0])), C.int(len(room)))
	if n < 0 {
		return dst, fmt.Errorf("%w: libmp3lame: lame_encode_flush returned %d", ErrEncoder, int(n))
	}
	return dst[:len(dst)+int(n)], nil
}

func (e *lameEncoder) release() {
	if e.g != nil {
		C.lame_close(e.g)
		e.g = nil
	}
}
