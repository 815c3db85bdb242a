package ari

import (
	"strconv"

	"github.com/tapedeck/tapedeck/internal/call"
)

var (
	errNoChan      = ErrorResponse{404, "Channel not found"}
	errNotInStasis = ErrorResponse{409, "Channel not in a Stasis application"}
	errChanState   = ErrorResponse{412, "Channel in invalid state"}
	chanID         = pathParam("channelId", "Channel's id")
	directionParam = Param{Name: "direction", In: "query", Type: "string", Default: "both", Allowed: []string{"both", "in", "out"}, Description: "Direction in which to mute audio"}
	hangupReasons  = []string{"normal", "busy", "congestion", "no_answer", "timeout", "rejected", "unallocated", "normal_unspecified", "number_incomplete", "codec_mismatch", "interworking", "failure", "answered_elsewhere"}
)

// channelID is the request's {channelId}.
func channelID(r *Request) call.ChannelID { return call.ChannelID(r.Path("channelId")) }

// channelOp wraps a void channel operation.
func (s *Server) channelOp(f func(call.ChannelID, *Request) error) Handler {
	return func(r *Request) (any, error) { return nil, f(channelID(r), r) }
}

func (s *Server) channelsResource() *Resource {
	media := []ErrorResponse{errNoChan, errNotInStasis, errChanState}
	return &Resource{
		Name:        "channels",
		Description: "Channel resources",
		Models:      []string{"Channel", "CallerID", "DialplanCEP", "Variable", "Variables", "RTPstat"},
		Ops: []Op{
			{Method: "GET", Path: "/channels", Nickname: "list", Summary: "List all active channels in Asterisk.", Returns: "List[Channel]",
				Handler: func(r *Request) (any, error) { return s.calls.Channels(), nil }},
			s.originateOps()[0], s.originateOps()[1], s.externalMediaOp(), s.originateOps()[2],
			{Method: "GET", Path: "/channels/{channelId}", Nickname: "get", Summary: "Channel details.", Returns: "Channel",
				Params: []Param{chanID}, Errors: []ErrorResponse{errNoChan},
				Handler: func(r *Request) (any, error) { return s.calls.Channel(channelID(r)) }},
			{Method: "DELETE", Path: "/channels/{channelId}", Nickname: "hangup", Summary: "Delete (i.e. hangup) a channel.", Returns: "void",
				Params: []Param{chanID,
					query("reason_code", "string", false, "The reason code for hanging up the channel for detail use. Mutually exclusive with 'reason'."),
					{Name: "reason", In: "query", Type: "string", Allowed: hangupReasons, Description: "Reason for hanging up the channel for simple use. Mutually exclusive with 'reason_code'."},
				},
				Errors: []ErrorResponse{{400, "Invalid reason for hangup provided"}, errNoChan},
				Handler: s.channelOp(func(id call.ChannelID, r *Request) error {
					cause := call.CauseNormalClearing
					if r.Has("reason_code") && r.Has("reason") {
						return apiErr(400, "The reason and reason_code can't both be specified")
					}
					if r.Has("reason_code") {
						n, err := strconv.Atoi(r.String("reason_code"))
						if err != nil || n <= 0 || n > 127 {
							return apiErr(400, "Invalid reason for hangup provided")
						}
						cause = call.Cause(n)
					} else if r.Has("reason") {
						c, ok := call.HangupReasons[r.String("reason")]
						if !ok {
							return apiErr(400, "Invalid reason for hangup provided")
						}
						cause = c
					}
					return s.calls.Hangup(id, cause)
				})},
			{Method: "POST", Path: "/channels/{channelId}/answer", Nickname: "answer", Summary: "Answer a channel.", Returns: "void",
				Params: []Param{chanID}, Errors: media,
				Handler: s.channelOp(func(id call.ChannelID, r *Request) error { return s.calls.Answer(id) })},
			{Method: "POST", Path: "/channels/{channelId}/ring", Nickname: "ring", Summary: "Indicate ringing to a channel.", Returns: "void",
				Params: []Param{chanID}, Errors: media,
				Handler: s.channelOp(func(id call.ChannelID, r *Request) error { return s.calls.Ring(id, true) })},
			{Method: "DELETE", Path: "/channels/{channelId}/ring", Nickname: "ringStop", Summary: "Stop ringing indication on a channel if locally generated.", Returns: "void",
				Params: []Param{chanID}, Errors: media,
				Handler: s.channelOp(func(id call.ChannelID, r *Request) error { return s.calls.Ring(id, false) })},
			{Method: "POST", Path: "/channels/{channelId}/progress", Nickname: "progress", Summary: "Indicate progress on a channel.", Returns: "void",
				Params: []Param{chanID}, Errors: media,
				Handler: s.channelOp(func(id call.ChannelID, r *Request) error { return s.calls.Progress(id) })},
			{Method: "POST", Path: "/channels/{channelId}/dtmf", Nickname: "sendDTMF", Summary: "Send provided DTMF to a given channel.", Returns: "void",
				Params: []Param{chanID,
					query("dtmf", "string", false, "DTMF To send."),
					{Name: "before", In: "query", Type: "int", Default: "0", Description: "Amount of time to wait before DTMF digits (specified in milliseconds) start."},
					{Name: "between", In: "query", Type: "int", Default: "100", Description: "Amount of time in between DTMF digits (specified in milliseconds)."},
					{Name: "duration", In: "query", Type: "int", Default: "100", Description: "Length of each DTMF digit (specified in milliseconds)."},
					{Name: "after", In: "query", Type: "int", Default: "0", Description: "Amount of time to wait after DTMF digits (specified in milliseconds) end."},
				},
				Errors: append([]ErrorResponse{{400, "DTMF is required"}}, media...),
				Handler: s.channelOp(func(id call.ChannelID, r *Request) error {
					return s.calls.SendDTMF(id, call.DTMFOptions{Digits: r.String("dtmf"), Before: r.Int("before"), Between: r.Int("between"), Duration: r.Int("duration"), After: r.Int("after")})
				})},
			{Method: "POST", Path: "/channels/{channelId}/mute", Nickname: "mute", Summary: "Mute a channel.", Returns: "void",
				Params: []Param{chanID, directionParam}, Errors: media,
				Handler: s.channelOp(func(id call.ChannelID, r *Request) error { return s.calls.Mute(id, r.String("direction"), true) })},
			{Method: "DELETE", Path: "/channels/{channelId}/mute", Nickname: "unmute", Summary: "Unmute a channel.", Returns: "void",
				Params: []Param{chanID, directionParam}, Errors: media,
				Handler: s.channelOp(func(id call.ChannelID, r *Request) error { return s.calls.Mute(id, r.String("direction"), false) })},
			{Method: "POST", Path: "/channels/{channelId}/hold", Nickname: "hold", Summary: "Hold a channel.", Returns: "void",
				Params: []Param{chanID}, Errors: media,
				Handler: s.channelOp(func(id call.ChannelID, r *Request) error { return s.calls.Hold(id, true) })},
			{Method: "DELETE", Path: "/channels/{channelId}/hold", Nickname: "unhold", Summary: "Remove a channel from hold.", Returns: "void",
				Params: []Param{chanID}, Errors: media,
				Handler: s.channelOp(func(id call.ChannelID, r *Request) error { return s.calls.Hold(id, false) })},
			{Method: "POST", Path: "/channels/{channelId}/moh", Nickname: "startMoh", Summary: "Play music on hold to a channel.", Returns: "void",
				Params:  []Param{chanID, query("mohClass", "string", false, "Music on hold class to use (a subdirectory of sounds.moh_dir; default: the files of sounds.moh_dir)")},
				Errors:  media,
				Handler: s.channelOp(func(id call.ChannelID, r *Request) error { return s.calls.StartMOH(id, r.String("mohClass")) })},
			{Method: "DELETE", Path: "/channels/{channelId}/moh", Nickname: "stopMoh", Summary: "Stop playing music on hold to a channel.", Returns: "void",
				Params: []Param{chanID}, Errors: media,
				Handler: s.channelOp(func(id call.ChannelID, r *Request) error { return s.calls.StopMOH(id) })},
			{Method: "POST", Path: "/channels/{channelId}/silence", Nickname: "startSilence", Summary: "Play silence to a channel.", Returns: "void",
				Params: []Param{chanID}, Errors: media,
				Handler: s.channelOp(func(id call.ChannelID, r *Request) error { return s.calls.Silence(id, true) })},
			{Method: "DELETE", Path: "/channels/{channelId}/silence", Nickname: "stopSilence", Summary: "Stop playing silence to a channel.", Returns: "void",
				Params: []Param{chanID}, Errors: media,
				Handler: s.channelOp(func(id call.ChannelID, r *Request) error { return s.calls.Silence(id, false) })},
			s.channelPlayOps()[0], s.channelPlayOps()[1], s.originateOps()[3],
			{Method: "POST", Path: "/channels/{channelId}/record", Nickname: "record", Summary: "Start a recording.", Returns: "LiveRecording",
				Params: append([]Param{chanID}, recordParams()...),
				Errors: []ErrorResponse{{400, "Invalid parameters"}, errNoChan, {409, "Channel is not in a Stasis application; the channel is currently bridged with other channels; A recording with the same name already exists on the system and can not be overwritten because it is in progress or ifExists=fail"}, {422, "The format specified is unknown on this system"}},
				Handler: func(r *Request) (any, error) {
					rec, err := s.calls.Record(channelID(r), recordOptions(r))
					if err != nil {
						return nil, err
					}
					return &Created{Location: liveLocation(rec.Name), Body: rec}, nil
				}},
			s.snoopOp(false), s.snoopOp(true),
			{Method: "POST", Path: "/channels/{channelId}/move", Nickname: "move", Summary: "Move the channel from one Stasis application to another.", Returns: "void",
				Params: []Param{chanID, query("app", "string", true, "The channel will be passed to this Stasis application."),
					query("appArgs", "string", false, "The application arguments to pass to the Stasis application provided by 'app'.")},
				Errors: []ErrorResponse{errNoChan, errNotInStasis},
				Handler: s.channelOp(func(id call.ChannelID, r *Request) error {
					return s.calls.Move(id, r.String("app"), r.String("appArgs"))
				})},
			{Method: "POST", Path: "/channels/{channelId}/continue", Nickname: "continueInDialplan", Summary: "Exit application; continue execution in the dialplan.", Returns: "void",
				Params: []Param{chanID,
					query("context", "string", false, "The context to continue to."),
					query("extension", "string", false, "The extension to continue to."),
					query("priority", "int", false, "The priority to continue to."),
					query("label", "string", false, "The label to continue to - will supersede 'priority' if both are provided (tapedeck: routes have no labels, a numeric label is a priority)."),
				},
				Errors: []ErrorResponse{{400, "Requested priority is illegal"}, {404, "Channel not found; requested label can not be found"}, errNotInStasis, errChanState},
				Handler: s.channelOp(func(id call.ChannelID, r *Request) error {
					return s.calls.Continue(id, call.ContinueOptions{Context: r.String("context"), Extension: r.String("extension"),
						Priority: int64(r.Int("priority")), Label: r.String("label")})
				})},
			{Method: "POST", Path: "/channels/{channelId}/redirect", Nickname: "redirect", Summary: "Redirect the channel to a different location.", Returns: "void",
				Params: []Param{chanID, query("endpoint", "string", true, "The endpoint to redirect the channel to: PJSIP/<user>, PJSIP/sip:<uri>, or PJSIP/<extension of this node>")},
				Errors: []ErrorResponse{{400, "Endpoint parameter not provided"}, {404, "Channel or endpoint not found"}, errNotInStasis, errChanState,
					{422, "Endpoint is not the same type as the channel"}},
				Handler: s.channelOp(func(id call.ChannelID, r *Request) error { return s.calls.Redirect(id, r.String("endpoint")) })},
			{Method: "GET", Path: "/channels/{channelId}/variable", Nickname: "getChannelVar", Summary: "Get the value of a channel variable or function.", Returns: "Variable",
				Params: []Param{chanID, query("variable", "string", true, "The channel variable or function to get")},
				Errors: []ErrorResponse{{400, "Missing variable parameter."}, {404, "Channel or variable not found"}, errNotInStasis},
				Handler: func(r *Request) (any, error) {
					v, err := s.calls.Var(channelID(r), r.String("variable"))
					if err != nil {
						return nil, err
					}
					return map[string]string{"value": v}, nil
				}},
			{Method: "POST", Path: "/channels/{channelId}/variable", Nickname: "setChannelVar", Summary: "Set the value of a channel variable or function.", Returns: "void",
				Params: []Param{chanID, query("variable", "string", true, "The channel variable or function to set"), query("value", "string", false, "The value to set the variable to"),
					{Name: "report_events", In: "query", Type: "boolean", Default: "false", Description: "Send a ChannelVarset event"}},
				Errors: []ErrorResponse{{400, "Missing variable parameter."}, errNoChan, errNotInStasis},
				Handler: s.channelOp(func(id call.ChannelID, r *Request) error {
					if r.Bool("report_events") {
						// Marked first: the ChannelVarset already carries it.
						if err := s.calls.ReportVar(id, r.String("variable")); err != nil {
							return err
						}
					}
					return s.calls.SetVar(id, r.String("variable"), r.String("value"), !r.Has("value"))
				})},
			{Method: "GET", Path: "/channels/{channelId}/variables", Nickname: "getChannelVars", Summary: "Get the value of several channel variables or functions.", Returns: "Variables",
				Params: []Param{chanID, {Name: "variables", In: "query", Type: "string", Required: true, Multi: true, Description: "The channel variables or functions to get"}},
				Errors: []ErrorResponse{{400, "Missing variables parameter."}, {404, "Channel or variable not found"}, errNotInStasis},
				Handler: func(r *Request) (any, error) {
					out := map[string]string{}
					for _, name := range r.List("variables") {
						v, err := s.calls.Var(channelID(r), name)
						if err != nil {
							return nil, err
						}
						out[name] = v
					}
					return map[string]any{"variables": out}, nil
				}},
			{Method: "POST", Path: "/channels/{channelId}/variables", Nickname: "setChannelVars", Summary: "Set the values of several channel variables or functions.", Returns: "void",
				Params: []Param{chanID, {Name: "variables", In: "body", Type: "containers", Required: true, Description: `The channel variables or functions to set, as {"variables": {"NAME": "value"}}`}},
				Errors: []ErrorResponse{{400, "Missing variables parameter."}, errNoChan, errNotInStasis},
				Handler: s.channelOp(func(id call.ChannelID, r *Request) error {
					vars, _, err := r.Object("variables")
					if err != nil {
						return err
					}
					for k, v := range vars {
						sv, ok := v.(string)
						if !ok {
							return apiErr(400, "Variable values must be strings")
						}
						if err := s.calls.SetVar(id, k, sv, false); err != nil {
							return err
						}
					}
					return nil
				})},
			{Method: "GET", Path: "/channels/{channelId}/rtp_statistics", Nickname: "rtpstatistics", Summary: "RTP stats on a channel.", Returns: "RTPstat",
				Params: []Param{chanID}, Errors: []ErrorResponse{errNoChan},
				Handler: func(r *Request) (any, error) {
					id := channelID(r)
					st, err := s.calls.RTPStats(id)
					if err != nil {
						return nil, err
					}
					return map[string]any{
						"txcount": st.Sent, "rxcount": st.Received, "rxjitter": st.Jitter / 8000,
						"txploss": st.RemoteLost, "rxploss": max(st.Lost, 0),
						"local_ssrc": 0, "remote_ssrc": st.SSRC,
						"txoctetcount": st.SentBytes, "rxoctetcount": st.Bytes,
						"channel_uniqueid": id,
					}, nil
				}},
		},
	}
}

