package recorder

// opusInProcess is true when an Opus encoder is built in. No pure-Go Opus
// encoder exists and gopkg.in/hraban/opus.v2 is not served by the module
// proxy, so ogg recording is unavailable in every build for now.
const opusInProcess = false

func newOgg(out fileOut, o *options) (backend, error) {
	return nil, &UnavailableError{Format: "ogg", Hint: oggHint}
}
