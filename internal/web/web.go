// Package web is tapedeck's own web page: recordings (search, listen,
// download, delete) and live calls (watch, pause/mute/stop a recording).
// Pages are server-rendered with html/template; the assets are plain ES
// modules and CSS embedded in the binary, so nothing is built or installed.
//
// A viewer signs in with a Restcomm account (SID or name, and auth token)
// or a Wazo admin of the configuration (who sees the default account). The
// session is an in-memory table behind an HttpOnly, SameSite=Strict cookie
// that expires; every change (POST) carries the session's CSRF token.
// Pages answer an unauthenticated request with a redirect to the sign-in
// page, data routes with 401.
package web

import (
	"bufio"
	"context"
	"crypto/subtle"
	"embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/httpx"
	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

//go:embed assets templates
var files embed.FS

// Admin is a configured admin login (the Wazo users API's admins).
type Admin struct{ Name, Password string }

// Options configure the page.
type Options struct {
	Catalog *catalog.Service
	Calls   call.Calls // nil: no live calls page
	Bus     *event.Bus // feeds the live page; nil: it is not updated live
	Admins  []Admin
	// CacheDir keeps computed waveform peaks and MP3 downloads.
	CacheDir string
	// SessionTTL is how long a sign-in lasts (default 12 h).
	SessionTTL time.Duration
	Logger     *slog.Logger
	Now        func() time.Time
}

// Handler serves the page. Register it on a mux with Register.
type Handler struct {
	o     Options
	s     *sessions
	pages map[string]*template.Template
	mux   *http.ServeMux
	live  *live
	// guard slows a password guesser: past httpx.LoginMaxFailures failed
	// sign-ins from one address within httpx.LoginFailWindow, that
	// address gets 429 until the window ends.
	guard httpx.LoginGuard
}

// New builds the handler.
func New(o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	h := &Handler{o: o, s: &sessions{m: map[string]*session{}, ttl: o.SessionTTL, now: o.Now}, pages: map[string]*template.Template{}}
	funcs := template.FuncMap{
		"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"secs":  func(d float64) string { return strconv.FormatFloat(d, 'f', 1, 64) },
		"msecs": func(ms int64) float64 { return float64(ms) / 1000 },
		"fieldArgs": func(name, label, typ, value string, errs map[string]string) map[string]string {
			return map[string]string{"Name": name, "Label": label, "Type": typ, "Value": value, "Error": errs[name]}
		},
	}
	for _, p := range []string{"signin", "recordings", "recording", "live"} {
		h.pages[p] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+p+".html"))
	}
	h.live = newLive(o.Calls, o.Bus, o.Logger)
	m := http.NewServeMux()
	assets, _ := fs.Sub(files, "assets")
	m.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(assets)))
	m.HandleFunc("GET /{$}", h.root)
	m.HandleFunc("GET /signin", h.signinPage)
	m.HandleFunc("POST /signin", h.signin)
	m.HandleFunc("POST /signout", h.page(h.signout))
	m.HandleFunc("GET /recordings", h.page(h.recordings))
	m.HandleFunc("GET /recordings/{sid}", h.page(h.recording))
	m.HandleFunc("GET /recordings/{sid}/media", h.data(h.media))
	m.HandleFunc("GET /recordings/{sid}/peaks", h.data(h.peaks))
	m.HandleFunc("GET /recordings/{sid}/mp3", h.data(h.mp3))
	m.HandleFunc("POST /recordings/{sid}/delete", h.page(h.deleteRecording))
	m.HandleFunc("GET /live", h.page(h.livePage))
	m.HandleFunc("GET /live/events", h.data(h.liveEvents))
	m.HandleFunc("GET /live/calls", h.data(h.liveJSON))
	m.HandleFunc("POST /live/recording", h.data(h.liveAction))
	h.mux = m
	return h
}

// Patterns are the paths the page owns, for Register.
var Patterns = []string{"/{$}", "/assets/", "/signin", "/signout", "/recordings", "/recordings/", "/live", "/live/"}

