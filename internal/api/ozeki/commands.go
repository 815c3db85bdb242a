package ozeki

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/speech"
	"github.com/tapedeck/tapedeck/internal/webhook"
)

// command is one API command: its name as Ozeki writes it and what it does.
type command struct {
	name string
	run  func(a *API, ctx context.Context, p params) (*Response, *Error)
}

// commands by lower-cased name.
var commands = map[string]command{}

func init() {
	for _, c := range []command{
		{"Record", (*API).cmdRecord},
		{"ListActiveCalls", (*API).cmdListActiveCalls},
		{"Call", (*API).cmdCall},
		{"Hangup", (*API).cmdHangup},
		{"Play", (*API).cmdPlay},
		{"Speak", (*API).cmdSpeak},
		{"SendDTMF", (*API).cmdSendDTMF},
	} {
		commands[strings.ToLower(c.name)] = c
	}
}

// CommandNames lists the commands, as Ozeki spells them.
func CommandNames() []string {
	out := make([]string, 0, len(commands))
	for _, c := range commands {
		out = append(out, c.name)
	}
	return out
}

// callID reads the required CallId and finds the call (302, 601).
func (a *API) callID(p params, cmd string) (call.ChannelID, *Error) {
	id := p.get("CallId")
	if id == "" {
		return "", errParam("CallId", cmd)
	}
	if _, err := a.o.Calls.Channel(call.ChannelID(id)); err != nil {
		return "", errNoCall(id)
	}
	return call.ChannelID(id), nil
}

// seconds reads an optional positive whole number of seconds.
func seconds(p params, name, cmd string) (time.Duration, *Error) {
	v := p.get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 || n > 24*60*60 {
		return 0, errParamWhy(name, cmd, "want a whole number of seconds from 1 to 86400")
	}
	return time.Duration(n) * time.Second, nil
}

// RecordRequest is a parsed Record (command or OzML verb).
type RecordRequest struct {
	CallID       call.ChannelID
	Duration     time.Duration
	Inactivity   time.Duration
	FinishDigits string
	Format       string
	RecordPath   string
	FinishedURL  string
}

var digitsRE = regexp.MustCompile(`^[0-9*#A-Da-d]+$`)

// parseRecord checks Record's parameters other than CallId.
func (a *API) parseRecord(ctx context.Context, p params, cmd string) (RecordRequest, *Error) {
	var r RecordRequest
	var e *Error
	if r.Duration, e = seconds(p, "Duration", cmd); e != nil {
		return r, e
	}
	if r.Inactivity, e = seconds(p, "Inactivity", cmd); e != nil {
		return r, e
	}
	if d := p.get("FinishDigits"); d != "" {
		if !digitsRE.MatchString(d) {
			return r, errParamWhy("FinishDigits", cmd, "digits are 0-9, *, # and A-D")
		}
		r.FinishDigits = d
	}
	r.Format = strings.ToLower(p.get("Format"))
	if r.Format == "" {
		r.Format = "mp3" // Ozeki's default
	}
	if r.Format != "mp3" && r.Format != "wav" {
		return r, errParamWhy("Format", cmd, "mp3 or wav")
	}
	if _, err := recorder.Lookup(r.Format); err != nil {
		if errors.Is(err, recorder.ErrUnavailable) {
			return r, errParamWhy("Format", cmd, err.Error()+"; or ask for Format=wav")
		}
		return r, errParamWhy("Format", cmd, err.Error())
	}
	if rp := p.get("RecordPath"); rp != "" {
		dir, err := a.allowedDir(rp)
		if err != nil {
			return r, errParamWhy("RecordPath", cmd, err.Error())
		}
		r.RecordPath = dir
	}
	r.FinishedURL = p.get("FinishedUrl")
	if r.FinishedURL != "" {
		if a.o.Webhook == nil {
			return r, errParamWhy("FinishedUrl", cmd, "notifications are not configured")
		}
		if err := a.o.Webhook.CheckTarget(ctx, r.FinishedURL); err != nil {
			return r, errParamWhy("FinishedUrl", cmd, strings.TrimPrefix(err.Error(), webhook.ErrTarget.Error()+": "))
		}
	}
	return r, nil
}

