package sip

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/tapedeck/tapedeck/internal/testutil"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var testUsers = CredentialsFunc(func(_ context.Context, u string) (string, error) {
	switch u {
	case "1001":
		return "secret1001", nil
	case "1002":
		return "secret1002", nil
	}
	return "", ErrUnknownUser
})

type regEnv struct {
	t      *testing.T
	e      *Endpoint
	r      *Registrar
	clock  *testClock
	client *sipgo.Client
	logs   *testutil.SyncBuffer
}

func startRegistrar(t *testing.T, ro RegistrarOptions, do DigestOptions) *regEnv {
	t.Helper()
	return startRegistrarOn(t, ro, do, nil)
}

// startRegistrarOn is startRegistrar with a location store.
func startRegistrarOn(t *testing.T, ro RegistrarOptions, do DigestOptions, store LocationStore) *regEnv {
	t.Helper()
	clock := &testClock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	logs := &testutil.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	e, err := New(Options{Listen: "127.0.0.1:0", Transports: []string{"udp", "tcp"}, Logger: log}, panicky{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	do.Now, ro.Now = clock.Now, clock.Now
	r := NewRegistrar(NewAuthenticator(testUsers, do, log), store, ro, log)
	t.Cleanup(r.Close)
	e.SetRegistrar(r)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("regtest"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	return &regEnv{t: t, e: e, r: r, clock: clock, client: c, logs: logs}
}

// register builds a REGISTER for user with the given Contact values and
// Expires header ("" none).
func (env *regEnv) register(user string, expires string, contacts ...string) *sip.Request {
	var to sip.Uri
	if err := sip.ParseUri(fmt.Sprintf("sip:%s@%s", user, env.e.Addr()), &to); err != nil {
		env.t.Fatal(err)
	}
	recip := sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: env.e.Port()}
	req := sip.NewRequest(sip.REGISTER, recip)
	req.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	from := &sip.FromHeader{Address: to, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	for _, c := range contacts {
		req.AppendHeader(sip.NewHeader("Contact", c))
	}
	if expires != "" {
		req.AppendHeader(sip.NewHeader("Expires", expires))
	}
	return req
}

func (env *regEnv) do(req *sip.Request) *sip.Response {
	env.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := env.client.Do(ctx, req)
	if err != nil {
		env.t.Fatalf("%s: %v", req.Method, err)
	}
	return res
}

// auth sends req, answers the challenge as user/password with sipgo's
// digest client (the first, SHA-256, challenge) and returns the final
// response.
func (env *regEnv) auth(req *sip.Request, user, password string) *sip.Response {
	env.t.Helper()
	res := env.do(req)
	if res.StatusCode != 401 {
		return res
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := env.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: password})
	if err != nil {
		env.t.Fatalf("digest: %v", err)
	}
	return res
}

func contactsOf(res *sip.Response) []string {
	var out []string
	for _, h := range res.GetHeaders("Contact") {
		out = append(out, h.Value())
	}
	return out
}

// TestRegisterDigest: a REGISTER without credentials is challenged with
// SHA-256 then MD5 (RFC 8760), qop=auth; either algorithm's answer
// registers the contact; the 200 lists it with its expiry.
func TestRegisterDigest(t *testing.T) {
	env := startRegistrar(t, RegistrarOptions{}, DigestOptions{Realm: "td"})
	res := env.do(env.register("1001", "600", "<sip:1001@127.0.0.1:5071>"))
	if res.StatusCode != 401 {
		t.Fatalf("no credentials: %d, want 401", res.StatusCode)
	}
	chals := res.GetHeaders("WWW-Authenticate")
	if len(chals) != 2 {
		t.Fatalf("%d challenges, want 2 (SHA-256, MD5)", len(chals))
	}
	var parsed []*digest.Challenge
	for i, want := range []string{"SHA-256", "MD5"} {
		c, err := digest.ParseChallenge(chals[i].Value())
		if err != nil {
			t.Fatal(err)
		}
		if c.Algorithm != want || !c.SupportsQOP("auth") || c.Realm != "td" || c.Stale {
			t.Fatalf("challenge %d = %+v, want %s qop=auth realm td", i, c, want)
		}
		parsed = append(parsed, c)
	}

	// SHA-256 through sipgo's client.
	res = env.auth(env.register("1001", "600", "<sip:1001@127.0.0.1:5071>"), "1001", "secret1001")
	if res.StatusCode != 200 {
		t.Fatalf("SHA-256 answer: %d %s, want 200", res.StatusCode, res.Reason)
	}
	if got := contactsOf(res); len(got) != 1 || !strings.Contains(got[0], "5071") || !strings.Contains(got[0], "expires=600") {
		t.Fatalf("200 contacts %q, want the one registered with expires=600", got)
	}
	if cs := env.r.Contacts("1001"); len(cs) != 1 || cs[0].Contact != "sip:1001@127.0.0.1:5071" {
		t.Fatalf("location %v", cs)
	}

	// MD5: answer the second challenge by hand.
	req := env.register("1001", "600", "<sip:1001@127.0.0.1:5072>")
	cred, err := digest.Digest(parsed[1], digest.Options{Method: "REGISTER", URI: req.Recipient.String(), Username: "1001", Password: "secret1001"})
	if err != nil {
		t.Fatal(err)
	}
	req.AppendHeader(sip.NewHeader("Authorization", cred.String()))
	if res := env.do(req); res.StatusCode != 200 || len(contactsOf(res)) != 2 {
		t.Fatalf("MD5 answer: %d, contacts %q; want 200 with both contacts", res.StatusCode, contactsOf(res))
	}
	if n := len(env.r.Contacts("1001")); n != 2 {
		t.Fatalf("%d contacts, want 2 (several contacts per user)", n)
	}
}

// TestRegisterWrongPassword: wrong credentials get 403, are counted and
// logged with the source; a burst of them from one address is slowed
// down and then dropped.
func TestRegisterWrongPassword(t *testing.T) {
	env := startRegistrar(t, RegistrarOptions{}, DigestOptions{FailureThreshold: 2})
	res := env.auth(env.register("1001", "600", "<sip:1001@127.0.0.1:5071>"), "1001", "nope")
	if res.StatusCode != 403 {
		t.Fatalf("wrong password: %d, want 403", res.StatusCode)
	}
	if res := env.auth(env.register("9999", "600", "<sip:9999@127.0.0.1:5071>"), "9999", "x"); res.StatusCode != 403 {
		t.Fatalf("unknown user: %d, want 403 like a wrong password", res.StatusCode)
	}
	// Authenticating as another user than the AOR's is refused too.
	if res := env.auth(env.register("1001", "600", "<sip:1001@127.0.0.1:5071>"), "1002", "secret1002"); res.StatusCode != 403 {
		t.Fatalf("1002's credentials for 1001: %d, want 403", res.StatusCode)
	}
	if n := env.r.Auth().Failures.Load(); n != 3 {
		t.Fatalf("%d failures counted, want 3", n)
	}
	if l := env.logs.String(); !strings.Contains(l, "authentication failed") || !strings.Contains(l, "source=127.0.0.1:") {
		t.Fatalf("failure not logged with its source:\n%s", l)
	}
	if len(env.r.Contacts("1001")) != 0 {
		t.Fatal("a failed REGISTER bound a contact")
	}
	// Past the threshold the answers are delayed.
	start := time.Now()
	if res := env.auth(env.register("1001", "600", "<sip:1001@127.0.0.1:5071>"), "1001", "nope"); res.StatusCode != 403 {
		t.Fatalf("%d", res.StatusCode)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("4th failure answered in %v: not slowed down", d)
	}
	// Past 10x the threshold, nothing is answered.
	for env.r.Auth().Failures.Load() < 20 {
		env.r.Auth().fail("127.0.0.1")
		env.r.Auth().Failures.Add(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if res, err := env.client.Do(ctx, env.register("1001", "600", "<sip:1001@127.0.0.1:5071>")); err == nil {
		t.Fatalf("a source past the failure limit got %d, want no answer", res.StatusCode)
	}
	if env.r.Auth().Dropped.Load() == 0 {
		t.Fatal("drop not counted")
	}
	// The window passes: answered again.
	env.clock.Add(2 * time.Minute)
	if res := env.auth(env.register("1001", "600", "<sip:1001@127.0.0.1:5071>"), "1001", "secret1001"); res.StatusCode != 200 {
		t.Fatalf("after the window: %d, want 200", res.StatusCode)
	}
}

// TestRegisterStaleNonce: an expired nonce is answered with a new
// challenge marked stale=true, and the phone's retry with it succeeds.
func TestRegisterStaleNonce(t *testing.T) {
	env := startRegistrar(t, RegistrarOptions{}, DigestOptions{NonceTTL: time.Minute})
	res := env.do(env.register("1001", "600", "<sip:1001@127.0.0.1:5071>"))
	chal, _ := digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
	env.clock.Add(2 * time.Minute)
	req := env.register("1001", "600", "<sip:1001@127.0.0.1:5071>")
	cred, _ := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: req.Recipient.String(), Username: "1001", Password: "secret1001"})
	req.AppendHeader(sip.NewHeader("Authorization", cred.String()))
	res = env.do(req)
	if res.StatusCode != 401 {
		t.Fatalf("expired nonce: %d, want 401", res.StatusCode)
	}
	c, _ := digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
	if !c.Stale {
		t.Fatalf("challenge after an expired nonce lacks stale=true: %s", res.GetHeader("WWW-Authenticate").Value())
	}
	if res := env.auth(env.register("1001", "600", "<sip:1001@127.0.0.1:5071>"), "1001", "secret1001"); res.StatusCode != 200 {
		t.Fatalf("with a fresh nonce: %d", res.StatusCode)
	}
	// A nonce not made here (another node's, or made up): with the right
	// password it is stale (the phone answers the fresh one silently);
	// with a wrong one it is a counted failure and not stale.
	for _, tc := range []struct {
		password string
		stale    bool
		failures uint64
	}{{"secret1001", true, 0}, {"guess", false, 1}} {
		req = env.register("1001", "600", "<sip:1001@127.0.0.1:5071>")
		chal.Nonce = "forged"
		cred, _ = digest.Digest(chal, digest.Options{Method: "REGISTER", URI: req.Recipient.String(), Username: "1001", Password: tc.password})
		req.AppendHeader(sip.NewHeader("Authorization", cred.String()))
		res = env.do(req)
		c, _ = digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
		if res.StatusCode != 401 || c.Stale != tc.stale || env.r.auth.Failures.Load() != tc.failures {
			t.Fatalf("unknown nonce, password %q: %d stale=%v failures=%d, want 401 stale=%v failures=%d",
				tc.password, res.StatusCode, c.Stale, env.r.auth.Failures.Load(), tc.stale, tc.failures)
		}
	}
}

// TestRegisterExpiry: Expires header and contact parameter, 423 below the
// minimum, clamping at the maximum, expiry over time, Expires: 0 and *.
func TestRegisterExpiry(t *testing.T) {
	env := startRegistrar(t, RegistrarOptions{MinExpires: 60 * time.Second, MaxExpires: 1800 * time.Second, MaxContacts: 3}, DigestOptions{})
	reg := func(expires string, contacts ...string) *sip.Response {
		return env.auth(env.register("1001", expires, contacts...), "1001", "secret1001")
	}
	res := reg("10", "<sip:1001@127.0.0.1:5071>")
	if res.StatusCode != 423 || res.GetHeader("Min-Expires") == nil || res.GetHeader("Min-Expires").Value() != "60" {
		t.Fatalf("Expires 10: %d, want 423 with Min-Expires: 60", res.StatusCode)
	}
	res = reg("7200", "<sip:1001@127.0.0.1:5071>", "<sip:1001@127.0.0.1:5072>;expires=120")
	if res.StatusCode != 200 {
		t.Fatalf("%d", res.StatusCode)
	}
	got := strings.Join(contactsOf(res), " ")
	if !strings.Contains(got, "5071>;expires=1800") || !strings.Contains(got, "5072>;expires=120") {
		t.Fatalf("granted %s, want 1800 (clamped) and 120 (contact param)", got)
	}
	env.clock.Add(121 * time.Second)
	if cs := env.r.Contacts("1001"); len(cs) != 1 || !strings.Contains(cs[0].Contact, "5071") {
		t.Fatalf("after 121 s: %v, want only the 1800 s contact", cs)
	}
	// Too many contacts in one request, or in total.
	if res := reg("600", "<sip:a@h:1>", "<sip:b@h:2>", "<sip:c@h:3>", "<sip:d@h:4>"); res.StatusCode != 403 {
		t.Fatalf("4 contacts (max 3): %d, want 403", res.StatusCode)
	}
	if res := reg("600", "<sip:a@h:1>", "<sip:b@h:2>", "<sip:c@h:3>"); res.StatusCode != 403 {
		t.Fatalf("3 more contacts on top of 1: %d, want 403", res.StatusCode)
	}
	// Unregister one.
	if res := reg("0", "<sip:1001@127.0.0.1:5071>"); res.StatusCode != 200 || len(env.r.Contacts("1001")) != 0 {
		t.Fatalf("Expires 0: %d, %v left", res.StatusCode, env.r.Contacts("1001"))
	}
	// * removes all; without Expires: 0 it is a bad request.
	reg("600", "<sip:1001@127.0.0.1:5071>", "<sip:1001@127.0.0.1:5073>")
	if res := reg("600", "*"); res.StatusCode != 400 {
		t.Fatalf("* with Expires 600: %d, want 400", res.StatusCode)
	}
	if res := reg("0", "*"); res.StatusCode != 200 || len(env.r.Contacts("1001")) != 0 {
		t.Fatalf("*: %d, %v left", res.StatusCode, env.r.Contacts("1001"))
	}
	// A REGISTER without Contact is a query: the bindings are listed.
	reg("600", "<sip:1001@127.0.0.1:5071>")
	if res := reg(""); res.StatusCode != 200 || len(contactsOf(res)) != 1 {
		t.Fatalf("query: %d %v", res.StatusCode, contactsOf(res))
	}
}

// TestRegisterFlood: REGISTERs past the per-source rate are dropped and
// counted.
func TestRegisterFlood(t *testing.T) {
	env := startRegistrar(t, RegistrarOptions{RatePerSource: 0.001, BurstPerSource: 3}, DigestOptions{})
	for i := 0; i < 3; i++ {
		if res := env.do(env.register("1001", "600", "<sip:1001@127.0.0.1:5071>")); res.StatusCode != 401 {
			t.Fatalf("%d", res.StatusCode)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if res, err := env.client.Do(ctx, env.register("1001", "600", "<sip:1001@127.0.0.1:5071>")); err == nil {
		t.Fatalf("4th REGISTER past the burst answered %d", res.StatusCode)
	}
	if env.r.Flooded.Load() != 1 {
		t.Fatalf("flooded = %d, want 1", env.r.Flooded.Load())
	}
}

// TestRegisterNonceReplay: a nonce's count must increase (RFC 7616 3.4,
// RFC 8760): a captured Authorization sent again, here to bind another
// contact, is answered 401 with a fresh nonce (stale=true: the password
// was right) and binds nothing; a count below or equal to one already
// used is refused the same way, a higher one is accepted. Without qop a
// nonce is good for one request.
func TestRegisterNonceReplay(t *testing.T) {
	env := startRegistrar(t, RegistrarOptions{}, DigestOptions{})
	res := env.do(env.register("1001", "600", "<sip:1001@127.0.0.1:5071>"))
	chal, err := digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
	if err != nil {
		t.Fatal(err)
	}
	send := func(contact string, nc int, qop bool) (*sip.Response, *digest.Challenge) {
		t.Helper()
		req := env.register("1001", "600", "<"+contact+">")
		ch := *chal
		if !qop {
			ch.QOP = nil
		}
		cred, err := digest.Digest(&ch, digest.Options{Method: "REGISTER", URI: req.Recipient.String(), Username: "1001",
			Password: "secret1001", Cnonce: "0a4f113b", Count: nc})
		if err != nil {
			t.Fatal(err)
		}
		req.AppendHeader(sip.NewHeader("Authorization", cred.String()))
		res := env.do(req)
		var c *digest.Challenge
		if h := res.GetHeader("WWW-Authenticate"); h != nil {
			c, _ = digest.ParseChallenge(h.Value())
		}
		return res, c
	}
	const x, y = "sip:1001@127.0.0.1:5071", "sip:1001@127.0.0.1:5072"
	if res, _ := send(x, 1, true); res.StatusCode != 200 {
		t.Fatalf("nc=1: %d", res.StatusCode)
	}
	for _, nc := range []int{1, 0} {
		res, c := send(y, nc, true)
		if res.StatusCode != 401 || c == nil || !c.Stale || c.Nonce == chal.Nonce {
			t.Fatalf("nc=%d after nc=1: %d %+v, want 401 with a fresh nonce, stale=true", nc, res.StatusCode, c)
		}
	}
	if cs := env.r.Contacts("1001"); len(cs) != 1 || cs[0].Contact != x {
		t.Fatalf("after the replays: %v, want x only", cs)
	}
	if n := env.r.auth.Replayed.Load(); n != 2 {
		t.Fatalf("replays counted: %d, want 2", n)
	}
	if n := env.r.auth.Failures.Load(); n != 0 {
		t.Fatalf("replays counted as wrong passwords: %d", n)
	}
	if res, _ := send(y, 3, true); res.StatusCode != 200 {
		t.Fatalf("nc=3: %d, want 200 (counts may skip)", res.StatusCode)
	}
	if res, _ := send(y, 2, true); res.StatusCode != 401 {
		t.Fatalf("nc=2 after nc=3: %d, want 401", res.StatusCode)
	}

	// No qop: one request per nonce.
	res = env.do(env.register("1001", "600", "<sip:1001@127.0.0.1:5071>"))
	chal, _ = digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
	if res, _ := send(x, 0, false); res.StatusCode != 200 {
		t.Fatalf("no qop, first use: %d", res.StatusCode)
	}
	if res, c := send(x, 0, false); res.StatusCode != 401 || c == nil || !c.Stale {
		t.Fatalf("no qop, second use: %d, want 401 stale", res.StatusCode)
	}
}
