// Package ozeki is tapedeck's command API in the manner of Ozeki Phone
// System's HTTP API (seed 001): GET /api?command=Record&Username=..&..
// or the same parameters as a POST form. The HTTP status is always 200;
// the outcome is Ozeki's XML body:
//
//	<?xml version="1.0"?>
//	<Response xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
//	  <Code>200</Code>
//	  <Message>Command successfully executed</Message>
//	</Response>
//
// with Ozeki's codes for failures (errors.go). A CallId is the call's
// channel id, as ARI and ListActiveCalls show it.
//
// The package also runs OzML documents (script.go): the dialplan
// application Script(url) and replies to notifications.
package ozeki

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/speech"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/webhook"
)

// Options configure the API.
type Options struct {
	Calls call.Calls
	Users []config.OzekiUser
	// RecordPaths are the directories RecordPath may name.
	RecordPaths []string
	// Folder is where recordings go under the recordings root.
	Folder string
	// Webhook sends RecordCompleted and the other notifications.
	Webhook *webhook.Sender
	// Speech synthesises Speak (nil: Speak fails with a clear cause).
	Speech *speech.Synth
	// BaseURL is the public base of RecordURL ("http://host:port").
	BaseURL func() string
	// Catalog serves a RecordURL whose file is no longer on this disk
	// (uploaded to object storage); nil: local files only.
	Catalog *catalog.Service
	// SignKey signs RecordURLs.
	SignKey []byte
	// RecordURLTTL is a RecordURL's lifetime (default 24 h).
	RecordURLTTL time.Duration
	// ScriptTimeout bounds a request to an OzML application (default 10 s).
	ScriptTimeout time.Duration
	// ScriptFailureURL receives a ScriptFailed notification for every
	// script that fails (empty: none is sent).
	ScriptFailureURL string
	Log              *slog.Logger
}

// API serves the command API.
type API struct {
	o     Options
	users map[string]*user

	wg         sync.WaitGroup // scripts and recordings' notifications in progress
	clientOnce sync.Once
	client     *http.Client // fetches OzML
}

type user struct {
	config.OzekiUser
	commands map[string]bool
	from     []netip.Prefix
}

// New builds the API from a validated configuration.
func New(o Options) *API {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.RecordURLTTL <= 0 {
		o.RecordURLTTL = 24 * time.Hour
	}
	if o.ScriptTimeout <= 0 {
		o.ScriptTimeout = 10 * time.Second
	}
	if o.Folder == "" {
		o.Folder = "HttpRecordings"
	}
	a := &API{o: o, users: map[string]*user{}}
	for _, u := range o.Users {
		x := &user{OzekiUser: u, commands: map[string]bool{}}
		for _, c := range u.Commands {
			x.commands[strings.ToLower(c)] = true
		}
		for _, f := range u.AllowFrom {
			if p, err := netip.ParsePrefix(f); err == nil {
				x.from = append(x.from, p.Masked())
			} else if ad, err := netip.ParseAddr(f); err == nil {
				x.from = append(x.from, netip.PrefixFrom(ad, ad.BitLen()))
			}
		}
		a.users[strings.ToLower(u.Username)] = x
	}
	return a
}

// Response is Ozeki's XML answer.
type Response struct {
	XMLName          xml.Name   `xml:"Response"`
	XSI              string     `xml:"xmlns:xsi,attr"`
	XSD              string     `xml:"xmlns:xsd,attr"`
	Code             int        `xml:"Code"`
	Message          string     `xml:"Message"`
	NotificationName string     `xml:"NotificationName,omitempty"`
	CallID           string     `xml:"CallId,omitempty"`
	ActiveCalls      *callInfos `xml:"ActiveCalls,omitempty"`

	// active, when listActive is set, are ListActiveCalls' calls as the
	// call model summarised them at now: written as ActiveCalls without
	// a CallInfo (and its StartTime string) per call.
	active     *[]call.CallSummary
	listActive bool
	now        time.Time
}

