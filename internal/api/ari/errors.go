package ari

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/tapedeck/tapedeck/internal/call"
)

// Error is an error of the ARI layer itself (authentication, routing,
// parameter parsing) with its HTTP status.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func apiErr(code int, msg string) *Error { return &Error{Code: code, Msg: msg} }

// kindCodes is the one table from the call model's error kinds to ARI's
// statuses, most specific kind first. An operation whose Asterisk status
// for a kind differs declares it in Op.Codes, which wins over this table.
var kindCodes = []struct {
	kind error
	code int
}{
	{call.ErrChannelState, http.StatusPreconditionFailed}, // 412 Channel in invalid state
	{call.ErrNotFound, http.StatusNotFound},
	{call.ErrNotInApplication, http.StatusConflict},
	{call.ErrInvalidState, http.StatusConflict},
	{call.ErrConflict, http.StatusConflict},
	{call.ErrInvalidArgument, http.StatusBadRequest},
	{call.ErrUnsupported, http.StatusUnprocessableEntity},
	{call.ErrUnavailable, http.StatusServiceUnavailable},
	{call.ErrNotImplemented, http.StatusNotImplemented},
}

// statusOf is the HTTP status for err in operation op (nil: no operation).
func statusOf(op *Op, err error) int {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	if op != nil {
		for _, kc := range op.Codes {
			if errors.Is(err, kc.Kind) {
				return kc.Code
			}
		}
	}
	for _, kc := range kindCodes {
		if errors.Is(err, kc.kind) {
			return kc.code
		}
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache, no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// writeError answers {"message": ...} with the error's status.
func writeError(w http.ResponseWriter, err error) { writeOpError(w, nil, err) }

// writeOpError answers {"message": ...} with the status of err in op.
func writeOpError(w http.ResponseWriter, op *Op, err error) {
	code := statusOf(op, err)
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="Asterisk REST Interface"`)
	}
	writeJSON(w, code, map[string]string{"message": err.Error()})
}

// WriteError answers an ARI error: the status and {"message": msg}, as
// Asterisk does (for handlers outside this package, e.g. the cluster's).
func WriteError(w http.ResponseWriter, code int, msg string) { writeError(w, apiErr(code, msg)) }
