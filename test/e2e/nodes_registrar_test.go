package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/users"
)

// wazoPut logs in to n's wazo-auth as root and PUTs body to the user.
func wazoPut(t *testing.T, n *node, uuid, body string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	base := "http://" + n.srv.HTTPAddr()
	req, _ := http.NewRequest("POST", base+"/api/auth/0.1/token", strings.NewReader(`{"expiration":600}`))
	req.SetBasicAuth("root", "superpass")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		Data struct{ Token string } `json:"data"`
	}
	err = json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 || tok.Data.Token == "" {
		t.Fatalf("login: %d, %v", res.StatusCode, err)
	}
	req, _ = http.NewRequest("PUT", base+"/api/confd/1.1/users/"+uuid, strings.NewReader(body))
	req.Header.Set("X-Auth-Token", tok.Data.Token)
	req.Header.Set("Content-Type", "application/json")
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 204 {
		t.Fatalf("PUT %s: %d", body, res.StatusCode)
	}
}

// TestUserRegisteredOnAReachedThroughB: two nodes on one PostgreSQL
// catalog. Bob's baresip registers through node A, Alice's through node
// B; Alice's call arrives at B, which finds Bob's phone in the shared
// location store and calls it. Bob's recording flags are switched on
// through A's confd API (the seed's PUT) between two calls: B records
// the second call by policy, not the first (the flags are read from the
// database at each call, never cached stale), with both voices.
func TestUserRegisteredOnAReachedThroughB(t *testing.T) {
	dsn := pgFreshDatabase(t)
	start := func(id string) *node {
		return startNode(t, func(c *config.Config) {
			c.NodeID = id
			c.Catalog.Database = dsn
			c.SIP.DigestAlgorithms = []string{"MD5"} // baresip 1.0
			c.Wazo.Admins = []config.WazoAdmin{{Name: "root", Password: "superpass"}}
		})
	}
	a, b := start("node-a"), start("node-b")
	ctx := context.Background()
	var us []users.User
	for _, e := range []string{"1001", "1002"} {
		u, err := a.srv.Users().Create(ctx, users.User{TenantUUID: "tenant-1", Firstname: "User", Lastname: e, Exten: e,
			SIPUsername: "sip" + e, SIPPassword: "pw-" + e})
		if err != nil {
			t.Fatal(err)
		}
		us = append(us, u)
	}
	bob := registeredPhone(t, a, "1002", 1000, "manual")
	alice := registeredPhone(t, b, "1001", 440, "manual")
	if err := testutil.Poll(10*time.Second, 20*time.Millisecond, func() bool {
		return len(b.srv.Registrar().Contacts("sip1002")) == 1 && len(a.srv.Registrar().Contacts("sip1001")) == 1
	}); err != nil {
		t.Fatalf("B sees %v for bob, A sees %v for alice", b.srv.Registrar().Contacts("sip1002"), a.srv.Registrar().Contacts("sip1001"))
	}

	connectCall(t, b, alice, bob, "1002")
	if a.srv.Calls().Count() != 0 {
		t.Fatalf("the call went through A: %v", a.srv.Calls().Channels())
	}
	hangupAll(t, b, alice)
	if files, _ := filepath.Glob(filepath.Join(b.recDir(), "user-1001-1002-*")); len(files) != 0 {
		t.Fatalf("recorded before bob's flags were on: %v", files)
	}

	wazoPut(t, a, us[1].UUID, `{"call_record_enabled": true}`)
	connectCall(t, b, alice, bob, "1002")
	hangupAll(t, b, bob)
	files, _ := filepath.Glob(filepath.Join(b.recDir(), "user-1001-1002-*.wav"))
	if len(files) != 1 {
		all, _ := filepath.Glob(filepath.Join(b.recDir(), "*"))
		t.Fatalf("B's recordings %v, want one user-1001-1002-<timestamp>.wav", all)
	}
	name := strings.TrimSuffix(filepath.Base(files[0]), ".wav")
	err := testutil.Poll(10*time.Second, 50*time.Millisecond, func() bool {
		r, err := a.srv.Catalog().Meta.RecordingByName(ctx, name) // the shared catalog
		return err == nil && r.Status == "completed" && r.Source == "policy" && r.Direction == "internal" &&
			r.Owners == us[1].UUID && r.Node == "node-b"
	})
	if err != nil {
		r, err := a.srv.Catalog().Meta.RecordingByName(ctx, name)
		t.Fatalf("catalog row through A: %+v, %v; want B's completed policy recording owned by bob", r, err)
	}
	_, pcm := readWAV(t, files[0])
	if len(pcm) < 8000 {
		t.Fatalf("recording of %d samples", len(pcm))
	}
	mid := pcm[len(pcm)/4 : len(pcm)*3/4]
	p440, p1000, p700 := goertzel(mid, 440), goertzel(mid, 1000), goertzel(mid, 700)
	if p440 < 20*p700 || p1000 < 20*p700 {
		t.Fatalf("the recording does not hold both voices: 440 Hz %.0f, 1000 Hz %.0f, 700 Hz %.0f", p440, p1000, p700)
	}
}
