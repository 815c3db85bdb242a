package call

import (
	"encoding/binary"

	"github.com/tapedeck/tapedeck/internal/codec"
	"github.com/tapedeck/tapedeck/internal/media/audio"
)

// slin over RTP (external media with encapsulation rtp and a slin format):
// L16, 16-bit big-endian samples (RFC 3551), at the format's rate, with
// Asterisk's payload types for each rate (main/rtp_engine.c's static
// payloads). The channel's core audio stays 8 kHz G.711-decoded PCM:
// what it sends is resampled up and packed by l16Out, what it receives is
// unpacked and resampled down by l16In.

// rtpSlinFormats are the slin formats over RTP: payload type and rate.
var rtpSlinFormats = map[string]struct {
	pt   uint8
	rate int
}{
	"slin": {10, 8000}, "slin12": {122, 12000}, "slin16": {118, 16000}, "slin24": {123, 24000},
	"slin32": {124, 32000}, "slin44": {125, 44100}, "slin48": {126, 48000}, "slin96": {127, 96000},
	"slin192": {96, 192000},
}

// l16In decodes received L16 to 8 kHz PCM (the RTP reader goroutine only).
type l16In struct {
	pt   uint8
	rate int
	down *audio.Resampler
	in   []int16
	out  []int16
}

func newL16In(pt uint8, rate int) *l16In {
	l := &l16In{pt: pt, rate: rate}
	if rate != audio.SampleRate {
		l.down = audio.NewResampler(rate, audio.SampleRate)
	}
	return l
}

// decode returns the payload as 8 kHz PCM and the RTP timestamp in 8 kHz
// units (the core's play-out buffers position frames by it).
func (l *l16In) decode(payload []byte, ts uint32) ([]int16, uint32) {
	l.in = l.in[:0]
	for i := 0; i+1 < len(payload); i += 2 {
		l.in = append(l.in, int16(binary.BigEndian.Uint16(payload[i:])))
	}
	if l.down == nil {
		return l.in, ts
	}
	l.out = l.down.Process(l.out[:0], l.in)
	return l.out, uint32(uint64(ts) * audio.SampleRate / uint64(l.rate))
}

// l16Out wraps the channel's RTP session: each frame the channel sends
// (µ-law, its codec for the core) leaves as L16 at the format's rate.
type l16Out struct {
	Media
	rate int
	up   *audio.Resampler
	pcm  []int16
	upd  []int16
	out  []byte
}

func newL16Out(m Media, rate int) *l16Out {
	l := &l16Out{Media: m, rate: rate}
	if rate != audio.SampleRate {
		l.up = audio.NewResampler(audio.SampleRate, rate)
	}
	return l
}

// WriteAudio implements Media.
func (l *l16Out) WriteAudio(payload []byte, _ uint32) error {
	if cap(l.pcm) < len(payload) {
		l.pcm = make([]int16, len(payload))
	}
	pcm := l.pcm[:len(payload)]
	codec.DecodeMulaw(pcm, payload)
	if l.up != nil {
		l.upd = l.up.Process(l.upd[:0], pcm)
		pcm = l.upd
	}
	l.out = l.out[:0]
	for _, v := range pcm {
		l.out = binary.BigEndian.AppendUint16(l.out, uint16(v))
	}
	return l.Media.WriteAudio(l.out, uint32(len(pcm)))
}
