package ari

import (
	"strings"

	"github.com/tapedeck/tapedeck/internal/call"
)

var (
	brID            = pathParam("bridgeId", "Bridge's id")
	announcerFormat = query("announcer_format", "string", false, "Format of the 'Anouncer' channel attached to the bridge (tapedeck mixes 8 kHz linear audio; a format Asterisk does not know is 422).")
)

// bridgeID is the request's {bridgeId}.
func bridgeID(r *Request) call.BridgeID { return call.BridgeID(r.Path("bridgeId")) }

func bridgeType(r *Request) string {
	t := r.String("type")
	for _, f := range strings.Split(t, ",") {
		if strings.TrimSpace(f) == "holding" {
			return "holding"
		}
	}
	return "mixing"
}

func (s *Server) bridgesResource() *Resource {
	noBridge := ErrorResponse{404, "Bridge not found"}
	createParams := []Param{
		query("type", "string", false, "Comma separated list of bridge type attributes (mixing, holding, dtmf_events, proxy_media, video_sfu, video_single, sdp_label)."),
		query("name", "string", false, "Name to give to the bridge being created."),
		{Name: "variables", In: "body", Type: "containers", Description: `The "variables" key in the body object holds variable key/value pairs to set on the bridge on creation: each a string, or {"value": "...", "report_events": true} to include it in bridge events (bridgevars).`},
	}
	stasisOwned := ErrorResponse{409, "Bridge not in a Stasis application"}
	channelList := Param{Name: "channel", In: "query", Type: "string", Required: true, Multi: true, Description: "Ids of channels to add to bridge"}
	return &Resource{
		Name:        "bridges",
		Description: "Bridge resources",
		Models:      []string{"Bridge"},
		Ops: []Op{
			{Method: "GET", Path: "/bridges", Nickname: "list", Summary: "List all active bridges in Asterisk.", Returns: "List[Bridge]",
				Handler: func(r *Request) (any, error) { return s.calls.Bridges(), nil }},
			{Method: "POST", Path: "/bridges", Nickname: "create", Summary: "Create a new bridge.", Returns: "Bridge",
				Params:  append(createParams, query("bridgeId", "string", false, "Unique ID to give to the bridge being created.")),
				Errors:  []ErrorResponse{{409, "Bridge with the same bridgeId already exists"}},
				Handler: func(r *Request) (any, error) { return s.createBridge(r, call.BridgeID(r.String("bridgeId"))) }},
			{Method: "POST", Path: "/bridges/{bridgeId}", Nickname: "createWithId", Summary: "Create a new bridge or updates an existing one.", Returns: "Bridge",
				Params: append([]Param{brID}, createParams...), Errors: []ErrorResponse{{409, "Bridge with the same bridgeId already exists"}},
				Handler: func(r *Request) (any, error) { return s.createBridge(r, bridgeID(r)) }},
			{Method: "GET", Path: "/bridges/{bridgeId}/variable", Nickname: "getBridgeVar", Summary: "Get the value of a bridge variable.", Returns: "Variable",
				Params: []Param{brID, query("variable", "string", true, "The bridge variable to get")},
				Errors: []ErrorResponse{{400, "Missing variable parameter."}, {404, "Bridge or variable not found"}, stasisOwned},
				Handler: func(r *Request) (any, error) {
					v, err := s.calls.BridgeVar(bridgeID(r), r.String("variable"))
					if err != nil {
						return nil, err
					}
					return map[string]string{"value": v}, nil
				}},
			{Method: "POST", Path: "/bridges/{bridgeId}/variable", Nickname: "setBridgeVar", Summary: "Set the value of a bridge variable.", Returns: "void",
				Params: []Param{brID, query("variable", "string", true, "The bridge variable to set"), query("value", "string", false, "The value to set the variable to"),
					{Name: "report_events", In: "query", Type: "boolean", Default: "false", Description: "Whether this variable should be included in bridge events (bridgevars)."}},
				Errors: []ErrorResponse{{400, "Missing variable parameter."}, noBridge, stasisOwned},
				Handler: func(r *Request) (any, error) {
					return nil, s.calls.SetBridgeVar(bridgeID(r), r.String("variable"), r.String("value"), !r.Has("value"), r.Bool("report_events"))
				}},
			{Method: "GET", Path: "/bridges/{bridgeId}/variables", Nickname: "getBridgeVars", Summary: "Get the values of several bridge variables.", Returns: "Variables",
				Params: []Param{brID, {Name: "variables", In: "query", Type: "string", Required: true, Multi: true, Description: "The bridge variables to get"}},
				Errors: []ErrorResponse{{400, "Missing variables parameter."}, {404, "Bridge or variable not found"}, stasisOwned},
				Handler: func(r *Request) (any, error) {
					out := map[string]string{}
					for _, name := range r.List("variables") {
						v, err := s.calls.BridgeVar(bridgeID(r), name)
						if err != nil {
							return nil, err
						}
						out[name] = v
					}
					return map[string]any{"variables": out}, nil
				}},
			{Method: "POST", Path: "/bridges/{bridgeId}/variables", Nickname: "setBridgeVars", Summary: "Set the values of several bridge variables.", Returns: "void",
				Params: []Param{brID, {Name: "variables", In: "body", Type: "containers", Required: true, Description: `The bridge variables to set, as {"variables": {"NAME": "value"}}, a value being a string or {"value": "...", "report_events": true}`}},
				Errors: []ErrorResponse{{400, "Missing variables parameter."}, noBridge, stasisOwned},
				Handler: func(r *Request) (any, error) {
					if _, err := s.calls.Bridge(bridgeID(r)); err != nil {
						return nil, err
					}
					return nil, s.setBridgeVars(r, bridgeID(r))
				}},
			{Method: "GET", Path: "/bridges/{bridgeId}", Nickname: "get", Summary: "Get bridge details.", Returns: "Bridge",
				Params: []Param{brID}, Errors: []ErrorResponse{noBridge},
				Handler: func(r *Request) (any, error) { return s.calls.Bridge(bridgeID(r)) }},
			{Method: "DELETE", Path: "/bridges/{bridgeId}", Nickname: "destroy", Summary: "Shut down a bridge.", Returns: "void",
				Params: []Param{brID}, Errors: []ErrorResponse{noBridge},
				Handler: func(r *Request) (any, error) { return nil, s.calls.DestroyBridge(bridgeID(r)) }},
			{Method: "POST", Path: "/bridges/{bridgeId}/addChannel", Nickname: "addChannel", Summary: "Add a channel to a bridge.", Returns: "void",
				Params: []Param{brID, channelList, query("role", "string", false, "Channel's role in the bridge"),
					{Name: "absorbDTMF", In: "query", Type: "boolean", Default: "false", Description: "Absorb DTMF coming from this channel, preventing it to pass through to the bridge"},
					{Name: "mute", In: "query", Type: "boolean", Default: "false", Description: "Mute audio from this channel, preventing it to pass through to the bridge"},
					{Name: "inhibitConnectedLineUpdates", In: "query", Type: "boolean", Default: "false", Description: "Do not present the identity of the newly connected channel to other bridge members"}},
				Errors: []ErrorResponse{{400, "Channel not found"}, noBridge, {409, "Bridge not in Stasis application; Channel currently recording"}, {422, "Channel not in Stasis application"}},
				Codes:  []KindCode{{call.ErrChannelNotFound, 400}, {call.ErrNotInApplication, 422}},
				Handler: func(r *Request) (any, error) {
					id := bridgeID(r)
					if _, err := s.calls.Bridge(id); err != nil {
						return nil, err
					}
					chans, err := s.channelList(r)
					if err != nil {
						return nil, err
					}
					o := call.JoinOptions{Mute: r.Bool("mute"), AbsorbDTMF: r.Bool("absorbDTMF"), Role: r.String("role"),
						InhibitConnectedLine: r.Bool("inhibitConnectedLineUpdates")}
					for _, ch := range chans {
						if err := s.calls.AddToBridge(id, ch, o); err != nil {
							return nil, err
						}
					}
					return nil, nil
				}},
			{Method: "POST", Path: "/bridges/{bridgeId}/removeChannel", Nickname: "removeChannel", Summary: "Remove a channel from a bridge.", Returns: "void",
				Params: []Param{brID, channelList},
				Errors: []ErrorResponse{{400, "Channel not found"}, noBridge, {409, "Bridge not in Stasis application"}, {422, "Channel not in this bridge"}},
				Codes:  []KindCode{{call.ErrChannelNotFound, 400}, {call.ErrInvalidState, 422}},
				Handler: func(r *Request) (any, error) {
					id := bridgeID(r)
					if _, err := s.calls.Bridge(id); err != nil {
						return nil, err
					}
					chans, err := s.channelList(r)
					if err != nil {
						return nil, err
					}
					for _, ch := range chans {
						if err := s.calls.RemoveFromBridge(id, ch); err != nil {
							return nil, err
						}
					}
					return nil, nil
				}},
			{Method: "POST", Path: "/bridges/{bridgeId}/moh", Nickname: "startMoh", Summary: "Play music on hold to a bridge or change the MOH class that is playing.", Returns: "void",
				Params:  []Param{brID, query("mohClass", "string", false, "Music on hold class (a subdirectory of sounds.moh_dir; default: the files of sounds.moh_dir)")},
				Errors:  []ErrorResponse{noBridge, {409, "Bridge not in Stasis application"}},
				Handler: func(r *Request) (any, error) { return nil, s.calls.StartBridgeMOH(bridgeID(r), r.String("mohClass")) }},
			{Method: "DELETE", Path: "/bridges/{bridgeId}/moh", Nickname: "stopMoh", Summary: "Stop playing music on hold to a bridge.", Returns: "void",
				Params: []Param{brID}, Errors: []ErrorResponse{noBridge, {409, "Bridge not in Stasis application; bridge isn't playing music on hold"}},
				Handler: func(r *Request) (any, error) { return nil, s.calls.StopBridgeMOH(bridgeID(r)) }},
			{Method: "POST", Path: "/bridges/{bridgeId}/play", Nickname: "play", Summary: "Start playback of media on a bridge.", Returns: "Playback",
				Params: append(append([]Param{brID}, playParams(true)...), announcerFormat), Errors: []ErrorResponse{noBridge, {409, "Bridge not in a Stasis application"}, {422, "The format specified is unknown on this system"}},
				Handler: func(r *Request) (any, error) { return s.bridgePlay(r, "") }},
			{Method: "POST", Path: "/bridges/{bridgeId}/play/{playbackId}", Nickname: "playWithId", Summary: "Start playback of media on a bridge.", Returns: "Playback",
				Params: append(append([]Param{brID, pbID}, playParams(false)...), announcerFormat), Errors: []ErrorResponse{noBridge, {409, "Bridge not in a Stasis application"}, {422, "The format specified is unknown on this system"}},
				Handler: func(r *Request) (any, error) { return s.bridgePlay(r, r.Path("playbackId")) }},
			{Method: "POST", Path: "/bridges/{bridgeId}/record", Nickname: "record", Summary: "Start a recording.", Returns: "LiveRecording",
				Params: append(append([]Param{brID}, recordParams()...),
					query("recorder_format", "string", false, "Format of the recording (defaults to format)"),
					Param{Name: "stereo", In: "query", Type: "boolean", Default: "false", Description: "tapedeck: record a two-party bridge as stereo, one party per channel (format wav)"}),
				Errors: []ErrorResponse{{400, "Invalid parameters"}, noBridge, {409, "Bridge not in a Stasis application; A recording with the same name already exists on the system and can not be overwritten because it is in progress or ifExists=fail"}, {422, "The format specified is unknown on this system"}},
				Handler: func(r *Request) (any, error) {
					// The recorder hears the 8 kHz mix whatever its format;
					// a format Asterisk does not know is refused as there.
					if f := r.String("recorder_format"); f != "" && !call.KnownFormat(f) {
						return nil, apiErr(422, "Recorder format specified is unknown on this system")
					}
					rec, err := s.calls.RecordBridge(bridgeID(r), recordOptions(r), r.Bool("stereo"))
					if err != nil {
						return nil, err
					}
					return &Created{Location: liveLocation(rec.Name), Body: rec}, nil
				}},
		},
	}
}

