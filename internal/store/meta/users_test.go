package meta

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// The UserStore conformance suite, run on SQLite and PostgreSQL.

func TestSQLiteUsers(t *testing.T)   { runUserStoreTests(t, openSQLiteTest) }
func TestPostgresUsers(t *testing.T) { runUserStoreTests(t, openPostgresTest) }

func runUserStoreTests(t *testing.T, open openFunc) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s UserStore)
	}{
		{"CRUD", testUserCRUD},
		{"Unique", testUserUnique},
		{"List", testUserList},
		{"CallRecord", testUserCallRecord},
		{"Features", testFeatures},
		{"Tokens", testTokens},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			us, err := Users(open(t))
			if err != nil {
				t.Fatal(err)
			}
			tc.fn(t, us)
		})
	}
}

const tenantA, tenantB = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"

func mustUser(t testing.TB, s UserStore, u User) User {
	t.Helper()
	got, err := s.CreateUser(tctx(t), u)
	if err != nil {
		t.Fatalf("CreateUser(%+v): %v", u, err)
	}
	return got
}

func testUserCRUD(t *testing.T, s UserStore) {
	ctx := tctx(t)
	u := mustUser(t, s, User{TenantUUID: tenantA, Firstname: "Ada", Lastname: "Lovelace", Email: "ada@example.com",
		Username: "ada", Exten: "1001", SIPUsername: "ada-phone", SIPPassword: "s3cret",
		CallRecordIncomingExternal: true, OnlineCallRecord: true})
	if u.ID <= 0 || len(u.UUID) != 36 || u.Context != "default" || u.Created.IsZero() {
		t.Fatalf("created %+v: want an id, a uuid, context default and a creation time", u)
	}
	for name, get := range map[string]func() (User, error){
		"ByID":          func() (User, error) { return s.UserByID(ctx, u.ID) },
		"ByUUID":        func() (User, error) { return s.UserByUUID(ctx, u.UUID) },
		"ByExten":       func() (User, error) { return s.UserByExten(ctx, "default", "1001") },
		"BySIPUsername": func() (User, error) { return s.UserBySIPUsername(ctx, "ada-phone") },
		"ByUsername":    func() (User, error) { return s.UserByUsername(ctx, "ada") },
	} {
		got, err := get()
		if err != nil || got != u {
			t.Errorf("%s = %+v, %v; want %+v", name, got, err, u)
		}
	}
	for name, get := range map[string]func() (User, error){
		"ByID":           func() (User, error) { return s.UserByID(ctx, u.ID+1000) },
		"ByUUID":         func() (User, error) { return s.UserByUUID(ctx, NewUUID()) },
		"ByExten other":  func() (User, error) { return s.UserByExten(ctx, "other", "1001") },
		"ByExten empty":  func() (User, error) { return s.UserByExten(ctx, "default", "") },
		"BySIP empty":    func() (User, error) { return s.UserBySIPUsername(ctx, "") },
		"ByUsername bad": func() (User, error) { return s.UserByUsername(ctx, "nobody") },
	} {
		if _, err := get(); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: err = %v; want ErrNotFound", name, err)
		}
	}
	u.Firstname, u.Exten, u.OnlineCallRecord, u.CallRecordOutgoingInternal = "Augusta", "1002", false, true
	if err := s.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	got, err := s.UserByUUID(ctx, u.UUID)
	if err != nil || got != u {
		t.Fatalf("after update = %+v, %v; want %+v", got, err, u)
	}
	if _, err := s.UserByExten(ctx, "default", "1001"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old exten still reaches the user: %v", err)
	}
	if err := s.UpdateUser(ctx, User{UUID: NewUUID(), TenantUUID: tenantA}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of an unknown user: %v", err)
	}
	if err := s.DeleteUser(ctx, u.UUID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, u.UUID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.CreateUser(ctx, User{Firstname: "x"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("user without tenant: %v", err)
	}
}

func testUserUnique(t *testing.T, s UserStore) {
	ctx := tctx(t)
	a := mustUser(t, s, User{TenantUUID: tenantA, Firstname: "A", Username: "a", Exten: "1001", SIPUsername: "sa"})
	// Empty values never collide.
	mustUser(t, s, User{TenantUUID: tenantA, Firstname: "B"})
	mustUser(t, s, User{TenantUUID: tenantA, Firstname: "C"})
	// The same extension in another context is another number.
	mustUser(t, s, User{TenantUUID: tenantB, Firstname: "D", Exten: "1001", Context: "other"})
	for name, u := range map[string]User{
		"uuid":         {UUID: a.UUID, TenantUUID: tenantA},
		"username":     {TenantUUID: tenantB, Username: "a"},
		"exten":        {TenantUUID: tenantB, Exten: "1001"},
		"sip username": {TenantUUID: tenantB, SIPUsername: "sa"},
	} {
		if _, err := s.CreateUser(ctx, u); !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate %s: err = %v; want ErrConflict", name, err)
		}
	}
	b := mustUser(t, s, User{TenantUUID: tenantA, Firstname: "E", Exten: "1005"})
	b.Exten = "1001"
	if err := s.UpdateUser(ctx, b); !errors.Is(err, ErrConflict) {
		t.Errorf("update to a used exten: %v; want ErrConflict", err)
	}
}

