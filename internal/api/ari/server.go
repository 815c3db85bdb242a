package ari

import (
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/sounds"
)

// Options configure the ARI server.
type Options struct {
	Users []config.ARIUser
	// Calls is the call model ARI drives (the local *call.Manager).
	Calls      call.Calls
	Bus        *event.Bus
	Logger     *slog.Logger
	EventQueue int
	Version    string
	StartedAt  time.Time
	// SystemName is reported in /asterisk/info config.name.
	SystemName string
	// Sounds is the sounds index.
	Sounds *sounds.Index
	// AllowedOrigins are the browser origins ("https://app.example.com")
	// whose cross-origin requests are allowed, as Asterisk's
	// allowed_origins: a listed Origin is reflected in
	// Access-Control-Allow-Origin with credentials allowed; "*" allows every
	// origin; empty allows none (no CORS headers at all).
	AllowedOrigins []string
	// Endpoints lists the users' SIP endpoints (nil: none).
	Endpoints EndpointLister
}

// Server is the ARI HTTP handler (mount it at /ari/).
type Server struct {
	opts      Options
	log       *slog.Logger
	calls     call.Calls
	bus       *event.Bus
	resources []*Resource
	routes    []*route
	// done ends every event WebSocket (Close).
	done      chan struct{}
	closeOnce sync.Once
	// users are the accepted credentials (Options.Users until SetUsers).
	users atomic.Pointer[[]config.ARIUser]
}

// SetUsers replaces the accepted credentials (configuration reload); the
// connected WebSockets stay.
func (s *Server) SetUsers(users []config.ARIUser) { s.users.Store(&users) }

// Close disconnects every event WebSocket.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
}

type route struct {
	op       *Op
	resource *Resource
	segs     []string // literal segments, or "{name}"
}

// New builds the server and its route table.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.StartedAt.IsZero() {
		o.StartedAt = time.Now()
	}
	s := &Server{opts: o, log: o.Logger, calls: o.Calls, bus: o.Bus, done: make(chan struct{})}
	s.resources = []*Resource{
		s.asteriskResource(),
		s.endpointsResource(),
		s.channelsResource(),
		s.bridgesResource(),
		s.recordingsResource(),
		s.soundsResource(),
		s.playbacksResource(),
		emptyResource("deviceStates", "Device state resources"),
		emptyResource("mailboxes", "Mailboxes resources"),
		s.eventsResource(),
		s.applicationsResource(),
	}
	for _, res := range s.resources {
		for i := range res.Ops {
			op := &res.Ops[i]
			s.routes = append(s.routes, &route{op: op, resource: res, segs: strings.Split(strings.Trim(op.Path, "/"), "/")})
		}
	}
	return s
}

// Resources exposes the route table (for docs and tests).
func (s *Server) Resources() []*Resource { return s.resources }

func emptyResource(name, desc string) *Resource { return &Resource{Name: name, Description: desc} }

// authenticate checks Basic auth or api_key=user:password.
func (s *Server) authenticate(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		key := r.URL.Query().Get("api_key")
		if key == "" {
			return false
		}
		user, pass, ok = strings.Cut(key, ":")
		if !ok {
			return false
		}
	}
	users := s.opts.Users
	if p := s.users.Load(); p != nil {
		users = *p
	}
	for _, u := range users {
		if subtle.ConstantTimeCompare([]byte(u.Name), []byte(user)) == 1 &&
			subtle.ConstantTimeCompare([]byte(u.Password), []byte(pass)) == 1 {
			return !u.ReadOnly || r.Method == http.MethodGet
		}
	}
	return false
}

// Authenticated reports whether a request carries valid ARI credentials
// (Basic or api_key) for its method; other HTTP endpoints (/healthz
// details) use it.
func (s *Server) Authenticated(r *http.Request) bool { return s.authenticate(r) }

// ServeHTTP routes /ari/... requests.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "tapedeck/"+s.opts.Version)
	s.cors(w, r)
	if r.Method == http.MethodOptions {
		s.options(w, r)
		return
	}
	if !s.authenticate(r) {
		if user, _, basic := r.BasicAuth(); basic || r.URL.Query().Has("api_key") {
			if !basic {
				user, _, _ = strings.Cut(r.URL.Query().Get("api_key"), ":")
			}
			s.log.Warn("authentication failed", "api", "ari", "remote", r.RemoteAddr, "user", user, "path", r.URL.Path)
			writeError(w, apiErr(http.StatusUnauthorized, "Authentication required"))
			return
		}
		writeError(w, apiErr(http.StatusUnauthorized, "Authentication required"))
		return
	}
	s.serve(w, r, false)
}

// ServeTrusted runs a request that another node of the cluster relayed
// over NATS after authenticating it there: no credentials are checked and
// no WebSocket is upgraded.
func (s *Server) ServeTrusted(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "tapedeck/"+s.opts.Version)
	s.serve(w, r, true)
}

// Route is the operation a request names (Match).
type Route struct {
	// Resource is the ARI resource (channels, bridges, playbacks,
	// recordings, ...), Nickname the operation's (answer, list, ...).
	Resource, Nickname string
	// Params are the path parameters (channelId, bridgeId, playbackId,
	// recordingName, ...), unescaped.
	Params map[string]string
}

