package meta

import (
	"testing"
	"time"
)

// testRegistrations: the location store replaces a user's contacts as a
// whole, lists only unexpired ones and prunes the expired.
func testRegistrations(t *testing.T, st Store) {
	s, ok := st.(Registrations)
	if !ok {
		t.Fatalf("%T has no location store", st)
	}
	ctx := tctx(t)
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	a := Registration{Username: "1001", Contact: "sip:1001@127.0.0.1:5071", Expires: now.Add(time.Hour), CallID: "c1", CSeq: 7,
		Source: "127.0.0.1:5071", Transport: "udp", UserAgent: "baresip", Node: "n1"}
	b := a
	b.Contact, b.Expires = "sip:1001@127.0.0.1:5072", now.Add(time.Minute)
	c := Registration{Username: "1002", Contact: "sip:1002@10.0.0.2", Expires: now.Add(-time.Second)}
	if err := s.ReplaceRegistrations(ctx, map[string][]Registration{"1001": []Registration{a, b}}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceRegistrations(ctx, map[string][]Registration{"1002": []Registration{c}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ActiveRegistrations(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("active = %+v, want 1001's two (1002's expired)", got)
	}
	// Replacing drops what is not in the new set.
	if err := s.ReplaceRegistrations(ctx, map[string][]Registration{"1001": []Registration{b}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ActiveRegistrations(ctx, now); len(got) != 1 || got[0].Contact != b.Contact {
		t.Fatalf("after replace: %+v", got)
	}
	if err := s.ReplaceRegistrations(ctx, map[string][]Registration{"1001": []Registration{c}}); err == nil {
		t.Fatal("another user's registration accepted")
	}
	n, err := s.PruneRegistrations(ctx, now.Add(2*time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("pruned %d, %v; want 2 (1002's and b)", n, err)
	}
	if err := s.ReplaceRegistrations(ctx, map[string][]Registration{"1001": nil}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ActiveRegistrations(ctx, now); len(got) != 0 {
		t.Fatalf("after unregister: %+v", got)
	}
}

// testPolicyFields: a policy recording's tenant, direction and owners are
// stored and read back, and an update keeps them.
func testPolicyFields(t *testing.T, s Store) {
	acc := mustAccount(t, s, "wazo")
	r := sampleRec(acc.Sid, 1)
	r.Source, r.TenantUUID, r.Direction, r.Owners = SourcePolicy, "tenant-1", "internal", "uuid-a,uuid-b"
	mustPut(t, s, r)
	got, err := s.Recording(tctx(t), acc.Sid, r.Sid)
	if err != nil {
		t.Fatal(err)
	}
	if got.TenantUUID != "tenant-1" || got.Direction != "internal" || got.Owners != "uuid-a,uuid-b" {
		t.Fatalf("read back %q %q %q", got.TenantUUID, got.Direction, got.Owners)
	}
	got.Status = StatusCompleted
	got.DateCreated = time.Time{}
	mustPut(t, s, got)
	again, _ := s.Recording(tctx(t), acc.Sid, r.Sid)
	if again.Owners != "uuid-a,uuid-b" || again.Direction != "internal" {
		t.Fatalf("after update %q %q", again.Direction, again.Owners)
	}
}
