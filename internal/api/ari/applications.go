package ari

import (
	"strings"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/event"
)

type applicationJSON struct {
	Name             string           `json:"name"`
	ChannelIDs       []string         `json:"channel_ids"`
	BridgeIDs        []string         `json:"bridge_ids"`
	EndpointIDs      []string         `json:"endpoint_ids"`
	DeviceNames      []string         `json:"device_names"`
	EventsAllowed    []map[string]any `json:"events_allowed"`
	EventsDisallowed []map[string]any `json:"events_disallowed"`
}

func appJSON(info event.AppInfo) applicationJSON {
	a := applicationJSON{Name: info.Name, ChannelIDs: []string{}, BridgeIDs: []string{}, EndpointIDs: []string{}, DeviceNames: []string{},
		EventsAllowed: info.Allowed, EventsDisallowed: info.Disallowed}
	if a.EventsAllowed == nil {
		a.EventsAllowed = []map[string]any{}
	}
	if a.EventsDisallowed == nil {
		a.EventsDisallowed = []map[string]any{}
	}
	for _, src := range info.Sources {
		scheme, id, _ := strings.Cut(src, ":")
		switch scheme {
		case "channel":
			a.ChannelIDs = append(a.ChannelIDs, id)
		case "bridge":
			a.BridgeIDs = append(a.BridgeIDs, id)
		case "endpoint":
			a.EndpointIDs = append(a.EndpointIDs, id)
		case "deviceState":
			a.DeviceNames = append(a.DeviceNames, id)
		}
	}
	return a
}

var appName = pathParam("applicationName", "Application's name")

func (s *Server) applicationsResource() *Resource {
	eventSource := Param{Name: "eventSource", In: "query", Type: "string", Required: true, Multi: true,
		Description: "URI for event source (channel:{channelId}, bridge:{bridgeId}, endpoint:{tech}[/{resource}], deviceState:{deviceName}"}
	return &Resource{
		Name:        "applications",
		Description: "Stasis application resources",
		Models:      []string{"Application"},
		Ops: []Op{
			{Method: "GET", Path: "/applications", Nickname: "list", Summary: "List all applications.", Returns: "List[Application]",
				Handler: func(r *Request) (any, error) {
					apps := s.bus.Apps()
					out := make([]applicationJSON, len(apps))
					for i, a := range apps {
						out[i] = appJSON(a)
					}
					return out, nil
				}},
			{Method: "GET", Path: "/applications/{applicationName}", Nickname: "get", Summary: "Get details of an application.", Returns: "Application",
				Params: []Param{appName}, Errors: []ErrorResponse{{404, "Application does not exist."}},
				Handler: func(r *Request) (any, error) {
					info, ok := s.bus.App(r.Path("applicationName"))
					if !ok {
						return nil, apiErr(404, "Application not found")
					}
					return appJSON(info), nil
				}},
			{Method: "POST", Path: "/applications/{applicationName}/subscription", Nickname: "subscribe", Summary: "Subscribe an application to a event source.", Returns: "Application",
				Params:  []Param{appName, eventSource},
				Errors:  []ErrorResponse{{400, "Missing parameter."}, {404, "Application does not exist."}, {422, "Event source does not exist."}},
				Handler: func(r *Request) (any, error) { return s.subscription(r, true) }},
			{Method: "DELETE", Path: "/applications/{applicationName}/subscription", Nickname: "unsubscribe", Summary: "Unsubscribe an application from an event source.", Returns: "Application",
				Params:  []Param{appName, eventSource},
				Errors:  []ErrorResponse{{400, "Missing parameter; event source scheme not recognized."}, {404, "Application does not exist."}, {409, "Application not subscribed to event source."}, {422, "Event source does not exist."}},
				Handler: func(r *Request) (any, error) { return s.subscription(r, false) }},
			{Method: "PUT", Path: "/applications/{applicationName}/eventFilter", Nickname: "filter", Summary: "Filter application events types.", Returns: "Application",
				Params:  []Param{appName, {Name: "filter", In: "body", Type: "object", Description: `Specify which event types to allow/disallow: {"allowed":[{"type":"StasisStart"}],"disallowed":[...]}`}},
				Errors:  []ErrorResponse{{400, "Bad request."}, {404, "Application does not exist."}},
				Handler: s.eventFilter},
		},
	}
}

func (s *Server) subscription(r *Request, subscribe bool) (any, error) {
	name := r.Path("applicationName")
	if _, ok := s.bus.App(name); !ok {
		return nil, apiErr(404, "Application not found")
	}
	sources := r.List("eventSource")
	if len(sources) == 0 {
		return nil, apiErr(400, "Missing parameter eventSource")
	}
	for _, src := range sources {
		scheme, id, ok := strings.Cut(src, ":")
		if !ok || id == "" {
			return nil, apiErr(400, "Invalid event source URI scheme: "+src)
		}
		switch scheme {
		case "channel":
			if _, err := s.calls.Channel(call.ChannelID(id)); err != nil {
				return nil, apiErr(422, "Unable to find event source: "+src)
			}
		case "bridge":
			return nil, apiErr(422, "Unable to find event source: "+src)
		case "endpoint", "deviceState":
		default:
			return nil, apiErr(400, "Invalid event source URI scheme: "+src)
		}
	}
	if subscribe {
		s.bus.Subscribe(name, sources...)
	} else {
		found, missing := s.bus.Unsubscribe(name, sources...)
		if !found {
			return nil, apiErr(404, "Application not found")
		}
		if len(missing) > 0 {
			return nil, apiErr(409, "Application not subscribed to event source: "+strings.Join(missing, ","))
		}
	}
	info, _ := s.bus.App(name)
	return appJSON(info), nil
}

func (s *Server) eventFilter(r *Request) (any, error) {
	name := r.Path("applicationName")
	if _, ok := s.bus.App(name); !ok {
		return nil, apiErr(404, "Application not found")
	}
	filter, ok, err := r.Object("filter")
	if err != nil {
		return nil, err
	}
	if !ok {
		// The body itself is the filter: {"allowed": [...], "disallowed": [...]}.
		filter = map[string]any{}
		for _, k := range []string{"allowed", "disallowed"} {
			if obj, present, err := r.rawList(k); err != nil {
				return nil, err
			} else if present {
				filter[k] = obj
			}
		}
	}
	lists := map[string][]map[string]any{}
	for _, k := range []string{"allowed", "disallowed"} {
		v, present := filter[k]
		if !present {
			continue
		}
		arr, ok := v.([]any)
		if !ok {
			return nil, apiErr(400, "Invalid format for "+k)
		}
		for _, e := range arr {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, apiErr(400, "Invalid format for "+k)
			}
			if _, ok := m["type"].(string); !ok {
				return nil, apiErr(400, "Invalid format for "+k+": entries need a type")
			}
			lists[k] = append(lists[k], m)
		}
	}
	s.bus.SetFilter(name, lists["allowed"], lists["disallowed"])
	info, _ := s.bus.App(name)
	return appJSON(info), nil
}