type callInfos struct {
	Calls []CallInfo `xml:"CallInfo"`
}

// CallInfo is one call of ListActiveCalls.
type CallInfo struct {
	CallState    string `xml:"CallState"`
	CallID       string `xml:"CallId"`
	Source       string `xml:"Source"`
	CallerID     string `xml:"CallerId"`
	Destination  string `xml:"Destination"`
	StartTime    string `xml:"StartTime"`
	RingDuration int    `xml:"RingDuration"`
	TalkDuration int    `xml:"TalkDuration"`
}

// callInfo is a summarised call as ListActiveCalls shows it (StartTime
// aside, which appendStartTime writes).
func callInfo(s *call.CallSummary, now time.Time) CallInfo {
	ci := CallInfo{CallState: callState(s.State), CallID: string(s.ID), Source: s.Caller.Number,
		CallerID: s.Caller.Name, Destination: s.Exten}
	if ci.CallerID == "" {
		ci.CallerID = s.Caller.Number
	}
	if s.State == call.StateUp {
		ci.TalkDuration = int(now.Sub(s.Created) / time.Second)
	} else {
		ci.RingDuration = int(now.Sub(s.Created) / time.Second)
	}
	return ci
}

const (
	nsXSI = "http://www.w3.org/2001/XMLSchema-instance"
	nsXSD = "http://www.w3.org/2001/XMLSchema"
)

// Marshal writes the response as Ozeki does: what encoding/xml's
// MarshalIndent(r, "", "  ") writes, after an XML declaration and with a
// final newline, but by hand (reflection costs milliseconds for a list of
// a thousand calls).
func (r *Response) Marshal() []byte {
	return r.appendTo(make([]byte, 0, r.sizeHint()))
}

// sizeHint is about the size of the marshalled response.
func (r *Response) sizeHint() int { return 256 + 400*r.numCalls() }

func (r *Response) numCalls() int {
	switch {
	case r.ActiveCalls != nil:
		return len(r.ActiveCalls.Calls)
	case r.listActive && r.active != nil:
		return len(*r.active)
	}
	return 0
}

func (r *Response) appendTo(b []byte) []byte {
	b = append(b, `<?xml version="1.0"?>`+"\n"+`<Response xmlns:xsi="`+nsXSI+`" xmlns:xsd="`+nsXSD+`">`+"\n"...)
	b = elemInt(b, "  ", "Code", r.Code)
	b = elem(b, "  ", "Message", r.Message)
	if r.NotificationName != "" {
		b = elem(b, "  ", "NotificationName", r.NotificationName)
	}
	if r.CallID != "" {
		b = elem(b, "  ", "CallId", r.CallID)
	}
	switch {
	case r.ActiveCalls != nil:
		if len(r.ActiveCalls.Calls) == 0 {
			return append(b, "  <ActiveCalls></ActiveCalls>\n</Response>\n"...)
		}
		b = append(b, "  <ActiveCalls>\n"...)
		for i := range r.ActiveCalls.Calls {
			b = appendCallInfo(b, &r.ActiveCalls.Calls[i], time.Time{}, false)
		}
		b = append(b, "  </ActiveCalls>\n"...)
	case r.listActive:
		if r.active == nil || len(*r.active) == 0 {
			return append(b, "  <ActiveCalls></ActiveCalls>\n</Response>\n"...)
		}
		b = append(b, "  <ActiveCalls>\n"...)
		for i := range *r.active {
			s := &(*r.active)[i]
			ci := callInfo(s, r.now)
			b = appendCallInfo(b, &ci, s.Created, true)
		}
		b = append(b, "  </ActiveCalls>\n"...)
	}
	return append(b, "</Response>\n"...)
}

