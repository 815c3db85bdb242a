package ari

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// maxBody bounds request bodies.
const maxBody = 1 << 20

// Request is a parsed ARI request: path parameters plus parameters merged
// from the query string, a form body and a JSON body (JSON wins).
type Request struct {
	HTTP *http.Request
	op   *Op
	path map[string]string
	// values holds query/form values (comma lists split for Multi params).
	values map[string][]string
	// body holds the JSON body's top-level members.
	body map[string]json.RawMessage
	// read, when not nil, records the parameters the handler looked at
	// (the parameter audit, params_test.go).
	read map[string]bool
}

func (r *Request) mark(name string) {
	if r.read != nil {
		r.read[name] = true
	}
}

func parseRequest(r *http.Request, op *Op, path map[string]string) (*Request, error) {
	req := &Request{HTTP: r, op: op, path: path, values: map[string][]string{}}
	for k, v := range r.URL.Query() {
		req.values[k] = v
	}
	if r.Body != nil && (r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodDelete) {
		data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			return nil, apiErr(400, "Unable to read request body")
		}
		if len(data) > maxBody {
			return nil, apiErr(413, "Request body too large")
		}
		ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		trimmed := bytes.TrimSpace(data)
		switch {
		case len(trimmed) == 0:
		case ctype == "application/x-www-form-urlencoded":
			form, err := url.ParseQuery(string(trimmed))
			if err != nil {
				return nil, apiErr(400, "Malformed form body")
			}
			for k, v := range form {
				req.values[k] = v
			}
		case ctype == "application/json" || ctype == "" || trimmed[0] == '{':
			if err := json.Unmarshal(trimmed, &req.body); err != nil {
				return nil, apiErr(400, "Malformed JSON body")
			}
		default:
			return nil, apiErr(415, fmt.Sprintf("Unsupported Content-Type %q", ctype))
		}
	}
	if err := req.validate(); err != nil {
		return nil, err
	}
	return req, nil
}

// validate checks required parameters, types and allowed values.
func (r *Request) validate() error {
	for _, p := range r.op.Params {
		if p.In == "path" {
			continue
		}
		if !r.Has(p.Name) {
			if p.Required {
				return apiErr(400, fmt.Sprintf("Missing required parameter: %s", p.Name))
			}
			continue
		}
		if p.In == "body" {
			continue
		}
		vals, err := r.list(p)
		if err != nil {
			return err
		}
		for _, v := range vals {
			switch p.Type {
			case "int", "long":
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return apiErr(400, fmt.Sprintf("Invalid value for %s: %q is not an integer", p.Name, v))
				}
				if p.Min != nil && n < int64(*p.Min) {
					return apiErr(400, fmt.Sprintf("Invalid value for %s: must be at least %d", p.Name, *p.Min))
				}
			case "boolean":
				if _, ok := parseBool(v); !ok {
					return apiErr(400, fmt.Sprintf("Invalid value for %s: %q is not a boolean", p.Name, v))
				}
			}
			if len(p.Allowed) > 0 && !slices.Contains(p.Allowed, v) && !slices.Contains(p.Undeclared, v) {
				return apiErr(400, fmt.Sprintf("Invalid value for %s: %q (allowed: %s)", p.Name, v, strings.Join(p.Allowed, ", ")))
			}
		}
	}
	return nil
}

func parseBool(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "yes", "true", "y", "t", "1", "on":
		return true, true
	case "no", "false", "n", "f", "0", "off":
		return false, true
	}
	return false, false
}

func (r *Request) param(name string) *Param {
	r.mark(name)
	for i := range r.op.Params {
		if r.op.Params[i].Name == name {
			return &r.op.Params[i]
		}
	}
	return nil
}

// Has reports whether a parameter was given.
func (r *Request) Has(name string) bool {
	r.mark(name)
	if _, ok := r.body[name]; ok {
		return true
	}
	_, ok := r.values[name]
	return ok
}

// Path returns a path parameter.
func (r *Request) Path(name string) string {
	r.mark(name)
	return r.path[name]
}

// list returns a parameter's values as strings, from the JSON body first.
func (r *Request) list(p Param) ([]string, error) {
	if raw, ok := r.body[p.Name]; ok {
		var arr []json.RawMessage
		if p.Multi && json.Unmarshal(raw, &arr) == nil {
			out := make([]string, 0, len(arr))
			for _, a := range arr {
				s, err := scalar(p, a)
				if err != nil {
					return nil, err
				}
				// As in a comma list: no empty or space-padded entries.
				if s = strings.TrimSpace(s); s != "" {
					out = append(out, s)
				}
			}
			return out, nil
		}
		s, err := scalar(p, raw)
		if err != nil {
			return nil, err
		}
		if p.Multi {
			return splitList(s), nil
		}
		return []string{s}, nil
	}
	vals := r.values[p.Name]
	if len(vals) == 0 {
		return nil, nil
	}
	v := vals[len(vals)-1] // Asterisk keeps the last occurrence
	if p.Multi {
		return splitList(v), nil
	}
	return []string{v}, nil
}

func splitList(s string) []string {
	parts := strings.Split(s, ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// scalar renders a JSON member as the string form of a parameter; in a JSON
// body booleans must be JSON booleans and integers JSON numbers.
func scalar(p Param, raw json.RawMessage) (string, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", apiErr(400, "Malformed JSON body")
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		if p.Type != "boolean" && p.Type != "string" {
			return "", apiErr(400, fmt.Sprintf("Invalid type for %s", p.Name))
		}
		return strconv.FormatBool(x), nil
	case float64:
		if x == float64(int64(x)) {
			return strconv.FormatInt(int64(x), 10), nil
		}
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case nil:
		return "", nil
	}
	return "", apiErr(400, fmt.Sprintf("Invalid type for %s", p.Name))
}

// String returns a parameter (or its declared default).
func (r *Request) String(name string) string {
	p := r.param(name)
	if p == nil {
		return ""
	}
	vals, _ := r.list(*p)
	if len(vals) == 0 {
		return p.Default
	}
	return vals[len(vals)-1]
}

// List returns a Multi parameter's values.
func (r *Request) List(name string) []string {
	p := r.param(name)
	if p == nil {
		return nil
	}
	vals, _ := r.list(*p)
	return vals
}

// Int returns an integer parameter (validated already) or its default.
func (r *Request) Int(name string) int {
	n, _ := strconv.Atoi(r.String(name))
	return n
}

// Bool returns a boolean parameter or its default.
func (r *Request) Bool(name string) bool {
	b, _ := parseBool(r.String(name))
	return b
}

// Object returns a body parameter as a JSON object ("variables": {...}).
// For convenience a JSON body without the wrapper is accepted too.
func (r *Request) Object(name string) (map[string]any, bool, error) {
	r.mark(name)
	raw, ok := r.body[name]
	if !ok {
		return nil, false, nil
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, true, apiErr(400, fmt.Sprintf("%s must be a JSON object", name))
	}
	return obj, true, nil
}

// rawList returns a top-level JSON body member decoded as any.
func (r *Request) rawList(name string) (any, bool, error) {
	r.mark(name)
	raw, ok := r.body[name]
	if !ok {
		return nil, false, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, true, apiErr(400, "Malformed JSON body")
	}
	return v, true, nil
}
