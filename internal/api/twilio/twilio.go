// Package twilio serves Twilio's Recordings API (2010-04-01) over the
// catalog, with the accounts and tokens of the Restcomm API (HTTP Basic
// AccountSid:AuthToken): list, fetch and delete recordings with Twilio's
// fields and statuses, its filters and PageToken paging, media by extension
// (.wav, .mp3 transcoded on request and cached), and Twilio's error JSON.
package twilio

import (
	"context"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tapedeck/tapedeck/internal/api/restcomm"
	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/httpx"
	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/webhook"
)

// APIVersion is Twilio's API version, the first element of every path.
const APIVersion = "2010-04-01"

// Paging limits (Twilio's).
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// Twilio's error codes used here.
const (
	CodeInvalidParameter = 20001
	CodeAuthenticate     = 20003
	CodeMethodNotAllowed = 20004
	CodeNotFound         = 20404
	// CodeServiceUnavailable: Twilio's 20503, here a recording whose file
	// is on a node that does not answer.
	CodeServiceUnavailable = 20503
	CodeRecordingAbsent    = catalog.CodeTooShort // too short: no audio received
	CodeRecordingSilent    = catalog.CodeSilent   // silent throughout
)

// Options configure the API.
type Options struct {
	Catalog *catalog.Service
	Logger  *slog.Logger
	// PublicURL is the base of media_url; empty: the request's scheme and Host.
	PublicURL string
	// MediaAccess: "public" (default; media by unguessable Sid, as Twilio
	// without HTTP auth on media) or anything else: media needs Basic auth.
	MediaAccess string
	// CacheDir keeps media transcoded on request (MP3 of WAV recordings);
	// empty: no cache, every request transcodes.
	CacheDir string
	// Calls, when set, lets the API record live calls
	// (Calls/{CallSid}/Recordings).
	Calls LiveCalls
	// Webhook sends recording status callbacks (SetWebhook); nil: a
	// RecordingStatusCallback is refused.
	Webhook *webhook.Sender
	// MaxRecordingsPerCall bounds a call's recordings started through
	// this API that run at once (twilio.max_recordings_per_call): one
	// more is 400 with 16108. 0 means 1; below 0, no bound.
	MaxRecordingsPerCall int
}

// Server is the HTTP handler; mount it at /2010-04-01/.
type Server struct {
	o   Options
	log *slog.Logger

	mu      sync.Mutex
	pending map[string]*transcode // by cache key, while being made
	live    map[string][]*liveRec // recordings started here, by CallSid, while they run
	held    map[string]bool       // by Sid: recordings with a callback held in memory (hold)
}

// New builds the API server.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Server{o: o, log: o.Logger, pending: map[string]*transcode{}, live: map[string][]*liveRec{},
		held: map[string]bool{}}
}

// apiError is Twilio's error: HTTP status, code and message.
type apiError struct {
	status, code int
	msg          string
}

func (e *apiError) Error() string { return e.msg }

func fail(status, code int, format string, args ...any) error {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

func notFound(path string) error {
	return fail(404, CodeNotFound, "The requested resource %s was not found", path)
}

// request is a parsed path.
type request struct {
	accountSid string
	callSid    string
	sid        string
	ext        string // "json", or a media extension ("" = wav)
	list       bool
}

func parsePath(p string) (*request, error) {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(parts) < 4 || parts[0] != APIVersion || parts[1] != "Accounts" || parts[2] == "" {
		return nil, notFound(p)
	}
	r := &request{accountSid: parts[2]}
	parts = parts[3:]
	if len(parts) >= 3 && parts[0] == "Calls" && parts[1] != "" {
		r.callSid = parts[1]
		parts = parts[2:]
	}
	switch {
	case len(parts) == 1 && (parts[0] == "Recordings.json" || parts[0] == "Recordings"):
		r.list, r.ext = true, "json"
	case len(parts) == 2 && parts[0] == "Recordings" && parts[1] != "":
		r.sid, r.ext = parts[1], ""
		if i := strings.LastIndexByte(parts[1], '.'); i > 0 {
			r.sid, r.ext = parts[1][:i], parts[1][i+1:]
		}
		if r.callSid != "" && r.ext != "json" {
			return nil, notFound(p)
		}
		switch r.ext {
		case "json", "", "wav", "mp3":
		default:
			return nil, notFound(p)
		}
	default:
		return nil, notFound(p)
	}
	return r, nil
}

// ServeHTTP dispatches the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := parsePath(r.URL.Path)
	if err != nil {
		s.writeError(w, err)
		return
	}
	if req.sid != "" && req.ext != "json" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			s.writeError(w, fail(405, CodeMethodNotAllowed, "Method not allowed"))
			return
		}
		s.serveMedia(w, r, req)
		return
	}
	acc, err := s.authenticate(r, req.accountSid)
	if err != nil {
		s.writeError(w, err)
		return
	}
	switch {
	case req.list && r.Method == http.MethodGet:
		s.list(w, r, req, acc)
	case req.sid != "" && r.Method == http.MethodGet:
		s.fetch(w, r, req, acc)
	case req.sid != "" && r.Method == http.MethodDelete:
		s.delete(w, r, req, acc)
	case req.list && req.callSid != "" && r.Method == http.MethodPost:
		s.startRecording(w, r, req, acc)
	case req.sid != "" && req.callSid != "" && r.Method == http.MethodPost:
		s.updateRecording(w, r, req, acc)
	default:
		if req.list && req.callSid != "" {
			w.Header().Set("Allow", "GET, POST")
		} else if req.list {
			w.Header().Set("Allow", "GET")
		} else {
			w.Header().Set("Allow", "GET, DELETE")
		}
		s.writeError(w, fail(405, CodeMethodNotAllowed, "Method not allowed"))
	}
}

