package meta

import (
	"errors"
	"testing"
	"time"
)

// testSoftDelete: a soft-deleted recording leaves the listings and Recording,
// is found by DeletedRecording and by listings that include deleted ones
// (status deleted, counted, paged by offset and AfterSid across both
// tables), leaves an audit row, and is forgotten by PurgeDeleted (the
// audit row stays).
func testSoftDelete(t *testing.T, s Store) {
	ctx := tctx(t)
	a := mustAccount(t, s, "soft")
	other := mustAccount(t, s, "soft-other")
	var recs []Recording
	for i := range 5 {
		r := sampleRec(a.Sid, i)
		mustPut(t, s, r)
		recs = append(recs, r)
	}
	audit := Audit{AccountSid: a.Sid, RecordingSid: recs[1].Sid, Action: AuditDelete, Actor: a.Sid, API: "twilio", Remote: "127.0.0.1:1234"}
	if err := s.SoftDeleteRecording(ctx, other.Sid, recs[1].Sid, audit); !errors.Is(err, ErrNotFound) {
		t.Fatalf("soft delete from another account: %v, want ErrNotFound", err)
	}
	if err := s.SoftDeleteRecording(ctx, a.Sid, recs[1].Sid, audit); err != nil {
		t.Fatal(err)
	}
	if err := s.SoftDeleteRecording(ctx, a.Sid, recs[1].Sid, audit); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second soft delete: %v, want ErrNotFound", err)
	}
	if _, err := s.Recording(ctx, a.Sid, recs[1].Sid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Recording after soft delete: %v", err)
	}
	got, err := s.DeletedRecording(ctx, a.Sid, recs[1].Sid)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusDeleted || got.CallSid != recs[1].CallSid || got.Duration != recs[1].Duration {
		t.Errorf("deleted row: %+v", got)
	}
	if _, err := s.DeletedRecording(ctx, other.Sid, recs[1].Sid); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted row from another account: %v", err)
	}

	p, err := s.ListRecordings(ctx, Query{AccountSid: a.Sid})
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 4 || len(p.Items) != 4 {
		t.Errorf("live listing: total %d, %d items", p.Total, len(p.Items))
	}
	all := []string{recs[4].Sid, recs[3].Sid, recs[2].Sid, recs[1].Sid, recs[0].Sid}
	p, err = s.ListRecordings(ctx, Query{AccountSid: a.Sid, IncludeDeleted: true, Desc: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 5 || !equalStrings(sids(p.Items), all) || p.Items[3].Status != StatusDeleted {
		t.Errorf("listing with deleted: total %d, %v, want %v", p.Total, sids(p.Items), all)
	}
	// Pages of two, by offset and by AfterSid, across both tables.
	for off := 0; off < 5; off += 2 {
		p, err := s.ListRecordings(ctx, Query{AccountSid: a.Sid, IncludeDeleted: true, Desc: true, Limit: 2, Offset: off})
		if err != nil {
			t.Fatal(err)
		}
		if want := all[off:min(off+2, 5)]; !equalStrings(sids(p.Items), want) {
			t.Errorf("offset %d: %v, want %v", off, sids(p.Items), want)
		}
	}
	p, err = s.ListRecordings(ctx, Query{AccountSid: a.Sid, IncludeDeleted: true, Desc: true, Limit: 2, AfterSid: recs[2].Sid})
	if err != nil {
		t.Fatal(err)
	}
	if want := all[3:5]; !equalStrings(sids(p.Items), want) {
		t.Errorf("after %s: %v, want %v", recs[2].Sid, sids(p.Items), want)
	}
	p, err = s.ListRecordings(ctx, Query{AccountSid: a.Sid, IncludeDeleted: true, Desc: true, Limit: 2, AfterSid: recs[1].Sid})
	if err != nil {
		t.Fatal(err)
	}
	if want := all[4:5]; !equalStrings(sids(p.Items), want) {
		t.Errorf("after the deleted %s: %v, want %v", recs[1].Sid, sids(p.Items), want)
	}

	trail, err := s.AuditTrail(ctx, a.Sid, recs[1].Sid)
	if err != nil {
		t.Fatal(err)
	}
	if len(trail) != 1 || trail[0].Action != AuditDelete || trail[0].Actor != a.Sid || trail[0].API != "twilio" ||
		trail[0].Remote != "127.0.0.1:1234" || time.Since(trail[0].At) > time.Minute {
		t.Errorf("audit trail: %+v", trail)
	}
	if n, err := s.PurgeDeleted(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Errorf("purge of older ones: %d, %v", n, err)
	}
	if n, err := s.PurgeDeleted(ctx, time.Now().Add(time.Minute)); err != nil || n != 1 {
		t.Errorf("purge: %d, %v", n, err)
	}
	if _, err := s.DeletedRecording(ctx, a.Sid, recs[1].Sid); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted row after purge: %v", err)
	}
	if trail, err := s.AuditTrail(ctx, a.Sid, recs[1].Sid); err != nil || len(trail) != 1 {
		t.Errorf("audit trail after purge: %+v, %v", trail, err)
	}
}

// testFromTo: the From and To filters match the caller and callee numbers.
func testFromTo(t *testing.T, s Store) {
	ctx := tctx(t)
	a := mustAccount(t, s, "fromto")
	var want []string
	for i := range 6 {
		r := sampleRec(a.Sid, i)
		if i%3 == 0 {
			r.CallerNumber, r.CalledNumber = "alice", "bob"
			want = append(want, r.Sid)
		}
		mustPut(t, s, r)
	}
	for _, q := range []Query{{From: "alice"}, {To: "bob"}, {From: "alice", To: "bob"}} {
		q.AccountSid = a.Sid
		p, err := s.ListRecordings(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if p.Total != 2 || !equalStrings(sids(p.Items), want) {
			t.Errorf("%+v: total %d, %v, want %v", q, p.Total, sids(p.Items), want)
		}
	}
	p, err := s.ListRecordings(ctx, Query{AccountSid: a.Sid, From: "bob"})
	if err != nil || p.Total != 0 {
		t.Errorf("From=bob: %d, %v", p.Total, err)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
