package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/users"
)

// TestRegistrarLimitsConfigured: the limits under sip.registrar reach a
// running node's registrar: the minimum expiry (423 with its
// Min-Expires), the maximum granted, the contacts per user and the size
// of one REGISTER's Contact list (refused before any challenge).
func TestRegistrarLimitsConfigured(t *testing.T) {
	n, _ := startStorePBXWith(t, func(c *config.Config) {
		c.SIP.Registrar.MinExpiresSeconds = 120
		c.SIP.Registrar.MaxExpiresSeconds = 900
		c.SIP.Registrar.DefaultExpiresSeconds = 600
		c.SIP.Registrar.MaxContactsPerUser = 1
		c.SIP.Registrar.MaxContactsPerRequest = 2
	}, users.User{Firstname: "Alice", Exten: "1001"})
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("limits-test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	host, port := splitHostPort(t, n.srv.SIPAddr())
	register := func(expires string, contacts ...string) *sip.Request {
		var to sip.Uri
		if err := sip.ParseUri("sip:sip1001@"+n.srv.SIPAddr(), &to); err != nil {
			t.Fatal(err)
		}
		req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: host, Port: port})
		req.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
		from := &sip.FromHeader{Address: to, Params: sip.NewParams()}
		from.Params.Add("tag", sip.GenerateTagN(8))
		req.AppendHeader(from)
		for _, c := range contacts {
			req.AppendHeader(sip.NewHeader("Contact", c))
		}
		req.AppendHeader(sip.NewHeader("Expires", expires))
		return req
	}
	do := func(req *sip.Request) *sip.Response {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := client.Do(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode == 401 {
			res, err = client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: "sip1001", Password: "pw-1001"})
			if err != nil {
				t.Fatal(err)
			}
		}
		return res
	}
	if res := do(register("90", "<sip:1001@127.0.0.1:5071>")); res.StatusCode != 423 ||
		res.GetHeader("Min-Expires") == nil || res.GetHeader("Min-Expires").Value() != "120" {
		t.Fatalf("Expires 90: %d, want 423 with Min-Expires: 120", res.StatusCode)
	}
	res := do(register("3600", "<sip:1001@127.0.0.1:5071>"))
	if res.StatusCode != 200 || len(res.GetHeaders("Contact")) != 1 || !strings.Contains(res.GetHeader("Contact").Value(), "expires=900") {
		t.Fatalf("Expires 3600: %d %v, want 200 granting 900 s", res.StatusCode, res.GetHeaders("Contact"))
	}
	if res := do(register("600", "<sip:1001@127.0.0.1:5072>")); res.StatusCode != 403 {
		t.Fatalf("a second contact with max_contacts_per_user 1: %d, want 403", res.StatusCode)
	}
	// Three contacts in one REGISTER: refused before any challenge.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err = client.Do(ctx, register("600", "<sip:1001@127.0.0.1:5071>", "<sip:1001@127.0.0.1:5072>", "<sip:1001@127.0.0.1:5073>"))
	if err != nil || res.StatusCode != 403 {
		t.Fatalf("three contacts in one REGISTER: %v %v, want 403 without a challenge", res, err)
	}
	if cs := n.srv.Registrar().Contacts("sip1001"); len(cs) != 1 || !strings.HasSuffix(cs[0].Contact, ":5071") {
		t.Fatalf("bound: %v", cs)
	}
}

func splitHostPort(t *testing.T, hp string) (string, int) {
	t.Helper()
	i := strings.LastIndexByte(hp, ':')
	var port int
	if _, err := fmt.Sscan(hp[i+1:], &port); err != nil || i < 0 {
		t.Fatalf("address %q", hp)
	}
	return hp[:i], port
}
