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
	}
	channelList := Param{Name: "channel", In: "query", Type: "string", Required: true, Multi: true, Description: "Ids of channels to add to bridge"}
	return &Resource{
		Name:        "bridges",
		Description: "Bridge resources",
		Models:      []string{"Bridge"},
		Ops: []Op{
			{Method: "GET", Path: "/bridges", Nickname: "list", Summary: "List all active bridges in Asterisk.", Returns: "List[Bridge]",
				Handler: func(r *Request) (any, error) { return s.calls.Bridges(), nil }},
			{Method: "POST", Path: "/bridges", Nickname: "create", Summary: "Create a new bridge.", Returns: "Bridge",
				Params: append(createParams, query("bridgeId", "string", false, "Unique ID to give to the bridge being created.")),
				Errors: []ErrorResponse{{409, "Bridge with the same bridgeId already exists"}},
				Handler: func(r *Request) (any, error) {
					return s.calls.CreateBridge(call.BridgeID(r.String("bridgeId")), bridgeType(r), r.String("name"))
				}},
			{Method: "POST", Path: "/bridges/{bridgeId}", Nickname: "createWithId", Summary: "Create a new bridge or updates an existing one.", Returns: "Bridge",
				Params: append([]Param{brID}, createParams...), Errors: []ErrorResponse{{409, "Bridge with the same bridgeId already exists"}},
				Handler: func(r *Request) (any, error) {
					return s.calls.CreateBridge(bridgeID(r), bridgeType(r), r.String("name"))
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