// authenticate checks Basic AccountSid:AuthToken; the path's account must
// be the caller's (another account's resources are not found, as Twilio).
func (s *Server) authenticate(r *http.Request, pathAccount string) (meta.Account, error) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return meta.Account{}, fail(401, CodeAuthenticate, "Authenticate")
	}
	acc, err := s.o.Catalog.Meta.Authenticate(r.Context(), user, pass)
	if err != nil {
		s.log.Warn("authentication failed", "api", "twilio", "remote", r.RemoteAddr, "user", user, "path", r.URL.Path)
		return meta.Account{}, fail(401, CodeAuthenticate, "Authenticate")
	}
	if subtle.ConstantTimeCompare([]byte(pathAccount), []byte(acc.Sid)) != 1 {
		return meta.Account{}, notFound(r.URL.Path)
	}
	return acc, nil
}

// listParams are the query parameters a list takes; any other is a 400.
var listParams = map[string]bool{
	"DateCreated": true, "DateCreated<": true, "DateCreated>": true, "CallSid": true, "ConferenceSid": true,
	"IncludeSoftDeleted": true, "PageSize": true, "Page": true, "PageToken": true,
}

// parseDate reads YYYY-MM-DD (GMT) or an ISO-8601 date-time (the Node
// library sends YYYY-MM-DDTHH:MM:SSZ); dateOnly says which.
func parseDate(v string) (t time.Time, dateOnly bool, err error) {
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t, true, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), false, nil
		}
	}
	return time.Time{}, false, fmt.Errorf("%q is not a date (YYYY-MM-DD) or an ISO-8601 date-time", v)
}

func parseBool(name, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, fail(400, CodeInvalidParameter, "%s must be true or false, got %q", name, v)
}

// Page tokens: "PA" + the last Sid of the page (the next page starts after
// it), "PB" + the first Sid (the previous page ends before it).
const (
	tokenAfter  = "PA"
	tokenBefore = "PB"
)

