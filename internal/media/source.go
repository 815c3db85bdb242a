// Package media holds the media building blocks of tapedeck: sources of 8 kHz
// mono 16-bit PCM for playback (tones, prompts, files), mixing and taps.
package media

import "errors"

// ErrNotSeekable is returned by Seek on sources that cannot be repositioned.
var ErrNotSeekable = errors.New("media: source is not seekable")

// Source produces 8 kHz mono linear PCM. Read fills pcm (normally one 20 ms
// frame of 160 samples) and returns how many samples it wrote; at the end it
// returns 0, io.EOF (a short final read returns n>0, nil, then 0, io.EOF).
// Read must not allocate in steady state.
type Source interface {
	Read(pcm []int16) (int, error)
}

// Seeker is implemented by sources that support restart/forward/reverse.
// Offsets are in samples (8 kHz); whence as in io.Seeker. Seeking beyond the
// end clamps to the end; before the start clamps to 0.
type Seeker interface {
	Seek(offset int64, whence int) (int64, error)
}

// Durationer reports a finite source's total length in samples (-1: infinite).
type Durationer interface {
	Length() int64
}
