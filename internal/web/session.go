package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"sync"
	"time"
)

// cookieName is the session cookie.
const cookieName = "tapedeck_session"

// session is one signed-in viewer. Sessions live in memory: a restart
// signs everyone out, which is the safe failure.
type session struct {
	id         string
	user       string // the name shown (account name or admin login)
	accountSid string // whose recordings the viewer sees
	csrf       string // the token every change must carry
	// live: may see and control the live calls, which belong to no
	// account (a Wazo admin, or a holder of the default account, which
	// calls' recordings go to).
	live    bool
	expires time.Time
}

// sessions is the in-memory session table.
type sessions struct {
	mu  sync.Mutex
	m   map[string]*session
	ttl time.Duration
	now func() time.Time
}

func newToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("web: crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b)
}

func (s *sessions) create(user, accountSid string, live bool) *session {
	se := &session{id: newToken(), user: user, accountSid: accountSid, live: live, csrf: newToken(), expires: s.now().Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, o := range s.m { // forget expired sessions as new ones come
		if !s.now().Before(o.expires) {
			delete(s.m, id)
		}
	}
	s.m[se.id] = se
	return se
}

// get returns the request's live session, or nil.
func (s *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.m[c.Value]
	if se == nil {
		return nil
	}
	if !s.now().Before(se.expires) {
		delete(s.m, c.Value)
		return nil
	}
	return se
}

func (s *sessions) drop(id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

// validCSRF checks the token of a change (form field "csrf" or header
// X-CSRF-Token) in constant time.
func (se *session) validCSRF(r *http.Request) bool {
	tok := r.Header.Get("X-CSRF-Token")
	if tok == "" {
		tok = r.PostFormValue("csrf")
	}
	return tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(se.csrf)) == 1
}