// appendCallInfo writes one CallInfo element; with startTime set, its
// StartTime is start (c.StartTime is not read).
func appendCallInfo(b []byte, c *CallInfo, start time.Time, startTime bool) []byte {
	const in = "      "
	b = append(b, "    <CallInfo>\n"...)
	b = elem(b, in, "CallState", c.CallState)
	b = elem(b, in, "CallId", c.CallID)
	b = elem(b, in, "Source", c.Source)
	b = elem(b, in, "CallerId", c.CallerID)
	b = elem(b, in, "Destination", c.Destination)
	if startTime {
		b = append(b, in+"<StartTime>"...)
		b = appendStartTime(b, start)
		b = append(b, "</StartTime>\n"...)
	} else {
		b = elem(b, in, "StartTime", c.StartTime)
	}
	b = elemInt(b, in, "RingDuration", c.RingDuration)
	b = elemInt(b, in, "TalkDuration", c.TalkDuration)
	return append(b, "    </CallInfo>\n"...)
}

// elem writes <name>text</name> with the text escaped.
func elem(b []byte, indent, name, text string) []byte {
	b = append(b, indent...)
	b = append(b, '<')
	b = append(b, name...)
	b = append(b, '>')
	b = appendEscaped(b, text)
	b = append(b, "</"...)
	b = append(b, name...)
	return append(b, ">\n"...)
}

// elemInt writes <name>n</name>.
func elemInt(b []byte, indent, name string, n int) []byte {
	b = append(b, indent...)
	b = append(b, '<')
	b = append(b, name...)
	b = append(b, '>')
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, "</"...)
	b = append(b, name...)
	return append(b, ">\n"...)
}

// appendEscaped appends s as XML text exactly as encoding/xml's Marshal
// escapes it (its printer's EscapeString, which has no form that appends
// to a []byte): markup characters, quotes, tab, newline and carriage
// return as character references, and a character XML cannot hold
// (control characters, invalid UTF-8) as U+FFFD. Common text is copied
// as it is, and nothing is allocated (caller names with accents are no
// rarity).
func appendEscaped(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x80 && c != '&' && c != '<' && c != '>' && c != '"' && c != '\'' {
			i++
			continue
		}
		r, width := utf8.DecodeRuneInString(s[i:])
		var esc string
		switch r {
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\t':
			esc = "&#x9;"
		case '\n':
			esc = "&#xA;"
		case '\r':
			esc = "&#xD;"
		default:
			if !inCharacterRange(r) || (r == utf8.RuneError && width == 1) {
				esc = "\uFFFD"
				break
			}
			i += width
			continue
		}
		b = append(b, s[last:i]...)
		b = append(b, esc...)
		i += width
		last = i
	}
	return append(b, s[last:]...)
}

// inCharacterRange is XML's Char production (encoding/xml's
// isInCharacterRange).
func inCharacterRange(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// bufs are response buffers and summaries are ListActiveCalls' lists of
// calls, reused: a list of a thousand calls is some 300 KB of XML (and
// 100 KB of summaries) that the collector need not see again for every
// request.
var (
	bufs      sync.Pool
	summaries = sync.Pool{New: func() any { return new([]call.CallSummary) }}
)

// maxPooled bounds what goes back to the pools (an outsized one goes to
// the collector).
const maxPooled = 4 << 20

// release hands the response's list of calls back to its pool.
func (r *Response) release() {
	if r.active == nil {
		return
	}
	l := *r.active
	clear(l) // (no ended call kept alive by the pool)
	if cap(l)*int(unsafe.Sizeof(call.CallSummary{})) <= maxPooled {
		*r.active = l[:0]
		summaries.Put(r.active)
	}
	r.active = nil
}

// ServeHTTP serves /api (and /, on the API's own listener) and the
// RecordURL downloads under /api/recordings/.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/recordings/") {
		a.serveRecording(w, r)
		return
	}
	res := a.Do(r)
	h := w.Header()
	h.Set("Content-Type", "application/xml; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	bp, _ := bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	b := res.appendTo(slices.Grow((*bp)[:0], res.sizeHint()))
	res.release()
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	if cap(b) <= maxPooled {
		*bp = b[:0]
		bufs.Put(bp)
	}
}