// Register adds the page's paths to mux (nothing else: other paths keep
// their handlers and 404s).
func (h *Handler) Register(mux *http.ServeMux) {
	for _, p := range Patterns {
		mux.Handle(p, h)
	}
}

// Close stops the live calls observer.
func (h *Handler) Close() { h.live.close() }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "same-origin")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; media-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.mux.ServeHTTP(w, r)
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, se *session)

// page wraps a page route: no session → the sign-in page; a POST without
// the session's CSRF token → 403.
func (h *Handler) page(f handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		se := h.s.get(r)
		if se == nil {
			if r.Method != http.MethodGet {
				http.Error(w, "Sign in first", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if r.Method != http.MethodGet && !h.sameOrigin(r, se) {
			http.Error(w, "Refused: the request did not come from this page (CSRF token missing or wrong)", http.StatusForbidden)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		f(w, r, se)
	}
}

// data wraps a data route: no session → 401.
func (h *Handler) data(f handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		se := h.s.get(r)
		if se == nil {
			http.Error(w, "Sign in first", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet && !h.sameOrigin(r, se) {
			http.Error(w, "Refused: CSRF token missing or wrong", http.StatusForbidden)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		f(w, r, se)
	}
}

// sameOrigin checks a change: the CSRF token, and the Origin header when
// the browser sends one.
func (h *Handler) sameOrigin(r *http.Request, se *session) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	return se.validCSRF(r)
}

// view is what every page template gets.
type view struct {
	Title   string
	User    string
	CSRF    string
	Nav     string
	Error   string
	Data    any
	Account string
}

func (h *Handler) render(w http.ResponseWriter, status int, name string, v view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := h.pages[name].Execute(w, v); err != nil {
		h.o.Logger.Warn("web: rendering", "page", name, "err", err)
	}
}

func (h *Handler) root(w http.ResponseWriter, r *http.Request) {
	if h.s.get(r) == nil {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/recordings", http.StatusSeeOther)
}

func (h *Handler) signinPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusOK, "signin", view{Title: "Sign in", Data: map[string]string{"Next": safeNext(r.URL.Query().Get("next")), "User": ""}})
}

// safeNext keeps a post-sign-in destination on this site.
func safeNext(n string) string {
	if !strings.HasPrefix(n, "/") || strings.HasPrefix(n, "//") || strings.HasPrefix(n, "/\\") {
		return "/recordings"
	}
	return n
}

func (h *Handler) signin(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" {
		// A cross-site form must not sign the viewer in as someone else.
		if u, err := url.Parse(o); err != nil || u.Host != r.Host {
			http.Error(w, "Refused: sign-in from another site", http.StatusForbidden)
			return
		}
	}
	user, pass := strings.TrimSpace(r.PostFormValue("user")), r.PostFormValue("password")
	next := safeNext(r.PostFormValue("next"))
	ip, now := httpx.SourceIP(r), h.o.Now()
	if wait, blocked := h.guard.Blocked(ip, now); blocked {
		secs := int((wait + time.Second - 1) / time.Second)
		h.o.Logger.Warn("web: sign-in refused: too many failures from this address", "user", user, "remote", r.RemoteAddr)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		h.render(w, http.StatusTooManyRequests, "signin", view{Title: "Sign in",
			Error: fmt.Sprintf("Too many failed sign-ins from your address. Try again in %d seconds.", secs),
			Data:  map[string]string{"Next": next, "User": user}})
		return
	}
	name, sid, live, err := h.authenticate(r.Context(), user, pass)
	if err != nil {
		if errors.Is(err, meta.ErrUnauthorized) {
			h.guard.Fail(ip, now)
		}
		h.o.Logger.Warn("web: sign-in failed", "user", user, "remote", r.RemoteAddr)
		h.render(w, http.StatusUnauthorized, "signin", view{Title: "Sign in", Error: "Wrong account or token.",
			Data: map[string]string{"Next": next, "User": user}})
		return
	}
	se := h.s.create(name, sid, live)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: se.id, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, Expires: se.expires, MaxAge: int(h.o.SessionTTL / time.Second)})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// authenticate accepts an account SID or name with its auth token, or an
// admin login (who sees the default account).
func (h *Handler) authenticate(ctx context.Context, user, pass string) (name, accountSid string, live bool, err error) {
	if user == "" || pass == "" {
		return "", "", false, meta.ErrUnauthorized
	}
	admin := false
	for _, a := range h.o.Admins {
		n := subtle.ConstantTimeCompare([]byte(a.Name), []byte(user))
		p := subtle.ConstantTimeCompare([]byte(a.Password), []byte(pass))
		if n&p == 1 {
			admin = true
		}
	}
	if admin {
		acc, err := h.o.Catalog.DefaultAccount(ctx)
		if err != nil {
			return "", "", false, err
		}
		return user, acc.Sid, true, nil
	}
	sid := user
	if !strings.HasPrefix(user, "AC") || len(user) != 34 {
		acc, err := h.o.Catalog.Meta.AccountByName(ctx, user)
		if err != nil {
			return "", "", false, meta.ErrUnauthorized
		}
		sid = acc.Sid
	}
	acc, err := h.o.Catalog.Meta.Authenticate(ctx, sid, pass)
	if err != nil {
		return "", "", false, err
	}
	return acc.Name, acc.Sid, acc.Default, nil
}

func (h *Handler) signout(w http.ResponseWriter, r *http.Request, se *session) {
	h.s.drop(se.id)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// filters is the recordings table's view, as in the URL.
type filters struct {
	Start, End, From, To, CallSid, Status, Source, User, Sort, Dir string
	// After and Before are the keyset cursor of a Next or Previous link
	// (the last or first recording of the page it was on); Page then only
	// numbers the page. Without them, Page is an offset (old links).
	After, Before string
	Page          int
	Errors        map[string]string
}

var (
	numberRE  = regexp.MustCompile(`^[0-9A-Za-z+*#._@:-]{1,64}$`)
	callSidRE = regexp.MustCompile(`^[0-9A-Za-z._-]{1,64}$`)
	uuidRE    = regexp.MustCompile(`^[0-9A-Fa-f-]{1,64}$`)
	statuses  = []string{"", "in-progress", "paused", "completed", "failed", "recovered", "absent", "missing"}
	sources   = []string{"", "ari", "command", "policy", "script", "restcomm", "upload"}
)

func parseFilters(q url.Values) filters {
	f := filters{Start: q.Get("start"), End: q.Get("end"), From: q.Get("from"), To: q.Get("to"), CallSid: q.Get("callsid"),
		Status: q.Get("status"), Source: q.Get("source"), User: q.Get("user"), Sort: q.Get("sort"), Dir: q.Get("dir"),
		After: q.Get("after"), Before: q.Get("before"), Errors: map[string]string{}}
	for _, c := range []struct{ name, v string }{{"after", f.After}, {"before", f.Before}} {
		if c.v != "" && !meta.IsRecordingSid(c.v) {
			f.Errors["page"] = "Not a page of this table (bad " + c.name + ")."
		}
	}
	if f.After != "" && f.Before != "" {
		f.Errors["page"] = "Not a page of this table (after and before)."
	}
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		switch {
		case err != nil || n < 0 || n > 1_000_000:
			f.Errors["page"] = "Page must be a number from 0."
		case n > maxOffsetPage && q.Get("after") == "" && q.Get("before") == "":
			// Deeper pages are reached by key, through the Next links:
			// an offset that deep reads every row before it.
			f.Errors["page"] = fmt.Sprintf("Pages past %d are reached with the Next link.", maxOffsetPage)
		default:
			f.Page = n
		}
	}
	for _, d := range []struct{ name, v string }{{"start", f.Start}, {"end", f.End}} {
		if d.v == "" {
			continue
		}
		if _, err := time.Parse("2006-01-02", d.v); err != nil {
			f.Errors[d.name] = "Use a date as YYYY-MM-DD."
		}
	}
	if f.Start != "" && f.End != "" && f.Errors["start"] == "" && f.Errors["end"] == "" && f.End < f.Start {
		f.Errors["end"] = "The end date is before the start date."
	}
	if f.From != "" && !numberRE.MatchString(f.From) {
		f.Errors["from"] = "A number: digits, +, * or #, up to 64 characters."
	}
	if f.To != "" && !numberRE.MatchString(f.To) {
		f.Errors["to"] = "A number: digits, +, * or #, up to 64 characters."
	}
	if f.CallSid != "" && !callSidRE.MatchString(f.CallSid) {
		f.Errors["callsid"] = "A call SID: letters, digits, '.', '_' or '-'."
	}
	if f.User != "" && !uuidRE.MatchString(f.User) {
		f.Errors["user"] = "A user's UUID (hex digits and '-')."
	}
	if !oneOf(f.Status, statuses) {
		f.Errors["status"] = "Not a recording status."
	}
	if !oneOf(f.Source, sources) {
		f.Errors["source"] = "Not a recording source."
	}
	switch f.Sort {
	case "", "date":
		f.Sort = "date"
	case "duration", "callsid":
	default:
		f.Errors["sort"] = "Sort by date, duration or callsid."
	}
	switch f.Dir {
	case "", "desc":
		f.Dir = "desc"
	case "asc":
	default:
		f.Errors["dir"] = "asc or desc."
	}
	return f
}

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}

