//go:build !opus || !cgo

package recorder

// opusInProcess is true when built with -tags opus (cgo + libopus). No
// pure-Go Opus encoder exists and gopkg.in/hraban/opus.v2 is not served by
// the module proxy, so without the tag ogg recording is unavailable.
const opusInProcess = false

func newOpusEncoder() (opusEncoder, error) {
	return nil, &UnavailableError{Format: "ogg", Hint: oggHint}
}
