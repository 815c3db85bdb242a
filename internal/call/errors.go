package call

import (
	"errors"
	"fmt"
)

// Error kinds.
var (
	// ErrNotFound: the channel, bridge, playback or recording does not exist.
	ErrNotFound = errors.New("not found")
	// ErrNotInApplication: the channel is not in a Stasis application.
	ErrNotInApplication = errors.New("not in application")
	// ErrInvalidState: the object exists but its state does not allow the
	// operation (an unanswered channel, a finished playback).
	ErrInvalidState = errors.New("invalid state")
	// ErrConflict: the operation clashes with another object (an id or a
	// recording name in use, a channel busy recording, a full queue).
	ErrConflict = errors.New("conflict")
	// ErrInvalidArgument: a parameter is missing or malformed.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrUnsupported: a well-formed request this node cannot honour (an
	// unknown format, a format that cannot be appended to).
	ErrUnsupported = errors.New("unsupported")
	// ErrUnavailable: a resource the operation needs is exhausted or not
	// configured (RTP ports, the SIP dialer).
	ErrUnavailable = errors.New("unavailable")
	// ErrNotImplemented: a combination of parameters the API declares and
	// the server does not implement (Asterisk's 501).
	ErrNotImplemented = errors.New("not implemented")
)

// Finer kinds, each also its broader kind (errors.Is matches both): APIs
// that answer differently for the object that is missing can tell them
// apart (ARI's bridges addChannel: a missing channel is 400, a missing
// bridge 404).
var (
	ErrChannelNotFound   = subKind(ErrNotFound, "channel not found")
	ErrBridgeNotFound    = subKind(ErrNotFound, "bridge not found")
	ErrPlaybackNotFound  = subKind(ErrNotFound, "playback not found")
	ErrRecordingNotFound = subKind(ErrNotFound, "recording not found")
	ErrVariableNotFound  = subKind(ErrNotFound, "variable not found")
	// ErrChannelState: the channel's Asterisk state does not allow the
	// media operation (not answered on an outbound leg).
	ErrChannelState = subKind(ErrInvalidState, "channel in invalid state")
)

type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func subKind(parent error, msg string) error { return &kindError{kind: parent, msg: msg} }

// errf makes an error of a kind whose message is the detail alone, worded
// as Asterisk words it (APIs show the message to clients as it is).
func errf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// Errors worded as Asterisk words them.
var (
	errChannelNotFound = errf(ErrChannelNotFound, "Channel not found")
	errNotInStasis     = errf(ErrNotInApplication, "Channel not in Stasis application")
	errChannelState    = errf(ErrChannelState, "Channel in invalid state")
)