// snoopOp is snoopChannel or snoopChannelWithId: a snoop channel on a
// channel, put into an application.
func (s *Server) snoopOp(withID bool) Op {
	dirs := []string{"none", "both", "out", "in"}
	params := []Param{chanID,
		{Name: "spy", In: "query", Type: "string", Default: "none", Allowed: dirs, Description: "Direction of audio to spy on"},
		{Name: "whisper", In: "query", Type: "string", Default: "none", Allowed: dirs, Description: "Direction of audio to whisper into"},
		query("app", "string", true, "Application the snooping channel is placed into"),
		query("appArgs", "string", false, "The application arguments to pass to the Stasis application"),
	}
	op := Op{Method: "POST", Path: "/channels/{channelId}/snoop", Nickname: "snoopChannel", Summary: "Start snooping.", Returns: "Channel",
		Errors: []ErrorResponse{{400, "Invalid parameters"}, {404, "Channel not found"}}}
	if withID {
		op.Path += "/{snoopId}"
		op.Nickname = "snoopChannelWithId"
		params = append(params, pathParam("snoopId", "Unique ID to assign to snooping channel"))
	} else {
		params = append(params, query("snoopId", "string", false, "Unique ID to assign to snooping channel"))
	}
	op.Params = params
	op.Handler = func(r *Request) (any, error) {
		id := r.String("snoopId")
		if withID {
			id = r.Path("snoopId")
		}
		return s.calls.Snoop(channelID(r), call.SnoopOptions{Spy: r.String("spy"), Whisper: r.String("whisper"),
			App: r.String("app"), AppArgs: r.String("appArgs"), SnoopID: call.ChannelID(id)})
	}
	return op
}

