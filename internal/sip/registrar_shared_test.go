package sip

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// TestRegistrarsShareLocations: two registrars (two nodes) on one catalog
// database see each other's phones, and neither's writes remove the
// contacts the other took: a phone bound through A is called through B, a
// refresh through A keeps the phone bound through B, an unregister through
// B of a contact A took removes it for A too, and Contact: * through A
// clears the user everywhere.
func TestRegistrarsShareLocations(t *testing.T) {
	st, err := meta.OpenSQLite(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	loc := metaLocations{st.(meta.Registrations)}
	a := startRegistrarOn(t, RegistrarOptions{}, DigestOptions{}, loc)
	b := startRegistrarOn(t, RegistrarOptions{}, DigestOptions{}, loc)
	const x, y = "sip:1001@127.0.0.1:5071", "sip:1001@127.0.0.1:5072"
	contacts := func(env *regEnv) []string {
		var out []string
		for _, c := range env.r.Contacts("1001") {
			out = append(out, c.Contact)
		}
		slices.Sort(out)
		return out
	}
	reg := func(env *regEnv, expires string, contact string) {
		t.Helper()
		if res := env.auth(env.register("1001", expires, "<"+contact+">"), "1001", "secret1001"); res.StatusCode != 200 {
			t.Fatalf("REGISTER %s %s: %d %s", contact, expires, res.StatusCode, res.Reason)
		}
	}

	reg(a, "600", x)
	if got := contacts(a); !slices.Equal(got, []string{x}) {
		t.Fatalf("A before its write: %v, want its own binding at once", got)
	}
	a.r.Flush()
	if got := contacts(b); !slices.Equal(got, []string{x}) {
		t.Fatalf("B: %v, want the phone bound through A", got)
	}
	reg(b, "600", y)
	b.r.Flush()
	if got := contacts(a); !slices.Equal(got, []string{x, y}) {
		t.Fatalf("A: %v, want both phones", got)
	}
	// A's refresh of x writes x only: y (B's) stays.
	reg(a, "600", x)
	a.r.Flush()
	if got := contacts(b); !slices.Equal(got, []string{x, y}) {
		t.Fatalf("B after A's refresh: %v, want both phones", got)
	}
	// B unbinds x, which it never held.
	reg(b, "0", x)
	b.r.Flush()
	if got := contacts(a); !slices.Equal(got, []string{y}) {
		t.Fatalf("A after B unbound x: %v, want y only", got)
	}
	if on := a.r.Online(t.Context()); !on["1001"] || len(on) != 1 {
		t.Fatalf("A's online users %v", on)
	}
	// Contact: * through A clears B's binding too.
	req := a.register("1001", "0", "*")
	if res := a.auth(req, "1001", "secret1001"); res.StatusCode != 200 {
		t.Fatalf("Contact *: %d %s", res.StatusCode, res.Reason)
	}
	a.r.Flush()
	if got := contacts(b); len(got) != 0 {
		t.Fatalf("B after Contact * through A: %v", got)
	}
	if on := b.r.Online(t.Context()); len(on) != 0 {
		t.Fatalf("B's online users %v", on)
	}
}

// TestRegisterNonceOfAnotherNode: a dispatcher may send a phone's
// REGISTER answering node A's challenge to node B. B cannot check A's
// nonce (each node signs its own) but the credentials are right, so B
// answers 401 with its own nonce marked stale=true, which a phone answers
// without asking its user; that answer registers with B.
func TestRegisterNonceOfAnotherNode(t *testing.T) {
	a := startRegistrar(t, RegistrarOptions{}, DigestOptions{})
	b := startRegistrar(t, RegistrarOptions{}, DigestOptions{})
	res := a.do(a.register("1001", "600", "<sip:1001@127.0.0.1:5071>"))
	chal, err := digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
	if err != nil {
		t.Fatal(err)
	}
	req := b.register("1001", "600", "<sip:1001@127.0.0.1:5071>")
	cred, _ := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: req.Recipient.String(), Username: "1001",
		Password: "secret1001", Cnonce: "c", Count: 1})
	req.AppendHeader(sip.NewHeader("Authorization", cred.String()))
	res = b.do(req)
	if res.StatusCode != 401 {
		t.Fatalf("A's nonce at B: %d, want 401", res.StatusCode)
	}
	fresh, err := digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
	if err != nil || !fresh.Stale || fresh.Nonce == chal.Nonce {
		t.Fatalf("B's challenge %+v (%v), want a fresh nonce with stale=true", fresh, err)
	}
	if n := b.r.auth.Failures.Load(); n != 0 {
		t.Fatalf("right credentials counted as %d failures", n)
	}
	req = b.register("1001", "600", "<sip:1001@127.0.0.1:5071>")
	cred, _ = digest.Digest(fresh, digest.Options{Method: "REGISTER", URI: req.Recipient.String(), Username: "1001",
		Password: "secret1001", Cnonce: "c", Count: 1})
	req.AppendHeader(sip.NewHeader("Authorization", cred.String()))
	if res := b.do(req); res.StatusCode != 200 {
		t.Fatalf("B's nonce answered: %d", res.StatusCode)
	}
}
