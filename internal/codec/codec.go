package codec

import "strings"

// Codec describes an audio codec usable as an RTP payload format. Encode and
// Decode have the semantics of EncodeMulaw/DecodeMulaw: they write into
// caller-owned slices and return the number of samples processed.
//
// G.711 produces exactly one byte per sample, so a 20 ms frame at 8000 Hz is
// 160 samples and 160 payload bytes.
type Codec struct {
	Name        string // RTP/SDP encoding name, e.g. "PCMU"
	PayloadType uint8  // static RTP payload type (RFC 3551)
	ClockRate   uint32 // RTP clock rate in Hz
	Encode      func(dst []byte, src []int16) int
	Decode      func(dst []int16, src []byte) int
}

var (
	// PCMU is G.711 µ-law, RTP static payload type 0.
	PCMU = Codec{
		Name:        "PCMU",
		PayloadType: 0,
		ClockRate:   8000,
		Encode:      EncodeMulaw,
		Decode:      DecodeMulaw,
	}
	// PCMA is G.711 A-law, RTP static payload type 8.
	PCMA = Codec{
		Name:        "PCMA",
		PayloadType: 8,
		ClockRate:   8000,
		Encode:      EncodeAlaw,
		Decode:      DecodeAlaw,
	}
)

// ByName returns the codec whose encoding name matches name, ignoring case
// (SDP encoding names are case-insensitive, RFC 4855 §3).
func ByName(name string) (Codec, bool) {
	switch {
	case strings.EqualFold(name, PCMU.Name):
		return PCMU, true
	case strings.EqualFold(name, PCMA.Name):
		return PCMA, true
	}
	return Codec{}, false
}

// ByPayloadType returns the codec registered for a static RTP payload type.
// Dynamic payload types (96-127) must be resolved through SDP by the caller.
func ByPayloadType(pt uint8) (Codec, bool) {
	switch pt {
	case PCMU.PayloadType:
		return PCMU, true
	case PCMA.PayloadType:
		return PCMA, true
	}
	return Codec{}, false
}
