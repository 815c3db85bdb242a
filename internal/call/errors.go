// Package call is tapedeck's call model: channels (one per call leg), their
// Asterisk states, variables and Stasis applications, and the Manager that
// the APIs call. It joins SIP dialogs to RTP sessions and publishes ARI
// events on the bus.
package call

import "fmt"

// Error is an operation error carrying the HTTP status the APIs answer
// with (ARI's conventions: 400, 404, 409, 412, 422).
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func errf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Common errors, worded as Asterisk words them.
var (
	ErrChannelNotFound = &Error{404, "Channel not found"}
	ErrNotInStasis     = &Error{409, "Channel not in Stasis application"}
	ErrChannelState    = &Error{412, "Channel in invalid state"}
)