// query is the filters as URL parameters, with page (and no cursor).
func (f filters) query(page int) string {
	return f.cursorQuery(page, "", "")
}

// cursorQuery is the filters as URL parameters, with page and a keyset
// cursor (after or before a recording's Sid).
func (f filters) cursorQuery(page int, after, before string) string {
	q := url.Values{}
	for k, v := range map[string]string{"start": f.Start, "end": f.End, "from": f.From, "to": f.To, "callsid": f.CallSid,
		"status": f.Status, "source": f.Source, "user": f.User} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Sort != "date" {
		q.Set("sort", f.Sort)
	}
	if f.Dir != "desc" {
		q.Set("dir", f.Dir)
	}
	if page > 0 {
		q.Set("page", strconv.Itoa(page))
		if after != "" {
			q.Set("after", after)
		}
		if before != "" {
			q.Set("before", before)
		}
	}
	return q.Encode()
}

// PageSize is the recordings table's rows per page.
const PageSize = 25

// countLimit: past this many matching recordings the table says "more
// than" instead of counting them all (a count costs as much as reading).
const countLimit = 10000

// maxOffsetPage is the deepest page a URL without a cursor may name.
const maxOffsetPage = countLimit / PageSize

type recordingsData struct {
	F                 filters
	Rows              []meta.Recording
	Total             int
	TotalCapped       bool // more than Total
	Page, Pages       int
	Number            int // Page, counted from 1
	CountLimit        int
	Prev, Next        string
	SortLinks         map[string]string
	Statuses, Sources []string
	Filtered          bool
}

