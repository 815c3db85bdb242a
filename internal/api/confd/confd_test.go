package confd

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/crypto/bcrypt"

	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/users"
)

const (
	tenantA = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
	tenantB = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	t     *testing.T
	srv   *httptest.Server
	users *users.Service
	clock *clock
}

// newFixture serves the API over a real SQLite catalog.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ms, err := meta.OpenSQLite(filepath.Join(t.TempDir(), "tapedeck.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	us, err := meta.Users(ms)
	if err != nil {
		t.Fatal(err)
	}
	svc := users.New(us)
	svc.BcryptCost = bcrypt.MinCost
	c := &clock{now: time.Now()}
	api := New(Options{Users: svc, Admins: []Admin{{"root", "rootpass1"}}, TenantUUID: tenantA,
		StackUUID: "5ca1ab1e-0000-4000-8000-000000000000", TokenExpiration: time.Hour, MaxTokenExpiration: 2 * time.Hour, Now: c.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &fixture{t: t, srv: srv, users: svc, clock: c}
}

type reply struct {
	code int
	body string
	hdr  http.Header
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// do sends a request; hdr holds header pairs.
func (f *fixture) do(method, path, body string, hdr ...string) reply {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return reply{res.StatusCode, string(data), res.Header}
}

func (f *fixture) login(user, pass string) string {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+"/api/auth/0.1/token", strings.NewReader(`{"expiration": 3600}`))
	req.SetBasicAuth(user, pass)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Data struct {
			Token string `json:"token"`
		} `json:"data"`
	}
	if res.StatusCode != 200 || json.NewDecoder(res.Body).Decode(&out) != nil || out.Data.Token == "" {
		f.t.Fatalf("login %s: status %d", user, res.StatusCode)
	}
	return out.Data.Token
}

func (f *fixture) mkUser(u users.User) users.User {
	f.t.Helper()
	if u.TenantUUID == "" {
		u.TenantUUID = tenantA
	}
	got, err := f.users.Create(context.Background(), u)
	if err != nil {
		f.t.Fatal(err)
	}
	return got
}

