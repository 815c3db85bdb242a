//go:build !lame || !cgo

package recorder

// lameInProcess is true when built with -tags lame (cgo + libmp3lame).
const lameInProcess = false

func newLameEncoder() (mp3Encoder, error) {
	return nil, &UnavailableError{Format: "mp3", Hint: mp3Hint}
}