func (h *Handler) recordings(w http.ResponseWriter, r *http.Request, se *session) {
	f := parseFilters(r.URL.Query())
	d := recordingsData{F: f, Statuses: statuses, Sources: sources, SortLinks: map[string]string{}, CountLimit: countLimit}
	status := http.StatusOK
	if len(f.Errors) > 0 {
		status = http.StatusBadRequest
	} else {
		q := meta.Query{AccountSid: se.accountSid, CallSid: f.CallSid, From: f.From, To: f.To, Desc: f.Dir == "desc",
			Status: meta.Status(f.Status), Source: f.Source, Owner: f.User, CountLimit: countLimit}
		switch f.Sort {
		case "duration":
			q.SortBy = meta.SortDuration
		case "callsid":
			q.SortBy = meta.SortCallSid
		default:
			q.SortBy = meta.SortDateCreated
		}
		if f.Start != "" {
			t, _ := time.Parse("2006-01-02", f.Start)
			q.StartFrom = &t
		}
		if f.End != "" {
			t, _ := time.Parse("2006-01-02", f.End)
			t = t.Add(24*time.Hour - time.Nanosecond)
			q.StartTo = &t
		}
		p, more, err := h.list(r.Context(), q, f)
		if errors.Is(err, meta.ErrNotFound) {
			// A cursor whose recording is gone (deleted since): back to
			// the first page.
			http.Redirect(w, r, "/recordings?"+f.query(0), http.StatusSeeOther)
			return
		}
		if err != nil {
			h.o.Logger.Warn("web: listing recordings", "err", err)
			http.Error(w, "The catalog could not be read", http.StatusInternalServerError)
			return
		}
		d.Rows, d.Total, d.TotalCapped = p.Items, p.Total, p.TotalCapped
		if n := len(d.Rows); n > 0 {
			if f.Page > 0 {
				d.Prev = "/recordings?" + f.cursorQuery(f.Page-1, "", d.Rows[0].Sid)
			}
			if more {
				d.Next = "/recordings?" + f.cursorQuery(f.Page+1, d.Rows[n-1].Sid, "")
			}
		}
	}
	d.Filtered = f.Start != "" || f.End != "" || f.From != "" || f.To != "" || f.CallSid != "" || f.Status != "" || f.Source != "" || f.User != ""
	d.Page, d.Number = f.Page, f.Page+1
	d.Pages = (d.Total + PageSize - 1) / PageSize
	for _, s := range []string{"date", "duration", "callsid"} {
		g := f
		dir := "desc"
		if g.Sort == s && g.Dir == "desc" {
			dir = "asc"
		}
		g.Sort, g.Dir = s, dir
		d.SortLinks[s] = "/recordings?" + g.query(0)
	}
	h.render(w, status, "recordings", view{Title: "Recordings", User: se.user, CSRF: se.csrf, Nav: "recordings", Data: d})
}