// MaxBody bounds a POST form.
const MaxBody = 64 << 10

// Do runs the request's command and returns Ozeki's response.
func (a *API) Do(r *http.Request) *Response {
	params, err := readParams(r)
	if err != nil {
		return fail(errParse(err.Error()))
	}
	name := params.get("command")
	u, oerr := a.authenticate(r, params)
	if oerr != nil {
		a.o.Log.Info("ozeki: command refused", "command", name, "code", oerr.Code, "remote", r.RemoteAddr)
		return fail(oerr)
	}
	if name == "" {
		return fail(errParam("Command", ""))
	}
	c, ok := commands[strings.ToLower(name)]
	if !ok {
		return fail(errNotImplemented(name))
	}
	if len(u.commands) > 0 && !u.commands[strings.ToLower(c.name)] {
		return fail(&Error{Code: 306, Message: msg306})
	}
	res, oerr := c.run(a, r.Context(), params)
	if oerr != nil {
		a.o.Log.Info("ozeki: command failed", "command", c.name, "code", oerr.Code, "message", oerr.Message)
		return fail(oerr)
	}
	if res == nil {
		res = &Response{}
	}
	res.Code, res.Message = 200, "Command successfully executed"
	return res
}

func fail(e *Error) *Response { return &Response{Code: e.Code, Message: e.Message} }

// authenticate checks Username/Password and the user's address list.
func (a *API) authenticate(r *http.Request, p params) (*user, *Error) {
	name, pass := p.get("username"), p.get("password")
	if name == "" && pass == "" {
		return nil, &Error{Code: 304, Message: msg304}
	}
	u := a.users[strings.ToLower(name)]
	if u == nil {
		// The same work as a wrong password: no user enumeration by timing.
		subtle.ConstantTimeCompare([]byte(pass), []byte(pass+"x"))
		return nil, &Error{Code: 305, Message: msg305}
	}
	if subtle.ConstantTimeCompare([]byte(pass), []byte(u.Password)) != 1 {
		return nil, &Error{Code: 305, Message: msg305}
	}
	if len(u.from) > 0 {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		ip, err := netip.ParseAddr(host)
		allowed := false
		for _, pfx := range u.from {
			if err == nil && pfx.Contains(ip.Unmap()) {
				allowed = true
				break
			}
		}
		if !allowed {
			return nil, &Error{Code: 307, Message: msg307}
		}
	}
	return u, nil
}

// params are a request's parameters by lower-cased name (Ozeki's
// documentation spells some names in more than one way: FinishedUrl and
// FinishedURL).
type params map[string]string

func (p params) get(name string) string { return p[strings.ToLower(name)] }

func (p params) has(name string) bool { _, ok := p[strings.ToLower(name)]; return ok }

// readParams reads the query string and, for POST, the form body.
func readParams(r *http.Request) (params, error) {
	p, err := ParseParams(r.URL.RawQuery)
	if err != nil {
		return nil, err
	}
	if r.Method == http.MethodPost {
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct != "" && ct != "application/x-www-form-urlencoded" {
			return nil, fmt.Errorf("content type %q: want application/x-www-form-urlencoded", ct)
		}
		buf := make([]byte, MaxBody+1)
		n, _ := readFull(r, buf)
		if n > MaxBody {
			return nil, fmt.Errorf("request body over %d bytes", MaxBody)
		}
		body, err := ParseParams(string(buf[:n]))
		if err != nil {
			return nil, err
		}
		for k, v := range body {
			if _, dup := p[k]; !dup {
				p[k] = v
			}
		}
	}
	return p, nil
}

