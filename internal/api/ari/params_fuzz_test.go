package ari

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// paramsOp declares a parameter of every kind request.go parses.
var paramsOp = &Op{Method: "POST", Path: "/x", Params: []Param{
	{Name: "req", In: "query", Type: "string", Required: true},
	{Name: "n", In: "query", Type: "int", Min: intp(0), Default: "5"},
	{Name: "big", In: "query", Type: "long"},
	{Name: "b", In: "query", Type: "boolean", Default: "false"},
	{Name: "dir", In: "query", Type: "string", Default: "both", Allowed: []string{"both", "in", "out"}},
	{Name: "ids", In: "query", Type: "string", Multi: true},
	{Name: "variables", In: "body", Type: "containers"},
}}

// FuzzARIParams feeds query strings, content types and bodies to ARI's
// parameter parsing (query, form and JSON bodies merged) and checks what
// handlers rely on: it never panics, refuses with a 4xx *Error, and what it
// accepts reads back validated (required present, integers above their
// minimum, booleans and allowed values as declared, lists without empty
// entries), the same on every read.
func FuzzARIParams(f *testing.F) {
	f.Add("req=x&n=3&b=yes&dir=in&ids=a,b,,c", "", []byte(nil))
	f.Add("req=x", "application/json", []byte(`{"n": 7, "b": true, "ids": ["a", "b"], "variables": {"A": "1"}}`))
	f.Add("", "application/x-www-form-urlencoded", []byte("req=y&n=-1"))
	f.Add("req=x&n=1.5", "application/json", []byte(`{"n": 1e20}`))
	f.Add("req=x", "text/plain", []byte("n=1"))
	f.Add("req=x&big=9223372036854775808", "", []byte(`{"b": "maybe", "dir": null}`))
	f.Add("req=x&n=2&n=3", "application/json; charset=utf-8", []byte(`{"ids": "a, b", "req": 1}`))
	f.Fuzz(func(t *testing.T, query, ctype string, body []byte) {
		hr := httptest.NewRequest("POST", "/ari/x", bytes.NewReader(body))
		hr.URL.RawQuery = query
		if ctype != "" {
			hr.Header.Set("Content-Type", ctype)
		}
		r, err := parseRequest(hr, paramsOp, map[string]string{})
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Code < 400 || ae.Code > 499 {
				t.Fatalf("refusal %v is not a 4xx *Error", err)
			}
			return
		}
		if !r.Has("req") {
			t.Fatal("accepted without the required parameter")
		}
		if r.Has("n") {
			v, err := strconv.ParseInt(r.String("n"), 10, 64)
			if err != nil || v < 0 || int64(r.Int("n")) != v {
				t.Fatalf("n %q accepted, read as %d", r.String("n"), r.Int("n"))
			}
		} else if r.Int("n") != 5 {
			t.Fatalf("n absent, read as %d, not its default", r.Int("n"))
		}
		if r.Has("big") {
			if _, err := strconv.ParseInt(r.String("big"), 10, 64); err != nil {
				t.Fatalf("big %q accepted: %v", r.String("big"), err)
			}
		}
		if _, ok := parseBool(r.String("b")); !ok {
			t.Fatalf("b %q accepted", r.String("b"))
		}
		if d := r.String("dir"); !slices.Contains(paramsOp.Params[4].Allowed, d) {
			t.Fatalf("dir %q accepted", d)
		}
		ids := r.List("ids")
		for _, id := range ids {
			if id == "" || strings.TrimSpace(id) != id {
				t.Fatalf("list entry %q in %q", id, ids)
			}
		}
		if !slices.Equal(ids, r.List("ids")) || r.String("req") != r.String("req") || r.Bool("b") != r.Bool("b") {
			t.Fatal("reads differ")
		}
		if _, _, err := r.Object("variables"); err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != 400 {
				t.Fatalf("Object: %v", err)
			}
		}
	})
}