// list reads one page in the catalog, every filter in its query: by key
// after or before the cursor recording when the URL has one, else by
// offset. more says whether a page follows (in the sort order).
func (h *Handler) list(ctx context.Context, q meta.Query, f filters) (meta.Page, bool, error) {
	q.Limit = PageSize + 1
	switch {
	case f.After != "":
		q.AfterSid = f.After
	case f.Before != "":
		q.BeforeSid = f.Before
		q.Limit = PageSize
	default:
		q.Offset = f.Page * PageSize
	}
	p, err := h.o.Catalog.Meta.ListRecordings(ctx, q)
	if err != nil {
		return meta.Page{}, false, err
	}
	more := len(p.Items) > PageSize
	if more {
		p.Items = p.Items[:PageSize]
	}
	if f.Before != "" {
		more = true // the page the Previous link came from
	}
	return p, more, nil
}

type recordingData struct {
	R        meta.Recording
	Playable bool
	MP3      bool // offered as MP3 too (an 8 kHz WAV, and an MP3 encoder here)
	Paused   []interval
	Q        *meta.QualityView // completeness from the catalog; nil: not measured
}

func (h *Handler) recording(w http.ResponseWriter, r *http.Request, se *session) {
	rec, err := h.o.Catalog.Meta.Recording(r.Context(), se.accountSid, r.PathValue("sid"))
	if err != nil {
		h.render(w, http.StatusNotFound, "recording", view{Title: "Recording not found", User: se.user, CSRF: se.csrf, Nav: "recordings",
			Error: "There is no such recording in this account."})
		return
	}
	d := recordingData{R: rec, Playable: servable(rec), MP3: mp3able(rec), Q: rec.Quality.View()}
	var ok bool
	if d.Paused, ok = catalogIntervals(rec); !ok {
		d.Paused = h.live.pausedIntervals(rec.Name) // a row without quality: what this page saw
	}
	h.render(w, http.StatusOK, "recording", view{Title: "Recording " + rec.Sid, User: se.user, CSRF: se.csrf, Nav: "recordings", Data: d})
}

