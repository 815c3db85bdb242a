// Package restcomm serves the Restcomm-compatible Recordings API: list,
// get and delete recordings per account (HTTP Basic AccountSid:AuthToken),
// filters StartTime/EndTime/CallSid, paging Page/PageSize/Limit/AfterSid,
// SortBy, JSON or XML, and media download by Sid.
package restcomm

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/httpx"
	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// APIVersion is the only Restcomm API version.
const APIVersion = "2012-04-24"

// Paging limits.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000 // larger PageSize values are refused (400)
	DefaultLimit    = 10000
)

// Media access modes.
const (
	MediaPublic = "public" // by unguessable Sid, as Restcomm does
	MediaAuth   = "auth"   // Basic auth of the owning account
	MediaSigned = "signed" // short-lived signed URLs
)

// Options configure the API.
type Options struct {
	Catalog     *catalog.Service
	Logger      *slog.Logger
	MediaAccess string
	// SignKey signs media URLs in signed mode (random when empty).
	SignKey []byte
	// SignedTTL is how long a signed URL stays valid (default 1 h).
	SignedTTL time.Duration
	Now       func() time.Time
	// PublicURL is the base of the absolute file_uri (scheme://host[:port]
	// and an optional path prefix); empty: the request's scheme and Host.
	PublicURL string
}

// Server is the HTTP handler; mount it at / (it answers /restcomm/... and
// /2012-04-24/...).
type Server struct {
	o   Options
	log *slog.Logger
}

// New builds the API server.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MediaAccess == "" {
		o.MediaAccess = MediaPublic
	}
	if len(o.SignKey) == 0 {
		o.SignKey = make([]byte, 32)
		_, _ = rand.Read(o.SignKey)
	}
	if o.SignedTTL <= 0 {
		o.SignedTTL = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Server{o: o, log: o.Logger}
}

