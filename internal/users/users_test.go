package users

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tapedeck/tapedeck/internal/store/meta"
)

const tenant = "11111111-1111-4111-8111-111111111111"

// newService opens a real SQLite catalog in a temporary directory.
func newService(t testing.TB) *Service {
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
	s := New(us)
	s.BcryptCost = bcrypt.MinCost
	return s
}

func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestServiceGetByIDOrUUID(t *testing.T) {
	s, ctx := newService(t), tctx(t)
	u, err := s.Create(ctx, User{TenantUUID: tenant, Firstname: "Ada", Exten: "1001"})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{strconv.FormatInt(u.ID, 10), u.UUID} {
		if got, err := s.Get(ctx, key); err != nil || got.UUID != u.UUID {
			t.Errorf("Get(%q) = %+v, %v", key, got, err)
		}
	}
	for _, key := range []string{"", "999", meta.NewUUID(), "not-a-uuid"} {
		if _, err := s.Get(ctx, key); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q): %v; want ErrNotFound", key, err)
		}
	}
	if got, err := s.ByExten(ctx, "default", "1001"); err != nil || got.UUID != u.UUID {
		t.Errorf("ByExten = %+v, %v", got, err)
	}
}

func TestServiceValidate(t *testing.T) {
	s, ctx := newService(t), tctx(t)
	for _, tc := range []struct {
		u     User
		field string
	}{
		{User{Exten: "10a1"}, "exten"},
		{User{Exten: "_1XX"}, "exten"}, // a pattern is no user's number
		{User{Context: "de fault"}, "context"},
		{User{SIPUsername: "a b", SIPPassword: "x"}, "sip_username"},
		{User{SIPUsername: "ab"}, "sip_password"},
		{User{Email: "nope"}, "email"},
	} {
		tc.u.TenantUUID = tenant
		_, err := s.Create(ctx, tc.u)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, ErrInvalid) {
			t.Errorf("Create(%+v) = %v; want a FieldError on %s", tc.u, err, tc.field)
		}
	}
}

func TestServiceUpdatePartial(t *testing.T) {
	s, ctx := newService(t), tctx(t)
	u, err := s.Create(ctx, User{TenantUUID: tenant, Firstname: "Ada", Lastname: "L", Exten: "1001", OnlineCallRecord: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Update(ctx, u.UUID, func(x *User) error {
		x.SetCallRecord(true)
		x.ID, x.UUID, x.TenantUUID = 99, "other", "other" // ignored
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := s.GetByUUID(ctx, u.UUID)
	if stored != got || !got.CallRecordEnabled() || got.Firstname != "Ada" || !got.OnlineCallRecord || got.ID != u.ID || got.TenantUUID != tenant {
		t.Fatalf("after update %+v (stored %+v)", got, stored)
	}
	if _, err := s.Update(ctx, u.UUID, func(x *User) error { x.Exten = "x"; return nil }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid update: %v", err)
	}
	boom := errors.New("boom")
	if _, err := s.Update(ctx, u.UUID, func(*User) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("change error: %v", err)
	}
	if _, err := s.Update(ctx, meta.NewUUID(), func(*User) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
}

func TestServiceAuthenticate(t *testing.T) {
	s, ctx := newService(t), tctx(t)
	h, err := s.HashPassword("s3cret!")
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.Create(ctx, User{TenantUUID: tenant, Firstname: "Ada", Username: "ada", PasswordHash: h})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, User{TenantUUID: tenant, Firstname: "NoPass", Username: "nopass"}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Authenticate(ctx, "ada", "s3cret!"); err != nil || got.UUID != u.UUID {
		t.Fatalf("Authenticate = %+v, %v", got, err)
	}
	for _, c := range [][2]string{{"ada", "wrong"}, {"ada", ""}, {"bob", "s3cret!"}, {"nopass", ""}, {"", ""}} {
		if _, err := s.Authenticate(ctx, c[0], c[1]); !errors.Is(err, ErrBadPassword) {
			t.Errorf("Authenticate(%q, %q): %v; want ErrBadPassword", c[0], c[1], err)
		}
	}
}

func TestServiceFeatures(t *testing.T) {
	s, ctx := newService(t), tctx(t)
	f, ok, err := s.FeatureByExten(ctx, "*26")
	if err != nil || !ok || f.Feature != FeatureCallRecord {
		t.Fatalf("*26 = %+v %v %v; want callrecord", f, ok, err)
	}
	if _, ok, err := s.FeatureByExten(ctx, "*27"); ok || err != nil {
		t.Fatalf("*27 routable: %v %v", ok, err)
	}
	f.Exten = "26" + "*a"
	if err := s.UpdateFeature(ctx, f); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad exten: %v", err)
	}
	f.Exten, f.Enabled = "*99", false
	if err := s.UpdateFeature(ctx, f); err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{"*26", "*99"} {
		if _, ok, _ := s.FeatureByExten(ctx, code); ok {
			t.Errorf("%s routable after moving to *99 and disabling", code)
		}
	}
}

// BenchmarkByExten is the per-call lookup of the callee by extension on
// SQLite, among 10,000 users.
func BenchmarkByExten(b *testing.B) {
	s, ctx := newService(b), context.Background()
	const n = 10000
	for i := range n {
		if _, err := s.Create(ctx, User{TenantUUID: tenant, Firstname: "u", Exten: strconv.Itoa(10000 + i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := s.ByExten(ctx, "default", strconv.Itoa(10000+i%n)); err != nil {
			b.Fatal(fmt.Errorf("lookup %d: %w", i, err))
		}
	}
}