func servable(rec meta.Recording) bool {
	return rec.Status == meta.StatusCompleted || rec.Status == meta.StatusRecovered
}

// media serves the recording's file with Range support; ?download=1
// makes it an attachment.
func (h *Handler) media(w http.ResponseWriter, r *http.Request, se *session) {
	rec, err := h.o.Catalog.Meta.Recording(r.Context(), se.accountSid, r.PathValue("sid"))
	if err != nil {
		http.Error(w, "Not found", http.StatusNotFound)
		return
	}
	if !servable(rec) {
		http.Error(w, "This recording has no media to serve ("+string(rec.Status)+")", http.StatusNotFound)
		return
	}
	f, _ := recorder.ByExt(rec.Format)
	if byName, err := recorder.Lookup(rec.Format); err == nil {
		f = byName
	}
	ct := f.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	m, err := h.o.Catalog.Open(r.Context(), rec, ct)
	if err != nil {
		http.Error(w, "The recording's file is missing", http.StatusNotFound)
		return
	}
	defer m.Close()
	ext := f.Ext
	if ext == "wav16" {
		ext = "wav"
	}
	name := rec.Sid + "." + ext
	if r.URL.Query().Get("download") == "1" {
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	}
	w.Header().Set("Content-Type", ct)
	httpx.ServeContent(w, r, name, m.ModTime, m)
}

