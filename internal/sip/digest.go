package sip

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Credentials finds a SIP user's password (the users store).
type Credentials interface {
	// SIPPassword is the password of the SIP username; ErrUnknownUser
	// when there is no such user.
	SIPPassword(ctx context.Context, username string) (string, error)
}

// CredentialsFunc adapts a function to Credentials.
type CredentialsFunc func(ctx context.Context, username string) (string, error)

// SIPPassword implements Credentials.
func (f CredentialsFunc) SIPPassword(ctx context.Context, username string) (string, error) {
	return f(ctx, username)
}

// ErrUnknownUser: no SIP user of that name.
var ErrUnknownUser = errors.New("sip: unknown user")

// DigestOptions configure the digest authenticator.
type DigestOptions struct {
	// Realm of the challenges; default "tapedeck".
	Realm string
	// NonceTTL is how long a nonce is accepted; an older one is answered
	// with a new challenge marked stale=true. Default 5 minutes.
	NonceTTL time.Duration
	// FailureWindow and FailureThreshold: after FailureThreshold failed
	// authentications from one address within FailureWindow, its next
	// answers are delayed (doubling from 200 ms to 5 s), and after
	// 10*FailureThreshold its requests are dropped unanswered until the
	// window passes. Defaults 60 s and 5.
	FailureWindow    time.Duration
	FailureThreshold int
	// Algorithms are the challenges offered, most preferred first
	// (RFC 8760 2.4); default SHA-256, MD5.
	Algorithms []string
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Authenticator checks RFC 8760 digest credentials (SHA-256 and MD5,
// qop=auth) on requests and builds the challenges. Nonces are a time
// stamp and random bytes signed with a key of the process, so any request
// of any transport may answer any challenge until it expires; the nonce
// counts used with each are remembered until then (RFC 7616 3.4: nc must
// increase, a replayed Authorization is challenged again).
// The digest arithmetic is github.com/icholy/digest's (sipgo's client
// uses it too).
type Authenticator struct {
	opts  DigestOptions
	key   [32]byte
	creds Credentials
	log   *slog.Logger

	mu    sync.Mutex
	fails map[string]*failState // source IP -> recent failures

	ncMu    sync.Mutex
	ncs     map[string]nonceUse // username NUL nonce -> highest nc accepted
	ncSwept time.Time

	Failures atomic.Uint64 // failed authentications (wrong password, unknown user)
	Dropped  atomic.Uint64 // requests dropped for too many failures
	Replayed atomic.Uint64 // valid credentials whose nonce count did not increase
}

type nonceUse struct {
	nc      int
	expires time.Time
}

// maxNonces bounds the nonce-count table; when full of unexpired nonces,
// a new nonce's first use is challenged again (a fresh nonce) rather than
// remembered, which errs on the side of refusing a replay.
const maxNonces = 1 << 18

type failState struct {
	since time.Time
	n     int
}

// NewAuthenticator makes an authenticator over creds.
func NewAuthenticator(creds Credentials, o DigestOptions, log *slog.Logger) *Authenticator {
	if o.Realm == "" {
		o.Realm = "tapedeck"
	}
	if o.NonceTTL <= 0 {
		o.NonceTTL = 5 * time.Minute
	}
	if o.FailureWindow <= 0 {
		o.FailureWindow = time.Minute
	}
	if o.FailureThreshold <= 0 {
		o.FailureThreshold = 5
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if len(o.Algorithms) == 0 {
		o.Algorithms = []string{"SHA-256", "MD5"}
	}
	if log == nil {
		log = slog.Default()
	}
	a := &Authenticator{opts: o, creds: creds, log: log, fails: map[string]*failState{}, ncs: map[string]nonceUse{}}
	if _, err := rand.Read(a.key[:]); err != nil {
		panic("sip: no randomness for nonces: " + err.Error())
	}
	return a
}

// Realm is the realm of the challenges.
func (a *Authenticator) Realm() string { return a.opts.Realm }

// nonce makes a signed nonce: base64url(time || random || mac).
func (a *Authenticator) nonce() string {
	var b [8 + 8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(a.opts.Now().UnixNano()))
	_, _ = rand.Read(b[8:16])
	copy(b[16:], a.mac(b[:16]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (a *Authenticator) mac(b []byte) []byte {
	m := hmac.New(sha256.New, a.key[:])
	m.Write(b)
	m.Write([]byte(a.opts.Realm))
	return m.Sum(nil)[:16]
}

// checkNonce reports whether the nonce is ours and whether it expired.
func (a *Authenticator) checkNonce(n string) (ours, stale bool, issued time.Time) {
	b, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || len(b) != 32 || !hmac.Equal(b[16:], a.mac(b[:16])) {
		return false, false, time.Time{}
	}
	issued = time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	age := a.opts.Now().Sub(issued)
	return true, age > a.opts.NonceTTL || age < -time.Minute, issued
}

// useNonce records nc for the user's nonce and reports whether it is
// higher than every count accepted with that nonce before (per user, so
// that clients answering one challenge each count their own requests; a
// replay is of the same user's credentials). Without qop there is no
// count: the nonce is good for one request.
func (a *Authenticator) useNonce(user, nonce string, nc int, issued time.Time) bool {
	key := user + "\x00" + nonce
	now := a.opts.Now()
	a.ncMu.Lock()
	defer a.ncMu.Unlock()
	if now.Sub(a.ncSwept) > 30*time.Second || len(a.ncs) >= maxNonces {
		a.ncSwept = now
		for k, u := range a.ncs {
			if now.After(u.expires) {
				delete(a.ncs, k)
			}
		}
	}
	u, seen := a.ncs[key]
	if seen && nc <= u.nc {
		return false
	}
	if !seen && len(a.ncs) >= maxNonces {
		return false
	}
	// Remembered while the nonce is accepted (checkNonce's TTL).
	a.ncs[key] = nonceUse{nc: nc, expires: issued.Add(a.opts.NonceTTL + time.Second)}
	return true
}

// challenges are the WWW-Authenticate values: SHA-256 first, then MD5
// (RFC 8760 2.4: in order of preference).
func (a *Authenticator) challenges(stale bool) []string {
	n := a.nonce()
	out := make([]string, 0, 2)
	for _, alg := range a.opts.Algorithms {
		c := digest.Challenge{Realm: a.opts.Realm, Nonce: n, Algorithm: alg, QOP: []string{"auth"}, Stale: stale}
		out = append(out, c.String())
	}
	return out
}

// AuthResult is what Check concluded.
type AuthResult int

// Results of Check.
const (
	AuthOK        AuthResult = iota
	AuthChallenge            // 401 with challenges sent
	AuthForbidden            // 403 sent: wrong password or unknown user
	AuthDropped              // too many failures from the source: nothing sent
)

// Check authenticates req. With AuthOK it returns the authenticated
// username; otherwise it has answered the request (401, 403) or dropped
// it, and the caller stops. user, when not empty, is the only username
// the request may authenticate as (a REGISTER's To user).
func (a *Authenticator) Check(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, user string) (string, AuthResult) {
	src := sourceIP(req.Source())
	delay, drop := a.penalty(src)
	if drop {
		a.Dropped.Add(1)
		return "", AuthDropped
	}
	h := req.GetHeader("Authorization")
	if h == nil {
		a.respond(req, tx, 401, "Unauthorized", a.challenges(false), 0)
		return "", AuthChallenge
	}
	cred, err := digest.ParseCredentials(h.Value())
	if err != nil || cred.Realm != a.opts.Realm {
		a.respond(req, tx, 401, "Unauthorized", a.challenges(false), delay)
		return "", AuthChallenge
	}
	ours, stale, issued := a.checkNonce(cred.Nonce)
	if ours && stale {
		a.respond(req, tx, 401, "Unauthorized", a.challenges(true), delay)
		return "", AuthChallenge
	}
	alg := strings.ToUpper(cred.Algorithm)
	if alg == "" {
		alg = "MD5"
	}
	if !slices.Contains(a.opts.Algorithms, alg) || cred.QOP != "" && cred.QOP != "auth" || cred.Userhash {
		a.respond(req, tx, 401, "Unauthorized", a.challenges(false), delay)
		return "", AuthChallenge
	}
	ok := false
	if user == "" || cred.Username == user {
		if pw, err := a.creds.SIPPassword(ctx, cred.Username); err == nil {
			ok = verify(cred, string(req.Method), pw)
		} else if !errors.Is(err, ErrUnknownUser) {
			a.log.Error("sip: credentials lookup failed", "err", err)
			_ = tx.Respond(sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil))
			return "", AuthForbidden
		}
	}
	if !ours {
		// Another node's nonce (each node signs with its own key; a
		// dispatcher may send a phone's next REGISTER elsewhere) or a
		// made-up one. Right credentials: a fresh nonce marked stale, so
		// the phone answers it without asking its user. Wrong ones are
		// failures like a wrong password (no guessing without the
		// throttle), answered with a plain challenge.
		if ok {
			a.respond(req, tx, 401, "Unauthorized", a.challenges(true), delay)
			return "", AuthChallenge
		}
		a.Failures.Add(1)
		n := a.fail(src)
		a.log.Warn("sip: authentication failed (unknown nonce)", "method", req.Method, "username", cred.Username, "source", req.Source(), "failures_from_source", n)
		a.respond(req, tx, 401, "Unauthorized", a.challenges(false), delay)
		return "", AuthChallenge
	}
	if !ok {
		a.Failures.Add(1)
		n := a.fail(src)
		a.log.Warn("sip: authentication failed", "method", req.Method, "username", cred.Username, "source", req.Source(), "failures_from_source", n)
		a.respond(req, tx, 403, "Forbidden", nil, delay)
		return "", AuthForbidden
	}
	if !a.useNonce(cred.Username, cred.Nonce, cred.Nc, issued) {
		// A replay, or a client reusing a count: a fresh nonce, marked
		// stale (the credentials were right) so a phone answers it
		// without asking its user.
		a.Replayed.Add(1)
		a.log.Warn("sip: nonce count did not increase (replayed Authorization?)", "method", req.Method,
			"username", cred.Username, "nc", cred.Nc, "source", req.Source())
		a.respond(req, tx, 401, "Unauthorized", a.challenges(true), 0)
		return "", AuthChallenge
	}
	return cred.Username, AuthOK
}

// verify recomputes the response with the stored password.
func verify(cred *digest.Credentials, method, password string) bool {
	chal := &digest.Challenge{Realm: cred.Realm, Nonce: cred.Nonce, Algorithm: cred.Algorithm, Opaque: cred.Opaque}
	if cred.QOP != "" {
		chal.QOP = []string{cred.QOP}
		if cred.Nc <= 0 || cred.Cnonce == "" {
			return false
		}
	}
	want, err := digest.Digest(chal, digest.Options{Method: method, URI: cred.URI, Username: cred.Username,
		Password: password, Cnonce: cred.Cnonce, Count: cred.Nc})
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(want.Response), []byte(strings.ToLower(cred.Response))) == 1
}

// respond answers now, or after delay without holding a goroutine.
func (a *Authenticator) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string, chals []string, delay time.Duration) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, c := range chals {
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", c))
	}
	if delay <= 0 {
		_ = tx.Respond(res)
		return
	}
	time.AfterFunc(delay, func() { _ = tx.Respond(res) })
}

// penalty is the delay of the next answer to src, or drop when src failed
// too often.
func (a *Authenticator) penalty(src string) (time.Duration, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.fails[src]
	if f == nil {
		return 0, false
	}
	if a.opts.Now().Sub(f.since) > a.opts.FailureWindow {
		delete(a.fails, src)
		return 0, false
	}
	over := f.n - a.opts.FailureThreshold
	if over < 0 {
		return 0, false
	}
	if f.n >= 10*a.opts.FailureThreshold {
		return 0, true
	}
	d := 200 * time.Millisecond << min(over, 5)
	return min(d, 5*time.Second), false
}

// maxFailSources bounds the failure table: past it, the oldest window is
// forgotten first (a spoofed-source flood cannot grow it without bound).
const maxFailSources = 65536

func (a *Authenticator) fail(src string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.opts.Now()
	f := a.fails[src]
	if f == nil || now.Sub(f.since) > a.opts.FailureWindow {
		if len(a.fails) >= maxFailSources {
			for k, v := range a.fails {
				if now.Sub(v.since) > a.opts.FailureWindow || len(a.fails) >= maxFailSources {
					delete(a.fails, k)
				}
				if len(a.fails) < maxFailSources/2 {
					break
				}
			}
		}
		f = &failState{since: now}
		a.fails[src] = f
	}
	f.n++
	return f.n
}

// sourceIP is the host of host:port.
func sourceIP(hp string) string {
	if i := strings.LastIndexByte(hp, ':'); i > 0 && !strings.HasSuffix(hp, "]") {
		return strings.Trim(hp[:i], "[]")
	}
	return hp
}