// Match names the operation of a method on a path under /ari (escaped, as
// r.URL.EscapedPath()); ok is false for none.
func (s *Server) Match(escapedPath, method string) (Route, bool) {
	rest, ok := strings.CutPrefix(escapedPath, "/ari")
	if !ok || strings.HasPrefix(rest, "/api-docs/") {
		return Route{}, false
	}
	for _, rt := range s.routes {
		if rt.op.Method != method {
			continue
		}
		segs := strings.Split(strings.Trim(rest, "/"), "/")
		bad := false
		for i, seg := range segs {
			u, err := url.PathUnescape(seg)
			if err != nil {
				bad = true
				break
			}
			segs[i] = u
		}
		if bad {
			return Route{}, false
		}
		if params, ok := matchSegs(rt.segs, segs); ok {
			return Route{Resource: rt.resource.Name, Nickname: rt.op.Nickname, Params: params}, true
		}
	}
	return Route{}, false
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, trusted bool) {
	raw := r.URL.EscapedPath()
	rest, ok := strings.CutPrefix(raw, "/ari")
	if !ok {
		writeError(w, apiErr(404, "Resource not found"))
		return
	}
	if strings.HasPrefix(rest, "/api-docs/") {
		s.serveDocs(w, r, strings.TrimPrefix(rest, "/api-docs/"))
		return
	}
	if len(rest) > 1 && strings.HasSuffix(rest, "/") {
		writeError(w, apiErr(404, "ARI URLs do not end with a slash"))
		return
	}
	op, params, allowed := s.match(rest, r.Method)
	if op == nil {
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeError(w, apiErr(http.StatusMethodNotAllowed, "Method not allowed"))
			return
		}
		writeError(w, apiErr(404, "Resource not found"))
		return
	}
	if op.Upgrade {
		if trusted {
			writeError(w, apiErr(http.StatusBadRequest, "event WebSockets are not relayed between nodes"))
			return
		}
		s.serveEvents(w, r)
		return
	}
	req, err := parseRequest(r, op, params)
	if err != nil {
		writeError(w, err)
		return
	}
	out, err := op.Handler(req)
	if err != nil {
		writeOpError(w, op, err)
		return
	}
	switch v := out.(type) {
	case nil:
		w.WriteHeader(http.StatusNoContent)
	case *Created:
		w.Header().Set("Location", v.Location)
		writeJSON(w, http.StatusCreated, v.Body)
	case *Raw:
		v.Serve(w, r)
	default:
		writeJSON(w, http.StatusOK, v)
	}
}

// match finds the operation for a raw (still escaped) path. The path is
// split on '/' before each segment is unescaped, so %2F stays inside a
// segment, as in Asterisk.
func (s *Server) match(rawPath, method string) (*Op, map[string]string, []string) {
	segs := strings.Split(strings.Trim(rawPath, "/"), "/")
	for i, seg := range segs {
		u, err := url.PathUnescape(seg)
		if err != nil {
			return nil, nil, nil
		}
		segs[i] = u
	}
	var allowed []string
	for _, rt := range s.routes {
		params, ok := matchSegs(rt.segs, segs)
		if !ok {
			continue
		}
		if rt.op.Method == method {
			return rt.op, params, nil
		}
		allowed = append(allowed, rt.op.Method)
	}
	sort.Strings(allowed)
	return nil, nil, allowed
}

func matchSegs(pattern, segs []string) (map[string]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	var params map[string]string
	for i, p := range pattern {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if segs[i] == "" {
				return nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[p[1:len(p)-1]] = segs[i]
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	return params, true
}

func (s *Server) options(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/ari")
	_, _, allowed := s.match(rest, "")
	if len(allowed) == 0 {
		writeError(w, apiErr(404, "Resource not found"))
		return
	}
	allowed = append(allowed, http.MethodOptions)
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	if w.Header().Get("Access-Control-Allow-Origin") != "" {
		w.Header().Set("Access-Control-Allow-Methods", strings.Join(allowed, ", "))
		w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	}
	w.WriteHeader(http.StatusNoContent)
}

// cors reflects the request's Origin, with credentials allowed, when
// AllowedOrigins lists it (or holds "*"); any other Origin gets no CORS
// header, so browsers keep other sites' scripts away from ARI.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) {
	if len(s.opts.AllowedOrigins) == 0 {
		return
	}
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" || !OriginAllowed(s.opts.AllowedOrigins, origin) {
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Set("Access-Control-Allow-Credentials", "true")
}

// OriginAllowed reports whether origin matches an entry of allowed: "*",
// or the same scheme, host and port (case-insensitive, a trailing slash
// ignored).
func OriginAllowed(allowed []string, origin string) bool {
	o := normOrigin(origin)
	for _, a := range allowed {
		if a == "*" || (o != "" && normOrigin(a) == o) {
			return true
		}
	}
	return false
}

func normOrigin(o string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(o), "/"))
}

func basicUser(r *http.Request) string {
	if u, _, ok := r.BasicAuth(); ok {
		return u
	}
	if key := r.URL.Query().Get("api_key"); key != "" {
		u, _, _ := strings.Cut(key, ":")
		return u
	}
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Basic ") {
		if b, err := base64.StdEncoding.DecodeString(h[6:]); err == nil {
			u, _, _ := strings.Cut(string(b), ":")
			return u
		}
	}
	return ""
}