func (s *Server) list(w http.ResponseWriter, r *http.Request, req *request, acc meta.Account) {
	q := r.URL.Query()
	for k := range q {
		if !listParams[k] {
			s.writeError(w, fail(400, CodeInvalidParameter, "Invalid parameter %q", k))
			return
		}
	}
	pageSize, err := intParam(q, "PageSize", DefaultPageSize, 1, MaxPageSize)
	if err != nil {
		s.writeError(w, err)
		return
	}
	page, err := intParam(q, "Page", 0, 0, math.MaxInt32/MaxPageSize)
	if err != nil {
		s.writeError(w, err)
		return
	}
	mq := meta.Query{AccountSid: acc.Sid, CallSid: q.Get("CallSid"), SortBy: meta.SortDateCreated, Desc: true, Limit: pageSize}
	if req.callSid != "" {
		if mq.CallSid != "" && mq.CallSid != req.callSid {
			s.writeError(w, fail(400, CodeInvalidParameter, "CallSid %q differs from the path's call %s", mq.CallSid, req.callSid))
			return
		}
		mq.CallSid = req.callSid
	}
	if mq.IncludeDeleted, err = parseBool("IncludeSoftDeleted", q.Get("IncludeSoftDeleted")); err != nil {
		s.writeError(w, err)
		return
	}
	for _, name := range []string{"DateCreated", "DateCreated<", "DateCreated>"} {
		v := q.Get(name)
		if v == "" {
			continue
		}
		t, dateOnly, err := parseDate(v)
		if err != nil {
			s.writeError(w, fail(400, CodeInvalidParameter, "%s: %v", name, err))
			return
		}
		from, to := t, t
		if dateOnly {
			to = meta.EndOfDay(t)
		}
		switch name {
		case "DateCreated": // that day (a date-time: the day it falls in)
			from = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
			to = meta.EndOfDay(t)
			mq.StartFrom, mq.StartTo = laterOf(mq.StartFrom, from), earlierOf(mq.StartTo, to)
		case "DateCreated<": // on or before
			mq.StartTo = earlierOf(mq.StartTo, to)
		case "DateCreated>": // on or after
			mq.StartFrom = laterOf(mq.StartFrom, from)
		}
	}
	conference := q.Get("ConferenceSid")
	if conference != "" && !isSid(conference, "CF") {
		s.writeError(w, fail(400, CodeInvalidParameter, "ConferenceSid %q is not a conference Sid (CF and 32 hex digits)", conference))
		return
	}
	before := false
	if tok := q.Get("PageToken"); tok != "" {
		sid := tok[min(2, len(tok)):]
		switch {
		case strings.HasPrefix(tok, tokenAfter) && meta.IsRecordingSid(sid):
		case strings.HasPrefix(tok, tokenBefore) && meta.IsRecordingSid(sid):
			before, mq.Desc = true, false
		default:
			s.writeError(w, fail(400, CodeInvalidParameter, "Invalid PageToken %q", tok))
			return
		}
		mq.AfterSid = sid
	} else {
		mq.Offset = page * pageSize
	}
	var res meta.Page
	if conference == "" {
		// tapedeck records calls and bridges, never a conference: a
		// ConferenceSid filter matches nothing.
		res, err = s.o.Catalog.Meta.ListRecordings(r.Context(), mq)
	}
	switch {
	case errors.Is(err, meta.ErrNotFound) && mq.AfterSid != "":
		s.writeError(w, fail(400, CodeInvalidParameter, "Invalid PageToken: the recording it names is gone"))
		return
	case err != nil:
		s.writeError(w, err)
		return
	}
	if before {
		for i, j := 0, len(res.Items)-1; i < j; i, j = i+1, j-1 {
			res.Items[i], res.Items[j] = res.Items[j], res.Items[i]
		}
	}
	path := "/" + APIVersion + "/Accounts/" + acc.Sid
	if req.callSid != "" {
		path += "/Calls/" + req.callSid
	}
	path += "/Recordings.json"
	filters := url.Values{}
	for k, vs := range q {
		if k != "Page" && k != "PageSize" && k != "PageToken" {
			filters[k] = vs
		}
	}
	pageURI := func(p int, token string) string {
		v := url.Values{}
		for k, vs := range filters {
			v[k] = vs
		}
		v.Set("PageSize", strconv.Itoa(pageSize))
		v.Set("Page", strconv.Itoa(p))
		if token != "" {
			v.Set("PageToken", token)
		}
		return path + "?" + v.Encode()
	}
	out := listJSON{
		Recordings: []recordingJSON{}, Page: page, PageSize: pageSize, Start: page * pageSize,
		URI: pageURI(page, q.Get("PageToken")), FirstPageURI: pageURI(0, ""),
	}
	out.End = out.Start + max(len(res.Items)-1, 0)
	for _, rec := range res.Items {
		out.Recordings = append(out.Recordings, s.recordingJSON(r, rec))
	}
	if n := len(res.Items); n > 0 {
		// More after this page: a full page with rows beyond it.
		more := out.Start+n < res.Total
		if before {
			more = true // the page the client came from
		}
		if n == pageSize && more {
			u := pageURI(page+1, tokenAfter+res.Items[n-1].Sid)
			out.NextPageURI = &u
		}
		if page > 0 {
			u := pageURI(page-1, tokenBefore+res.Items[0].Sid)
			out.PreviousPageURI = &u
		}
	}
	writeJSON(w, 200, out)
}

