package e2e

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/nodeari"
	"github.com/tapedeck/tapedeck/internal/users"
)

// startWazoNode is a node serving HTTPS with a test certificate and one
// Wazo admin, as a Wazo stack is reached.
func startWazoNode(t *testing.T) (*node, testutil.TLSFiles) {
	t.Helper()
	certs := testutil.TLSCert(t)
	n := startNode(t, func(c *config.Config) {
		c.HTTP.TLSCertFile, c.HTTP.TLSKeyFile = certs.Cert, certs.Key
		c.Wazo.Admins = []config.WazoAdmin{{Name: "root", Password: "superpass"}}
	})
	return n, certs
}

// TestWazoHTTPS: the listener speaks TLS only, and the seed's PUT works
// over it with a token from wazo-auth.
func TestWazoHTTPS(t *testing.T) {
	n, certs := startWazoNode(t)
	ctx := context.Background()
	u, err := n.srv.Users().Create(ctx, users.User{TenantUUID: config.DefaultTenantUUID, Firstname: "Alice", Exten: "1001"})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.Pool}}}
	base := "https://" + n.srv.HTTPAddr()
	req, _ := http.NewRequest("POST", base+"/api/auth/0.1/token", strings.NewReader(`{"expiration":600}`))
	req.SetBasicAuth("root", "superpass")
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	tok := between(string(body), `"token":"`, `"`)
	if res.StatusCode != 200 || tok == "" {
		t.Fatalf("login = %d %s", res.StatusCode, body)
	}
	req, _ = http.NewRequest("PUT", base+"/api/confd/1.1/users/"+u.UUID, strings.NewReader(`{"call_record_enabled": true}`))
	req.Header.Set("X-Auth-Token", tok)
	req.Header.Set("Content-Type", "application/json")
	res, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 204 {
		t.Fatalf("seed PUT = %d", res.StatusCode)
	}
	if got, _ := n.srv.Users().GetByUUID(ctx, u.UUID); !got.CallRecordEnabled() {
		t.Fatalf("after the seed's PUT: %+v", got)
	}
	// Plain HTTP is not served on the HTTPS port.
	if res, err := http.Get("http://" + n.srv.HTTPAddr() + "/healthz"); err == nil {
		res.Body.Close()
		if res.StatusCode == 200 {
			t.Fatal("plain HTTP answered 200 on the HTTPS listener")
		}
	}
}

func between(s, a, b string) string {
	_, rest, ok := strings.Cut(s, a)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, b)
	return v
}

// TestWazoSDK runs the official @wazo/sdk, unmodified, against tapedeck
// over HTTPS (test/node/wazo-sdk.js).
func TestWazoSDK(t *testing.T) {
	if _, err := os.Stat(filepath.Join(testutil.RepoRoot(t), "test", "node", "node_modules", "@wazo", "sdk")); err != nil {
		testutil.SkipOrFail(t, "test/node/node_modules/@wazo/sdk missing; run scripts/test-deps.sh (npm ci in test/node)")
	}
	n, certs := startWazoNode(t)
	ctx := context.Background()
	svc := n.srv.Users()
	pw, err := svc.HashPassword("alicepass")
	if err != nil {
		t.Fatal(err)
	}
	alice, err := svc.Create(ctx, users.User{TenantUUID: config.DefaultTenantUUID, Firstname: "Alice", Username: "alice",
		PasswordHash: pw, Exten: "1001", OnlineCallRecord: true})
	if err != nil {
		t.Fatal(err)
	}
	p := nodeari.Start(t, "wazo-sdk.js", map[string]string{
		"WAZO_SERVER": n.srv.HTTPAddr(), "NODE_EXTRA_CA_CERTS": certs.CA,
		"WAZO_ADMIN": "root", "WAZO_ADMIN_PASSWORD": "superpass",
		"WAZO_USER_UUID": alice.UUID, "WAZO_USER": "alice", "WAZO_USER_PASSWORD": "alicepass",
	})
	const wait = 30 * time.Second
	line := func(typ string) nodeari.Line {
		t.Helper()
		l, err := p.WaitLine(typ, wait)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	login := line("adminLogin")
	if login["token"] == "" || login["tenantUuid"] != config.DefaultTenantUUID {
		t.Fatalf("admin session %v", login)
	}
	if s, _ := login["expiresInS"].(float64); s < 3500 || s > 3700 {
		t.Fatalf("admin session expires in %v s; the SDK asks for 3600", login["expiresInS"])
	}
	if l := line("checkToken"); l["valid"] != true {
		t.Fatalf("checkToken %v", l)
	}
	if l := line("getUser"); l["firstName"] != "Alice" || l["exten"] != "1001" || l["onlineCallRecordEnabled"] != true || l["id"] != alice.UUID {
		t.Fatalf("getUser %v", l)
	}
	if l := line("updateUser"); l["ok"] != true {
		t.Fatalf("updateUser %v", l)
	}
	if l := line("getUserAfter"); l["firstName"] != "Alicia" || l["lastName"] != "Liddell" || l["email"] != "alicia@example.com" || l["mobileNumber"] != "+15550100" {
		t.Fatalf("getUser after the update %v", l)
	}
	got, _ := svc.GetByUUID(ctx, alice.UUID)
	if got.Firstname != "Alicia" || got.MobilePhoneNumber != "+15550100" || !got.OnlineCallRecord || got.Exten != "1001" {
		t.Fatalf("stored after the SDK's update: %+v", got)
	}
	if l := line("listUsers"); l["total"] != float64(1) {
		t.Fatalf("listUsers %v", l)
	}
	if l := line("userLogin"); l["uuid"] != alice.UUID {
		t.Fatalf("userLogin %v", l)
	}
	if l := line("userGetSelf"); l["firstName"] != "Alicia" {
		t.Fatalf("userGetSelf %v", l)
	}
	if l := line("badLogin"); l["refused"] != true || l["status"] != float64(401) {
		t.Fatalf("badLogin %v", l)
	}
	if l := line("logOut"); l["validAfter"] != false {
		t.Fatalf("logOut %v", l)
	}
	if err := p.Wait(wait); err != nil {
		t.Fatal(err)
	}
}
