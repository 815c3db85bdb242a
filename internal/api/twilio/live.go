package twilio

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// Recording control on a live call (Twilio's Call Recordings resource):
// POST Calls/{CallSid}/Recordings starts one, POST
// Calls/{CallSid}/Recordings/{Sid|Twilio.CURRENT} pauses, resumes or
// stops it. A call is any call tapedeck carries (ARI, dialplan, policy,
// script), found by its CallSid.

// LiveCalls is what the API needs of the call model (*call.Manager).
type LiveCalls interface {
	CallLegs(callSid string) (accountSid string, ids []call.ChannelID)
	RecordCall(id call.ChannelID, o call.CallRecordOptions) (call.LiveRecordingJSON, error)
	PauseRecordingAs(name call.RecordingName, on bool, behavior, by string) error
	MuteRecording(name call.RecordingName, on bool) error
	StopRecording(name call.RecordingName) error
}

// Twilio's error codes of recording control.
const (
	CodeInvalidCallState = 21220 // the call is not in progress
	// CodeConcurrentRecording: Twilio's "Request failed due to concurrent
	// recordings": a start while the call already has as many recordings
	// running as allowed (Options.MaxRecordingsPerCall), or Twilio.CURRENT
	// where more than one of the call's runs (it names none).
	CodeConcurrentRecording = 16108
	// CodeRecordingState: the recording is not in a state to accept the
	// action (Twilio's "Resource not in a state to accept recording action
	// request"): it has ended.
	CodeRecordingState = 16114
)

// MinRecording is the shortest recording Twilio keeps: a shorter one is
// absent, with error 16101 (too short); a silent one is absent with 16102
// (RecordOptions.AbsentSilent).
const MinRecording = time.Second

// CurrentSid names the call's running recording.
const CurrentSid = "Twilio.CURRENT"

// liveRec is a recording started through this API, while it runs.
type liveRec struct {
	sid, name, callSid, accountSid string
	track                          string
	channels                       int
	status                         string // in-progress, paused
	stopped                        bool   // asked to stop: no longer running
	behavior                       string // the pause's: skip or silence
	callback                       *callback
	// kept: the callback is kept with the catalog row (keepCallback), so
	// the catalog may queue its final status with the final row.
	kept bool
	// held: a callback went to the sender's memory (hold).
	held bool
	// startDone is closed once the start has settled (startRecording):
	// its Sid known and its in-progress callback queued, or the start
	// given up with no Sid. What follows the start (finished, degraded)
	// waits on it. Nil for a liveRec that no start made (its Sid known).
	startDone chan struct{}
}

// awaitStart waits until lr's start has settled (startDone) or ctx ends;
// false when ctx ended first.
func (lr *liveRec) awaitStart(ctx context.Context) bool {
	if lr.startDone == nil {
		return true
	}
	select {
	case <-lr.startDone:
		return true
	case <-ctx.Done():
		return false
	}
}

// runningLocked is the call's recordings started here that have not been
// asked to stop (s.mu held): those still starting included.
func (s *Server) runningLocked(callSid string) []*liveRec {
	var out []*liveRec
	for _, x := range s.live[callSid] {
		if !x.stopped {
			out = append(out, x)
		}
	}
	return out
}

// describeRunning names running recordings for an error (s.mu held): their
// Sids and statuses, or "a recording being started" for one whose row is
// not there yet.
func describeRunning(running []*liveRec) string {
	var names []string
	for _, x := range running {
		if x.sid != "" {
			names = append(names, "the recording "+x.sid+" ("+x.status+")")
		} else {
			names = append(names, "a recording being started")
		}
	}
	return strings.Join(names, " and ")
}

// liveByCall is the API's running recordings of a call.
func (s *Server) liveByCall(callSid string) []*liveRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*liveRec(nil), s.live[callSid]...)
}

func formValue(r *http.Request, name, def string, allowed ...string) (string, error) {
	v := r.PostForm.Get(name)
	if v == "" {
		return def, nil
	}
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", fail(400, CodeInvalidParameter, "%s must be one of %s, got %q", name, strings.Join(allowed, ", "), v)
}

