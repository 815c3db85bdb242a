package ari

import (
	"github.com/tapedeck/tapedeck/internal/call"
)

var pbID = pathParam("playbackId", "Playback's id")

// playParams are the parameters of channel play (and playWithId minus the id).
func playParams(withID bool) []Param {
	ps := []Param{
		{Name: "media", In: "query", Type: "string", Required: true, Multi: true, Description: "Media URIs to play."},
		query("lang", "string", false, "For sounds, selects language for sound."),
		{Name: "offsetms", In: "query", Type: "int", Min: intp(0), Description: "Number of milliseconds to skip before playing. Only applies to the first URI if multiple media URIs are specified."},
		{Name: "skipms", In: "query", Type: "int", Default: "3000", Min: intp(0), Description: "Number of milliseconds to skip for forward/reverse operations."},
	}
	if withID {
		ps = append(ps, query("playbackId", "string", false, "Playback ID."))
	}
	return ps
}

func playOptions(r *Request, id string) call.PlayOptions {
	if id == "" {
		id = r.String("playbackId")
	}
	return call.PlayOptions{ID: call.PlaybackID(id), Media: r.List("media"), Lang: r.String("lang"), OffsetMs: r.Int("offsetms"), SkipMs: r.Int("skipms")}
}

func playbackCreated(p call.PlaybackJSON) *Created {
	return &Created{Location: "/ari/playbacks/" + string(p.ID), Body: p}
}

// playbackID is the request's {playbackId}.
func playbackID(r *Request) call.PlaybackID { return call.PlaybackID(r.Path("playbackId")) }

func (s *Server) channelPlayOps() []Op {
	errs := []ErrorResponse{errNoChan, errNotInStasis, errChanState}
	play := func(r *Request, id string) (any, error) {
		p, err := s.calls.Play(channelID(r), playOptions(r, id))
		if err != nil {
			return nil, err
		}
		return playbackCreated(p), nil
	}
	return []Op{
		{Method: "POST", Path: "/channels/{channelId}/play", Nickname: "play", Summary: "Start playback of media.", Returns: "Playback",
			Params: append([]Param{chanID}, playParams(true)...), Errors: errs,
			Handler: func(r *Request) (any, error) { return play(r, "") }},
		{Method: "POST", Path: "/channels/{channelId}/play/{playbackId}", Nickname: "playWithId", Summary: "Start playback of media and specify the playbackId.", Returns: "Playback",
			Params: append([]Param{chanID, pbID}, playParams(false)...), Errors: errs,
			Handler: func(r *Request) (any, error) { return play(r, r.Path("playbackId")) }},
	}
}

func (s *Server) playbacksResource() *Resource {
	notFound := ErrorResponse{404, "The playback cannot be found"}
	return &Resource{
		Name:        "playbacks",
		Description: "Playback control resources",
		Models:      []string{"Playback"},
		Ops: []Op{
			{Method: "GET", Path: "/playbacks/{playbackId}", Nickname: "get", Summary: "Get a playback's details.", Returns: "Playback",
				Params: []Param{pbID}, Errors: []ErrorResponse{notFound},
				Handler: func(r *Request) (any, error) { return s.calls.Playback(playbackID(r)) }},
			{Method: "DELETE", Path: "/playbacks/{playbackId}", Nickname: "stop", Summary: "Stop a playback.", Returns: "void",
				Params: []Param{pbID}, Errors: []ErrorResponse{notFound},
				Handler: func(r *Request) (any, error) { return nil, s.calls.StopPlayback(playbackID(r)) }},
			{Method: "POST", Path: "/playbacks/{playbackId}/control", Nickname: "control", Summary: "Control a playback.", Returns: "void",
				Params: []Param{pbID, {Name: "operation", In: "query", Type: "string", Required: true, Allowed: []string{"restart", "pause", "unpause", "reverse", "forward"}, Description: "Operation to perform on the playback."}},
				Errors: []ErrorResponse{{400, "The provided operation parameter was invalid"}, notFound, {409, "The operation cannot be performed in the playback's current state"}},
				Handler: func(r *Request) (any, error) {
					return nil, s.calls.ControlPlayback(playbackID(r), call.PlaybackOp(r.String("operation")))
				}},
		},
	}
}