// allowedDir accepts an absolute directory inside one of RecordPaths
// (symlinks resolved where they exist).
func (a *API) allowedDir(dir string) (string, error) {
	if len(a.o.RecordPaths) == 0 {
		return "", errors.New("no record_paths are configured")
	}
	dir = filepath.FromSlash(dir)
	if !filepath.IsAbs(dir) {
		return "", errors.New("not an absolute path")
	}
	clean := filepath.Clean(dir)
	real := clean
	if r, err := filepath.EvalSymlinks(clean); err == nil {
		real = r
	}
	for _, allowed := range a.o.RecordPaths {
		ra := filepath.Clean(allowed)
		if r, err := filepath.EvalSymlinks(ra); err == nil {
			ra = r
		}
		if rel, err := filepath.Rel(ra, real); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return clean, nil
		}
	}
	return "", errors.New("not inside an allowed directory (ozeki.record_paths)")
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// maxNameTries bounds the suffixes StartRecord tries for a name taken.
const maxNameTries = 100

// StartRecord starts a Record on its call; RecordCompleted goes to the
// FinishedUrl when it ends. Its file is named after the call and the
// millisecond; a name already taken (a second Record of the call in the
// same millisecond, live here or on another node, or stored) gets a
// suffix (-1, -2, ...) instead of refusing the command or overwriting
// the other recording.
func (a *API) StartRecord(r RecordRequest, onFinish func(call.CallRecordResult)) *Error {
	base := unsafeName.ReplaceAllString(string(r.CallID), "_") + "-" + strconv.FormatInt(time.Now().UnixMilli(), 10)
	if r.RecordPath != "" {
		if err := os.MkdirAll(r.RecordPath, 0o755); err != nil {
			return errParamWhy("RecordPath", "Record", err.Error())
		}
	}
	var ro call.RecordOptions
	var err error
	for i := 0; i < maxNameTries; i++ {
		name := base
		if i > 0 {
			name += "-" + strconv.Itoa(i)
		}
		ro = call.RecordOptions{Name: a.o.Folder + "/" + name, Format: r.Format, MaxDuration: r.Duration,
			MaxSilence: r.Inactivity, IfExists: "fail", Callback: a.keptCallback(r)}
		if r.RecordPath != "" {
			ro.Name, ro.Root = name, r.RecordPath
		}
		a.wg.Add(1) // done when RecordCompleted is queued
		recName := ro.Name
		// RowFirst: the answer comes once the recording's row (and its
		// FinishedUrl) is in the catalog, so a crash after it cannot lose
		// RecordCompleted.
		_, err = a.o.Calls.RecordCall(r.CallID, call.CallRecordOptions{RecordOptions: ro, FinishDigits: r.FinishDigits,
			RowFirst: true, OnFinish: func(res call.CallRecordResult) {
				defer a.wg.Done()
				a.recordFinished(r, recName, res)
				if onFinish != nil {
					onFinish(res)
				}
			}})
		if err == nil {
			break
		}
		a.wg.Done()
		if !errors.Is(err, call.ErrConflict) {
			break
		}
	}
	if err != nil {
		return fromCall(err, "Record", string(r.CallID))
	}
	a.o.Log.Info("ozeki: recording call", "call", r.CallID, "name", ro.Name, "format", r.Format,
		"finish_digits", r.FinishDigits, "duration", r.Duration, "inactivity", r.Inactivity)
	return nil
}

// CauseCanceled is the Cause of the RecordCompleted of a Record canceled
// once it began (ARI's DELETE of its live recording): canceled, with no
// RecordURL, since a canceled recording's file and row are deleted.
const CauseCanceled = "The recording was canceled: its file and catalog row were deleted"

