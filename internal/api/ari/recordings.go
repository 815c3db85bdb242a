package ari

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/httpx"
	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

var recName = pathParam("recordingName", "The name of the recording")

// peerDown: a stored recording kept on another node's disk, that node not
// answering (tapedeck's clusters without object storage).
var peerDown = ErrorResponse{503, "The node holding the recording's file does not answer"}

// recordParams are the parameters of channel (and later bridge) record.
func recordParams() []Param {
	return []Param{
		query("name", "string", true, "Recording's filename"),
		query("format", "string", true, "Format to encode audio in"),
		{Name: "maxDurationSeconds", In: "query", Type: "int", Default: "0", Min: intp(0), Description: "Maximum duration of the recording, in seconds. 0 for no limit"},
		{Name: "maxSilenceSeconds", In: "query", Type: "int", Default: "0", Min: intp(0), Description: "Maximum duration of silence, in seconds. 0 for no limit"},
		{Name: "ifExists", In: "query", Type: "string", Default: "fail", Allowed: []string{"fail", "overwrite", "append"}, Description: "Action to take if a recording with the same name already exists."},
		{Name: "beep", In: "query", Type: "boolean", Default: "false", Description: "Play beep when recording begins"},
		{Name: "terminateOn", In: "query", Type: "string", Default: "none", Allowed: []string{"none", "any", "*", "#"}, Description: "DTMF input to terminate recording"},
	}
}

func recordOptions(r *Request) call.RecordOptions {
	return call.RecordOptions{
		Name:        r.String("name"),
		Format:      r.String("format"),
		MaxDuration: time.Duration(r.Int("maxDurationSeconds")) * time.Second,
		MaxSilence:  time.Duration(r.Int("maxSilenceSeconds")) * time.Second,
		// Asterisk's DSP threshold: a steady tone or noise above it is talking.
		SilenceThreshold: recorder.DSPThreshold,
		IfExists:         r.String("ifExists"),
		Beep:             r.Bool("beep"),
		TerminateOn:      r.String("terminateOn"),
	}
}

func liveLocation(name string) string {
	return "/ari/recordings/live/" + url.PathEscape(name)
}

// liveOp wraps a void operation on the live recording {recordingName}.
func liveOp(f func(call.RecordingName) error) Handler {
	return func(r *Request) (any, error) { return nil, f(call.RecordingName(r.Path("recordingName"))) }
}