func TestTokenFlow(t *testing.T) {
	f := newFixture(t)
	basic := func(u, p string) string {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(u, p)
		return req.Header.Get("Authorization")
	}
	for _, tc := range []struct {
		name, method, body, auth string
		code                     int
		want                     string
	}{
		{"no credentials", "POST", `{}`, "", 401, `"reason":["Authentication Failed"]`},
		{"wrong password", "POST", `{}`, basic("root", "nope"), 401, `"status_code":401`},
		{"unknown user", "POST", `{}`, basic("nobody", "rootpass1"), 401, "Authentication Failed"},
		{"bad JSON", "POST", `{"expiration":`, basic("root", "rootpass1"), 400, `"reason"`},
		{"expiration not a number", "POST", `{"expiration":"soon"}`, basic("root", "rootpass1"), 400, "expiration"},
		{"expiration zero", "POST", `{"expiration":0}`, basic("root", "rootpass1"), 400, "expiration"},
		{"other backend", "POST", `{"backend":"ldap_user"}`, basic("root", "rootpass1"), 401, "Authentication Failed"},
		{"admin", "POST", `{"expiration": 60}`, basic("root", "rootpass1"), 200, `"tenant_uuid":"` + tenantA + `"`},
		{"empty body", "POST", ``, basic("root", "rootpass1"), 200, `"acl":["confd.#","auth.#"]`},
		{"GET is not allowed", "GET", ``, basic("root", "rootpass1"), 405, `"reason"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(tc.method, "/api/auth/0.1/token", tc.body, "Authorization", tc.auth)
			if r.code != tc.code || !strings.Contains(r.body, tc.want) {
				t.Fatalf("%d %s; want %d with %s", r.code, r.body, tc.code, tc.want)
			}
		})
	}

	tok := f.login("root", "rootpass1")
	r := f.do("GET", "/api/auth/0.1/token/"+tok, "")
	data, _ := r.json(t)["data"].(map[string]any)
	if r.code != 200 || data["token"] != tok || data["xivo_uuid"] != "5ca1ab1e-0000-4000-8000-000000000000" {
		t.Fatalf("GET token = %d %s", r.code, r.body)
	}
	exp, err := time.Parse("2006-01-02T15:04:05.000000", data["utc_expires_at"].(string))
	if err != nil || exp.Sub(f.clock.Now().UTC()).Round(time.Minute) != time.Hour {
		t.Fatalf("utc_expires_at %v (%v); want an hour from now", data["utc_expires_at"], err)
	}
	if r := f.do("HEAD", "/api/auth/0.1/token/"+tok, ""); r.code != 204 {
		t.Fatalf("HEAD token = %d", r.code)
	}
	for _, bad := range []string{"nope", meta.NewUUID(), strings.Repeat("a", 200)} {
		if r := f.do("GET", "/api/auth/0.1/token/"+bad, ""); r.code != 404 || !strings.Contains(r.body, `"reason":["No such token"]`) {
			t.Fatalf("GET unknown token = %d %s", r.code, r.body)
		}
		if r := f.do("HEAD", "/api/auth/0.1/token/"+bad, ""); r.code != 404 {
			t.Fatalf("HEAD unknown token = %d", r.code)
		}
	}
	if r := f.do("GET", "/api/confd/1.1/users", "", "X-Auth-Token", tok); r.code != 200 {
		t.Fatalf("confd with a fresh token = %d %s", r.code, r.body)
	}
	// Asking for more than the maximum gets the maximum.
	req, _ := http.NewRequest("POST", f.srv.URL+"/api/auth/0.1/token", strings.NewReader(`{"expiration": 999999}`))
	req.SetBasicAuth("root", "rootpass1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var long struct {
		Data struct {
			Token        string `json:"token"`
			UTCExpiresAt string `json:"utc_expires_at"`
		} `json:"data"`
	}
	json.NewDecoder(res.Body).Decode(&long)
	res.Body.Close()
	if exp, _ := time.Parse("2006-01-02T15:04:05.000000", long.Data.UTCExpiresAt); exp.Sub(f.clock.Now().UTC()).Round(time.Minute) != 2*time.Hour {
		t.Fatalf("capped expiry %s; want 2 h from now", long.Data.UTCExpiresAt)
	}
	// Expiry: after an hour the first token is gone, the capped one lives.
	f.clock.add(time.Hour + time.Second)
	if r := f.do("HEAD", "/api/auth/0.1/token/"+tok, ""); r.code != 404 {
		t.Fatalf("expired token HEAD = %d", r.code)
	}
	if r := f.do("GET", "/api/confd/1.1/users", "", "X-Auth-Token", tok); r.code != 401 {
		t.Fatalf("confd with an expired token = %d", r.code)
	}
	if r := f.do("GET", "/api/confd/1.1/users", "", "X-Auth-Token", long.Data.Token); r.code != 200 {
		t.Fatalf("confd with the long token = %d", r.code)
	}
	// Log out.
	if r := f.do("DELETE", "/api/auth/0.1/token/"+long.Data.Token, ""); r.code != 200 || !strings.Contains(r.body, "success") {
		t.Fatalf("DELETE token = %d %s", r.code, r.body)
	}
	if r := f.do("GET", "/api/confd/1.1/users", "", "X-Auth-Token", long.Data.Token); r.code != 401 {
		t.Fatalf("confd after logout = %d", r.code)
	}
	if r := f.do("GET", "/api/auth/0.1/nothing", ""); r.code != 404 {
		t.Fatalf("unknown auth path = %d", r.code)
	}
}

// TestSeedPutCallRecordEnabled is seed 002's administrator step as
// written: PUT /users/{user_uuid} {"call_record_enabled": true}.
func TestSeedPutCallRecordEnabled(t *testing.T) {
	f := newFixture(t)
	u := f.mkUser(users.User{Firstname: "Alice", Exten: "1001"})
	tok := f.login("root", "rootpass1")
	r := f.do("PUT", "/api/confd/1.1/users/"+u.UUID, `{"call_record_enabled": true}`, "X-Auth-Token", tok, "Content-Type", "application/json")
	if r.code != 204 || r.body != "" {
		t.Fatalf("PUT = %d %q; want 204 and no body", r.code, r.body)
	}
	got := f.do("GET", "/api/confd/1.1/users/"+u.UUID, "", "X-Auth-Token", tok).json(t)
	for _, k := range []string{"call_record_enabled", "call_record_outgoing_external_enabled", "call_record_outgoing_internal_enabled",
		"call_record_incoming_external_enabled", "call_record_incoming_internal_enabled"} {
		if got[k] != true {
			t.Errorf("%s = %v; want true", k, got[k])
		}
	}
	stored, _ := f.users.GetByUUID(context.Background(), u.UUID)
	if !stored.CallRecordEnabled() {
		t.Fatalf("stored user %+v: recording not on", stored)
	}
	// And the other seed step: online_call_record_enabled false.
	f.do("PUT", "/1.1/users/"+u.UUID, `{"online_call_record_enabled": true}`, "X-Auth-Token", tok)
	if r := f.do("PUT", "/1.1/users/"+u.UUID, `{"online_call_record_enabled": false}`, "X-Auth-Token", tok); r.code != 204 {
		t.Fatalf("PUT online_call_record_enabled = %d %s", r.code, r.body)
	}
	if got := f.do("GET", "/1.1/users/"+u.UUID, "", "X-Auth-Token", tok).json(t); got["online_call_record_enabled"] != false || got["call_record_enabled"] != true {
		t.Fatalf("after online false: %v", got)
	}
}

// TestUsersStatusCodes walks every status code of the users API.
func TestUsersStatusCodes(t *testing.T) {
	f := newFixture(t)
	alice := f.mkUser(users.User{Firstname: "Alice", Exten: "1001", SIPUsername: "alice", SIPPassword: "pw", CallRecordIncomingExternal: true})
	pw, _ := f.users.HashPassword("bobpass")
	bob := f.mkUser(users.User{Firstname: "Bob", Exten: "1002", Username: "bob", PasswordHash: pw})
	carol := f.mkUser(users.User{Firstname: "Carol", Exten: "1003", TenantUUID: tenantB})
	admin := f.login("root", "rootpass1")
	user := f.login("bob", "bobpass")
	aid := "/users/" + alice.UUID
	const dep = msgDeprecatedCallRecord
	for _, tc := range []struct {
		name, method, path, body string
		hdr                      []string
		code                     int
		want                     string // in the body
	}{
		// Authentication.
		{"no token", "GET", "/users", "", []string{"X-Auth-Token", ""}, 401, "X-Auth-Token"},
		{"bad token", "GET", "/users", "", []string{"X-Auth-Token", "nope"}, 401, "Unauthorized"},
		// List.
		{"list", "GET", "/users", "", nil, 200, `"total":3`},
		{"list search", "GET", "/users?search=ali", "", nil, 200, `"total":1`},
		{"list paging", "GET", "/users?order=exten&direction=desc&limit=1&offset=1", "", nil, 200, `"firstname":"Bob"`},
		{"list tenant", "GET", "/users", "", []string{"Wazo-Tenant", tenantB}, 200, `"firstname":"Carol"`},
		{"list bad limit", "GET", "/users?limit=x", "", nil, 400, `[{"limit":["Not a valid integer."]}]`},
		{"list negative offset", "GET", "/users?offset=-1", "", nil, 400, `"offset"`},
		{"list bad order", "GET", "/users?order=password", "", nil, 400, `"order"`},
		{"list bad direction", "GET", "/users?direction=up", "", nil, 400, `"direction"`},
		{"list bad tenant", "GET", "/users", "", []string{"Wazo-Tenant", "x"}, 401, "tenant"},
		{"list by a user", "GET", "/users", "", []string{"X-Auth-Token", user}, 403, "Insufficient permissions"},
		{"list method", "PATCH", "/users", "", nil, 405, "not allowed"},
		// Get.
		{"get by uuid", "GET", aid, "", nil, 200, `"exten":"1001"`},
		{"get by id", "GET", "/users/" + itoa(alice.ID), "", nil, 200, `"uuid":"` + alice.UUID + `"`},
		{"get shows the line", "GET", aid, "", nil, 200, `"extensions":[{"context":"default","exten":"1001"}]`},
		{"get hides passwords", "GET", aid, "", nil, 200, `"sip_username":"alice"`},
		{"head", "HEAD", aid, "", nil, 200, ""},
		{"get unknown uuid", "GET", "/users/" + meta.NewUUID(), "", nil, 404, "Resource Not Found - User was not found ('uuid': "},
		{"get unknown id", "GET", "/users/4242", "", nil, 404, `User was not found ('id': 4242)`},
		{"head unknown", "HEAD", "/users/4242", "", nil, 404, ""},
		{"get other tenant", "GET", "/users/" + carol.UUID, "", []string{"Wazo-Tenant", tenantA}, 404, "User was not found"},
		{"get other tenant, master sees all", "GET", "/users/" + carol.UUID, "", nil, 200, "Carol"},
		{"user gets itself", "GET", "/users/" + bob.UUID, "", []string{"X-Auth-Token", user}, 200, `"username":"bob"`},
		{"user gets another", "GET", aid, "", []string{"X-Auth-Token", user}, 403, "Insufficient"},
		{"user names another tenant", "GET", "/users/" + bob.UUID, "", []string{"X-Auth-Token", user, "Wazo-Tenant", tenantB}, 401, "tenant"},
		// Create.
		{"create", "POST", "/users", `{"firstname":"Dave","exten":"1004","sip_username":"dave","sip_password":"x","call_record_enabled":true}`, nil, 201, `"call_record_incoming_internal_enabled":true`},
		{"create in the tenant named", "POST", "/users", `{"firstname":"Fay"}`, []string{"Wazo-Tenant", tenantB}, 201, `"tenant_uuid":"` + tenantB + `"`},
		{"create without firstname", "POST", "/users", `{"lastname":"X"}`, nil, 400, `[{"firstname":["Missing data for required field."]}]`},
		{"create used exten", "POST", "/users", `{"firstname":"Eve","exten":"1001"}`, nil, 400, "Resource Error - Extension already exists ('exten': '1001', 'context': 'default')"},
		{"create used sip username", "POST", "/users", `{"firstname":"Eve","sip_username":"alice","sip_password":"y"}`, nil, 400, "EndpointSIP already exists"},
		{"create bad exten", "POST", "/users", `{"firstname":"Eve","exten":"12a"}`, nil, 400, `"exten"`},
		{"create bad JSON", "POST", "/users", `{"firstname":`, nil, 400, "Failed to decode JSON object"},
		{"create a list", "POST", "/users", `[1]`, nil, 400, `"_schema":["Invalid input type."]`},
		{"create wrong type", "POST", "/users", `{"firstname":42}`, nil, 400, `[{"firstname":["Not a valid string."]}]`},
		{"create by a user", "POST", "/users", `{"firstname":"Eve"}`, []string{"X-Auth-Token", user}, 403, ""},
		{"create, body too large", "POST", "/users", `{"firstname":"` + strings.Repeat("x", maxBody) + `"}`, nil, 413, "Request body larger than"},
		{"list HEAD", "HEAD", "/users", "", nil, 200, ""},
		// Update.
		{"put deprecated alone", "PUT", aid, `{"call_record_enabled":false}`, nil, 204, ""},
		{"put deprecated with one", "PUT", aid, `{"call_record_enabled":true,"call_record_incoming_internal_enabled":true}`, nil, 400, `[{"_schema":["` + dep + `"]}]`},
		{"put string boolean", "PUT", aid, `{"call_record_enabled":"true"}`, nil, 400, `[{"call_record_enabled":["Not a valid boolean."]}]`},
		{"put number boolean", "PUT", aid, `{"online_call_record_enabled":1}`, nil, 400, `"online_call_record_enabled":["Not a valid boolean."]`},
		{"put null boolean", "PUT", aid, `{"call_record_outgoing_external_enabled":null}`, nil, 400, `"call_record_outgoing_external_enabled":["Field may not be null."]`},
		{"put bad JSON", "PUT", aid, `nope`, nil, 400, "Failed to decode JSON object"},
		{"put unknown", "PUT", "/users/" + meta.NewUUID(), `{}`, nil, 404, "User was not found"},
		{"put by id", "PUT", "/users/" + itoa(alice.ID), `{"lastname":"Liddell"}`, nil, 204, ""},
		{"put used exten", "PUT", aid, `{"exten":"1002"}`, nil, 400, "Extension already exists"},
		{"put ignores read-only fields", "PUT", aid, `{"id":99,"uuid":"x","tenant_uuid":"y","lines":[]}`, nil, 204, ""},
		{"user renames itself", "PUT", "/users/" + bob.UUID, `{"firstname":"Robert"}`, []string{"X-Auth-Token", user}, 204, ""},
		{"user records itself", "PUT", "/users/" + bob.UUID, `{"call_record_enabled":false}`, []string{"X-Auth-Token", user}, 403, ""},
		{"user renames another", "PUT", aid, `{"firstname":"X"}`, []string{"X-Auth-Token", user}, 403, ""},
		// Delete.
		{"delete by a user", "DELETE", "/users/" + bob.UUID, "", []string{"X-Auth-Token", user}, 403, ""},
		{"delete", "DELETE", "/users/" + carol.UUID, "", nil, 204, ""},
		{"delete again", "DELETE", "/users/" + carol.UUID, "", nil, 404, "User was not found"},
		{"item method", "POST", aid, "", nil, 405, ""},
		{"unknown path", "GET", "/lines", "", nil, 404, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := append([]string{"X-Auth-Token", admin}, tc.hdr...)
			r := f.do(tc.method, "/api/confd/1.1"+tc.path, tc.body, hdr...)
			if r.code != tc.code || !strings.Contains(r.body, tc.want) {
				t.Fatalf("%d %s; want %d with %s", r.code, r.body, tc.code, tc.want)
			}
			if r.code >= 400 && tc.method != "HEAD" {
				var list []any
				if err := json.Unmarshal([]byte(r.body), &list); err != nil || len(list) == 0 {
					t.Fatalf("error body %s is not wazo-confd's list of messages", r.body)
				}
			}
		})
	}
	// What the successful writes did.
	ctx := context.Background()
	a, _ := f.users.GetByUUID(ctx, alice.UUID)
	if a.CallRecordIncomingExternal || a.Lastname != "Liddell" || a.Exten != "1001" || a.ID != alice.ID || a.TenantUUID != tenantA || a.SIPPassword != "pw" {
		t.Errorf("alice after the updates: %+v", a)
	}
	if b, _ := f.users.GetByUUID(ctx, bob.UUID); b.Firstname != "Robert" {
		t.Errorf("bob after renaming himself: %+v", b)
	}
	d, err := f.users.ByExten(ctx, "default", "1004")
	if err != nil || !d.CallRecordEnabled() || d.SIPPassword != "x" || d.TenantUUID != tenantA {
		t.Errorf("created dave: %+v, %v", d, err)
	}
	if _, err := f.users.GetByUUID(ctx, carol.UUID); err == nil {
		t.Errorf("carol survived her deletion")
	}
}

func TestUserPasswordLogin(t *testing.T) {
	f := newFixture(t)
	admin := f.login("root", "rootpass1")
	r := f.do("POST", "/api/confd/1.1/users", `{"firstname":"Eve","username":"eve","password":"evepass"}`, "X-Auth-Token", admin)
	if r.code != 201 || strings.Contains(r.body, "evepass") || strings.Contains(r.body, "$2a$") {
		t.Fatalf("create = %d %s (the password must not be shown)", r.code, r.body)
	}
	tok := f.login("eve", "evepass")
	info := f.do("GET", "/api/auth/0.1/token/"+tok, "").json(t)["data"].(map[string]any)
	md := info["metadata"].(map[string]any)
	if md["uuid"] != r.json(t)["uuid"] || md["tenant_uuid"] != tenantA || info["xivo_user_uuid"] != md["uuid"] {
		t.Fatalf("user token %v", info)
	}
	if r := f.do("PUT", "/api/confd/1.1/users/"+md["uuid"].(string), `{"password":"newpass"}`, "X-Auth-Token", admin); r.code != 204 {
		t.Fatalf("password change = %d %s", r.code, r.body)
	}
	req, _ := http.NewRequest("POST", f.srv.URL+"/api/auth/0.1/token", nil)
	req.SetBasicAuth("eve", "evepass")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("old password after the change: %d", res.StatusCode)
	}
	f.login("eve", "newpass")
}

func TestFeatures(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	other, err := f.users.Store().CreateFeature(ctx, meta.Feature{Exten: "*10", Feature: "phonestatus", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	admin := f.login("root", "rootpass1")
	pw, _ := f.users.HashPassword("bobpass")
	f.mkUser(users.User{Firstname: "Bob", Username: "bob", PasswordHash: pw})
	user := f.login("bob", "bobpass")
	list := f.do("GET", "/api/confd/1.1/extensions/features?search=callrecord", "", "X-Auth-Token", admin)
	var page struct {
		Items []map[string]any `json:"items"`
		Total int              `json:"total"`
	}
	if err := json.Unmarshal([]byte(list.body), &page); err != nil || list.code != 200 || page.Total != 1 ||
		page.Items[0]["exten"] != "*26" || page.Items[0]["feature"] != "callrecord" || page.Items[0]["context"] != "xivo-features" || page.Items[0]["enabled"] != true {
		t.Fatalf("search=callrecord: %d %s", list.code, list.body)
	}
	cr := page.Items[0]["uuid"].(string)
	path := "/api/confd/1.1/extensions/features/" + cr
	for _, tc := range []struct {
		name, method, path, body, tok string
		code                          int
		want                          string
	}{
		{"list", "GET", "/extensions/features", "", admin, 200, `"total":2`},
		{"list by feature", "GET", "/extensions/features?feature=callrecord", "", admin, 200, `"total":1`},
		{"list ordered", "GET", "/extensions/features?order=exten&limit=1", "", admin, 200, `"exten":"*10"`},
		{"list bad order", "GET", "/extensions/features?order=x", "", admin, 400, `"order"`},
		{"list by a user", "GET", "/extensions/features", "", user, 403, ""},
		{"list without token", "GET", "/extensions/features", "", "", 401, ""},
		{"get", "GET", "/extensions/features/" + cr, "", admin, 200, `"links":[{"href":"` + f.srv.URL + path + `","rel":"extensions_features"}]`},
		{"get unknown", "GET", "/extensions/features/" + meta.NewUUID(), "", admin, 404, "FeatureExtension was not found"},
		{"put bad exten", "PUT", "/extensions/features/" + cr, `{"exten":"abc"}`, admin, 400, `[{"exten":["String does not match expected pattern."]}]`},
		{"put used exten", "PUT", "/extensions/features/" + cr, `{"exten":"*10"}`, admin, 400, `Resource Error - FeatureExtension already exists ('exten': '*10')`},
		{"put bad enabled", "PUT", "/extensions/features/" + cr, `{"enabled":"maybe"}`, admin, 400, `"enabled"`},
		{"put null exten", "PUT", "/extensions/features/" + cr, `{"exten":null}`, admin, 400, `"exten"`},
		{"put bad JSON", "PUT", "/extensions/features/" + cr, `{`, admin, 400, "Failed to decode"},
		{"put unknown", "PUT", "/extensions/features/" + meta.NewUUID(), `{"enabled":false}`, admin, 404, ""},
		{"put by a user", "PUT", "/extensions/features/" + cr, `{"enabled":false}`, user, 403, ""},
		{"post not allowed", "POST", "/extensions/features", `{}`, admin, 405, ""},
		{"delete not allowed", "DELETE", "/extensions/features/" + cr, ``, admin, 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(tc.method, "/api/confd/1.1"+tc.path, tc.body, "X-Auth-Token", tc.tok)
			if r.code != tc.code || !strings.Contains(r.body, tc.want) {
				t.Fatalf("%d %s; want %d with %s", r.code, r.body, tc.code, tc.want)
			}
		})
	}
	routable := func(code string) bool {
		_, ok, err := f.users.FeatureByExten(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !routable("*26") {
		t.Fatal("*26 not routable before the changes (a failed PUT changed it)")
	}
	if r := f.do("PUT", path, `{"exten":"*26","enabled":false}`, "X-Auth-Token", admin); r.code != 204 || routable("*26") {
		t.Fatalf("disable = %d %s; *26 routable %v", r.code, r.body, routable("*26"))
	}
	if r := f.do("PUT", path, `{"enabled":true}`, "X-Auth-Token", admin); r.code != 204 || !routable("*26") {
		t.Fatalf("enable = %d %s", r.code, r.body)
	}
	if r := f.do("PUT", path, `{"exten":"*99"}`, "X-Auth-Token", admin); r.code != 204 || routable("*26") || !routable("*99") {
		t.Fatalf("move to *99 = %d %s; *26 %v *99 %v", r.code, r.body, routable("*26"), routable("*99"))
	}
	if got := f.do("GET", path, "", "X-Auth-Token", admin).json(t); got["exten"] != "*99" || got["enabled"] != true {
		t.Fatalf("after the move: %v", got)
	}
	if _, ok, _ := f.users.FeatureByExten(ctx, other.Exten); !ok {
		t.Fatal("the other feature was touched")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestLoginThrottle: a burst of failed logins from one address is refused
// for a while (429, Retry-After), counted, and then allowed again.
func TestLoginThrottle(t *testing.T) {
	f := newFixture(t)
	failed0 := promtest.ToFloat64(loginsTotal.WithLabelValues("failed"))
	throttled0 := promtest.ToFloat64(loginsTotal.WithLabelValues("throttled"))
	unauth0 := promtest.ToFloat64(unauthorizedTotal)
	post := func(user, pass string) reply {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(user, pass)
		return f.do("POST", "/api/auth/0.1/token", "{}", "Authorization", req.Header.Get("Authorization"))
	}
	for i := range maxFailures {
		if r := post("root", "guess"+strconv.Itoa(i)); r.code != 401 {
			t.Fatalf("failure %d = %d", i, r.code)
		}
	}
	r := post("root", "rootpass1") // even the right password, for now
	if r.code != 429 || r.hdr.Get("Retry-After") == "" || !strings.Contains(r.body, "Too many failed logins") {
		t.Fatalf("after %d failures: %d %s (Retry-After %q)", maxFailures, r.code, r.body, r.hdr.Get("Retry-After"))
	}
	if got := promtest.ToFloat64(loginsTotal.WithLabelValues("failed")) - failed0; got != maxFailures {
		t.Errorf("failed logins counted %v; want %d", got, maxFailures)
	}
	if got := promtest.ToFloat64(loginsTotal.WithLabelValues("throttled")) - throttled0; got != 1 {
		t.Errorf("throttled logins counted %v; want 1", got)
	}
	f.clock.add(failWindow + time.Second)
	if r := post("root", "rootpass1"); r.code != 200 {
		t.Fatalf("after the window: %d %s", r.code, r.body)
	}
	f.do("GET", "/api/confd/1.1/users", "", "X-Auth-Token", "bogus")
	if got := promtest.ToFloat64(unauthorizedTotal) - unauth0; got != 1 {
		t.Errorf("unauthorized requests counted %v; want 1", got)
	}
}
