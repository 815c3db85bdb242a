package ari

import (
	"strings"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
)

func originateParams(withID bool) []Param {
	ps := []Param{
		query("endpoint", "string", true, "Endpoint to call: PJSIP/user@host[:port] or SIP/user@host[:port] (tapedeck dials SIP URIs directly)."),
		query("extension", "string", false, "The extension to dial after the endpoint answers. Mutually exclusive with 'app'."),
		query("context", "string", false, "The context to dial after the endpoint answers."),
		{Name: "priority", In: "query", Type: "long", Description: "The priority to dial after the endpoint answers."},
		query("label", "string", false, "The label to dial after the endpoint answers."),
		query("app", "string", false, "The application that is subscribed to the originated channel."),
		query("appArgs", "string", false, "The application arguments to pass to the Stasis application."),
		query("callerId", "string", false, "CallerID to use when dialing the endpoint or extension."),
		{Name: "timeout", In: "query", Type: "int", Default: "30", Description: "Timeout (in seconds) before giving up dialing, or -1 for no timeout."},
		{Name: "variables", In: "body", Type: "containers", Description: `The "variables" key in the body object holds variable key/value pairs to set on the channel on creation.`},
		query("otherChannelId", "string", false, "The unique id to assign the second channel when using local channels."),
		query("originator", "string", false, "The unique id of the channel which is originating this one."),
		query("formats", "string", false, "The format name capability list to use if originator is not specified."),
	}
	if withID {
		ps = append(ps, query("channelId", "string", false, "The unique id to assign the channel on creation."))
	}
	return ps
}

func originateOptions(r *Request, id string) (call.OriginateOptions, error) {
	if id == "" {
		id = r.String("channelId")
	}
	o := call.OriginateOptions{
		Endpoint: r.String("endpoint"), App: r.String("app"), AppArgs: r.String("appArgs"),
		Extension: r.String("extension"), Context: r.String("context"), CallerID: r.String("callerId"),
		ChannelID: call.ChannelID(id), Originator: call.ChannelID(r.String("originator")),
		OtherChannelID: call.ChannelID(r.String("otherChannelId")),
	}
	if f := r.String("formats"); f != "" {
		o.Formats = strings.Split(f, ",")
	}
	if r.param("priority") != nil {
		// Originate's dialplan location (create has none).
		o.Priority, o.Label = int64(r.Int("priority")), r.String("label")
	}
	if r.Has("timeout") {
		if t := r.Int("timeout"); t > 0 {
			o.Timeout = time.Duration(t) * time.Second
		}
	} else {
		o.Timeout = 30 * time.Second
	}
	vars, _, err := r.Object("variables")
	if err != nil {
		return o, err
	}
	if len(vars) > 0 {
		o.Variables = map[string]string{}
		for k, v := range vars {
			sv, ok := v.(string)
			if !ok {
				return o, apiErr(400, "Variable values must be strings")
			}
			o.Variables[k] = sv
		}
	}
	return o, nil
}

func (s *Server) originateOps() []Op {
	errs := []ErrorResponse{{400, "Invalid parameters for originating a channel."}, {409, "Channel with given unique ID already exists."}}
	originate := func(r *Request, id string) (any, error) {
		o, err := originateOptions(r, id)
		if err != nil {
			return nil, err
		}
		if o.App != "" && o.Extension != "" {
			return nil, apiErr(400, "'app' and 'extension' are mutually exclusive")
		}
		return s.calls.Originate(o)
	}
	return []Op{
		{Method: "POST", Path: "/channels", Nickname: "originate", Summary: "Create a new channel (originate).", Returns: "Channel",
			Params: originateParams(true), Errors: errs,
			Handler: func(r *Request) (any, error) { return originate(r, "") }},
		{Method: "POST", Path: "/channels/create", Nickname: "create", Summary: "Create channel.", Returns: "Channel",
			Params: []Param{
				query("endpoint", "string", true, "Endpoint for channel communication: PJSIP/user@host[:port]"),
				query("app", "string", true, "Stasis Application to place channel into"),
				query("appArgs", "string", false, "The application arguments to pass to the Stasis application provided by 'app'."),
				query("channelId", "string", false, "The unique id to assign the channel on creation."),
				query("otherChannelId", "string", false, "The unique id to assign the second channel when using local channels."),
				query("originator", "string", false, "Unique ID of the calling channel"),
				query("formats", "string", false, "The format name capability list to use if originator is not specified."),
				{Name: "variables", In: "body", Type: "containers", Description: `The "variables" key in the body object holds variable key/value pairs to set on the channel on creation.`},
			},
			Errors: []ErrorResponse{{409, "Channel with given unique ID already exists."}},
			Handler: func(r *Request) (any, error) {
				o, err := originateOptions(r, "")
				if err != nil {
					return nil, err
				}
				return s.calls.CreateChannel(o)
			}},
		{Method: "POST", Path: "/channels/{channelId}", Nickname: "originateWithId", Summary: "Create a new channel (originate with id).", Returns: "Channel",
			Params: append([]Param{chanID}, originateParams(false)...), Errors: errs,
			Handler: func(r *Request) (any, error) { return originate(r, r.Path("channelId")) }},
		{Method: "POST", Path: "/channels/{channelId}/dial", Nickname: "dial", Summary: "Dial a created channel.", Returns: "void",
			Params: []Param{chanID, query("caller", "string", false, "Channel ID of caller"),
				{Name: "timeout", In: "query", Type: "int", Default: "0", Min: intp(0), Description: "Dial timeout"}},
			Errors: []ErrorResponse{errNoChan, {409, "Channel cannot be found (not dialable)"}},
			Handler: s.channelOp(func(id call.ChannelID, r *Request) error {
				return s.calls.Dial(id, call.ChannelID(r.String("caller")), time.Duration(r.Int("timeout"))*time.Second)
			})},
	}
}
