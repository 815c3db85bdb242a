//go:build opus && cgo

package recorder

/*
#cgo LDFLAGS: -lopus
#include <opus/opus.h>

static OpusEncoder *td_opus_new(opus_int32 rate, opus_int32 bitrate, int *err, opus_int32 *lookahead) {
	OpusEncoder *e = opus_encoder_create(rate, 1, OPUS_APPLICATION_VOIP, err);
	if (e == NULL || *err != OPUS_OK) {
		if (e != NULL) opus_encoder_destroy(e);
		if (*err == OPUS_OK) *err = OPUS_ALLOC_FAIL;
		return NULL;
	}
	if ((*err = opus_encoder_ctl(e, OPUS_SET_BITRATE(bitrate))) != OPUS_OK ||
	    (*err = opus_encoder_ctl(e, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE))) != OPUS_OK ||
	    (*err = opus_encoder_ctl(e, OPUS_GET_LOOKAHEAD(lookahead))) != OPUS_OK) {
		opus_encoder_destroy(e);
		return NULL;
	}
	return e;
}
*/
import "C"

import (
	"fmt"
	"slices"
	"unsafe"
)

// opusInProcess is true when built with -tags opus (cgo + libopus).
const opusInProcess = true

// libopusEncoder is libopus at 8 kHz mono, OPUS_APPLICATION_VOIP,
// opusBitrate, 20 ms frames.
type libopusEncoder struct {
	e         *C.OpusEncoder
	lookahead int // 8 kHz samples
}

func newOpusEncoder() (opusEncoder, error) {
	var cerr C.int
	var la C.opus_int32
	e := C.td_opus_new(C.opus_int32(SampleRate), C.opus_int32(opusBitrate), &cerr, &la)
	if e == nil {
		return nil, fmt.Errorf("%w: libopus: %s", ErrEncoder, C.GoString(C.opus_strerror(cerr)))
	}
	return &libopusEncoder{e: e, lookahead: int(la)}, nil
}

func (e *libopusEncoder) preSkip() int { return e.lookahead * opusGranulePerSample }

func (e *libopusEncoder) vendor() string { return C.GoString(C.opus_get_version_string()) }

func (e *libopusEncoder) encode(dst []byte, pcm []int16) ([]byte, error) {
	if len(pcm) != opusFrame {
		return dst, fmt.Errorf("%w: libopus: frame of %d samples", ErrEncoder, len(pcm))
	}
	dst = slices.Grow(dst, opusMaxPacket)
	room := dst[len(dst):cap(dst)]
	n := C.opus_encode(e.e, (*C.opus_int16)(unsafe.Pointer(&pcm[0])), C.int(len(pcm)),
		(*C.uchar)(unsafe.Pointer(&room[0])), C.opus_int32(len(room)))
	if n < 0 {
		return dst, fmt.Errorf("%w: libopus: opus_encode: %s", ErrEncoder, C.GoString(C.opus_strerror(C.int(n))))
	}
	return dst[:len(dst)+int(n)], nil
}

func (e *libopusEncoder) release() {
	if e.e != nil {
		C.opus_encoder_destroy(e.e)
		e.e = nil
	}
}