type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func fail(code int, format string, args ...any) error {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

// request is a parsed API path.
type request struct {
	prefix     string // "/restcomm" or ""
	accountSid string
	callSid    string // deprecated Calls/{CallSid}/Recordings
	sid        string
	ext        string // "json", "xml" (none), or a media extension
	list       bool
	calls      bool // the Calls list (calls.go)
}

// parsePath reads /[restcomm/]2012-04-24/Accounts/{AccountSid}/Recordings[.json]
// and its variants, and /restcomm/recordings/{Sid}.wav.
func parsePath(p string) (*request, error) {
	r := &request{}
	rest := p
	if after, ok := strings.CutPrefix(rest, "/restcomm"); ok {
		r.prefix = "/restcomm"
		rest = after
	}
	if sidFile, ok := strings.CutPrefix(rest, "/recordings/"); ok && r.prefix != "" {
		r.sid, r.ext = splitExt(sidFile)
		if r.ext == "" || r.ext == "json" {
			return nil, fail(404, "not found")
		}
		return r, nil
	}
	parts := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	if len(parts) < 4 || parts[0] != APIVersion || parts[1] != "Accounts" {
		return nil, fail(404, "The requested resource was not found")
	}
	r.accountSid = parts[2]
	parts = parts[3:]
	if len(parts) >= 3 && parts[0] == "Calls" {
		r.callSid = parts[1]
		parts = parts[2:]
	}
	switch {
	case len(parts) == 1 && r.callSid == "" && parts[0] == "Calls.json":
		r.calls, r.ext = true, "json"
	case len(parts) == 1:
		name, ext := splitExt(parts[0])
		if name != "Recordings" || (ext != "" && ext != "json") {
			return nil, fail(404, "The requested resource was not found")
		}
		r.list, r.ext = true, nonEmpty(ext, "xml")
	case len(parts) == 2 && parts[0] == "Recordings" && r.callSid == "":
		r.sid, r.ext = splitExt(parts[1])
		r.ext = nonEmpty(r.ext, "xml")
	default:
		return nil, fail(404, "The requested resource was not found")
	}
	return r, nil
}

func splitExt(s string) (string, string) {
	if i := strings.LastIndexByte(s, '.'); i > 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ServeHTTP dispatches the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := parsePath(r.URL.Path)
	if err != nil {
		s.writeError(w, "json", err)
		return
	}
	media := req.sid != "" && req.ext != "json" && req.ext != "xml"
	if media {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.writeError(w, "json", fail(405, "Method not allowed"))
			return
		}
		s.serveMedia(w, r, req)
		return
	}
	acc, err := s.authenticate(r, req.accountSid)
	if err != nil {
		s.writeError(w, req.ext, err)
		return
	}
	switch {
	case req.calls && r.Method == http.MethodGet:
		s.listCalls(w, r, req, acc)
	case req.list && r.Method == http.MethodGet:
		s.list(w, r, req, acc)
	case req.sid != "" && r.Method == http.MethodGet:
		s.get(w, r, req, acc)
	case req.sid != "" && r.Method == http.MethodDelete:
		err := s.o.Catalog.Remove(r.Context(), meta.Audit{AccountSid: acc.Sid, RecordingSid: req.sid,
			Action: meta.AuditDelete, Actor: acc.Sid, API: "restcomm", Remote: r.RemoteAddr})
		if errors.Is(err, meta.ErrNotFound) {
			err = s.foreign(r.Context(), req.sid, err)
		}
		if err != nil {
			s.writeError(w, req.ext, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, DELETE")
		s.writeError(w, req.ext, fail(405, "Method not allowed"))
	}
}

// kindCodes is the one table from the error kinds of the catalog (and the
// call model) to this API's statuses and messages; an *apiError carries its
// own. Anything else is a 500 "internal error", logged.
var kindCodes = []struct {
	kind error
	code int
	msg  string // "": the error's own text
}{
	{errForbidden, 403, "Forbidden"},
	{meta.ErrNotFound, 404, "The requested resource was not found"},
	{call.ErrNotFound, 404, "The requested resource was not found"},
	{meta.ErrUnauthorized, 401, "Invalid credentials"},
	{meta.ErrInvalid, 400, ""},
	{call.ErrInvalidArgument, 400, ""},
	{meta.ErrConflict, 409, ""},
	{call.ErrConflict, 409, ""},
	{call.ErrInvalidState, 409, ""},
	{call.ErrUnavailable, 503, "Service unavailable"},
	// The recording's file is on a node that does not answer: try later.
	{catalog.ErrUnavailable, 503, ""},
}

// errForbidden: the recording is another account's. Restcomm checks the
// caller's rights on the recording's account after finding it, and answers
// 403 Forbidden (where Twilio answers 404).
var errForbidden = errors.New("restcomm: another account's resource")

// foreign turns a recording not found in the caller's account into
// errForbidden when it is another account's, as Restcomm answers.
func (s *Server) foreign(ctx context.Context, sid string, notFound error) error {
	if _, err := s.o.Catalog.Meta.RecordingBySid(ctx, sid); err == nil {
		return errForbidden
	}
	return notFound
}

// status is the status and message err answers with.
func status(err error) (int, string, bool) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.code, ae.msg, true
	}
	for _, kc := range kindCodes {
		if errors.Is(err, kc.kind) {
			if kc.msg == "" {
				return kc.code, err.Error(), true
			}
			return kc.code, kc.msg, true
		}
	}
	return 500, "internal error", false
}

// authenticate checks Basic AccountSid:AuthToken. The account in the path
// must be the caller's: another account's resources are "not found".
func (s *Server) authenticate(r *http.Request, pathAccount string) (meta.Account, error) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return meta.Account{}, fail(401, "Authentication required (HTTP Basic with AccountSid:AuthToken)")
	}
	acc, err := s.o.Catalog.Meta.Authenticate(r.Context(), user, pass)
	if err != nil {
		s.o.Logger.Warn("authentication failed", "api", "restcomm", "remote", r.RemoteAddr, "user", user, "path", r.URL.Path)
		return meta.Account{}, fail(401, "Invalid credentials")
	}
	if pathAccount != "" && subtle.ConstantTimeCompare([]byte(pathAccount), []byte(acc.Sid)) != 1 {
		// Restcomm's secure() refuses an account that is not the
		// caller's: 403 (an account that does not exist: 404).
		if _, err := s.o.Catalog.Meta.Account(r.Context(), pathAccount); err == nil {
			return meta.Account{}, errForbidden
		}
		return meta.Account{}, fail(404, "The requested resource was not found")
	}
	return acc, nil
}