// recordFinished posts RecordCompleted, unless the catalog queued it with
// the recording's final row (FinalNotices, queuedWithRow). A recording
// canceled once it began has no final row (it is deleted); one that ended
// before it began has one, absent (call's catalogQueuedEnd).
func (a *API) recordFinished(r RecordRequest, name string, res call.CallRecordResult) {
	a.o.Log.Info("ozeki: recording finished", "call", r.CallID, "reason", res.Reason, "state", res.Recording.State, "path", res.Path)
	if r.FinishedURL == "" {
		return
	}
	canceledRunning := res.Recording.State == call.RecCanceled && res.Began
	if !canceledRunning && a.queuedWithRow(name) {
		return
	}
	dur := 0
	if res.Recording.Duration != nil {
		dur = *res.Recording.Duration
	}
	form := url.Values{
		"NotificationName": {"RecordCompleted"},
		"CallId":           {string(r.CallID)},
		"Duration":         {strconv.Itoa(dur)},
		"Format":           {r.Format},
		"Reason":           {res.Reason},
		"State":            {string(res.Recording.State)},
	}
	switch {
	case res.Recording.State == call.RecFailed:
		form.Set("Cause", res.Recording.Cause)
	case res.Recording.State == call.RecCanceled && !res.Began:
		// Ended before it began: no file.
		form.Set("Cause", catalog.DetailEndedBeforeStart)
	case res.Recording.State == call.RecCanceled:
		// Canceled once it began: its file and row are deleted, so
		// there is nothing to download.
		form.Set("Cause", CauseCanceled)
	default:
		form.Set("RecordURL", a.recordURL(res.Recording.Name, res.Path))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a.notify(ctx, "RecordCompleted", string(r.CallID), r.FinishedURL, form)
}

func (a *API) cmdRecord(ctx context.Context, p params) (*Response, *Error) {
	id, e := a.callID(p, "Record")
	if e != nil {
		return nil, e
	}
	r, e := a.parseRecord(ctx, p, "Record")
	if e != nil {
		return nil, e
	}
	r.CallID = id
	if e := a.StartRecord(r, nil); e != nil {
		return nil, e
	}
	return nil, nil
}

// Ozeki's call states.
func callState(s call.State) string {
	switch s {
	case call.StateUp:
		return "InCall"
	case call.StateRing, call.StateRinging:
		return "Ringing"
	case call.StateDown, call.StateDialing, call.StatePreRing:
		return "Setup"
	}
	return s.String()
}

// cmdListActiveCalls lists every call, oldest first, from the call model's
// summaries (in a pooled list that ServeHTTP hands back once written).
func (a *API) cmdListActiveCalls(ctx context.Context, p params) (*Response, *Error) {
	l := summaries.Get().(*[]call.CallSummary)
	*l = a.o.Calls.AppendCallSummaries((*l)[:0])
	return &Response{active: l, listActive: true, now: time.Now()}, nil
}

// cmdCall places a call: Dialed is a SIP URI or PJSIP/user@host; the call
// stays up under the API's control and its CallId is returned.
func (a *API) cmdCall(ctx context.Context, p params) (*Response, *Error) {
	dialed := p.get("Dialed")
	if dialed == "" {
		return nil, errParam("Dialed", "Call")
	}
	ep := dialed
	if strings.HasPrefix(strings.ToLower(dialed), "sip:") {
		ep = "PJSIP/" + dialed
	}
	if _, _, err := call.ParseEndpoint(ep); err != nil {
		return nil, errParamWhy("Dialed", "Call", "want a SIP URI (sip:user@host:port) or PJSIP/user@host")
	}
	timeout := 30 * time.Second
	if v := p.get("Timeout"); v != "" {
		d, e := seconds(p, "Timeout", "Call")
		if e != nil {
			return nil, e
		}
		timeout = d
	}
	j, err := a.o.Calls.Originate(call.OriginateOptions{Endpoint: ep, CallerID: p.get("CallerId"), Timeout: timeout, Controlled: true})
	if err != nil {
		if errors.Is(err, call.ErrInvalidArgument) {
			return nil, errParamWhy("Dialed", "Call", err.Error())
		}
		return nil, errHere("Call", err.Error())
	}
	return &Response{CallID: string(j.ID)}, nil
}

func (a *API) cmdHangup(ctx context.Context, p params) (*Response, *Error) {
	id, e := a.callID(p, "Hangup")
	if e != nil {
		return nil, e
	}
	if err := a.o.Calls.Hangup(id, call.CauseNormalClearing); err != nil {
		return nil, fromCall(err, "Hangup", string(id))
	}
	return nil, nil
}

// mediaURI turns Play's Url (http(s) URL, or the name of a sound) into a
// media URI.
func mediaURI(u string) string {
	if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") || !strings.Contains(u, ":") {
		return "sound:" + u
	}
	return u // sound:, tone:, digits:, ...
}