// externalMediaOp is externalMedia; it comes before /channels/{channelId}
// so that the literal path is not taken for a channel id.
func (s *Server) externalMediaOp() Op {
	return Op{Method: "POST", Path: "/channels/externalMedia", Nickname: "externalMedia", Summary: "Start an External Media session.", Returns: "Channel",
		Params: []Param{
			query("channelId", "string", false, "The unique id to assign the channel on creation."),
			query("app", "string", true, "Stasis Application to place channel into"),
			{Name: "variables", In: "body", Type: "containers", Description: `The "variables" key in the body object holds variable key/value pairs to set on the channel on creation.`},
			query("external_host", "string", false, "Hostname/ip:port or websocket_client connection ID of external host.  May be empty for a websocket server connection."),
			{Name: "encapsulation", In: "query", Type: "string", Default: "rtp", Allowed: []string{"rtp", "audiosocket", "none"}, Description: "Payload encapsulation protocol.  Must be 'none' for the websocket transport."},
			{Name: "transport", In: "query", Type: "string", Default: "udp", Allowed: []string{"udp", "tcp", "websocket"}, Description: "Transport protocol"},
			{Name: "connection_type", In: "query", Type: "string", Default: "client", Allowed: []string{"client", "server"}, Description: "Connection type (client/server). 'server' is only valid for the websocket transport."},
			query("format", "string", true, "Format to encode audio in (rtp: ulaw, alaw; audiosocket and websocket: slin, slin12 … slin192, ulaw, alaw)"),
			// Asterisk's handler takes in and out too (and passes them to
			// chan_websocket's d() option); its description lists both only.
			{Name: "direction", In: "query", Type: "string", Default: "both", Allowed: []string{"both"}, Undeclared: []string{"in", "out"}, Description: "External media direction"},
			query("data", "string", false, "An arbitrary data field"),
			query("transport_data", "string", false, "Transport-specific data. For websocket this is appended to the dialstring."),
		},
		Errors: []ErrorResponse{{400, "Invalid parameters"}, {409, "Channel is not in a Stasis application; Channel is already bridged"}},
		Handler: func(r *Request) (any, error) {
			o := call.ExternalMediaOptions{ChannelID: call.ChannelID(r.String("channelId")), App: r.String("app"),
				ExternalHost: r.String("external_host"), Encapsulation: r.String("encapsulation"), Transport: r.String("transport"),
				ConnectionType: r.String("connection_type"), Format: r.String("format"), Direction: given(r, "direction"), Data: r.String("data"),
				TransportData: r.String("transport_data")}
			vars, _, err := r.Object("variables")
			if err != nil {
				return nil, err
			}
			for k, v := range vars {
				sv, ok := v.(string)
				if !ok {
					return nil, apiErr(400, "Variable values must be strings")
				}
				if o.Variables == nil {
					o.Variables = map[string]string{}
				}
				o.Variables[k] = sv
			}
			return s.calls.ExternalMedia(o)
		}}
}

// given is a parameter's value when the request names it, else "" (no
// default: Asterisk's generated handlers leave an absent one NULL).
func given(r *Request, name string) string {
	if !r.Has(name) {
		return ""
	}
	return r.String(name)
}