func (s *Server) recordingsResource() *Resource {
	notFound := ErrorResponse{404, "Recording not found"}
	notInSession := ErrorResponse{409, "Recording not in session"}
	return &Resource{
		Name:        "recordings",
		Description: "Recording resources",
		Models:      []string{"StoredRecording", "LiveRecording"},
		Ops: []Op{
			{Method: "GET", Path: "/recordings/stored", Nickname: "listStored", Summary: "List recordings that are complete.", Returns: "List[StoredRecording]",
				Handler: func(r *Request) (any, error) {
					list, err := s.calls.ListStored()
					if err != nil {
						return nil, apiErr(500, err.Error())
					}
					return list, nil
				}},
			{Method: "GET", Path: "/recordings/stored/{recordingName}", Nickname: "getStored", Summary: "Get a stored recording's details.", Returns: "StoredRecording",
				Params: []Param{recName}, Errors: []ErrorResponse{notFound},
				Handler: func(r *Request) (any, error) {
					rec, err := s.calls.GetStored(r.Path("recordingName"))
					if err != nil {
						return nil, err
					}
					return rec.StoredRecordingJSON, nil
				}},
			{Method: "DELETE", Path: "/recordings/stored/{recordingName}", Nickname: "deleteStored", Summary: "Delete a stored recording.", Returns: "void",
				Params: []Param{recName}, Errors: []ErrorResponse{notFound, {409, "Recording is in progress"}, peerDown},
				Handler: func(r *Request) (any, error) {
					by := meta.Audit{Action: meta.AuditDelete, Actor: basicUser(r.HTTP), API: "ari", Remote: r.HTTP.RemoteAddr}
					return nil, s.calls.DeleteStored(r.Path("recordingName"), by)
				}},
			{Method: "GET", Path: "/recordings/stored/{recordingName}/file", Nickname: "getStoredFile", Summary: "Get the file associated with the stored recording.", Returns: "binary",
				Params: []Param{recName}, Errors: []ErrorResponse{{403, "The recording file could not be opened"}, notFound, peerDown},
				Handler: func(r *Request) (any, error) {
					rec, err := s.calls.GetStored(r.Path("recordingName"))
					if err != nil {
						return nil, err
					}
					return &Raw{ContentType: rec.ContentType, Serve: func(w http.ResponseWriter, hr *http.Request) {
						f, mod, err := s.calls.OpenStored(hr.Context(), rec)
						if errors.Is(err, catalog.ErrUnavailable) {
							// On another node's disk, and that node does not
							// answer: 503, try later (never another file).
							writeError(w, apiErr(503, err.Error()))
							return
						}
						if err != nil {
							writeError(w, apiErr(403, "The recording file could not be opened"))
							return
						}
						defer f.Close()
						name := path.Base(rec.Name) + "." + rec.Format
						w.Header().Set("Content-Type", rec.ContentType)
						w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
						httpx.ServeContent(w, hr, "", mod, f) // Range support, ranges capped
					}}, nil
				}},
			{Method: "POST", Path: "/recordings/stored/{recordingName}/copy", Nickname: "copyStored", Summary: "Copy a stored recording.", Returns: "StoredRecording",
				Params: []Param{recName, query("destinationRecordingName", "string", true, "Destination name of the recording")},
				Errors: []ErrorResponse{notFound, {409, "A recording with the same name already exists on the system"}},
				Handler: func(r *Request) (any, error) {
					rec, err := s.calls.CopyStored(r.Path("recordingName"), r.String("destinationRecordingName"))
					if err != nil {
						return nil, err
					}
					return rec.StoredRecordingJSON, nil
				}},
			{Method: "GET", Path: "/recordings/live/{recordingName}", Nickname: "getLive", Summary: "List live recordings.", Returns: "LiveRecording",
				Params: []Param{recName}, Errors: []ErrorResponse{notFound},
				Handler: func(r *Request) (any, error) {
					return s.calls.LiveRecording(call.RecordingName(r.Path("recordingName")))
				}},
			{Method: "DELETE", Path: "/recordings/live/{recordingName}", Nickname: "cancel", Summary: "Stop a live recording and discard it.", Returns: "void",
				Params: []Param{recName}, Errors: []ErrorResponse{notFound},
				Handler: liveOp(func(n call.RecordingName) error { return s.calls.CancelRecording(n) })},
			{Method: "POST", Path: "/recordings/live/{recordingName}/stop", Nickname: "stop", Summary: "Stop a live recording and store it.", Returns: "void",
				Params: []Param{recName}, Errors: []ErrorResponse{notFound},
				Handler: liveOp(func(n call.RecordingName) error { return s.calls.StopRecording(n) })},
			{Method: "POST", Path: "/recordings/live/{recordingName}/pause", Nickname: "pause", Summary: "Pause a live recording.", Returns: "void",
				Params: []Param{recName}, Errors: []ErrorResponse{notFound, notInSession},
				Handler: liveOp(func(n call.RecordingName) error { return s.calls.PauseRecording(n, true) })},
			{Method: "DELETE", Path: "/recordings/live/{recordingName}/pause", Nickname: "unpause", Summary: "Unpause a live recording.", Returns: "void",
				Params: []Param{recName}, Errors: []ErrorResponse{notFound, notInSession},
				Handler: liveOp(func(n call.RecordingName) error { return s.calls.PauseRecording(n, false) })},
			{Method: "POST", Path: "/recordings/live/{recordingName}/mute", Nickname: "mute", Summary: "Mute a live recording.", Returns: "void",
				Params: []Param{recName}, Errors: []ErrorResponse{notFound, notInSession},
				Handler: liveOp(func(n call.RecordingName) error { return s.calls.MuteRecording(n, true) })},
			{Method: "DELETE", Path: "/recordings/live/{recordingName}/mute", Nickname: "unmute", Summary: "Unmute a live recording.", Returns: "void",
				Params: []Param{recName}, Errors: []ErrorResponse{notFound, notInSession},
				Handler: liveOp(func(n call.RecordingName) error { return s.calls.MuteRecording(n, false) })},
		},
	}
}
