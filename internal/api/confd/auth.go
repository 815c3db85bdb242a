package confd

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tapedeck/tapedeck/internal/httpx"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/users"
)

// ACLs written into tokens (wazo-auth's access lists, informative: the
// API enforces admin vs own-user access itself).
var (
	adminACL = []string{"confd.#", "auth.#"}
	userACL  = func(uuid string) []string {
		return []string{"confd.users.me.#", "confd.users." + uuid + ".read", "confd.users." + uuid + ".update", "auth.tokens.#"}
	}
)

// maxTokenBody bounds the login request body.
const maxTokenBody = 64 << 10

// hashToken is how tokens are kept: hex SHA-256.
func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// session is an authenticated request's token.
type session struct {
	tok   meta.Token
	admin bool
}

// serveAuth serves /api/auth/0.1/{rest}.
func (a *API) serveAuth(w http.ResponseWriter, r *http.Request, rest string) {
	switch {
	case rest == "token":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			authError(w, a.o.Now(), http.StatusMethodNotAllowed, "Method Not Allowed")
			return
		}
		a.postToken(w, r)
	case strings.HasPrefix(rest, "token/") && !strings.Contains(rest[len("token/"):], "/"):
		a.tokenItem(w, r, rest[len("token/"):])
	default:
		authError(w, a.o.Now(), http.StatusNotFound, "Not Found")
	}
}

func (a *API) postToken(w http.ResponseWriter, r *http.Request) {
	now := a.o.Now()
	var body struct {
		Backend    *string          `json:"backend"`
		Expiration *json.RawMessage `json:"expiration"`
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxTokenBody+1))
	if err != nil || len(data) > maxTokenBody {
		authError(w, now, http.StatusBadRequest, "request body unreadable or too large")
		return
	}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &body); err != nil {
			authError(w, now, http.StatusBadRequest, "{'_schema': ['Invalid input type.']}")
			return
		}
	}
	life := a.o.TokenExpiration
	if body.Expiration != nil {
		var secs int64
		if err := json.Unmarshal(*body.Expiration, &secs); err != nil || secs < 1 {
			authError(w, now, http.StatusBadRequest, "{'expiration': ['Not a valid integer.']}")
			return
		}
		life = min(time.Duration(min(secs, int64(a.o.MaxTokenExpiration/time.Second)))*time.Second, a.o.MaxTokenExpiration)
	}
	if body.Backend != nil && *body.Backend != "wazo_user" {
		authError(w, now, http.StatusUnauthorized, "Authentication Failed")
		return
	}
	ip := httpx.SourceIP(r)
	if wait, ok := a.guard.Blocked(ip, now); ok {
		loginsTotal.WithLabelValues("throttled").Inc()
		throttled(w, now, wait)
		return
	}
	login, password, ok := r.BasicAuth()
	if !ok || login == "" {
		a.log.Info("wazo-auth: failed login: no Basic credentials", "remote", r.RemoteAddr)
		loginsTotal.WithLabelValues("failed").Inc()
		a.guard.Fail(ip, now)
		authError(w, now, http.StatusUnauthorized, "Authentication Failed")
		return
	}
	tok := meta.Token{IssuedAt: now.UTC(), ExpiresAt: now.Add(life).UTC()}
	var acl []string
	if a.isAdmin(login, password) {
		tok.AuthID, tok.Admin, tok.TenantUUID = adminUUID(a.o.StackUUID, login), true, a.o.TenantUUID
		acl = adminACL
	} else {
		u, err := a.o.Users.Authenticate(r.Context(), login, password)
		if errors.Is(err, users.ErrBadPassword) {
			a.log.Warn("wazo-auth: failed login", "login", login, "remote", r.RemoteAddr)
			loginsTotal.WithLabelValues("failed").Inc()
			a.guard.Fail(ip, now)
			authError(w, now, http.StatusUnauthorized, "Authentication Failed")
			return
		}
		if err != nil {
			a.storeError(w, r, err)
			return
		}
		tok.AuthID, tok.UserUUID, tok.TenantUUID = u.UUID, u.UUID, u.TenantUUID
		acl = userACL(u.UUID)
	}
	aclJSON, _ := json.Marshal(acl)
	tok.ACL = string(aclJSON)
	secret := meta.NewUUID()
	tok.Hash = hashToken(secret)
	if err := a.tokens.PutToken(r.Context(), tok); err != nil {
		a.storeError(w, r, err)
		return
	}
	a.sweep(r, now)
	loginsTotal.WithLabelValues("ok").Inc()
	a.log.Info("wazo-auth: login", "login", login, "admin", tok.Admin, "remote", r.RemoteAddr)
	w.Header().Set("Wazo-Sessions-Revoked", "0")
	writeJSON(w, http.StatusOK, map[string]any{"data": a.tokenJSON(secret, tok, r)})
}

// sweep deletes expired tokens, at most once a minute.
func (a *API) sweep(r *http.Request, now time.Time) {
	a.sweepMu.Lock()
	due := now.Sub(a.lastSweep) >= time.Minute
	if due {
		a.lastSweep = now
	}
	a.sweepMu.Unlock()
	if due {
		if _, err := a.tokens.DeleteExpiredTokens(r.Context(), now); err != nil {
			a.log.Warn("wazo-auth: deleting expired tokens", "err", err)
		}
	}
}

// isAdmin checks the configured admins in constant time per entry.
func (a *API) isAdmin(login, password string) bool {
	ok := false
	for _, ad := range a.o.Admins {
		n := subtle.ConstantTimeCompare([]byte(ad.Name), []byte(login))
		p := subtle.ConstantTimeCompare([]byte(ad.Password), []byte(password))
		if n&p == 1 {
			ok = true
		}
	}
	return ok
}