func laterOf(a *time.Time, b time.Time) *time.Time {
	if a != nil && a.After(b) {
		return a
	}
	return &b
}

func earlierOf(a *time.Time, b time.Time) *time.Time {
	if a != nil && a.Before(b) {
		return a
	}
	return &b
}

func intParam(q url.Values, name string, def, lo, hi int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fail(400, CodeInvalidParameter, "%s must be an integer from %d to %d, got %q", name, lo, hi, v)
	}
	return n, nil
}

func isSid(s, prefix string) bool {
	if len(s) != 34 || !strings.HasPrefix(s, prefix) {
		return false
	}
	for _, c := range s[2:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// recording finds the account's recording of the request (the path's call
// when it names one); deleted ones only when includeDeleted.
func (s *Server) recording(ctx context.Context, r *http.Request, req *request, accountSid string, includeDeleted bool) (meta.Recording, error) {
	rec, err := s.o.Catalog.Meta.Recording(ctx, accountSid, req.sid)
	if errors.Is(err, meta.ErrNotFound) && includeDeleted {
		rec, err = s.o.Catalog.Meta.DeletedRecording(ctx, accountSid, req.sid)
	}
	if errors.Is(err, meta.ErrNotFound) || err == nil && req.callSid != "" && rec.CallSid != req.callSid {
		return meta.Recording{}, notFound(r.URL.Path)
	}
	return rec, err
}

func (s *Server) fetch(w http.ResponseWriter, r *http.Request, req *request, acc meta.Account) {
	q := r.URL.Query()
	for k := range q {
		if k != "IncludeSoftDeleted" {
			s.writeError(w, fail(400, CodeInvalidParameter, "Invalid parameter %q", k))
			return
		}
	}
	inc, err := parseBool("IncludeSoftDeleted", q.Get("IncludeSoftDeleted"))
	if err != nil {
		s.writeError(w, err)
		return
	}
	rec, err := s.recording(r.Context(), r, req, acc.Sid, inc)
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, 200, s.recordingJSON(r, rec))
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, req *request, acc meta.Account) {
	if _, err := s.recording(r.Context(), r, req, acc.Sid, false); err != nil {
		s.writeError(w, err)
		return
	}
	err := s.o.Catalog.Remove(r.Context(), meta.Audit{AccountSid: acc.Sid, RecordingSid: req.sid, Action: meta.AuditDelete,
		Actor: acc.Sid, API: "twilio", Remote: r.RemoteAddr})
	if errors.Is(err, meta.ErrNotFound) {
		err = notFound(r.URL.Path)
	}
	if err != nil {
		s.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Twilio's date layout ("Fri, 14 Oct 2016 21:56:34 +0000").
const dateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

type recordingJSON struct {
	AccountSid        string            `json:"account_sid"`
	APIVersion        string            `json:"api_version"`
	CallSid           string            `json:"call_sid"`
	ConferenceSid     *string           `json:"conference_sid"`
	DateCreated       string            `json:"date_created"`
	DateUpdated       string            `json:"date_updated"`
	StartTime         string            `json:"start_time"`
	Duration          string            `json:"duration"`
	Sid               string            `json:"sid"`
	Price             *string           `json:"price"`
	PriceUnit         string            `json:"price_unit"`
	Status            string            `json:"status"`
	Channels          int               `json:"channels"`
	Source            string            `json:"source"`
	ErrorCode         *int              `json:"error_code"`
	URI               string            `json:"uri"`
	EncryptionDetails any               `json:"encryption_details"`
	SubresourceURIs   map[string]string `json:"subresource_uris"`
	MediaURL          string            `json:"media_url"`
	// TapedeckQuality is tapedeck's extension (Twilio has no such field):
	// the recording's completeness; absent when it was not measured.
	TapedeckQuality *meta.QualityView `json:"tapedeck_quality,omitempty"`
}

// Status is the Twilio status of a catalog row.
func Status(s meta.Status) string {
	switch s {
	case meta.StatusCompleted, meta.StatusRecovered:
		return "completed"
	case meta.StatusMissing:
		return "failed" // its media is gone
	}
	return string(s) // in-progress, absent, failed, deleted
}

// Source is Twilio's source of a catalog row's source.
func Source(s string) string {
	switch s {
	case meta.SourcePolicy:
		return "Trunking" // recorded by the system's policy, as a trunk's recording
	case meta.SourceScript:
		return "RecordVerb"
	}
	return "StartCallRecordingAPI" // ARI and the command API: started by an API call
}

func (s *Server) recordingJSON(r *http.Request, rec meta.Recording) recordingJSON {
	base := restcomm.BaseURL(r, s.o.PublicURL)
	path := "/" + APIVersion + "/Accounts/" + rec.AccountSid + "/Recordings/" + rec.Sid
	j := recordingJSON{
		AccountSid: rec.AccountSid, APIVersion: APIVersion, CallSid: rec.CallSid,
		DateCreated: rec.DateCreated.UTC().Format(dateLayout), DateUpdated: rec.DateUpdated.UTC().Format(dateLayout),
		Duration: strconv.Itoa(int(math.Round(rec.Duration))), Sid: rec.Sid, PriceUnit: "USD",
		Status: Status(rec.Status), Channels: max(rec.Channels, 1), Source: Source(rec.Source),
		URI: path + ".json", MediaURL: base + path,
		SubresourceURIs: map[string]string{
			"add_on_results": path + "/AddOnResults.json",
			"transcriptions": path + "/Transcriptions.json",
		},
		TapedeckQuality: rec.Quality.View(),
	}
	start := rec.StartTime
	if start.IsZero() {
		start = rec.DateCreated
	}
	j.StartTime = start.UTC().Format(dateLayout)
	if rec.Status.Live() {
		j.Duration = "-1"
	}
	if rec.Status == meta.StatusAbsent {
		code := catalog.AbsentCode(rec)
		j.ErrorCode = &code
	}
	if rec.Status == meta.StatusFailed && catalog.IsNodeLost(rec) {
		code := restcomm.ErrorCodeNodeLost // its node stopped while it recorded
		j.ErrorCode = &code
	}
	return j
}

type listJSON struct {
	Recordings      []recordingJSON `json:"recordings"`
	End             int             `json:"end"`
	FirstPageURI    string          `json:"first_page_uri"`
	NextPageURI     *string         `json:"next_page_uri"`
	Page            int             `json:"page"`
	PageSize        int             `json:"page_size"`
	PreviousPageURI *string         `json:"previous_page_uri"`
	Start           int             `json:"start"`
	URI             string          `json:"uri"`
}

// serveMedia streams a recording's media: .wav (or no extension) and .mp3,
// transcoded from WAV on request and cached.
func (s *Server) serveMedia(w http.ResponseWriter, r *http.Request, req *request) {
	q := r.URL.Query()
	for k := range q {
		if k != "RequestedChannels" {
			s.writeError(w, fail(400, CodeInvalidParameter, "Invalid parameter %q", k))
			return
		}
	}
	accountSid := req.accountSid
	if s.o.MediaAccess != "" && s.o.MediaAccess != "public" {
		acc, err := s.authenticate(r, req.accountSid)
		if err != nil {
			s.writeError(w, err)
			return
		}
		accountSid = acc.Sid
	}
	ctx := r.Context()
	rec, err := s.recording(ctx, r, req, accountSid, false)
	if err != nil {
		s.writeError(w, err)
		return
	}
	switch rec.Status {
	case meta.StatusInProgress, meta.StatusPaused:
		s.writeError(w, fail(404, CodeNotFound, "The recording %s is in progress; its media is available once it completes", rec.Sid))
		return
	case meta.StatusAbsent:
		s.writeError(w, fail(404, CodeNotFound, "The recording %s received no audio (absent)", rec.Sid))
		return
	}
	// Twilio gives a dual-channel recording mixed to mono unless
	// RequestedChannels=2 asks for both channels.
	chans := 1
	if rc := q.Get("RequestedChannels"); rc != "" {
		n, err := strconv.Atoi(rc)
		if err != nil || n < 1 || n > 2 {
			s.writeError(w, fail(400, CodeInvalidParameter, "RequestedChannels must be 1 or 2, got %q", rc))
			return
		}
		if n > max(rec.Channels, 1) {
			s.writeError(w, fail(400, CodeInvalidParameter, "RequestedChannels=%d: the recording has %d channel(s)", n, max(rec.Channels, 1)))
			return
		}
		chans = n
	}
	f, err := recorder.Lookup(rec.Format)
	if err != nil {
		s.writeError(w, notFound(r.URL.Path))
		return
	}
	want := req.ext
	if want == "" {
		want = "wav"
	}
	isWAV := f.Name == "wav" || f.Name == "wav16"
	switch {
	case want == "wav" && f.Name == "wav" && rec.Channels == 2 && chans == 1:
		s.serveMono(w, r, rec, f)
	case want == "wav" && isWAV, want == "mp3" && f.Name == "mp3":
		m, err := s.o.Catalog.Open(ctx, rec, f.ContentType)
		if err != nil {
			s.writeError(w, err)
			return
		}
		defer m.Close()
		ct := f.ContentType
		if want == "wav" {
			ct = "audio/x-wav"
		}
		w.Header().Set("Content-Type", ct)
		httpx.ServeContent(w, r, rec.Sid+"."+want, m.ModTime, m)
	case want == "mp3" && isWAV:
		s.serveMP3(w, r, rec, f, chans)
	default:
		s.writeError(w, fail(404, CodeNotFound, "The recording %s is not available as .%s (it is %s)", rec.Sid, want, rec.Format))
	}
}

// transcode is one derived file (an MP3, or a mono mix) being made into
// the cache; the requests that want it meanwhile stream it as it grows.
type transcode struct {
	part string // the file being written; renamed to its cache path when done

	mu      sync.Mutex
	size    int64 // bytes written to part so far, final
	done    bool
	err     error
	changed chan struct{} // closed (and replaced) at each progress
}

func (t *transcode) progress(size int64, done bool, err error) {
	t.mu.Lock()
	t.size, t.done, t.err = size, done, err
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
}

func (t *transcode) state() (int64, bool, error, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.size, t.done, t.err, t.changed
}

// derived serves a file derived from a recording (name: the download's
// name, contentType its type): from the cache when it is there, else made
// by produce (one maker per recording at a time, which outlives the request,
// so that the cache gets it) and streamed while it is being made.
func (s *Server) derived(w http.ResponseWriter, r *http.Request, rec meta.Recording, suffix, name, contentType string,
	produce func(ctx context.Context, part string, progress func(int64)) error) {
	dir := s.o.CacheDir
	if dir == "" {
		s.writeError(w, fail(404, CodeNotFound, "%s is not available: no cache directory is configured", name))
		return
	}
	// The key changes when the recording does: its checksum, computed now
	// if the recording has none yet (recording.checksum: on_demand); its
	// size if even that fails (the file is then missing, and produce says
	// so).
	if withSum, err := s.o.Catalog.Checksum(r.Context(), rec); err == nil {
		rec = withSum
	}
	path := filepath.Join(dir, rec.Sid+"-"+nonEmpty(rec.SHA256, strconv.FormatInt(rec.Size, 10))+suffix)
	if f, err := os.Open(path); err == nil {
		defer f.Close()
		if fi, err := f.Stat(); err == nil {
			w.Header().Set("Content-Type", contentType)
			httpx.ServeContent(w, r, name, fi.ModTime(), f)
			return
		}
	}
	s.mu.Lock()
	t := s.pending[path]
	if t == nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			s.mu.Unlock()
			s.writeError(w, err)
			return
		}
		t = &transcode{part: path + ".part", changed: make(chan struct{})}
		s.pending[path] = t
		go func() {
			ctx := context.WithoutCancel(r.Context())
			err := produce(ctx, t.part, func(n int64) { t.progress(n, false, nil) })
			if err == nil {
				err = os.Rename(t.part, path)
			}
			if err != nil {
				s.log.Warn("twilio API: cannot make derived media", "sid", rec.Sid, "file", name, "err", err)
				_ = os.Remove(t.part)
			}
			size, _, _, _ := t.state()
			if fi, serr := os.Stat(path); serr == nil {
				size = fi.Size()
			}
			s.mu.Lock()
			delete(s.pending, path)
			s.mu.Unlock()
			t.progress(size, true, err)
		}()
	}
	s.mu.Unlock()
	s.stream(w, r, t, contentType)
}

// stream copies a derived file to the client as it is written.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, t *transcode, contentType string) {
	ctx := r.Context()
	var f *os.File
	var sent int64
	buf := make([]byte, 32<<10)
	started := false
	for {
		size, done, err, changed := t.state()
		if err != nil {
			if !started {
				s.writeError(w, err)
			}
			return // mid-stream: the client sees a short body
		}
		if f == nil && (size > 0 || done) {
			// The part file, or its cache path once renamed: an open
			// file survives the rename.
			if f, err = os.Open(t.part); err != nil {
				if f, err = os.Open(strings.TrimSuffix(t.part, ".part")); err != nil {
					s.writeError(w, err)
					return
				}
			}
			defer f.Close()
		}
		if !started && (size > 0 || done) {
			started = true
			w.Header().Set("Content-Type", contentType)
			if done {
				w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
			}
			w.WriteHeader(http.StatusOK)
			if r.Method == http.MethodHead {
				return
			}
		}
		for sent < size {
			n, rerr := f.ReadAt(buf[:min(int64(len(buf)), size-sent)], sent)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				sent += int64(n)
			}
			if rerr != nil && n == 0 {
				return
			}
		}
		if done {
			return
		}
		if fl, ok := w.(http.Flusher); ok && started {
			fl.Flush()
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// serveMP3 serves the MP3 of a WAV recording at its own sample rate, mono
// (a stereo recording mixed down) or, with RequestedChannels=2, stereo,
// made on the first request and cached. 8 kHz mono goes through the
// recorder's MP3 encoder, the rest through the lame program
// (recorder.MP3Stream).
func (s *Server) serveMP3(w http.ResponseWriter, r *http.Request, rec meta.Recording, wavFormat recorder.Format, chans int) {
	mp3, err := recorder.Lookup("mp3")
	if err != nil {
		s.writeError(w, err)
		return
	}
	suffix := ".mp3"
	if chans == 2 {
		suffix = "-stereo.mp3"
	}
	s.derived(w, r, rec, suffix, rec.Sid+".mp3", mp3.ContentType, func(ctx context.Context, part string, progress func(int64)) error {
		return s.encode(ctx, rec, wavFormat, mp3, chans, part, progress)
	})
}

// serveMono serves the mono mix of a dual-channel WAV recording, cached.
func (s *Server) serveMono(w http.ResponseWriter, r *http.Request, rec meta.Recording, wavFormat recorder.Format) {
	s.derived(w, r, rec, "-mono.wav", rec.Sid+".wav", "audio/x-wav", func(ctx context.Context, part string, progress func(int64)) error {
		return s.encode(ctx, rec, wavFormat, wavFormat, 1, part, nil)
	})
}

// pcmSink is what encode writes to: a recorder's writer (8 kHz mono) or
// an MP3Stream.
type pcmSink interface {
	Write(pcm []int16) error
	Close() error
}

// flusher is a sink that can push what it holds to the file (progress).
type flusher interface{ Flush() error }

// mp3File is an MP3Stream into a file.
type mp3File struct {
	*recorder.MP3Stream
	f *os.File
}

func (m mp3File) Close() error {
	err := m.MP3Stream.Close()
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// encode writes a recording's WAV audio to part in format out: mixed to
// mono, or with outChans 2 (MP3 only) both channels of a stereo file;
// reporting the bytes final so far (an MP3 only grows; a WAV's header is
// rewritten, so it is reported only when complete). A WAV output is 8 kHz
// (the mono mix of a dual-channel recording); an MP3 keeps the file's
// rate.
func (s *Server) encode(ctx context.Context, rec meta.Recording, in, out recorder.Format, outChans int, part string, progress func(int64)) error {
	m, err := s.o.Catalog.Open(ctx, rec, in.ContentType)
	if err != nil {
		return err
	}
	defer m.Close()
	pcm, chans, rate, err := wavPCM(m)
	if err != nil {
		return fmt.Errorf("recording %s: %w", rec.Sid, err)
	}
	if outChans > chans {
		return fail(400, CodeInvalidParameter, "RequestedChannels=%d: the recording's file has %d channel(s)", outChans, chans)
	}
	var enc pcmSink
	switch {
	case out.Name == "mp3" && (rate != 8000 || outChans == 2):
		f, err := os.Create(part)
		if err != nil {
			return err
		}
		st, err := recorder.NewMP3Stream(f, rate, outChans)
		if err != nil {
			f.Close()
			return err
		}
		enc = mp3File{st, f}
	case rate != 8000:
		return fmt.Errorf("recording %s: a %d Hz WAV is transcoded to MP3 only", rec.Sid, rate)
	default:
		w, err := recorder.Create(part, out, recorder.Overwrite)
		if err != nil {
			return err
		}
		enc = w
	}
	chunk := rate // one second
	buf := make([]int16, outChans*chunk)
	raw := make([]byte, 2*chans*chunk)
	for {
		n, rerr := io.ReadFull(pcm, raw)
		frames := n / (2 * chans)
		for i := 0; i < frames; i++ {
			if outChans == chans {
				for c := 0; c < chans; c++ {
					buf[i*chans+c] = int16(binary.LittleEndian.Uint16(raw[2*(i*chans+c):]))
				}
				continue
			}
			sum := 0
			for c := 0; c < chans; c++ {
				sum += int(int16(binary.LittleEndian.Uint16(raw[2*(i*chans+c):])))
			}
			buf[i] = int16(sum / chans)
		}
		if frames > 0 {
			err = enc.Write(buf[:frames*outChans])
			if err == nil && progress != nil {
				if fl, ok := enc.(flusher); ok {
					err = fl.Flush()
				}
				if err == nil {
					var fi os.FileInfo
					if fi, err = os.Stat(part); err == nil {
						progress(fi.Size())
					}
				}
			}
			if err != nil {
				if a, ok := enc.(mp3File); ok {
					a.Abort()
					a.f.Close()
				} else {
					enc.Close()
				}
				return err
			}
		}
		if rerr != nil {
			break
		}
	}
	return enc.Close()
}

// wavPCM returns the data chunk of a 16-bit PCM WAV file, mono or stereo
// (the recorder's "wav" and "wav16" formats, and WAV files of other
// rates), its number of channels and its sample rate.
func wavPCM(r io.Reader) (io.Reader, int, int, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil || string(hdr[:4]) != "RIFF" || string(hdr[8:]) != "WAVE" {
		return nil, 0, 0, errors.New("not a WAV file")
	}
	chans, srate := 0, 0
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return nil, 0, 0, errors.New("WAV file without a data chunk")
		}
		size := int64(binary.LittleEndian.Uint32(ch[4:]))
		switch string(ch[:4]) {
		case "fmt ":
			b := make([]byte, size)
			if _, err := io.ReadFull(r, b); err != nil || size < 16 {
				return nil, 0, 0, errors.New("short WAV fmt chunk")
			}
			format, nch := binary.LittleEndian.Uint16(b), binary.LittleEndian.Uint16(b[2:])
			rate, bits := binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint16(b[14:])
			if format != 1 || nch < 1 || nch > 2 || rate < 8000 || rate > 48000 || bits != 16 {
				return nil, 0, 0, fmt.Errorf("WAV is format %d, %d channel(s), %d Hz, %d bits: only 16-bit PCM of 8 to 48 kHz, mono or stereo, is transcoded", format, nch, rate, bits)
			}
			chans, srate = int(nch), int(rate)
			if size%2 == 1 {
				_, _ = io.CopyN(io.Discard, r, 1)
			}
		case "data":
			if chans == 0 {
				return nil, 0, 0, errors.New("WAV data before its fmt chunk")
			}
			return r, chans, srate, nil
		default:
			if _, err := io.CopyN(io.Discard, r, size+size%2); err != nil {
				return nil, 0, 0, errors.New("truncated WAV chunk")
			}
		}
	}
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// writeError answers Twilio's error JSON: code, message, more_info, status.
func (s *Server) writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, meta.ErrNotFound), errors.Is(err, catalog.ErrNotFound):
		ae = &apiError{status: 404, code: CodeNotFound, msg: "The requested resource was not found"}
	case errors.Is(err, meta.ErrInvalid):
		ae = &apiError{status: 400, code: CodeInvalidParameter, msg: err.Error()}
	case errors.Is(err, meta.ErrConflict):
		// e.g. deleting a recording whose name is being recorded again.
		ae = &apiError{status: 409, code: CodeRecordingState, msg: err.Error()}
	case errors.Is(err, catalog.ErrUnavailable):
		// The recording's file is on a node that does not answer.
		ae = &apiError{status: 503, code: CodeServiceUnavailable, msg: err.Error()}
	default:
		s.log.Error("twilio API", "err", err)
		ae = &apiError{status: 500, code: 20500, msg: "Internal Server Error"}
	}
	if ae.status == 401 {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
	}
	writeJSON(w, ae.status, map[string]any{
		"code": ae.code, "message": ae.msg, "more_info": "https://www.twilio.com/docs/errors/" + strconv.Itoa(ae.code), "status": ae.status,
	})
}