func (a *API) cmdPlay(ctx context.Context, p params) (*Response, *Error) {
	id, e := a.callID(p, "Play")
	if e != nil {
		return nil, e
	}
	u := p.get("Url")
	if u == "" {
		u = p.get("Sound")
	}
	if u == "" || len(u) > 2048 {
		return nil, errParam("Url", "Play")
	}
	if err := a.o.Calls.AnswerCall(id); err != nil {
		return nil, fromCall(err, "Play", string(id))
	}
	if _, err := a.o.Calls.PlayCall(id, call.PlayOptions{Media: []string{mediaURI(u)}}); err != nil {
		return nil, fromCall(err, "Play", string(id))
	}
	return nil, nil
}

// speakURI checks Speak's Text and Voice and that speech works.
func (a *API) speakURI(text, voice, cmd string) (string, *Error) {
	if strings.TrimSpace(text) == "" || len(text) > speech.MaxText {
		return "", errParam("Text", cmd)
	}
	if voice == "" {
		voice = speech.DefaultVoice
	}
	if err := speech.CheckVoice(voice); err != nil {
		return "", errParamWhy("Voice", cmd, err.Error())
	}
	if a.o.Speech == nil {
		return "", errHere(cmd, speech.ErrUnavailable.Error())
	}
	if err := a.o.Speech.Available(); err != nil {
		return "", errHere(cmd, err.Error())
	}
	return speech.URI(voice, text), nil
}

func (a *API) cmdSpeak(ctx context.Context, p params) (*Response, *Error) {
	id, e := a.callID(p, "Speak")
	if e != nil {
		return nil, e
	}
	uri, e := a.speakURI(p.get("Text"), p.get("Voice"), "Speak")
	if e != nil {
		return nil, e
	}
	if err := a.o.Calls.AnswerCall(id); err != nil {
		return nil, fromCall(err, "Speak", string(id))
	}
	if _, err := a.o.Calls.PlayCall(id, call.PlayOptions{Media: []string{uri}}); err != nil {
		return nil, fromCall(err, "Speak", string(id))
	}
	return nil, nil
}

func (a *API) cmdSendDTMF(ctx context.Context, p params) (*Response, *Error) {
	id, e := a.callID(p, "SendDTMF")
	if e != nil {
		return nil, e
	}
	d := p.get("DTMF")
	if d == "" {
		d = p.get("Digits")
	}
	if d == "" || len(d) > 64 || !digitsRE.MatchString(d) {
		return nil, errParam("DTMF", "SendDTMF")
	}
	if err := a.o.Calls.SendDTMFCall(id, call.DTMFOptions{Digits: d, Between: 100, Duration: 160}); err != nil {
		return nil, fromCall(err, "SendDTMF", string(id))
	}
	return nil, nil
}

// startTimeLayout is Ozeki's StartTime (.NET's round-trip "o" format).
const startTimeLayout = "2006-01-02T15:04:05.0000000Z07:00"

// appendStartTime appends t.Format(startTimeLayout), written digit by
// digit: ListActiveCalls writes one per call, and time.Format's layout
// interpretation was a tenth of the command's cost with a thousand calls.
func appendStartTime(buf []byte, t time.Time) []byte {
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(buf, startTimeLayout)
	}
	hour, min, sec := t.Clock()
	n0 := len(buf)
	buf = appendDigits(buf, year, 4)
	buf = append(buf, '-')
	buf = appendDigits(buf, int(month), 2)
	buf = append(buf, '-')
	buf = appendDigits(buf, day, 2)
	buf = append(buf, 'T')
	buf = appendDigits(buf, hour, 2)
	buf = append(buf, ':')
	buf = appendDigits(buf, min, 2)
	buf = append(buf, ':')
	buf = appendDigits(buf, sec, 2)
	buf = append(buf, '.')
	buf = appendDigits(buf, t.Nanosecond()/100, 7)
	_, off := t.Zone()
	if off == 0 {
		buf = append(buf, 'Z')
	} else {
		sign := byte('+')
		if off < 0 {
			sign, off = '-', -off
		}
		if off%60 != 0 {
			return t.AppendFormat(buf[:n0], startTimeLayout) // (seconds in the offset: as time does)
		}
		buf = append(buf, sign)
		buf = appendDigits(buf, off/3600, 2)
		buf = append(buf, ':')
		buf = appendDigits(buf, off%3600/60, 2)
	}
	return buf
}

// appendDigits appends n (>= 0) with width digits, zero-padded.
func appendDigits(b []byte, n, width int) []byte {
	var d [10]byte
	for i := width - 1; i >= 0; i-- {
		d[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, d[:width]...)
}