// adminUUID is a stable uuid for an admin (wazo-auth gives each login one).
func adminUUID(stack, name string) string {
	sum := sha256.Sum256([]byte("tapedeck-admin:" + stack + ":" + name))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// tokenJSON is wazo-auth's token dict (Token.to_dict).
func (a *API) tokenJSON(secret string, t meta.Token, r *http.Request) map[string]any {
	var acl []string
	_ = json.Unmarshal([]byte(t.ACL), &acl)
	if acl == nil {
		acl = []string{}
	}
	var pbxUser any
	if t.UserUUID != "" {
		pbxUser = t.UserUUID
	}
	purpose := "user"
	if t.Admin {
		purpose = "internal"
	}
	local := func(x time.Time) string { return x.Local().Format("2006-01-02T15:04:05.000000") }
	utc := func(x time.Time) string { return x.UTC().Format("2006-01-02T15:04:05.000000") }
	return map[string]any{
		"token":          secret,
		"auth_id":        t.AuthID,
		"xivo_user_uuid": pbxUser,
		"xivo_uuid":      a.o.StackUUID,
		"issued_at":      local(t.IssuedAt),
		"expires_at":     local(t.ExpiresAt),
		"utc_issued_at":  utc(t.IssuedAt),
		"utc_expires_at": utc(t.ExpiresAt),
		"acl":            acl,
		"session_uuid":   t.Hash[:8] + "-" + t.Hash[8:12] + "-4" + t.Hash[13:16] + "-8" + t.Hash[17:20] + "-" + t.Hash[20:32],
		"remote_addr":    remoteHost(r),
		"user_agent":     r.UserAgent(),
		"metadata": map[string]any{
			"uuid":          t.AuthID,
			"tenant_uuid":   t.TenantUUID,
			"auth_id":       t.AuthID,
			"pbx_user_uuid": pbxUser,
			"xivo_uuid":     a.o.StackUUID,
			"purpose":       purpose,
		},
	}
}

func remoteHost(r *http.Request) string {
	h := r.RemoteAddr
	if i := strings.LastIndexByte(h, ':'); i > 0 {
		h = strings.Trim(h[:i], "[]")
	}
	return h
}

// tokenItem serves GET/HEAD/DELETE /token/{token}.
func (a *API) tokenItem(w http.ResponseWriter, r *http.Request, secret string) {
	now := a.o.Now()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		t, err := a.lookup(r, secret)
		if err != nil {
			if errors.Is(err, meta.ErrNotFound) {
				authError(w, now, http.StatusNotFound, "No such token")
				return
			}
			a.storeError(w, r, err)
			return
		}
		if tenant := r.URL.Query().Get("tenant"); tenant != "" && !t.admin && tenant != t.tok.TenantUUID {
			authError(w, now, http.StatusForbidden, "Unauthorized tenant")
			return
		}
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": a.tokenJSON(secret, t.tok, r)})
	case http.MethodDelete:
		if err := a.tokens.DeleteToken(r.Context(), hashToken(secret)); err != nil && !errors.Is(err, meta.ErrNotFound) {
			a.storeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": map[string]string{"message": "success"}})
	default:
		w.Header().Set("Allow", "GET, HEAD, DELETE")
		authError(w, now, http.StatusMethodNotAllowed, "Method Not Allowed")
	}
}

// lookup finds a live token: meta.ErrNotFound when unknown or expired.
func (a *API) lookup(r *http.Request, secret string) (*session, error) {
	if secret == "" || len(secret) > 128 {
		return nil, meta.ErrNotFound
	}
	t, err := a.tokens.TokenByHash(r.Context(), hashToken(secret))
	if err != nil {
		return nil, err
	}
	if !a.o.Now().Before(t.ExpiresAt) {
		return nil, meta.ErrNotFound
	}
	return &session{tok: t, admin: t.Admin}, nil
}

// authenticate checks X-Auth-Token for a confd request; on failure it has
// answered 401.
func (a *API) authenticate(w http.ResponseWriter, r *http.Request) (*session, bool) {
	secret := r.Header.Get("X-Auth-Token")
	if secret == "" {
		unauthorizedTotal.Inc()
		confdError(w, http.StatusUnauthorized, "Unauthorized: X-Auth-Token is missing")
		return nil, false
	}
	s, err := a.lookup(r, secret)
	if errors.Is(err, meta.ErrNotFound) {
		unauthorizedTotal.Inc()
		confdError(w, http.StatusUnauthorized, "Unauthorized: invalid or expired token")
		return nil, false
	}
	if err != nil {
		a.storeError(w, r, err)
		return nil, false
	}
	return s, true
}

// scope is the tenants a request sees (nil: all) and the tenant it writes
// to, from its token and Wazo-Tenant: an admin sees every tenant, or the
// one Wazo-Tenant names; a user sees their own tenant, and naming another
// is refused (401, as wazo's auth verifier does).
func (a *API) scope(w http.ResponseWriter, r *http.Request, s *session) (see []string, write string, ok bool) {
	h := strings.TrimSpace(r.Header.Get("Wazo-Tenant"))
	if s.admin {
		if h == "" {
			return nil, a.o.TenantUUID, true
		}
		if !validUUID(h) {
			confdError(w, http.StatusUnauthorized, "Unauthorized: invalid tenant "+pyRepr(h))
			return nil, "", false
		}
		return []string{h}, h, true
	}
	if h != "" && h != s.tok.TenantUUID {
		confdError(w, http.StatusUnauthorized, "Unauthorized: tenant "+pyRepr(h)+" is not visible to this token")
		return nil, "", false
	}
	return []string{s.tok.TenantUUID}, s.tok.TenantUUID, true
}

func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
