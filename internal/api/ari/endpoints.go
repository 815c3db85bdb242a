package ari

import (
	"context"
	"strings"
)

// Endpoint is ARI's Endpoint model: a user's SIP phone (PJSIP/<sip
// username>), online while registered.
type Endpoint struct {
	Technology string   `json:"technology"`
	Resource   string   `json:"resource"`
	State      string   `json:"state,omitempty"`
	ChannelIDs []string `json:"channel_ids"`
}

// EndpointLister lists the node's endpoints (the users' phones), without
// channel_ids (filled in here).
type EndpointLister func(ctx context.Context) ([]Endpoint, error)

func (s *Server) endpoints(r *Request) ([]Endpoint, error) {
	if s.opts.Endpoints == nil {
		return []Endpoint{}, nil
	}
	eps, err := s.opts.Endpoints(r.HTTP.Context())
	if err != nil {
		return nil, err
	}
	chans := s.calls.Channels()
	for i := range eps {
		eps[i].ChannelIDs = []string{}
		prefix := eps[i].Technology + "/" + eps[i].Resource + "-"
		for _, c := range chans {
			if strings.HasPrefix(c.Name, prefix) {
				eps[i].ChannelIDs = append(eps[i].ChannelIDs, string(c.ID))
			}
		}
	}
	return eps, nil
}

func (s *Server) endpointsResource() *Resource {
	return &Resource{
		Name:        "endpoints",
		Description: "Endpoint resources",
		Models:      []string{"Endpoint"},
		Ops: []Op{
			{Method: "GET", Path: "/endpoints", Nickname: "list", Summary: "List all endpoints.", Returns: "List[Endpoint]",
				Handler: func(r *Request) (any, error) { return s.endpoints(r) }},
			{Method: "GET", Path: "/endpoints/{tech}", Nickname: "listByTech", Summary: "List available endoints for a given endpoint technology.",
				Returns: "List[Endpoint]", Params: []Param{pathParam("tech", "Technology of the endpoints (sip,iax2,...)")},
				Errors: []ErrorResponse{{404, "Endpoints not found"}},
				Handler: func(r *Request) (any, error) {
					eps, err := s.endpoints(r)
					if err != nil {
						return nil, err
					}
					out := []Endpoint{}
					for _, e := range eps {
						if strings.EqualFold(e.Technology, r.Path("tech")) {
							out = append(out, e)
						}
					}
					// As Asterisk: a technology that is not there is 404, one
					// without endpoints an empty list. tapedeck's is PJSIP.
					if len(out) == 0 && !strings.EqualFold(r.Path("tech"), "PJSIP") {
						return nil, apiErr(404, "No Endpoints found - invalid tech "+r.Path("tech"))
					}
					return out, nil
				}},
			{Method: "GET", Path: "/endpoints/{tech}/{resource}", Nickname: "get", Summary: "Details for an endpoint.", Returns: "Endpoint",
				Params: []Param{pathParam("tech", "Technology of the endpoint"), pathParam("resource", "ID of the endpoint")},
				Errors: []ErrorResponse{{400, "Invalid parameters for sending a message."}, {404, "Endpoints not found"}},
				Handler: func(r *Request) (any, error) {
					eps, err := s.endpoints(r)
					if err != nil {
						return nil, err
					}
					for _, e := range eps {
						if strings.EqualFold(e.Technology, r.Path("tech")) && e.Resource == r.Path("resource") {
							return e, nil
						}
					}
					return nil, apiErr(404, "Endpoints not found")
				}},
		},
	}
}
