// Package ari serves the Asterisk REST Interface: a declarative route table
// (one Resource per ARI resource) from which both the HTTP routing and the
// Swagger 1.2 declarations under /ari/api-docs are generated, plus the
// events WebSocket.
package ari

import "net/http"

// Param declares one operation parameter.
type Param struct {
	Name     string
	In       string // "path", "query", "body"
	Type     string // string, int, long, boolean, object, or a model name
	Required bool
	Multi    bool // allowMultiple: comma list in a query, array in a JSON body
	Default  string
	Allowed  []string
	// Undeclared are values taken besides Allowed that Asterisk's API
	// description does not list but its handler accepts (externalMedia's
	// direction: in, out); the description keeps Asterisk's list.
	Undeclared  []string
	Min         *int
	Description string
}

// ErrorResponse documents an error status of an operation.
type ErrorResponse struct {
	Code   int
	Reason string
}

// KindCode overrides, for one operation, the status that a call error kind
// answers with (errors.go's table), where Asterisk's status for that
// operation differs.
type KindCode struct {
	Kind error
	Code int
}

// Op is one operation: a method on a path.
type Op struct {
	Method   string
	Path     string // relative to /ari, with {name} path parameters
	Nickname string
	Summary  string
	Params   []Param
	// Returns is the Swagger responseClass: "void", a model, "List[Model]",
	// or "binary".
	Returns string
	Errors  []ErrorResponse
	// Codes are this operation's exceptions to the kind table (errors.go),
	// first match wins.
	Codes []KindCode
	// Upgrade marks the events WebSocket operation.
	Upgrade bool
	Handler Handler
}

// Handler runs an operation. It returns the response body (nil for void)
// or an error: an *Error carries its HTTP status, a call error kind is
// mapped by the operation's Errors and then the kind table (errors.go).
type Handler func(r *Request) (any, error)

// Created wraps a body that is answered 201 with a Location header.
type Created struct {
	Location string
	Body     any
}

// Raw is a body written as is (e.g. a file).
type Raw struct {
	ContentType string
	Serve       func(w http.ResponseWriter, r *http.Request)
}

// Resource is one ARI resource: one Swagger declaration.
type Resource struct {
	Name        string // channels, bridges, ... (the api-docs file name)
	Description string
	Ops         []Op
	// Models are the model names this declaration carries.
	Models []string
}

func intp(i int) *int { return &i }

// Common parameter helpers keep declarations short.
func pathParam(name, desc string) Param {
	return Param{Name: name, In: "path", Type: "string", Required: true, Description: desc}
}

func query(name, typ string, required bool, desc string) Param {
	return Param{Name: name, In: "query", Type: typ, Required: required, Description: desc}
}