func testUserList(t *testing.T, s UserStore) {
	ctx := tctx(t)
	names := []string{"carol", "alice", "Bob", "dave", "eve_x", "frank%"}
	for i, n := range names {
		tenant := tenantA
		if i%2 == 1 {
			tenant = tenantB
		}
		mustUser(t, s, User{TenantUUID: tenant, Firstname: n, Exten: fmt.Sprint(2000 + i), Email: n + "@example.com"})
	}
	first := func(p UserPage) string {
		var out []string
		for _, u := range p.Items {
			out = append(out, u.Firstname)
		}
		return fmt.Sprint(out)
	}
	for _, tc := range []struct {
		q     UserQuery
		want  string
		total int
	}{
		{UserQuery{}, "[Bob alice carol dave eve_x frank%]", 6},
		{UserQuery{Order: "exten", Desc: true, Limit: 2}, "[frank% eve_x]", 6},
		{UserQuery{Order: "exten", Limit: 2, Offset: 2}, "[Bob dave]", 6},
		{UserQuery{Order: "exten", Offset: 5}, "[frank%]", 6},
		{UserQuery{TenantUUIDs: []string{tenantA}, Order: "exten"}, "[carol Bob eve_x]", 3},
		{UserQuery{TenantUUIDs: []string{tenantA, tenantB}, Limit: 1}, "[Bob]", 6},
		{UserQuery{Search: "BOB"}, "[Bob]", 1},
		{UserQuery{Search: "2003"}, "[dave]", 1},
		{UserQuery{Search: "example.COM", Order: "id", Limit: 1}, "[carol]", 6},
		// LIKE wildcards are plain characters.
		{UserQuery{Search: "%"}, "[frank%]", 1},
		{UserQuery{Search: "e_x"}, "[eve_x]", 1},
		{UserQuery{Search: "nobody"}, "[]", 0},
	} {
		p, err := s.ListUsers(ctx, tc.q)
		if err != nil {
			t.Fatalf("%+v: %v", tc.q, err)
		}
		if got := first(p); got != tc.want || p.Total != tc.total {
			t.Errorf("%+v = %s total %d; want %s total %d", tc.q, got, p.Total, tc.want, tc.total)
		}
	}
	for _, q := range []UserQuery{{Order: "password_hash"}, {Order: "id; DROP TABLE users"}, {Limit: -1}, {Offset: -1}} {
		if _, err := s.ListUsers(ctx, q); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: err = %v; want ErrInvalid", q, err)
		}
	}
}

func testUserCallRecord(t *testing.T, s UserStore) {
	ctx := tctx(t)
	u := mustUser(t, s, User{TenantUUID: tenantA, Firstname: "A", CallRecordIncomingExternal: true})
	get := func() User {
		t.Helper()
		g, err := s.UserByUUID(ctx, u.UUID)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	// Partly on: *26 turns everything on, then everything off.
	for i, want := range []bool{true, false, true} {
		on, err := s.ToggleCallRecord(ctx, u.UUID)
		if err != nil || on != want {
			t.Fatalf("toggle %d = %v, %v; want %v", i, on, err, want)
		}
		g := get()
		if g.CallRecordEnabled() != want || g.CallRecordIncomingExternal != want || g.CallRecordOutgoingInternal != want {
			t.Fatalf("toggle %d: flags %+v; want all %v", i, g, want)
		}
	}
	if err := s.SetCallRecord(ctx, u.UUID, false); err != nil || get().CallRecordEnabled() || get().CallRecordIncomingInternal {
		t.Fatalf("SetCallRecord(false): %v, %+v", err, get())
	}
	if _, err := s.ToggleCallRecord(ctx, NewUUID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("toggle of an unknown user: %v", err)
	}
	if err := s.SetCallRecord(ctx, NewUUID(), true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("set of an unknown user: %v", err)
	}
	// Concurrent toggles are serialised: an even number leaves it off.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.ToggleCallRecord(ctx, u.UUID); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if get().CallRecordEnabled() {
		t.Fatalf("8 concurrent toggles from off left it on")
	}
}