// parseTime reads an ISO-8601 date or date-time (UTC unless a zone is given).
func parseTime(v string) (time.Time, error) {
	if !isoDigits(v) {
		return time.Time{}, fmt.Errorf("%q is not an ISO-8601 date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM:SS)", v)
	}
	for _, layout := range []string{"2006-01-02", "2006-01-02T15:04:05", "2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05.999999999Z07:00", "2006-01-02 15:04:05"} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO-8601 date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM:SS)", v)
}

// isoDigits reports whether v starts with YYYY-MM-DD and, when longer, a
// T or space and HH:MM:SS, every field all digits: Go's layouts alone also
// take a one-digit or space-padded hour ("2026-03-01  1:00:00").
func isoDigits(v string) bool {
	n := min(len(v), 19)
	if n < 10 || n > 10 && n < 19 {
		return false
	}
	for i := 0; i < n; i++ {
		c := v[i]
		switch i {
		case 4, 7:
			if c != '-' {
				return false
			}
		case 10:
			if c != 'T' && c != ' ' {
				return false
			}
		case 13, 16:
			if c != ':' {
				return false
			}
		default:
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

// maxParam bounds the integer paging parameters, and Page*PageSize: the
// 32-bit range of Restcomm's own (Java int) parameters, far beyond any
// catalog, and no product of two of them overflows.
const maxParam = math.MaxInt32

func intParam(q url.Values, name string, def, min int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > maxParam {
		return 0, fail(400, "%s must be an integer from %d to %d, got %q", name, min, maxParam, v)
	}
	return n, nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, req *request, acc meta.Account) {
	q := r.URL.Query()
	page, err := intParam(q, "Page", 0, 0)
	if err != nil {
		s.writeError(w, req.ext, err)
		return
	}
	pageSize, err := intParam(q, "PageSize", DefaultPageSize, 1)
	if err != nil {
		s.writeError(w, req.ext, err)
		return
	}
	if pageSize > MaxPageSize {
		s.writeError(w, req.ext, fail(400, "PageSize %d is above the maximum, %d", pageSize, MaxPageSize))
		return
	}
	limit, err := intParam(q, "Limit", DefaultLimit, 1)
	if err != nil {
		s.writeError(w, req.ext, err)
		return
	}
	mq := meta.Query{AccountSid: acc.Sid, CallSid: q.Get("CallSid"), SortBy: "DateCreated", AfterSid: q.Get("AfterSid"),
		From: q.Get("From"), To: q.Get("To")}
	if req.callSid != "" {
		mq.CallSid = req.callSid
	}
	for _, f := range []struct {
		name string
		dst  **time.Time
	}{{"StartTime", &mq.StartFrom}, {"EndTime", &mq.StartTo}} {
		if v := q.Get(f.name); v != "" {
			t, err := parseTime(v)
			if err != nil {
				s.writeError(w, req.ext, fail(400, "%s: %v", f.name, err))
				return
			}
			*f.dst = &t
		}
	}
	if sb := q.Get("SortBy"); sb != "" {
		field, dir, _ := strings.Cut(sb, ":")
		switch field {
		case "DateCreated", "Duration", "CallSid":
		default:
			s.writeError(w, req.ext, fail(400, "SortBy %q: sort by DateCreated, Duration or CallSid", field))
			return
		}
		switch dir {
		case "", "asc":
		case "desc":
			mq.Desc = true
		default:
			s.writeError(w, req.ext, fail(400, "SortBy direction %q: asc or desc", dir))
			return
		}
		mq.SortBy = field
	}
	if page > maxParam/pageSize {
		s.writeError(w, req.ext, fail(400, "Page %d is too far: Page*PageSize must not exceed %d", page, maxParam))
		return
	}
	offset := page * pageSize
	if offset >= limit {
		offset = limit
	}
	mq.Limit = min(pageSize, limit-offset)
	if mq.AfterSid == "" {
		mq.Offset = offset
	}
	bare := req.callSid != "" && req.ext == "json"
	if bare {
		// The deprecated Calls/{CallSid}/Recordings.json: every recording
		// of the call (up to MaxPageSize), unpaged, as Restcomm answers it.
		mq.Limit, mq.Offset, mq.AfterSid, page, pageSize = MaxPageSize, 0, "", 0, MaxPageSize
	}
	var res meta.Page
	if mq.Limit > 0 {
		res, err = s.o.Catalog.Meta.ListRecordings(r.Context(), mq)
	} else {
		mq.Limit = 1
		res, err = s.o.Catalog.Meta.ListRecordings(r.Context(), mq)
		res.Items = nil
	}
	switch {
	case errors.Is(err, meta.ErrNotFound) && mq.AfterSid != "":
		s.writeError(w, req.ext, fail(400, "AfterSid %q is not a recording of this account", mq.AfterSid))
		return
	case err != nil:
		s.writeError(w, req.ext, err)
		return
	}
	total := min(res.Total, limit)
	// Restcomm's arithmetic (RecordingsEndpoint, RecordingListConverter):
	// num_pages is total/PageSize, so at an exact multiple the last page
	// is an empty one; a Page beyond it is a 400; the last page's end is
	// its start plus its count, any other page's its start + PageSize - 1.
	numPages := total / pageSize
	if page > numPages {
		s.writeError(w, req.ext, fail(400, "Page %d is beyond the last page, %d", page, numPages))
		return
	}
	if bare {
		// The deprecated Calls/{CallSid}/Recordings: a bare array.
		out := []recordingJSON{}
		for _, rec := range res.Items {
			out = append(out, s.recordingJSON(r, req.prefix, rec))
		}
		writeJSON(w, 200, out)
		return
	}
	uri := req.prefix + "/" + APIVersion + "/Accounts/" + acc.Sid + "/Recordings"
	if req.callSid != "" {
		uri = req.prefix + "/" + APIVersion + "/Accounts/" + acc.Sid + "/Calls/" + req.callSid + "/Recordings"
	}
	if req.ext == "json" {
		uri += ".json"
	}
	extra := ""
	if q.Has("Limit") {
		extra = "&Limit=" + strconv.Itoa(limit)
	}
	for _, k := range []string{"CallSid", "StartTime", "EndTime", "SortBy", "From", "To"} {
		if v := q.Get(k); v != "" {
			extra += "&" + k + "=" + url.QueryEscape(v)
		}
	}
	pageURI := func(p int) string {
		return fmt.Sprintf("%s?Page=%d&PageSize=%d%s", uri, p, pageSize, extra)
	}
	end := offset + pageSize - 1
	if page == numPages {
		end = offset + len(res.Items)
	}
	out := listJSON{
		Page: page, NumPages: numPages, PageSize: pageSize, Total: total, Limit: limit,
		Start: strconv.Itoa(offset), End: strconv.Itoa(end),
		URI: uri, FirstPageURI: pageURI(0), PreviousPageURI: "null", NextPageURI: "null", LastPageURI: pageURI(numPages),
		Recordings: []recordingJSON{},
	}
	if page > 0 {
		out.PreviousPageURI = pageURI(page - 1)
	}
	if page < numPages && len(res.Items) > 0 {
		out.NextPageURI = pageURI(page+1) + "&AfterSid=" + res.Items[len(res.Items)-1].Sid
	}
	for _, rec := range res.Items {
		out.Recordings = append(out.Recordings, s.recordingJSON(r, req.prefix, rec))
	}
	if req.ext == "json" {
		writeJSON(w, 200, out)
		return
	}
	writeXML(w, 200, xmlResponse{Recordings: &xmlRecordings{listJSON: out, Items: toXML(out.Recordings)}})
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, req *request, acc meta.Account) {
	rec, err := s.o.Catalog.Meta.Recording(r.Context(), acc.Sid, req.sid)
	if errors.Is(err, meta.ErrNotFound) {
		err = s.foreign(r.Context(), req.sid, err)
	}
	if err != nil {
		s.writeError(w, req.ext, err)
		return
	}
	j := s.recordingJSON(r, req.prefix, rec)
	if req.ext == "json" {
		writeJSON(w, 200, j)
		return
	}
	x := toXML([]recordingJSON{j})[0]
	writeXML(w, 200, xmlResponse{Recording: &x})
}

// serveMedia streams a recording's file by Sid (with Range support).
func (s *Server) serveMedia(w http.ResponseWriter, r *http.Request, req *request) {
	ctx := r.Context()
	var rec meta.Recording
	var err error
	switch s.o.MediaAccess {
	case MediaAuth:
		var acc meta.Account
		acc, err = s.authenticate(r, req.accountSid)
		if err != nil {
			s.writeError(w, "json", err)
			return
		}
		rec, err = s.o.Catalog.Meta.Recording(ctx, acc.Sid, req.sid)
	case MediaSigned:
		if !s.validSignature(req.sid, r.URL.Query()) {
			s.writeError(w, "json", fail(403, "Missing, invalid or expired signature"))
			return
		}
		rec, err = s.recordingBySid(ctx, req)
	default:
		rec, err = s.recordingBySid(ctx, req)
	}
	if err != nil {
		s.writeError(w, "json", err)
		return
	}
	switch rec.Status {
	case meta.StatusInProgress, meta.StatusPaused:
		// Restcomm catalogs a recording once it is complete; its media is
		// not served before, and not as if it were complete.
		s.writeError(w, "json", fail(404, "The recording %s is in progress; its media is available once it completes", rec.Sid))
		return
	case meta.StatusAbsent:
		s.writeError(w, "json", fail(404, "The recording %s received no audio (absent)", rec.Sid))
		return
	}
	f, ok := recorder.ByExt(rec.Format)
	if byName, err := recorder.Lookup(rec.Format); err == nil {
		f, ok = byName, true
	}
	if !ok || (req.ext != f.Ext && !(req.ext == "wav" && f.Ext == "wav16")) {
		s.writeError(w, "json", fail(404, "This recording is not available as .%s (it is .%s)", req.ext, rec.Format))
		return
	}
	m, err := s.o.Catalog.Open(ctx, rec, f.ContentType)
	if err != nil {
		s.writeError(w, "json", err)
		return
	}
	defer m.Close()
	w.Header().Set("Content-Type", f.ContentType)
	httpx.ServeContent(w, r, rec.Sid+"."+req.ext, m.ModTime, m)
}

// recordingBySid finds a recording by Sid alone (media URLs) or within the
// path's account.
func (s *Server) recordingBySid(ctx context.Context, req *request) (meta.Recording, error) {
	if req.accountSid != "" {
		return s.o.Catalog.Meta.Recording(ctx, req.accountSid, req.sid)
	}
	return s.o.Catalog.Meta.RecordingBySid(ctx, req.sid)
}

func (s *Server) sign(sid string, expires int64) string {
	mac := hmac.New(sha256.New, s.o.SignKey)
	fmt.Fprintf(mac, "%s|%d", sid, expires)
	return hex.EncodeToString(mac.Sum(nil))
}

func (s *Server) validSignature(sid string, q url.Values) bool {
	exp, err := strconv.ParseInt(q.Get("Expires"), 10, 64)
	if err != nil || s.o.Now().Unix() > exp {
		return false
	}
	return hmac.Equal([]byte(s.sign(sid, exp)), []byte(q.Get("Signature")))
}

// BaseURL is the scheme://host[:port][/prefix] of absolute URLs: the
// configured public URL, else the request's scheme and Host.
func BaseURL(r *http.Request, public string) string {
	if public != "" {
		return strings.TrimRight(public, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// mediaURI is the path of a recording's media (file_uri without its base).
func (s *Server) mediaURI(prefix string, rec meta.Recording) string {
	ext := rec.Format
	if f, err := recorder.Lookup(rec.Format); err == nil {
		ext = f.Ext
	}
	u := path.Join("/", nonEmpty(prefix, "/restcomm"), APIVersion, "Accounts", rec.AccountSid, "Recordings", rec.Sid+"."+ext)
	if s.o.MediaAccess == MediaSigned {
		exp := s.o.Now().Add(s.o.SignedTTL).Unix()
		u += fmt.Sprintf("?Expires=%d&Signature=%s", exp, s.sign(rec.Sid, exp))
	}
	return u
}

// Date layout of Restcomm's JSON ("Mon, 6 Jan 2014 08:51:07 +0900").
const dateLayout = "Mon, 2 Jan 2006 15:04:05 -0700"

type recordingJSON struct {
	Sid         string      `json:"sid"`
	DateCreated string      `json:"date_created"`
	DateUpdated string      `json:"date_updated"`
	AccountSid  string      `json:"account_sid"`
	CallSid     string      `json:"call_sid"`
	Duration    string      `json:"duration"`
	APIVersion  string      `json:"api_version"`
	URI         string      `json:"uri"`
	FileURI     string      `json:"file_uri"`
	S3URI       string      `json:"s3_uri,omitempty"`
	Status      meta.Status `json:"status,omitempty"`
	// StatusDetail (tapedeck's) says why a recording failed, or how a row
	// left in progress was settled, in words.
	StatusDetail string `json:"status_detail,omitempty"`
	// ErrorCode is Twilio's code of an absent recording (16101).
	ErrorCode int    `json:"error_code,omitempty"`
	Format    string `json:"format,omitempty"`
	Size      int64  `json:"size,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
	// Quality (tapedeck's) is the recording's completeness: packets
	// expected, received, lost, late, duplicated, the silence inserted for
	// loss, jitter, recorded over call time, the paused intervals.
	Quality *meta.QualityView `json:"quality,omitempty"`
}

func (s *Server) recordingJSON(r *http.Request, prefix string, rec meta.Recording) recordingJSON {
	dur := rec.Duration
	if rec.Status.Live() {
		dur = -1 // not known yet: Twilio's convention
	}
	j := recordingJSON{
		Sid: rec.Sid, DateCreated: rec.DateCreated.UTC().Format(dateLayout), DateUpdated: rec.DateUpdated.UTC().Format(dateLayout),
		AccountSid: rec.AccountSid, CallSid: rec.CallSid, Duration: JavaDouble(dur),
		APIVersion: nonEmpty(rec.ApiVersion, APIVersion),
		URI:        "/" + APIVersion + "/Accounts/" + rec.AccountSid + "/Recordings/" + rec.Sid + ".json",
		FileURI:    BaseURL(r, s.o.PublicURL) + s.mediaURI(prefix, rec), S3URI: rec.S3URI,
		Status: rec.Status, StatusDetail: rec.StatusDetail, Format: rec.Format, Size: rec.Size, SHA256: rec.SHA256,
		Quality: rec.Quality.View(),
	}
	if rec.Status == meta.StatusAbsent {
		j.ErrorCode = catalog.AbsentCode(rec)
	}
	if rec.Status == meta.StatusFailed && catalog.IsNodeLost(rec) {
		j.ErrorCode = ErrorCodeNodeLost
	}
	return j
}

// ErrorCodeNodeLost is the error code of a recording whose node stopped
// while it recorded (catalog.IsNodeLost): Twilio's 20500, an internal
// failure of the service (Twilio documents no code of its own for it).
const ErrorCodeNodeLost = 20500

// ErrorCodeAbsent is Twilio's error code of a recording that got no audio
// ("too short"); a silent one has catalog.CodeSilent (16102).
const ErrorCodeAbsent = catalog.CodeTooShort

// JavaDouble formats v as Java's Double.toString does, which Restcomm's
// duration is: "30.0", "14.70275" (plain decimals; Java's exponent form for
// values from 10^7 up does not occur for a recording's seconds).
func JavaDouble(v float64) string {
	out := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.ContainsAny(out, ".NI") {
		out += ".0"
	}
	return out
}

type listJSON struct {
	Page            int             `json:"page" xml:"page,attr"`
	NumPages        int             `json:"num_pages" xml:"numpages,attr"`
	PageSize        int             `json:"page_size" xml:"pagesize,attr"`
	Total           int             `json:"total" xml:"total,attr"`
	Limit           int             `json:"limit" xml:"limit,attr"`
	Start           string          `json:"start" xml:"start,attr"`
	End             string          `json:"end" xml:"end,attr"`
	URI             string          `json:"uri" xml:"uri,attr"`
	FirstPageURI    string          `json:"first_page_uri" xml:"firstpageuri,attr"`
	PreviousPageURI string          `json:"previous_page_uri" xml:"previouspageuri,attr"`
	NextPageURI     string          `json:"next_page_uri" xml:"nextpageuri,attr"`
	LastPageURI     string          `json:"last_page_uri" xml:"lastpageuri,attr"`
	Recordings      []recordingJSON `json:"recordings" xml:"-"`
}

type xmlRecording struct {
	XMLName     xml.Name `xml:"Recording"`
	Sid         string
	DateCreated string
	DateUpdated string
	AccountSid  string
	CallSid     string
	Duration    string
	ApiVersion  string
	Uri         string
	FileUri     string
	S3Uri       string `xml:",omitempty"`
	// tapedeck's, as in the JSON.
	Status       meta.Status `xml:",omitempty"`
	StatusDetail string      `xml:",omitempty"`
	ErrorCode    int         `xml:",omitempty"`
	Size         int64       `xml:",omitempty"`
	Quality      *xmlQuality `xml:",omitempty"`
}

// xmlQuality is the JSON's quality in Restcomm's XML style.
type xmlQuality struct {
	PacketsExpected   int64
	PacketsReceived   int64
	PacketsLost       int64
	PacketsLate       int64
	PacketsDuplicated int64
	LossPercent       float64
	LossSilenceMs     int64
	JitterMs          float64
	RecordedMs        int64
	CallMs            int64
	RecordedOverCall  float64
	Degraded          bool
	PausedIntervals   struct {
		Items []xmlPaused `xml:"PausedInterval"`
	}
	// Parties: a bridge recording's parties (tapedeck's extension).
	Parties *xmlParties `xml:",omitempty"`
}

type xmlParties struct {
	Items []meta.PartyQuality `xml:"Party"`
}

type xmlPaused struct {
	Start    string
	LengthMs int64
	Behavior string
	By       string
}

func toXMLQuality(v *meta.QualityView) *xmlQuality {
	if v == nil {
		return nil
	}
	q := &xmlQuality{PacketsExpected: v.PacketsExpected, PacketsReceived: v.PacketsReceived, PacketsLost: v.PacketsLost,
		PacketsLate: v.PacketsLate, PacketsDuplicated: v.PacketsDuplicated, LossPercent: v.LossPercent,
		LossSilenceMs: v.LossSilenceMs, JitterMs: v.JitterMs, RecordedMs: v.RecordedMs, CallMs: v.CallMs,
		RecordedOverCall: v.RecordedOverCall, Degraded: v.Degraded}
	for _, p := range v.Paused {
		q.PausedIntervals.Items = append(q.PausedIntervals.Items, xmlPaused{Start: p.Start.UTC().Format(dateLayout),
			LengthMs: p.LengthMs, Behavior: p.Behavior, By: p.By})
	}
	if len(v.Parties) > 0 {
		q.Parties = &xmlParties{Items: v.Parties}
	}
	return q
}

type xmlRecordings struct {
	listJSON
	Items []xmlRecording `xml:"Recording"`
}

type xmlResponse struct {
	XMLName    xml.Name       `xml:"RestcommResponse"`
	Recordings *xmlRecordings `xml:"Recordings,omitempty"`
	Recording  *xmlRecording  `xml:"Recording,omitempty"`
	Exception  *xmlException  `xml:"RestException,omitempty"`
}

type xmlException struct {
	Status  int
	Message string
}

func toXML(in []recordingJSON) []xmlRecording {
	out := make([]xmlRecording, len(in))
	for i, r := range in {
		out[i] = xmlRecording{Sid: r.Sid, DateCreated: r.DateCreated, DateUpdated: r.DateUpdated, AccountSid: r.AccountSid,
			// Restcomm's XML Uri has no extension: add .wav for the media,
			// the seed's recipe.
			CallSid: r.CallSid, Duration: r.Duration, ApiVersion: r.APIVersion, Uri: strings.TrimSuffix(r.URI, ".json"),
			FileUri: r.FileURI, S3Uri: r.S3URI, Status: r.Status, StatusDetail: r.StatusDetail, ErrorCode: r.ErrorCode, Size: r.Size,
			Quality: toXMLQuality(r.Quality)}
	}
	return out
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeXML(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(v)
}

func (s *Server) writeError(w http.ResponseWriter, ext string, err error) {
	code, msg, known := status(err)
	if !known {
		s.log.Error("restcomm API", "err", err)
	}
	if code == 401 {
		w.Header().Set("WWW-Authenticate", `Basic realm="Restcomm"`)
	}
	if ext == "xml" {
		writeXML(w, code, xmlResponse{Exception: &xmlException{Status: code, Message: msg}})
		return
	}
	writeJSON(w, code, map[string]any{"status": code, "message": msg})
}
