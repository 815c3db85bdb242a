// Package confd serves tapedeck's users in the shape of Wazo's APIs, so
// that Wazo's clients (the @wazo/sdk JavaScript SDK, scripts written for
// wazo-confd) work against it unchanged:
//
//   - wazo-auth's token flow under /api/auth/0.1: POST /token with HTTP
//     Basic credentials (a configured admin, or a user's username and
//     password) returns a token; GET/HEAD/DELETE /token/{token}.
//   - wazo-confd under /api/confd/1.1 (and /1.1, its direct port's path):
//     users (list, get/head by id or uuid, create, partial PUT, delete) with
//     Wazo's call recording flags, and the feature extensions
//     (/extensions/features), where *26 (callrecord) lives.
//
// Every confd request carries X-Auth-Token (401 otherwise); Wazo-Tenant
// selects the tenant. Errors have Wazo's shapes: confd answers a JSON list
// of messages (a field's problems as {"field": ["message"]}), wazo-auth
// {"reason": [...], "timestamp": [...], "status_code": N}.
//
// Tokens are random UUIDs; the catalog database keeps only their SHA-256
// (meta.Token), so every node of a shared catalog accepts them and a
// database leak reveals none.
package confd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tapedeck/tapedeck/internal/httpx"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/users"
)

// Path prefixes served by API.
const (
	ConfdPrefix       = "/api/confd/1.1/"
	ConfdDirectPrefix = "/1.1/"
	AuthPrefix        = "/api/auth/0.1/"
)

// Admin is a configured admin credential.
type Admin struct {
	Name, Password string
}

// Options configure the API.
type Options struct {
	Users  *users.Service
	Admins []Admin
	// TenantUUID is the master tenant (admins' tokens, users an admin makes
	// without Wazo-Tenant).
	TenantUUID string
	// StackUUID is reported as xivo_uuid.
	StackUUID string
	// TokenExpiration is a token's lifetime when the login names none;
	// MaxTokenExpiration caps what a login may ask for.
	TokenExpiration, MaxTokenExpiration time.Duration
	Logger                              *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// API serves the wazo-auth and wazo-confd paths.
type API struct {
	o      Options
	tokens meta.UserStore
	log    *slog.Logger

	sweepMu   sync.Mutex
	lastSweep time.Time

	guard httpx.LoginGuard
}

// New returns the API.
func New(o Options) *API {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.TokenExpiration <= 0 {
		o.TokenExpiration = 2 * time.Hour
	}
	if o.MaxTokenExpiration < o.TokenExpiration {
		o.MaxTokenExpiration = o.TokenExpiration
	}
	return &API{o: o, tokens: o.Users.Store(), log: o.Logger}
}

// ServeHTTP routes the three prefixes.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, AuthPrefix):
		a.serveAuth(w, r, strings.TrimPrefix(p, AuthPrefix))
	case strings.HasPrefix(p, ConfdPrefix):
		a.serveConfd(w, r, strings.TrimPrefix(p, ConfdPrefix))
	case strings.HasPrefix(p, ConfdDirectPrefix):
		a.serveConfd(w, r, strings.TrimPrefix(p, ConfdDirectPrefix))
	default:
		confdError(w, http.StatusNotFound, "The requested URL was not found on the server.")
	}
}

// ------------------------------------------------------------ replies

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// confdError is wazo-confd's error body: a list of messages.
func confdError(w http.ResponseWriter, code int, msgs ...any) {
	writeJSON(w, code, msgs)
}

// fieldErrors is a marshmallow ValidationError as wazo-confd answers it:
// [{"field": ["message", ...]}].
type fieldErrors map[string][]string

func (f fieldErrors) add(field, msg string) { f[field] = append(f[field], msg) }

// authError is wazo-auth's error body.
func authError(w http.ResponseWriter, now time.Time, code int, reason string) {
	writeJSON(w, code, map[string]any{
		"reason":      []string{reason},
		"timestamp":   []float64{float64(now.UnixMicro()) / 1e6},
		"status_code": code,
	})
}

// notFound is xivo-dao's NotFoundError message.
func notFound(resource, key string, value any) string {
	return fmt.Sprintf("Resource Not Found - %s was not found ('%s': %s)", resource, key, pyRepr(value))
}

// exists is xivo-dao's resource_exists message.
func exists(resource string, kv ...any) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, fmt.Sprintf("'%s': %s", kv[i], pyRepr(kv[i+1])))
	}
	return fmt.Sprintf("Resource Error - %s already exists (%s)", resource, strings.Join(parts, ", "))
}

func pyRepr(v any) string {
	if s, ok := v.(string); ok {
		return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
	}
	return fmt.Sprint(v)
}

// storeError answers an unexpected store error.
func (a *API) storeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		confdError(w, http.StatusServiceUnavailable, "Unexpected error: database timeout")
		return
	}
	a.log.Error("confd: database error", "method", r.Method, "path", r.URL.Path, "err", err)
	confdError(w, http.StatusInternalServerError, "Unexpected error: database error")
}

// methodNotAllowed answers 405 with the allowed methods.
func methodNotAllowed(w http.ResponseWriter, allow ...string) {
	w.Header().Set("Allow", strings.Join(allow, ", "))
	confdError(w, http.StatusMethodNotAllowed, "The method is not allowed for the requested URL.")
}