// startRecording: POST Calls/{CallSid}/Recordings.
func (s *Server) startRecording(w http.ResponseWriter, r *http.Request, req *request, acc meta.Account) {
	if s.o.Calls == nil {
		s.writeError(w, notFound(r.URL.Path))
		return
	}
	if err := r.ParseForm(); err != nil {
		s.writeError(w, fail(400, CodeInvalidParameter, "Invalid form: %v", err))
		return
	}
	channels, err := formValue(r, "RecordingChannels", "mono", "mono", "dual")
	trim := ""
	if err == nil {
		trim, err = formValue(r, "Trim", "do-not-trim", "trim-silence", "do-not-trim")
	}
	track := ""
	if err == nil {
		track, err = formValue(r, "RecordingTrack", "both", "inbound", "outbound", "both")
	}
	if err != nil {
		s.writeError(w, err)
		return
	}
	cb, err := s.parseCallback(r)
	if err != nil {
		s.writeError(w, err)
		return
	}
	accountSid, legs := s.o.Calls.CallLegs(req.callSid)
	if len(legs) == 0 || accountSid != "" && accountSid != acc.Sid {
		s.writeError(w, notFound(r.URL.Path))
		return
	}
	if track != "both" && channels == "dual" {
		// Dual channels are the two parties: both tracks.
		s.writeError(w, fail(400, CodeInvalidParameter, "RecordingTrack=%s records one direction: it cannot be dual-channel", track))
		return
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := NamePrefix + req.callSid + "/" + hex.EncodeToString(b[:])
	lr := &liveRec{name: name, callSid: req.callSid, accountSid: acc.Sid, track: track, channels: 1, status: "in-progress", callback: cb,
		startDone: make(chan struct{})}
	if channels == "dual" {
		lr.channels = 2
	}
	// A call has one recording of this API at a time unless the operator
	// allows more (Twilio.CURRENT then names none: 16108). Counted and
	// added at once, so two starts at the same moment cannot both pass.
	s.mu.Lock()
	if running := s.runningLocked(req.callSid); s.o.MaxRecordingsPerCall >= 0 && len(running) >= max(s.o.MaxRecordingsPerCall, 1) {
		err := fail(400, CodeConcurrentRecording, "Request failed due to concurrent recordings: the call %s already has %s", req.callSid, describeRunning(running))
		s.mu.Unlock()
		s.writeError(w, err)
		return
	}
	s.live[req.callSid] = append(s.live[req.callSid], lr)
	s.mu.Unlock()
	release := func() {
		s.mu.Lock()
		list := s.live[req.callSid]
		for i, x := range list {
			if x == lr {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(s.live, req.callSid)
		} else {
			s.live[req.callSid] = list
		}
		s.mu.Unlock()
	}
	// RowFirst: RecordCall returns once the recording's first row is in
	// the catalog (a row the catalog refuses: nothing records).
	_, err = s.o.Calls.RecordCall(legs[0], call.CallRecordOptions{
		RecordOptions: call.RecordOptions{Name: name, Format: "wav", AbsentBelow: MinRecording, AbsentSilent: true, TrimSilence: trim == "trim-silence", Track: track,
			OnDegraded: func(q *meta.Quality) { s.degraded(lr, q) }},
		Stereo:   channels == "dual",
		RowFirst: true,
		OnFinish: func(call.CallRecordResult) {
			release()
			s.finished(lr)
		},
	})
	if err != nil {
		release()
		close(lr.startDone) // (nothing recorded: nothing waits on it)
		switch {
		case errors.Is(err, call.ErrUnsupported):
			s.writeError(w, fail(400, CodeInvalidParameter, "RecordingChannels=dual: %v", err))
		case errors.Is(err, call.ErrNotFound):
			s.writeError(w, fail(400, CodeInvalidCallState, "The call %s is not in progress", req.callSid))
		case errors.Is(err, call.ErrUnavailable):
			s.writeError(w, fail(503, CodeServiceUnavailable, "%v", err))
		default:
			s.writeError(w, err)
		}
		return
	}
	rec, err := s.o.Catalog.Meta.RecordingByName(r.Context(), name)
	if err != nil {
		close(lr.startDone) // no Sid: finished has nothing to send
		s.writeError(w, err)
		return
	}
	s.started(r.Context(), lr, rec)
	close(lr.startDone)
	writeJSON(w, 201, s.callRecordingJSON(r, rec, lr))
}

// updateRecording: POST Calls/{CallSid}/Recordings/{Sid|Twilio.CURRENT}
// with Status=paused|in-progress|stopped and PauseBehavior=skip|silence.
func (s *Server) updateRecording(w http.ResponseWriter, r *http.Request, req *request, acc meta.Account) {
	if s.o.Calls == nil {
		s.writeError(w, notFound(r.URL.Path))
		return
	}
	if err := r.ParseForm(); err != nil {
		s.writeError(w, fail(400, CodeInvalidParameter, "Invalid form: %v", err))
		return
	}
	status := r.PostForm.Get("Status")
	behavior, err := formValue(r, "PauseBehavior", "silence", "skip", "silence")
	if err == nil && status != "paused" && status != "in-progress" && status != "stopped" {
		err = fail(400, CodeInvalidParameter, "Status must be paused, in-progress or stopped, got %q", status)
	}
	if err != nil {
		s.writeError(w, err)
		return
	}
	var lr *liveRec
	var running int
	for _, x := range s.liveByCall(req.callSid) {
		s.mu.Lock()
		sid, stopped := x.sid, x.stopped
		s.mu.Unlock()
		if x.accountSid != acc.Sid || sid == "" || stopped {
			continue // another account's, not started yet, or stopped
		}
		running++
		if req.sid == CurrentSid || req.sid == sid {
			lr = x
		}
	}
	if req.sid == CurrentSid && running > 1 {
		s.writeError(w, fail(400, CodeConcurrentRecording, "The call %s has %d recordings in progress: Twilio.CURRENT names none of them; use a recording's Sid", req.callSid, running))
		return
	}
	if lr == nil {
		// Not running: a finished recording of this call, or nothing.
		if req.sid != CurrentSid {
			if rec, err := s.recording(r.Context(), r, req, acc.Sid, false); err == nil {
				s.writeError(w, fail(400, CodeRecordingState, "The recording %s is %s: it cannot be %s", rec.Sid, Status(rec.Status), status))
				return
			}
		}
		s.writeError(w, notFound(r.URL.Path))
		return
	}
	name := call.RecordingName(lr.name)
	s.mu.Lock()
	prev, prevBehavior := lr.status, lr.behavior
	s.mu.Unlock()
	switch {
	case status == "stopped":
		err = s.o.Calls.StopRecording(name)
	case status == "paused" && prev == "in-progress":
		// skip leaves the paused time out; silence keeps it, as silence.
		err = s.o.Calls.PauseRecordingAs(name, true, behavior, "twilio:"+acc.Sid)
	case status == "in-progress" && prev == "paused":
		err = s.o.Calls.PauseRecordingAs(name, false, prevBehavior, "twilio:"+acc.Sid)
	}
	if err != nil {
		if errors.Is(err, call.ErrNotFound) || errors.Is(err, call.ErrInvalidState) {
			err = fail(400, CodeRecordingState, "The recording %s has ended: it cannot be %s", lr.sid, status)
		}
		s.writeError(w, err)
		return
	}
	s.mu.Lock()
	if status == "stopped" {
		lr.stopped = true
	}
	if status != prev && status != "stopped" {
		lr.status = status
		if status == "paused" {
			lr.behavior = behavior
		}
	}
	s.mu.Unlock()
	rec, err := s.o.Catalog.Meta.Recording(r.Context(), acc.Sid, lr.sid)
	if err != nil {
		s.writeError(w, err)
		return
	}
	// Queued with the row's status, before the answer (noteLive).
	switch {
	case status == "paused" && prev == "in-progress":
		s.noteLive(r.Context(), lr, "paused", meta.StatusPaused, nil, rec)
	case status == "in-progress" && prev == "paused":
		s.noteLive(r.Context(), lr, "resumed", meta.StatusInProgress, nil, rec)
	}
	s.mu.Lock()
	out := *lr
	s.mu.Unlock()
	out.status = status
	writeJSON(w, 200, s.callRecordingJSON(r, rec, &out))
}

// callRecordingJSON is Twilio's Call Recording resource.
type callRecordingJSON struct {
	recordingJSON
	Track string `json:"track"`
}

func (s *Server) callRecordingJSON(r *http.Request, rec meta.Recording, lr *liveRec) callRecordingJSON {
	j := callRecordingJSON{recordingJSON: s.recordingJSON(r, rec), Track: lr.track}
	j.URI = "/" + APIVersion + "/Accounts/" + rec.AccountSid + "/Calls/" + lr.callSid + "/Recordings/" + rec.Sid + ".json"
	j.Status, j.Channels, j.Source = lr.status, lr.channels, "StartCallRecordingAPI"
	j.Duration = "-1"
	return j
}
