package dtmf

import "errors"

// Sentinel errors returned by this package. Compare with errors.Is.
var (
	// ErrShortPayload: a telephone-event payload shorter than 4 bytes.
	ErrShortPayload = errors.New("dtmf: telephone-event payload shorter than 4 bytes")
	// ErrShortBuffer: MarshalTo was given fewer than 4 bytes.
	ErrShortBuffer = errors.New("dtmf: buffer shorter than 4 bytes")
	// ErrInvalidVolume: Volume does not fit in the 6-bit field (0-63).
	ErrInvalidVolume = errors.New("dtmf: volume out of range 0-63")
	// ErrInvalidDigit: the rune is not one of 0-9, *, #, A-D (a-d).
	ErrInvalidDigit = errors.New("dtmf: invalid DTMF digit")
	// ErrInvalidDuration: the tone duration is zero, negative or shorter
	// than one RTP timestamp unit.
	ErrInvalidDuration = errors.New("dtmf: invalid event duration")
	// ErrDurationTooLong: the duration does not fit in one 16-bit event
	// duration field (65535 timestamp units, ~8.19 s at 8000 Hz).
	ErrDurationTooLong = errors.New("dtmf: event duration exceeds 65535 timestamp units")
	// ErrInvalidClockRate: a clock rate of 0.
	ErrInvalidClockRate = errors.New("dtmf: invalid clock rate")
	// ErrInvalidPtime: a packetisation interval that is not positive or does
	// not fit in the duration field.
	ErrInvalidPtime = errors.New("dtmf: invalid packetisation interval")
)