// createBridge creates (or, with an existing id, finds) a bridge and sets
// the body's variables on it.
func (s *Server) createBridge(r *Request, id call.BridgeID) (any, error) {
	if _, err := bridgeVars(r); err != nil {
		return nil, err // refused before the bridge is made
	}
	b, err := s.calls.CreateBridge(id, bridgeType(r), r.String("name"))
	if err != nil {
		return nil, err
	}
	if err := s.setBridgeVars(r, b.ID); err != nil {
		return nil, err
	}
	return s.calls.Bridge(b.ID)
}

type bridgeVar struct {
	value  string
	report bool
}

// bridgeVars reads the "variables" body member: each value a string, or
// {"value": string, "report_events": bool}.
func bridgeVars(r *Request) (map[string]bridgeVar, error) {
	vars, _, err := r.Object("variables")
	if err != nil {
		return nil, err
	}
	out := map[string]bridgeVar{}
	for k, v := range vars {
		switch x := v.(type) {
		case string:
			out[k] = bridgeVar{value: x}
		case map[string]any:
			val, ok := x["value"].(string)
			rep, repOK := x["report_events"].(bool)
			if !ok || (x["report_events"] != nil && !repOK) {
				return nil, apiErr(400, "Bridge variable "+k+": want a string or {\"value\": string, \"report_events\": bool}")
			}
			out[k] = bridgeVar{value: val, report: rep}
		default:
			return nil, apiErr(400, "Bridge variable "+k+": want a string or {\"value\": string, \"report_events\": bool}")
		}
	}
	return out, nil
}