func testFeatures(t *testing.T, s UserStore) {
	ctx := tctx(t)
	fs, err := s.Features(ctx)
	if err != nil || len(fs) != 1 {
		t.Fatalf("Features = %+v, %v; want the seeded callrecord", fs, err)
	}
	cr := fs[0]
	if cr.Feature != FeatureCallRecord || cr.Exten != "*26" || cr.Context != FeaturesContext || !cr.Enabled || len(cr.UUID) != 36 {
		t.Fatalf("seeded feature %+v", cr)
	}
	if f, err := s.FeatureByExten(ctx, "*26"); err != nil || f != cr {
		t.Fatalf("FeatureByExten(*26) = %+v, %v", f, err)
	}
	cr.Enabled = false
	if err := s.UpdateFeature(ctx, cr); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FeatureByExten(ctx, "*26"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a disabled feature is still routable: %v", err)
	}
	cr.Enabled, cr.Exten = true, "*99"
	if err := s.UpdateFeature(ctx, cr); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FeatureByExten(ctx, "*26"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the old code still routes: %v", err)
	}
	if f, err := s.Feature(ctx, cr.UUID); err != nil || f != cr {
		t.Fatalf("Feature = %+v, %v; want %+v", f, err, cr)
	}
	if err := s.UpdateFeature(ctx, Feature{UUID: NewUUID(), Exten: "*1"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of an unknown feature: %v", err)
	}
	if _, err := s.Feature(ctx, NewUUID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown feature: %v", err)
	}
	other, err := s.CreateFeature(ctx, Feature{Exten: "*10", Feature: "phonestatus", Enabled: true})
	if err != nil || other.Context != FeaturesContext || len(other.UUID) != 36 {
		t.Fatalf("CreateFeature = %+v, %v", other, err)
	}
	for _, f := range []Feature{{Exten: "*99", Feature: "x"}, {Exten: "*11", Feature: "phonestatus"}, {UUID: other.UUID, Exten: "*12", Feature: "y"}} {
		if _, err := s.CreateFeature(ctx, f); !errors.Is(err, ErrConflict) {
			t.Errorf("CreateFeature(%+v): %v; want ErrConflict", f, err)
		}
	}
	if _, err := s.CreateFeature(ctx, Feature{Feature: "z"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("CreateFeature without exten: %v", err)
	}
	other.Exten = "*99"
	if err := s.UpdateFeature(ctx, other); !errors.Is(err, ErrConflict) {
		t.Fatalf("moving a feature onto a used exten: %v; want ErrConflict", err)
	}
	if err := s.(*sqlStore).w.QueryRowContext(ctx, `DELETE FROM feature_extensions WHERE feature = 'phonestatus' RETURNING feature`).Scan(new(string)); err != nil {
		t.Fatal(err)
	}
	// Seeding again (a restart) keeps the operator's change.
	if err := s.(*sqlStore).seedFeatures(ctx); err != nil {
		t.Fatal(err)
	}
	if fs, _ := s.Features(ctx); len(fs) != 1 || fs[0].Exten != "*99" {
		t.Fatalf("after a second seed: %+v", fs)
	}
}

func testTokens(t *testing.T, s UserStore) {
	ctx := tctx(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	live := Token{Hash: "aa", AuthID: "admin", TenantUUID: tenantA, Admin: true, ACL: `["#"]`, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	old := Token{Hash: "bb", AuthID: "u", UserUUID: "u", IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}
	for _, tk := range []Token{live, old} {
		if err := s.PutToken(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutToken(ctx, live); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate token: %v", err)
	}
	got, err := s.TokenByHash(ctx, "aa")
	if err != nil || !got.ExpiresAt.Equal(live.ExpiresAt) || got.ACL != live.ACL || !got.Admin || got.TenantUUID != tenantA {
		t.Fatalf("TokenByHash = %+v, %v; want %+v", got, err, live)
	}
	if n, err := s.DeleteExpiredTokens(ctx, now); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredTokens = %d, %v; want 1", n, err)
	}
	if _, err := s.TokenByHash(ctx, "bb"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired token kept: %v", err)
	}
	if err := s.DeleteToken(ctx, "aa"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteToken(ctx, "aa"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if err := s.PutToken(ctx, Token{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty token: %v", err)
	}
}