func readFull(r *http.Request, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Body.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// ParseParams parses a query string or form body into case-insensitive
// parameters; the first value of a name wins. A malformed escape is an
// error (Ozeki's 300).
func ParseParams(raw string) (params, error) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return nil, err
	}
	p := make(params, len(v))
	// url.Values loses the order between names that differ only in case;
	// walk the raw string to keep the first occurrence.
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, val, _ := strings.Cut(part, "=")
		k, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(val)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad escape in %q", part)
		}
		lk := strings.ToLower(k)
		if _, dup := p[lk]; !dup {
			p[lk] = val
		}
	}
	return p, nil
}

// ------------------------------------------------------------ RecordURL

// recordURL is the signed download URL of a finished recording: its file
// while it is on this disk, else (uploaded to object storage) the catalog's
// copy of the recording named name.
func (a *API) recordURL(name, path string) string {
	exp := time.Now().Add(a.o.RecordURLTTL).Unix()
	id := base64.RawURLEncoding.EncodeToString([]byte(path))
	base := ""
	if a.o.BaseURL != nil {
		base = strings.TrimSuffix(a.o.BaseURL(), "/")
	}
	n := base64.RawURLEncoding.EncodeToString([]byte(name))
	return fmt.Sprintf("%s/api/recordings/%s%s?n=%s&exp=%d&sig=%s", base, id, filepath.Ext(path), n, exp, a.sign(id, n, exp))
}

func (a *API) sign(id, name string, exp int64) string {
	mac := hmac.New(sha256.New, a.o.SignKey)
	fmt.Fprintf(mac, "ozeki-record:%s:%s:%d", id, name, exp)
	return hex.EncodeToString(mac.Sum(nil))
}

// serveRecording serves a RecordURL: a valid signature and an expiry in
// the future, or 404.
func (a *API) serveRecording(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/api/recordings/")
	ext := filepath.Ext(name)
	id := strings.TrimSuffix(name, ext)
	q := r.URL.Query()
	n := q.Get("n")
	exp, err := strconv.ParseInt(q.Get("exp"), 10, 64)
	if err != nil || time.Now().Unix() > exp || !hmac.Equal([]byte(q.Get("sig")), []byte(a.sign(id, n, exp))) {
		http.NotFound(w, r)
		return
	}
	raw, err1 := base64.RawURLEncoding.DecodeString(id)
	recName, err2 := base64.RawURLEncoding.DecodeString(n)
	if err1 != nil || err2 != nil {
		http.NotFound(w, r)
		return
	}
	path := string(raw)
	ctype := ""
	switch filepath.Ext(path) {
	case ".mp3":
		ctype = "audio/mpeg"
	case ".wav":
		ctype = "audio/wav"
	}
	if ctype != "" {
		w.Header().Set("Content-Type", ctype)
	}
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", filepath.Base(path)))
	if _, err := os.Stat(path); err != nil && a.o.Catalog != nil && len(recName) > 0 {
		// Moved to object storage (or another store): the catalog knows.
		m, _, err := a.o.Catalog.OpenByName(r.Context(), string(recName), ctype)
		if err != nil {
			w.Header().Del("Content-Disposition")
			if errors.Is(err, catalog.ErrNotFound) || errors.Is(err, meta.ErrNotFound) {
				http.NotFound(w, r)
				return
			}
			a.o.Log.Error("ozeki: RecordURL from the catalog", "recording", string(recName), "err", err)
			http.Error(w, "recording unavailable", http.StatusServiceUnavailable)
			return
		}
		defer m.Close()
		http.ServeContent(w, r, filepath.Base(path), m.ModTime, m)
		return
	}
	http.ServeFile(w, r, path)
}

// notify queues a notification; one the catalog cannot take in time is
// kept and retried by the sender (Notify); a refusal is logged (the call
// goes on).
func (a *API) notify(ctx context.Context, kind, callID, target string, form url.Values) {
	if a.o.Webhook == nil || target == "" {
		return
	}
	if err := a.o.Webhook.Notify(ctx, webhook.Notification{Kind: kind, CallID: callID, URL: target, Form: form}); err != nil {
		a.o.Log.Error("ozeki: notification not queued", "kind", kind, "call", callID, "err", err)
	}
}
