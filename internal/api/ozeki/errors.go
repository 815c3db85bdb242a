package ozeki

import (
	"errors"
	"fmt"

	"github.com/tapedeck/tapedeck/internal/call"
)

// Error is an Ozeki status code with its message.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s", e.Code, e.Message) }

// Ozeki's messages (its status codes page), kept in one table.
const (
	msg304 = "Authentication required"
	msg305 = "Authentication failed, bad username or password"
	msg306 = "User is not allowed to use API in ACL"
	msg307 = "Use API from this address is forbidden"
)

// 300: the request could not be parsed.
func errParse(what string) *Error {
	return &Error{Code: 300, Message: fmt.Sprintf("Error occured during parsing message: '%s'", what)}
}

// 301: no such command.
func errNotImplemented(cmd string) *Error {
	return &Error{Code: 301, Message: fmt.Sprintf("Not implemented command: '%s'", cmd)}
}

// 302: a parameter is missing or invalid.
func errParam(param, cmd string) *Error {
	return &Error{Code: 302, Message: fmt.Sprintf("Missing or invalid parameter '%s' for command '%s'", param, cmd)}
}

// errParamWhy is 302 with the reason after the message.
func errParamWhy(param, cmd, why string) *Error {
	e := errParam(param, cmd)
	e.Message += ": " + why
	return e
}

// 303: the command cannot be used in this state.
func errHere(cmd, why string) *Error {
	return &Error{Code: 303, Message: fmt.Sprintf("Command '%s' cannot be used here: %s", cmd, why)}
}

// 601: no call with that id.
func errNoCall(id string) *Error {
	return &Error{Code: 601, Message: fmt.Sprintf("Call not found with ID '%s'", id)}
}

// fromCall maps the call model's error kinds to Ozeki's codes.
func fromCall(err error, cmd, id string) *Error {
	switch {
	case errors.Is(err, call.ErrNotFound):
		return errNoCall(id)
	case errors.Is(err, call.ErrInvalidArgument):
		return &Error{Code: 302, Message: fmt.Sprintf("Missing or invalid parameter for command '%s': %v", cmd, err)}
	}
	return errHere(cmd, err.Error())
}