// peaks answers the waveform, computed once and kept in CacheDir.
func (h *Handler) peaks(w http.ResponseWriter, r *http.Request, se *session) {
	rec, err := h.o.Catalog.Meta.Recording(r.Context(), se.accountSid, r.PathValue("sid"))
	if err != nil || !servable(rec) {
		http.Error(w, "Not found", http.StatusNotFound)
		return
	}
	var cache string
	if h.o.CacheDir != "" {
		// The cache's key is the checksum (computed now when the
		// recording has none yet): a recording made again under its
		// name gets a new one.
		rec, _ = h.o.Catalog.Checksum(r.Context(), rec)
	}
	if h.o.CacheDir != "" && rec.SHA256 != "" {
		cache = filepath.Join(h.o.CacheDir, rec.Sid+"-"+rec.SHA256[:min(16, len(rec.SHA256))]+".json")
		if b, err := os.ReadFile(cache); err == nil {
			w.Header().Set("Content-Type", "application/json")
			w.Write(b)
			return
		}
	}
	m, err := h.o.Catalog.Open(r.Context(), rec, "")
	if err != nil {
		http.Error(w, "The recording's file is missing", http.StatusNotFound)
		return
	}
	defer m.Close()
	format := rec.Format
	if f, err := recorder.Lookup(format); err == nil {
		format = f.Name
	}
	p, err := ComputePeaks(m, m.Size, format, PeakBuckets)
	if errors.Is(err, ErrNoWaveform) {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, "The recording could not be read: "+err.Error(), http.StatusUnprocessableEntity)
		return
	}
	b, _ := json.Marshal(p)
	if cache != "" {
		if err := writeAtomic(cache, b); err != nil {
			h.o.Logger.Warn("web: caching peaks", "err", err)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func writeAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".peaks-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func (h *Handler) deleteRecording(w http.ResponseWriter, r *http.Request, se *session) {
	sid := r.PathValue("sid")
	by := meta.Audit{AccountSid: se.accountSid, RecordingSid: sid, Action: meta.AuditDelete, Actor: se.user, API: "web", Remote: r.RemoteAddr}
	if err := h.o.Catalog.Remove(r.Context(), by); err != nil {
		status, msg := http.StatusInternalServerError, "The recording could not be deleted: "+err.Error()
		if errors.Is(err, meta.ErrNotFound) || errors.Is(err, catalog.ErrNotFound) {
			status, msg = http.StatusNotFound, "There is no such recording in this account."
		}
		h.render(w, status, "recording", view{Title: "Recording " + sid, User: se.user, CSRF: se.csrf, Nav: "recordings", Error: msg})
		return
	}
	http.Redirect(w, r, "/recordings?deleted="+url.QueryEscape(sid), http.StatusSeeOther)
}

// mp3able: an 8 kHz WAV recording, and an MP3 encoder (lame) on this
// server.
func mp3able(rec meta.Recording) bool {
	if !servable(rec) || rec.Format != "wav" {
		return false
	}
	_, err := recorder.Lookup("mp3")
	return err == nil
}

// mp3 serves the recording as MP3 (mono), encoded once through the
// recorder's MP3 encoder and kept in CacheDir.
func (h *Handler) mp3(w http.ResponseWriter, r *http.Request, se *session) {
	rec, err := h.o.Catalog.Meta.Recording(r.Context(), se.accountSid, r.PathValue("sid"))
	if err != nil || !mp3able(rec) || h.o.CacheDir == "" {
		http.Error(w, "Not available as MP3", http.StatusNotFound)
		return
	}
	// The key is the checksum, computed now when the recording has none
	// yet: a recording made again under its name gets a new one.
	rec, err = h.o.Catalog.Checksum(r.Context(), rec)
	if err != nil || rec.SHA256 == "" {
		http.Error(w, "Not available as MP3", http.StatusNotFound)
		return
	}
	path := filepath.Join(h.o.CacheDir, rec.Sid+"-"+rec.SHA256[:min(16, len(rec.SHA256))]+".mp3")
	if _, err := os.Stat(path); err != nil {
		if err := h.encodeMP3(r.Context(), rec, path); err != nil {
			h.o.Logger.Warn("web: MP3", "sid", rec.Sid, "err", err)
			http.Error(w, "The MP3 could not be made: "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	f, err := os.Open(path)
	if err != nil {
		http.Error(w, "Not available as MP3", http.StatusNotFound)
		return
	}
	defer f.Close()
	fi, _ := f.Stat()
	w.Header().Set("Content-Type", "audio/mpeg")
	w.Header().Set("Content-Disposition", `attachment; filename="`+rec.Sid+`.mp3"`)
	httpx.ServeContent(w, r, rec.Sid+".mp3", fi.ModTime(), f)
}

func (h *Handler) encodeMP3(ctx context.Context, rec meta.Recording, path string) error {
	m, err := h.o.Catalog.Open(ctx, rec, "")
	if err != nil {
		return err
	}
	defer m.Close()
	br := bufio.NewReaderSize(m, 64<<10)
	rate, chans, bits, n, err := wavHeader(br)
	if err != nil {
		return err
	}
	if rate != 8000 || bits != 16 || chans < 1 || chans > 2 {
		return fmt.Errorf("%d Hz %d-bit %d-channel audio: want 8 kHz 16-bit", rate, bits, chans)
	}
	mp3f, err := recorder.Lookup("mp3")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	part := path + ".part-" + newToken()[:8]
	enc, err := recorder.Create(part, mp3f, recorder.Overwrite)
	if err != nil {
		return err
	}
	defer os.Remove(part)
	raw := make([]byte, 2*chans*8000)
	buf := make([]int16, 8000)
	left := n
	for left > 0 {
		k, rerr := io.ReadFull(br, raw[:min(int64(len(raw)), left)])
		left -= int64(k)
		frames := k / (2 * chans)
		for i := range frames {
			sum := 0
			for c := range chans {
				sum += int(int16(binary.LittleEndian.Uint16(raw[2*(i*chans+c):])))
			}
			buf[i] = int16(sum / chans)
		}
		if frames > 0 {
			if err := enc.Write(buf[:frames]); err != nil {
				enc.Close()
				return err
			}
		}
		if rerr != nil {
			break
		}
	}
	if err := enc.Close(); err != nil {
		return err
	}
	return os.Rename(part, path)
}
