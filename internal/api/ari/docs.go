package ari

import (
	"net/http"
	"strings"
)

const (
	swaggerVersion = "1.2"
	apiVersion     = "2.0.0"
)

type apiListing struct {
	APIVersion     string       `json:"apiVersion"`
	SwaggerVersion string       `json:"swaggerVersion"`
	BasePath       string       `json:"basePath"`
	APIs           []apiSummary `json:"apis"`
}

type apiSummary struct {
	Path        string `json:"path"`
	Description string `json:"description"`
}

type declaration struct {
	APIVersion     string                  `json:"apiVersion"`
	SwaggerVersion string                  `json:"swaggerVersion"`
	BasePath       string                  `json:"basePath"`
	ResourcePath   string                  `json:"resourcePath"`
	APIs           []apiPath               `json:"apis"`
	Models         map[string]swaggerModel `json:"models"`
}

type apiPath struct {
	Path        string      `json:"path"`
	Description string      `json:"description"`
	Operations  []operation `json:"operations"`
}

type operation struct {
	HTTPMethod     string          `json:"httpMethod"`
	Summary        string          `json:"summary"`
	Nickname       string          `json:"nickname"`
	ResponseClass  string          `json:"responseClass"`
	Upgrade        string          `json:"upgrade,omitempty"`
	WebsocketProto string          `json:"websocketProtocol,omitempty"`
	Parameters     []swaggerParam  `json:"parameters"`
	ErrorResponses []errorResponse `json:"errorResponses,omitempty"`
}

type swaggerParam struct {
	Name            string           `json:"name"`
	Description     string           `json:"description,omitempty"`
	ParamType       string           `json:"paramType"`
	Required        bool             `json:"required"`
	AllowMultiple   bool             `json:"allowMultiple"`
	DataType        string           `json:"dataType"`
	DefaultValue    any              `json:"defaultValue,omitempty"`
	AllowableValues *allowableValues `json:"allowableValues,omitempty"`
}

type allowableValues struct {
	ValueType string   `json:"valueType"`
	Values    []string `json:"values,omitempty"`
	Min       *int     `json:"min,omitempty"`
}

type errorResponse struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// basePath is the absolute base ari-client needs: http://<Host>/ari.
func basePath(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/ari"
}

func (s *Server) serveDocs(w http.ResponseWriter, r *http.Request, file string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		writeError(w, apiErr(http.StatusMethodNotAllowed, "Method not allowed"))
		return
	}
	if file == "resources.json" {
		writeJSON(w, http.StatusOK, s.listing(r))
		return
	}
	name, ok := strings.CutSuffix(file, ".json")
	if ok {
		for _, res := range s.resources {
			if res.Name == name {
				writeJSON(w, http.StatusOK, s.declaration(r, res))
				return
			}
		}
	}
	writeError(w, apiErr(http.StatusNotFound, "Resource not found"))
}

func (s *Server) listing(r *http.Request) apiListing {
	l := apiListing{APIVersion: "12.0.0", SwaggerVersion: swaggerVersion, BasePath: basePath(r)}
	for _, res := range s.resources {
		l.APIs = append(l.APIs, apiSummary{Path: "/api-docs/" + res.Name + ".{format}", Description: res.Description})
	}
	return l
}

// declaration generates one resource's Swagger declaration from the route
// table: operations grouped by path in declaration order, plus models.
func (s *Server) declaration(r *http.Request, res *Resource) declaration {
	d := declaration{
		APIVersion:     apiVersion,
		SwaggerVersion: swaggerVersion,
		BasePath:       basePath(r),
		ResourcePath:   "/api-docs/" + res.Name + ".{format}",
		APIs:           []apiPath{},
		Models:         map[string]swaggerModel{},
	}
	index := map[string]int{}
	for _, op := range res.Ops {
		i, ok := index[op.Path]
		if !ok {
			i = len(d.APIs)
			index[op.Path] = i
			d.APIs = append(d.APIs, apiPath{Path: op.Path, Description: res.Description})
		}
		d.APIs[i].Operations = append(d.APIs[i].Operations, toOperation(op))
	}
	names := res.Models
	if res.Name == "events" {
		names = append(append([]string{"Message", "MissingParams", "Event"}, names...), eventNames()...)
	}
	for _, n := range names {
		if m, ok := buildModel(n); ok {
			d.Models[n] = m
		}
	}
	return d
}

func toOperation(op Op) operation {
	o := operation{
		HTTPMethod:    op.Method,
		Summary:       op.Summary,
		Nickname:      op.Nickname,
		ResponseClass: op.Returns,
		Parameters:    []swaggerParam{},
	}
	if o.ResponseClass == "" {
		o.ResponseClass = "void"
	}
	if op.Upgrade {
		o.Upgrade = "websocket"
		o.WebsocketProto = "ari"
	}
	for _, p := range op.Params {
		sp := swaggerParam{
			Name: p.Name, Description: p.Description, ParamType: p.In,
			Required: p.Required, AllowMultiple: p.Multi, DataType: p.Type,
		}
		if p.Default != "" {
			sp.DefaultValue = p.Default
		}
		if len(p.Allowed) > 0 {
			sp.AllowableValues = &allowableValues{ValueType: "LIST", Values: p.Allowed}
		} else if p.Min != nil {
			sp.AllowableValues = &allowableValues{ValueType: "RANGE", Min: p.Min}
		}
		o.Parameters = append(o.Parameters, sp)
	}
	for _, e := range op.Errors {
		o.ErrorResponses = append(o.ErrorResponses, errorResponse(e))
	}
	return o
}
