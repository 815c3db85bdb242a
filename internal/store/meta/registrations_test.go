package meta

import (
	"testing"
	"time"
)

// testRegistrations: the location store applies a node's changes (bind,
// refresh, unbind one contact, unbind all) without touching the contacts
// it was not told about (another node's), lists only unexpired ones and
// prunes the expired.
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
	b.Contact, b.Expires, b.Node = "sip:1001@127.0.0.1:5072", now.Add(time.Minute), "n2"
	c := Registration{Username: "1002", Contact: "sip:1002@10.0.0.2", Expires: now.Add(-time.Second)}
	apply := func(chs ...RegistrationChange) {
		t.Helper()
		if err := s.ApplyRegistrations(ctx, chs); err != nil {
			t.Fatal(err)
		}
	}
	// Node n1 binds a, node n2 binds b for the same user: both are kept.
	apply(RegistrationChange{Username: "1001", Upsert: []Registration{a}})
	apply(RegistrationChange{Username: "1001", Upsert: []Registration{b}}, RegistrationChange{Username: "1002", Upsert: []Registration{c}})
	got, err := s.ActiveRegistrations(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("active = %+v, want 1001's two (1002's expired)", got)
	}
	// A refresh through n2 of a's contact takes it over.
	a2 := a
	a2.Expires, a2.CSeq, a2.Node = now.Add(2*time.Hour), 8, "n2"
	apply(RegistrationChange{Username: "1001", Upsert: []Registration{a2}})
	if got, _ := s.UserRegistrations(ctx, "1001", now); len(got) != 2 || got[0] != a2 || got[1] != b {
		t.Fatalf("after the refresh: %+v", got)
	}
	// n1 unbinding a removes a only.
	apply(RegistrationChange{Username: "1001", Remove: []string{a.Contact}})
	if got, _ := s.UserRegistrations(ctx, "1001", now); len(got) != 1 || got[0] != b {
		t.Fatalf("after unbinding a: %+v", got)
	}
	if err := s.ApplyRegistrations(ctx, []RegistrationChange{{Username: "1001", Upsert: []Registration{c}}}); err == nil {
		t.Fatal("another user's registration accepted")
	}
	if got, _ := s.UserRegistrations(ctx, "1002", now); len(got) != 0 {
		t.Fatalf("1002's expired contact listed: %+v", got)
	}
	n, err := s.PruneRegistrations(ctx, now.Add(2*time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("pruned %d, %v; want 2 (1002's and b)", n, err)
	}
	// Contact: * clears every node's contacts, then binds what follows.
	apply(RegistrationChange{Username: "1001", Upsert: []Registration{a, b}})
	apply(RegistrationChange{Username: "1001", ClearAll: true})
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

// testNoDuplicateCallerColumns: recordings keep the caller and callee in
// caller_number and called_number only (00004's duplicates are dropped).
func testNoDuplicateCallerColumns(t *testing.T, s Store) {
	db := s.(*sqlStore).w
	ctx := tctx(t)
	if _, err := db.ExecContext(ctx, `SELECT caller_number, called_number FROM recordings`); err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{"caller", "callee"} {
		if _, err := db.ExecContext(ctx, `SELECT `+col+` FROM recordings`); err == nil {
			t.Errorf("recordings still has the column %s", col)
		}
	}
}
