// Package dtmf implements RFC 4733 telephone-events for DTMF digits: the
// 4-byte payload codec (Event), a receive-side Detector that turns a stream of
// telephone-event RTP packets into digits, and a Sender that generates the
// packet sequence for transmitting one digit.
//
// Only the 16 DTMF events (0-15: 0-9, *, #, A-D) are mapped to digits. The
// package is pure, does no I/O, starts no goroutines and does not allocate on
// its hot paths (Unmarshal, MarshalTo, Detector.Push/Flush, Sender.Next).
package dtmf

import "encoding/binary"

// PayloadSize is the size of one RFC 4733 telephone-event payload.
const PayloadSize = 4

// MaxVolume is the largest value of the 6-bit volume field (-63 dBm0).
const MaxVolume = 63

// Event is one RFC 4733 telephone-event payload (§2.3):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     event     |E|R| volume    |          duration             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Event struct {
	Event    uint8  // event code; 0-15 are DTMF digits
	End      bool   // E bit: this packet ends the event
	Volume   uint8  // power level in -dBm0, 0-63 (DTMF only)
	Duration uint16 // duration so far, in RTP timestamp units
}

// Unmarshal parses the first 4 bytes of payload into e. It returns
// ErrShortPayload (leaving e unchanged) if payload is shorter than 4 bytes.
// Bytes beyond the first 4 are ignored, as is the reserved R bit. Event codes
// are not validated: any value is accepted here, the Detector ignores non-DTMF
// codes.
func (e *Event) Unmarshal(payload []byte) error {
	if len(payload) < PayloadSize {
		return ErrShortPayload
	}
	e.Event = payload[0]
	e.End = payload[1]&0x80 != 0
	e.Volume = payload[1] & 0x3F
	e.Duration = binary.BigEndian.Uint16(payload[2:4])
	return nil
}

// MarshalTo writes the 4-byte payload for e into b and returns 4. The R bit is
// always written as 0. It returns ErrShortBuffer if len(b) < 4 and
// ErrInvalidVolume if e.Volume > 63; b is not modified on error.
func (e *Event) MarshalTo(b []byte) (int, error) {
	if len(b) < PayloadSize {
		return 0, ErrShortBuffer
	}
	if e.Volume > MaxVolume {
		return 0, ErrInvalidVolume
	}
	b[0] = e.Event
	b[1] = e.Volume
	if e.End {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:4], e.Duration)
	return PayloadSize, nil
}

const digits = "0123456789*#ABCD"

// DigitToEvent maps a DTMF digit (0-9, *, #, A-D or a-d) to its RFC 4733
// event code (0-15).
func DigitToEvent(r rune) (uint8, bool) {
	switch {
	case r >= '0' && r <= '9':
		return uint8(r - '0'), true
	case r == '*':
		return 10, true
	case r == '#':
		return 11, true
	case r >= 'A' && r <= 'D':
		return uint8(r-'A') + 12, true
	case r >= 'a' && r <= 'd':
		return uint8(r-'a') + 12, true
	}
	return 0, false
}

// EventToDigit maps an RFC 4733 event code 0-15 to its DTMF digit; letters are
// returned in upper case. Other codes (flash, tones, ...) report false.
func EventToDigit(e uint8) (rune, bool) {
	if e >= uint8(len(digits)) {
		return 0, false
	}
	return rune(digits[e]), true
}
