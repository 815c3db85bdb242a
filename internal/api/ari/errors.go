package ari

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/tapedeck/tapedeck/internal/call"
)

// Error is an API error with its HTTP status.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func apiErr(code int, msg string) *Error { return &Error{Code: code, Msg: msg} }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache, no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// writeError answers {"message": ...} with the error's status.
func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var ae *Error
	var ce *call.Error
	switch {
	case errors.As(err, &ae):
		code = ae.Code
	case errors.As(err, &ce):
		code = ce.Code
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="Asterisk REST Interface"`)
	}
	writeJSON(w, code, map[string]string{"message": err.Error()})
}