func (s *Server) setBridgeVars(r *Request, id call.BridgeID) error {
	vars, err := bridgeVars(r)
	if err != nil {
		return err
	}
	for k, v := range vars {
		if err := s.calls.SetBridgeVar(id, k, v.value, false, v.report); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) bridgePlay(r *Request, id string) (any, error) {
	// The announcer mixes 8 kHz linear audio whatever its format; a
	// format Asterisk does not know is refused as Asterisk refuses it.
	if f := r.String("announcer_format"); f != "" && !call.KnownFormat(f) {
		return nil, apiErr(422, "Announcer format specified is unknown on this system")
	}
	p, err := s.calls.PlayOnBridge(bridgeID(r), playOptions(r, id))
	if err != nil {
		return nil, err
	}
	return playbackCreated(p), nil
}

// channelList resolves the channel parameter (400 for an unknown channel):
// every channel is checked before any is added or removed.
func (s *Server) channelList(r *Request) ([]call.ChannelID, error) {
	var out []call.ChannelID
	for _, id := range r.List("channel") {
		if _, err := s.calls.Channel(call.ChannelID(id)); err != nil {
			return nil, apiErr(400, "Channel not found: "+id)
		}
		out = append(out, call.ChannelID(id))
	}
	if len(out) == 0 {
		return nil, apiErr(400, "Missing parameter channel")
	}
	return out, nil
}
