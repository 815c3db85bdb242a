package meta

// storetest: the conformance suite every Store implementation passes. Each
// backend's test calls runStoreTests with a function that opens a fresh,
// empty store.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

type openFunc func(t testing.TB) Store

func runStoreTests(t *testing.T, open openFunc) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"Accounts", testAccounts},
		{"DefaultAccountConcurrent", testDefaultAccountConcurrent},
		{"DefaultAccountPromotes", testDefaultAccountPromotes},
		{"RecordingCRUD", testRecordingCRUD},
		{"RecordingUpdate", testRecordingUpdate},
		{"Names", testNames},
		{"PutRecordingsAtomic", testPutRecordingsAtomic},
		{"Isolation", testIsolation},
		{"ListCombinations", testListCombinations},
		{"ListBoundaries", testListBoundaries},
		{"ListArguments", testListArguments},
		{"Injection", testInjection},
		{"ConcurrentWriters", testConcurrentWriters},
		{"StatusDetailAndInProgress", testStatusDetailAndInProgress},
		{"Stored", testStored},
		{"Registrations", testRegistrations},
		{"SoftDelete", testSoftDelete},
		{"FromTo", testFromTo},
		{"PolicyFields", testPolicyFields},
		{"NoDuplicateCallerColumns", testNoDuplicateCallerColumns},
		{"CDRs", testCDRs},
		{"PutRecordingCDR", testPutRecordingCDR},
		{"RecordingNameClaims", testRecordingNameClaims},
		{"PageFilters", testPageFilters},
		{"OutboxClaims", testOutboxClaims},
		{"OutboxDirectClaims", testOutboxDirectClaims},
		{"Quality", testQuality},
		{"LiveStatus", testLiveStatus},
		{"SetChecksum", testSetChecksum},
		{"StartRecording", testStartRecording},
		{"Owners", testOwners},
		{"StatusCallback", testStatusCallback},
		{"StartKeepsCallbackAndEndReason", testStartKeepsCallbackAndEndReason},
		{"SettleLostQueuesInOneTransaction", testSettleLostQueuesInOneTransaction},
		{"PutFinalQueuesInOneTransaction", testPutFinalQueuesInOneTransaction},
		{"LostNodeReturnsAfterSettle", testLostNodeReturnsAfterSettle},
		{"StatusCallbackQueuesInOneTransaction", testStatusCallbackQueuesInOneTransaction},
		{"NoteLiveQueuesInOneTransaction", testNoteLiveQueuesInOneTransaction},
		{"OutboxOrder", testOutboxOrder},
		{"Ping", testPing},
		{"WindowDurationPlan", testWindowDurationPlan},
		{"KeptCounts", testKeptCounts},
		{"FlipOffset", testFlipOffset},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			tc.fn(t, s)
		})
	}
}

// tctx is a test's context. Its deadline only guards against a hang: under
// -race on a loaded CI machine the transpiled SQLite is some 35 times slower,
// and testOwners' few hundred queries took 130 s there, past a 2-minute bound.
func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustAccount(t testing.TB, s Store, name string) Account {
	t.Helper()
	a, err := s.CreateAccount(tctx(t), name)
	if err != nil {
		t.Fatalf("CreateAccount(%q): %v", name, err)
	}
	return a
}

func mustPut(t testing.TB, s Store, r Recording) {
	t.Helper()
	if err := s.PutRecording(tctx(t), r); err != nil {
		t.Fatalf("PutRecording(%s): %v", r.Sid, err)
	}
}

// normRec is r as a store gives it back.
func normRec(r Recording) Recording {
	r.DateCreated, r.DateUpdated, r.StartTime = normTime(r.DateCreated), normTime(r.DateUpdated), normTime(r.StartTime)
	if r.ApiVersion == "" {
		r.ApiVersion = APIVersion
	}
	return r
}

func sameRec(a, b Recording) bool {
	if !a.DateCreated.Equal(b.DateCreated) || !a.DateUpdated.Equal(b.DateUpdated) || !a.StartTime.Equal(b.StartTime) {
		return false
	}
	a.DateCreated, a.DateUpdated, a.StartTime = time.Time{}, time.Time{}, time.Time{}
	b.DateCreated, b.DateUpdated, b.StartTime = time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(a.Quality, b.Quality) {
		return false
	}
	a.Quality, b.Quality = nil, nil
	return a == b
}

func checkRec(t testing.TB, got, want Recording) {
	t.Helper()
	if !sameRec(got, want) {
		t.Fatalf("recording mismatch\n got %+v\nwant %+v", got, want)
	}
	for _, tm := range []time.Time{got.DateCreated, got.DateUpdated, got.StartTime} {
		if tm.Location() != time.UTC {
			t.Fatalf("time %v not in UTC", tm)
		}
	}
}

var t0 = time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)

func sampleRec(acct string, i int) Recording {
	dc := t0.Add(time.Duration(i)*time.Minute + 123456789*time.Nanosecond)
	return Recording{
		Sid: NewRecordingSid(), AccountSid: acct, CallSid: fmt.Sprintf("CA%032x", i%5),
		DateCreated: dc, DateUpdated: dc.Add(time.Second), StartTime: dc.Add(-time.Duration(i) * time.Second),
		Duration: float64(i) + 0.25, Channels: 1 + i%2, Format: "wav", Size: int64(1000 * i),
		SHA256: strings.Repeat("ab", 32), Source: SourceARI, Status: StatusCompleted,
		Name: fmt.Sprintf("rec-%s-%d", acct[len(acct)-6:], i), FilePath: fmt.Sprintf("2024/03/10/rec-%d.wav", i),
		S3URI: "", CallerNumber: "+15551230000", CalledNumber: "+15559870000", ApiVersion: APIVersion,
		StatusDetail: []string{"", "Disk full: no space left on device (écrit 3 s)"}[i%2],
		Node:         []string{"", "aa:bb:cc:dd:ee:ff"}[i%2],
	}
}

// ------------------------------------------------------------ accounts

func testAccounts(t *testing.T, s Store) {
	ctx := tctx(t)
	if as, err := s.ListAccounts(ctx); err != nil || len(as) != 0 {
		t.Fatalf("ListAccounts on an empty store = %v, %v", as, err)
	}
	alice := mustAccount(t, s, "alice")
	bob := mustAccount(t, s, "bob")
	if !IsAccountSid(alice.Sid) || len(alice.AuthToken) != 32 || alice.Default || alice.Name != "alice" {
		t.Fatalf("bad account %+v", alice)
	}
	if alice.Sid == bob.Sid || alice.AuthToken == bob.AuthToken {
		t.Fatal("Sids/tokens repeat")
	}
	if _, err := s.CreateAccount(ctx, "alice"); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate name: %v, want ErrConflict", err)
	}
	if _, err := s.CreateAccount(ctx, " "); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty name: %v, want ErrInvalid", err)
	}
	def, err := s.EnsureDefaultAccount(ctx)
	if err != nil || !def.Default || def.Name != "default" || !IsAccountSid(def.Sid) {
		t.Fatalf("EnsureDefaultAccount = %+v, %v", def, err)
	}
	def2, err := s.EnsureDefaultAccount(ctx)
	if err != nil || def2 != def {
		t.Fatalf("second EnsureDefaultAccount = %+v, %v; want %+v", def2, err, def)
	}
	as, err := s.ListAccounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range as {
		names = append(names, a.Name)
	}
	if want := []string{"default", "alice", "bob"}; !slices.Equal(names, want) {
		t.Fatalf("ListAccounts order %v, want %v", names, want)
	}
	if as[1] != alice || as[2] != bob {
		t.Fatalf("ListAccounts = %+v; want alice %+v bob %+v", as, alice, bob)
	}
	if a, err := s.Account(ctx, alice.Sid); err != nil || a != alice {
		t.Fatalf("Account = %+v, %v; want %+v", a, err, alice)
	}
	if a, err := s.AccountByName(ctx, "bob"); err != nil || a != bob {
		t.Fatalf("AccountByName = %+v, %v", a, err)
	}
	if _, err := s.Account(ctx, NewAccountSid()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown Account: %v", err)
	}
	if _, err := s.AccountByName(ctx, "carol"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown AccountByName: %v", err)
	}

	// Authenticate.
	if a, err := s.Authenticate(ctx, alice.Sid, alice.AuthToken); err != nil || a != alice {
		t.Fatalf("Authenticate = %+v, %v", a, err)
	}
	for _, c := range []struct{ sid, tok string }{
		{alice.Sid, bob.AuthToken}, {alice.Sid, ""}, {alice.Sid, strings.ToUpper(alice.AuthToken)},
		{alice.Sid, alice.AuthToken + "0"}, {NewAccountSid(), alice.AuthToken}, {"", ""},
		{"' OR '1'='1", "' OR '1'='1"},
	} {
		if _, err := s.Authenticate(ctx, c.sid, c.tok); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("Authenticate(%q, %q) = %v, want ErrUnauthorized", c.sid, c.tok, err)
		}
	}

	// RotateToken.
	rot, err := s.RotateToken(ctx, alice.Sid)
	if err != nil {
		t.Fatal(err)
	}
	if rot.AuthToken == alice.AuthToken || len(rot.AuthToken) != 32 || rot.Sid != alice.Sid || rot.Name != "alice" {
		t.Fatalf("RotateToken = %+v (old %+v)", rot, alice)
	}
	if _, err := s.Authenticate(ctx, alice.Sid, alice.AuthToken); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("old token after rotation: %v, want ErrUnauthorized", err)
	}
	if a, err := s.Authenticate(ctx, alice.Sid, rot.AuthToken); err != nil || a != rot {
		t.Fatalf("new token: %+v, %v", a, err)
	}
	if a, _ := s.Account(ctx, alice.Sid); a.AuthToken != rot.AuthToken {
		t.Fatal("Account does not show the rotated token")
	}
	if _, err := s.Authenticate(ctx, bob.Sid, bob.AuthToken); err != nil {
		t.Fatalf("rotation touched bob: %v", err)
	}
	if _, err := s.RotateToken(ctx, NewAccountSid()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RotateToken(unknown) = %v", err)
	}
}

func testDefaultAccountConcurrent(t *testing.T, s Store) {
	ctx := tctx(t)
	var wg sync.WaitGroup
	got := make([]Account, 8)
	errs := make([]error, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = s.EnsureDefaultAccount(ctx)
		}()
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i] != got[0] || !got[i].Default {
			t.Fatalf("EnsureDefaultAccount #%d = %+v, %v; #0 = %+v", i, got[i], errs[i], got[0])
		}
	}
	as, err := s.ListAccounts(ctx)
	if err != nil || len(as) != 1 {
		t.Fatalf("ListAccounts = %v, %v; want one default account", as, err)
	}
}

func testDefaultAccountPromotes(t *testing.T, s Store) {
	ctx := tctx(t)
	// An ordinary account named "default" becomes the default account.
	a := mustAccount(t, s, "other")
	d := mustAccount(t, s, "default")
	got, err := s.EnsureDefaultAccount(ctx)
	if err != nil || got.Sid != d.Sid || !got.Default {
		t.Fatalf("EnsureDefaultAccount = %+v, %v; want %+v promoted", got, err, d)
	}
	as, err := s.ListAccounts(ctx)
	if err != nil || len(as) != 2 || as[0].Sid != d.Sid || as[1].Sid != a.Sid {
		t.Fatalf("ListAccounts = %+v, %v", as, err)
	}
}

// ---------------------------------------------------------- recordings

func testRecordingCRUD(t *testing.T, s Store) {
	ctx := tctx(t)
	a := mustAccount(t, s, "a")
	r := sampleRec(a.Sid, 7)
	r.DateCreated = r.DateCreated.In(time.FixedZone("X", 5*3600)) // stored as UTC
	r.S3URI = "s3://bucket/key"
	mustPut(t, s, r)
	got, err := s.Recording(ctx, a.Sid, r.Sid)
	if err != nil {
		t.Fatal(err)
	}
	checkRec(t, got, normRec(r))
	if got.DateCreated.Nanosecond()%1000 != 0 || got.DateCreated.Nanosecond() == 0 {
		t.Fatalf("DateCreated %v: want microsecond precision", got.DateCreated)
	}
	if byName, err := s.RecordingByName(ctx, r.Name); err != nil || !sameRec(byName, got) {
		t.Fatalf("RecordingByName = %+v, %v", byName, err)
	}

	// Defaults: zero times become now, zero StartTime stays zero (NULL),
	// empty ApiVersion becomes APIVersion.
	before := time.Now().Add(-time.Second)
	m := Recording{Sid: NewRecordingSid(), AccountSid: a.Sid, Status: StatusInProgress, Source: SourceCommand}
	mustPut(t, s, m)
	gm, err := s.Recording(ctx, a.Sid, m.Sid)
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now().Add(time.Second)
	if gm.DateCreated.Before(before) || gm.DateCreated.After(after) || !gm.DateUpdated.Equal(gm.DateCreated) ||
		!gm.StartTime.IsZero() || gm.ApiVersion != APIVersion || gm.Name != "" || gm.Status != StatusInProgress {
		t.Fatalf("defaults: %+v", gm)
	}

	if err := s.PutRecording(ctx, Recording{AccountSid: a.Sid}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Put without Sid: %v", err)
	}
	if err := s.PutRecording(ctx, Recording{Sid: NewRecordingSid()}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Put without AccountSid: %v", err)
	}
	if err := s.PutRecording(ctx, sampleRec(NewAccountSid(), 1)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Put for unknown account: %v, want ErrInvalid", err)
	}

	// Delete.
	if err := s.DeleteRecording(ctx, a.Sid, r.Sid); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recording(ctx, a.Sid, r.Sid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := s.DeleteRecording(ctx, a.Sid, r.Sid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.RecordingByName(ctx, r.Name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RecordingByName after delete: %v", err)
	}
	if _, err := s.Recording(ctx, a.Sid, m.Sid); err != nil {
		t.Fatalf("delete removed another row: %v", err)
	}
}

func testRecordingUpdate(t *testing.T, s Store) {
	ctx := tctx(t)
	a := mustAccount(t, s, "a")
	r := sampleRec(a.Sid, 3)
	r.Status = StatusInProgress
	mustPut(t, s, r)

	// Full update with explicit, later DateUpdated: everything as given.
	u := r
	u.Status, u.Duration, u.Size, u.SHA256 = StatusCompleted, 42.125, 336000, strings.Repeat("cd", 32)
	u.CallSid, u.FilePath, u.S3URI, u.Format, u.Channels = "CAother", "x/y.mp3", "s3://b/k", "mp3", 2
	u.DateCreated = r.DateCreated.Add(time.Hour)
	u.DateUpdated = r.DateUpdated.Add(2 * time.Hour)
	mustPut(t, s, u)
	got, err := s.Recording(ctx, a.Sid, r.Sid)
	if err != nil {
		t.Fatal(err)
	}
	checkRec(t, got, normRec(u))

	// Stale copy with zero DateCreated: DateCreated kept, DateUpdated now.
	v := u
	v.DateCreated = time.Time{}
	v.DateUpdated = r.DateUpdated // older than stored
	v.Status = StatusRecovered
	before := time.Now().Add(-time.Second)
	mustPut(t, s, v)
	got, err = s.Recording(ctx, a.Sid, r.Sid)
	if err != nil {
		t.Fatal(err)
	}
	if !got.DateCreated.Equal(normTime(u.DateCreated)) || got.DateUpdated.Before(before) || got.Status != StatusRecovered {
		t.Fatalf("stale update: %+v", got)
	}
	p, err := s.ListRecordings(ctx, Query{AccountSid: a.Sid})
	if err != nil || p.Total != 1 || len(p.Items) != 1 {
		t.Fatalf("update made extra rows: %+v, %v", p, err)
	}
}

func testNames(t *testing.T, s Store) {
	ctx := tctx(t)
	a := mustAccount(t, s, "a")
	b := mustAccount(t, s, "b")
	r1 := sampleRec(a.Sid, 1)
	mustPut(t, s, r1)
	r2 := sampleRec(b.Sid, 2)
	r2.Name = r1.Name // names are unique across accounts (per node)
	if err := s.PutRecording(ctx, r2); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate name: %v, want ErrConflict", err)
	}
	r2.Name = r1.Name + "-2"
	mustPut(t, s, r2)
	r2.Name = r1.Name // renaming onto a taken name
	if err := s.PutRecording(ctx, r2); !errors.Is(err, ErrConflict) {
		t.Fatalf("rename onto a taken name: %v, want ErrConflict", err)
	}
	// Empty names do not collide.
	for range 3 {
		e := sampleRec(a.Sid, 9)
		e.Name = ""
		mustPut(t, s, e)
	}
	if _, err := s.RecordingByName(ctx, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RecordingByName(\"\"): %v", err)
	}
	if err := s.DeleteRecordingByName(ctx, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DeleteRecordingByName(\"\"): %v", err)
	}
	if got, err := s.RecordingByName(ctx, r1.Name); err != nil || got.Sid != r1.Sid {
		t.Fatalf("RecordingByName = %+v, %v", got, err)
	}
	if err := s.DeleteRecordingByName(ctx, r1.Name); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRecordingByName(ctx, r1.Name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second DeleteRecordingByName: %v", err)
	}
	// The name is free again.
	r3 := sampleRec(b.Sid, 3)
	r3.Name = r1.Name
	mustPut(t, s, r3)
	p, err := s.ListRecordings(ctx, Query{AccountSid: a.Sid})
	if err != nil || p.Total != 3 {
		t.Fatalf("account a: %d rows, %v; want the 3 unnamed", p.Total, err)
	}
}

func testPutRecordingsAtomic(t *testing.T, s Store) {
	ctx := tctx(t)
	a := mustAccount(t, s, "a")
	var rs []Recording
	for i := range 20 {
		rs = append(rs, sampleRec(a.Sid, i))
	}
	bad := slices.Clone(rs)
	bad[15].Name = bad[3].Name
	if err := s.PutRecordings(ctx, bad); !errors.Is(err, ErrConflict) {
		t.Fatalf("batch with a duplicate name: %v", err)
	}
	if p, err := s.ListRecordings(ctx, Query{AccountSid: a.Sid}); err != nil || p.Total != 0 {
		t.Fatalf("failed batch left %d rows (%v)", p.Total, err)
	}
	if err := s.PutRecordings(ctx, rs); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRecordings(ctx, rs); err != nil { // upsert again: same rows
		t.Fatal(err)
	}
	if err := s.PutRecordings(ctx, nil); err != nil {
		t.Fatal(err)
	}
	p, err := s.ListRecordings(ctx, Query{AccountSid: a.Sid, Limit: 100})
	if err != nil || p.Total != 20 || len(p.Items) != 20 {
		t.Fatalf("batch: %d/%d rows, %v", len(p.Items), p.Total, err)
	}
	testPutRecordingsMixed(t, s)
	for i, r := range p.Items {
		want := normRec(rs[i])
		if !r.DateUpdated.After(want.DateUpdated) {
			t.Fatalf("second put of a stale copy kept DateUpdated %v", r.DateUpdated)
		}
		want.DateUpdated = r.DateUpdated // now, at the second put
		checkRec(t, r, want)
	}
}

// testPutRecordingsMixed: batches bigger than one statement, the same Sid
// twice in a batch (the later wins), rows without DateCreated (keep the
// stored one), and a row of another account (all rolled back).
func testPutRecordingsMixed(t *testing.T, s Store) {
	ctx := tctx(t)
	a := mustAccount(t, s, "mixed-a")
	b := mustAccount(t, s, "mixed-b")
	var rs []Recording
	for i := range 450 {
		rs = append(rs, sampleRec(a.Sid, i))
	}
	if err := s.PutRecordings(ctx, rs); err != nil {
		t.Fatal(err)
	}
	batch := slices.Clone(rs[:10])
	again := rs[3]
	again.Status, again.Duration = StatusFailed, 1.5
	batch = append(batch, again) // same Sid later in the batch
	keep := rs[5]
	keep.DateCreated, keep.Status = time.Time{}, StatusRecovered
	batch = append(batch, keep)
	fresh := sampleRec(a.Sid, 1000)
	fresh.DateCreated = time.Time{}
	batch = append(batch, fresh, sampleRec(a.Sid, 1001))
	if err := s.PutRecordings(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Recording(ctx, a.Sid, again.Sid); got.Status != StatusFailed || got.Duration != 1.5 {
		t.Fatalf("repeated Sid: the later copy should win: %+v", got)
	}
	if got, _ := s.Recording(ctx, a.Sid, keep.Sid); got.Status != StatusRecovered || !got.DateCreated.Equal(normTime(rs[5].DateCreated)) {
		t.Fatalf("zero DateCreated in a batch: %+v", got)
	}
	if got, err := s.Recording(ctx, a.Sid, fresh.Sid); err != nil || time.Since(got.DateCreated) > time.Minute {
		t.Fatalf("new row without DateCreated: %+v, %v", got, err)
	}
	if p, _ := s.ListRecordings(ctx, Query{AccountSid: a.Sid}); p.Total != 452 {
		t.Fatalf("Total %d, want 452", p.Total)
	}

	// A row of a's in b's batch: ErrConflict, nothing of the batch stays.
	var bad []Recording
	for i := range 300 {
		bad = append(bad, sampleRec(b.Sid, 5000+i))
	}
	stolen := rs[7]
	stolen.AccountSid = b.Sid
	bad[250] = stolen
	if err := s.PutRecordings(ctx, bad); !errors.Is(err, ErrConflict) {
		t.Fatalf("batch with another account's Sid: %v, want ErrConflict", err)
	}
	if p, _ := s.ListRecordings(ctx, Query{AccountSid: b.Sid}); p.Total != 0 {
		t.Fatalf("failed batch left %d rows", p.Total)
	}
	if got, _ := s.Recording(ctx, a.Sid, stolen.Sid); got.AccountSid != a.Sid {
		t.Fatalf("stolen row: %+v", got)
	}
	bad[250] = sampleRec(NewAccountSid(), 1)
	if err := s.PutRecordings(ctx, bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("batch with an unknown account: %v, want ErrInvalid", err)
	}
}

func testIsolation(t *testing.T, s Store) {
	ctx := tctx(t)
	a := mustAccount(t, s, "a")
	b := mustAccount(t, s, "b")
	ra := sampleRec(a.Sid, 1)
	rb := sampleRec(b.Sid, 1) // same CallSid and DateCreated as ra
	mustPut(t, s, ra)
	mustPut(t, s, rb)

	if _, err := s.Recording(ctx, b.Sid, ra.Sid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("b reads a's recording: %v, want ErrNotFound", err)
	}
	// RecordingBySid is the unscoped lookup (signed media URLs).
	if got, err := s.RecordingBySid(ctx, ra.Sid); err != nil || !sameRec(got, normRec(ra)) {
		t.Fatalf("RecordingBySid = %+v, %v", got, err)
	}
	if _, err := s.RecordingBySid(ctx, NewRecordingSid()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RecordingBySid(unknown) = %v", err)
	}
	if err := s.DeleteRecording(ctx, b.Sid, ra.Sid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("b deletes a's recording: %v, want ErrNotFound", err)
	}
	if _, err := s.Recording(ctx, a.Sid, ra.Sid); err != nil {
		t.Fatalf("a's recording after b's delete attempt: %v", err)
	}
	// b cannot take over a's Sid with PutRecording.
	steal := ra
	steal.AccountSid, steal.Name = b.Sid, "stolen"
	if err := s.PutRecording(ctx, steal); !errors.Is(err, ErrConflict) {
		t.Fatalf("PutRecording moving a Sid to another account: %v, want ErrConflict", err)
	}
	if got, _ := s.Recording(ctx, a.Sid, ra.Sid); !sameRec(got, normRec(ra)) {
		t.Fatalf("a's recording changed: %+v", got)
	}
	for _, q := range []Query{
		{AccountSid: b.Sid},
		{AccountSid: b.Sid, CallSid: ra.CallSid},
		{AccountSid: b.Sid, StartFrom: &ra.DateCreated, StartTo: &ra.DateCreated},
		{AccountSid: b.Sid, SortBy: SortCallSid, Desc: true},
	} {
		p, err := s.ListRecordings(ctx, q)
		if err != nil || p.Total != 1 || len(p.Items) != 1 || p.Items[0].Sid != rb.Sid {
			t.Fatalf("b's list %+v = %+v, %v", q, p, err)
		}
	}
	if _, err := s.ListRecordings(ctx, Query{AccountSid: b.Sid, AfterSid: ra.Sid}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("AfterSid of another account: %v, want ErrNotFound", err)
	}
	if p, err := s.ListRecordings(ctx, Query{AccountSid: NewAccountSid()}); err != nil || p.Total != 0 || len(p.Items) != 0 {
		t.Fatalf("unknown account lists %+v, %v", p, err)
	}
}

// ------------------------------------------------------------- listing

// listFixture loads account a with recordings whose DateCreated, Duration
// and CallSid values repeat (to exercise the Sid tie-break), plus account
// b with overlapping values. It returns a's recordings as stored.
func listFixture(t testing.TB, s Store) (a Account, recs []Recording) {
	a = mustAccount(t, s, "a")
	b := mustAccount(t, s, "b")
	rng := rand.New(rand.NewPCG(1, 2))
	calls := []string{"", "CA01", "CA02", "CA03", "CA10", "CAff", "ca01"}
	gen := func(acct string, n int) []Recording {
		var rs []Recording
		for i := range n {
			dc := t0.Add(time.Duration(rng.IntN(40)) * time.Hour)
			if i%3 == 0 {
				dc = dc.Add(time.Duration(rng.IntN(1000)) * time.Microsecond)
			}
			rs = append(rs, Recording{
				Sid: NewRecordingSid(), AccountSid: acct, CallSid: calls[rng.IntN(len(calls))],
				DateCreated: dc, DateUpdated: dc, StartTime: dc.Add(-time.Second),
				Duration: float64(rng.IntN(12)) / 4, Channels: 1, Format: "wav", Size: rng.Int64N(1e6),
				Source: SourceARI, Status: StatusCompleted, Name: "n-" + NewRecordingSid(),
			})
		}
		return rs
	}
	recs = gen(a.Sid, 71)
	if err := s.PutRecordings(tctx(t), recs); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRecordings(tctx(t), gen(b.Sid, 23)); err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		recs[i] = normRec(recs[i])
	}
	return a, recs
}

// expect is the reference implementation of ListRecordings' filter and
// order.
func expect(recs []Recording, q Query) []Recording {
	var out []Recording
	for _, r := range recs {
		if r.AccountSid != q.AccountSid ||
			q.CallSid != "" && r.CallSid != q.CallSid ||
			q.StartFrom != nil && r.DateCreated.Before(normTime(*q.StartFrom)) ||
			q.StartTo != nil && r.DateCreated.After(normTime(*q.StartTo)) {
			continue
		}
		out = append(out, r)
	}
	field, desc, _ := ParseSortBy(q.SortBy)
	if !strings.Contains(q.SortBy, ":") {
		desc = q.Desc
	}
	slices.SortFunc(out, func(x, y Recording) int {
		var c int
		switch field {
		case SortDateCreated:
			c = x.DateCreated.Compare(y.DateCreated)
		case SortDuration:
			c = cmp.Compare(x.Duration, y.Duration)
		case SortCallSid:
			c = strings.Compare(x.CallSid, y.CallSid)
		}
		if c == 0 {
			c = strings.Compare(x.Sid, y.Sid)
		}
		if desc {
			c = -c
		}
		return c
	})
	return out
}

func sids(rs []Recording) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Sid
	}
	return out
}

func testListCombinations(t *testing.T, s Store) {
	ctx := tctx(t)
	a, recs := listFixture(t, s)
	from, to := t0.Add(10*time.Hour), t0.Add(30*time.Hour)
	// Bounds on exact DateCreated values of rows (inclusive both ends).
	byTime := expect(recs, Query{AccountSid: a.Sid})
	exFrom, exTo := byTime[20].DateCreated, byTime[60].DateCreated
	filters := []Query{
		{},
		{CallSid: "CA01"},
		{CallSid: "CAff"},
		{CallSid: "CAnone"},
		{StartFrom: &from},
		{StartTo: &to},
		{StartFrom: &from, StartTo: &to},
		{StartFrom: &exFrom, StartTo: &exTo},
		{CallSid: "CA02", StartFrom: &from, StartTo: &to},
	}
	sorts := []string{"", SortDateCreated, SortDuration, SortCallSid, "Duration:desc", "callsid:ASC"}
	for fi, f := range filters {
		for _, sortBy := range sorts {
			for _, desc := range []bool{false, true} {
				for _, size := range []int{1, 9, 50, 1000} {
					// Keep the suite fast (SQLite under -race is slow):
					// single-row pages only on small results, the
					// SortBy-with-direction spellings only once.
					if size == 1 && (fi == 0 || fi > 2) || strings.Contains(sortBy, ":") && size != 9 {
						continue
					}
					q := f
					q.AccountSid, q.SortBy, q.Desc, q.Limit = a.Sid, sortBy, desc, size
					want := expect(recs, q)
					name := fmt.Sprintf("filter%d/%s/desc=%v/size=%d", fi, sortBy, desc, size)

					// Offset paging.
					var got []Recording
					for page := 0; ; page++ {
						q.Offset = page * size
						p, err := s.ListRecordings(ctx, q)
						if err != nil {
							t.Fatalf("%s: page %d: %v", name, page, err)
						}
						if p.Total != len(want) {
							t.Fatalf("%s: Total %d, want %d", name, p.Total, len(want))
						}
						if len(p.Items) > size {
							t.Fatalf("%s: %d items on a page of %d", name, len(p.Items), size)
						}
						got = append(got, p.Items...)
						if len(p.Items) < size {
							break
						}
					}
					if !slices.Equal(sids(got), sids(want)) {
						t.Fatalf("%s: offset paging\n got %v\nwant %v", name, sids(got), sids(want))
					}
					for i := range got {
						checkRec(t, got[i], want[i])
					}

					// Keyset paging gives the same sequence.
					q.Offset = 0
					q.AfterSid = ""
					var keyset []Recording
					for {
						p, err := s.ListRecordings(ctx, q)
						if err != nil {
							t.Fatalf("%s: keyset after %q: %v", name, q.AfterSid, err)
						}
						if p.Total != len(want) {
							t.Fatalf("%s: keyset Total %d, want %d", name, p.Total, len(want))
						}
						keyset = append(keyset, p.Items...)
						if len(p.Items) < size {
							break
						}
						q.AfterSid = p.Items[len(p.Items)-1].Sid
					}
					if !slices.Equal(sids(keyset), sids(want)) {
						t.Fatalf("%s: keyset paging\n got %v\nwant %v", name, sids(keyset), sids(want))
					}
				}
			}
		}
	}

	// AfterSid combined with Offset: Offset counts from the keyset position.
	want := expect(recs, Query{AccountSid: a.Sid, SortBy: SortDuration, Desc: true})
	p, err := s.ListRecordings(ctx, Query{AccountSid: a.Sid, SortBy: "duration:DESC", Desc: true, AfterSid: want[9].Sid, Offset: 5, Limit: 10})
	if err != nil || !slices.Equal(sids(p.Items), sids(want[15:25])) {
		t.Fatalf("AfterSid+Offset = %v, %v; want %v", sids(p.Items), err, sids(want[15:25]))
	}
	// AfterSid of a row the filter excludes still positions the page.
	q := Query{AccountSid: a.Sid, CallSid: "CA03"}
	wantCA03 := expect(recs, q)
	var other Recording
	for _, r := range byTime {
		if r.CallSid != "CA03" && r.DateCreated.After(wantCA03[0].DateCreated) {
			other = r
			break
		}
	}
	if other.Sid == "" {
		t.Fatal("fixture has no row for the AfterSid-outside-the-filter case")
	}
	q.AfterSid = other.Sid
	var rest []Recording
	for _, r := range wantCA03 {
		if r.DateCreated.After(other.DateCreated) || r.DateCreated.Equal(other.DateCreated) && r.Sid > other.Sid {
			rest = append(rest, r)
		}
	}
	if p, err := s.ListRecordings(ctx, q); err != nil || !slices.Equal(sids(p.Items), sids(rest)) {
		t.Fatalf("AfterSid outside the filter: %v, %v; want %v", sids(p.Items), err, sids(rest))
	}
}

func testListBoundaries(t *testing.T, s Store) {
	ctx := tctx(t)
	a := mustAccount(t, s, "a")
	day := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	at := map[string]time.Time{
		"prevlast": day.Add(-time.Microsecond),
		"first":    day,
		"noon":     day.Add(12 * time.Hour),
		"noon+1us": day.Add(12*time.Hour + time.Microsecond),
		"last":     EndOfDay(day),
		"next":     day.AddDate(0, 0, 1),
	}
	byName := map[string]string{}
	for n, tm := range at {
		r := Recording{Sid: NewRecordingSid(), AccountSid: a.Sid, DateCreated: tm, DateUpdated: tm, Name: n}
		mustPut(t, s, r)
		byName[r.Sid] = n
	}
	list := func(from, to *time.Time) []string {
		t.Helper()
		p, err := s.ListRecordings(ctx, Query{AccountSid: a.Sid, StartFrom: from, StartTo: to, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range p.Items {
			names = append(names, byName[r.Sid])
		}
		if p.Total != len(names) {
			t.Fatalf("Total %d for %d rows", p.Total, len(names))
		}
		return names
	}
	ptr := func(t time.Time) *time.Time { return &t }
	noon := at["noon"]
	for _, c := range []struct {
		from, to *time.Time
		want     []string
	}{
		// Date-only StartTime/EndTime of the same day: the whole day.
		{ptr(day), ptr(EndOfDay(day)), []string{"first", "noon", "noon+1us", "last"}},
		{ptr(day), nil, []string{"first", "noon", "noon+1us", "last", "next"}},
		{nil, ptr(day), []string{"prevlast", "first"}},
		{ptr(noon), ptr(noon), []string{"noon"}},
		{ptr(noon.Add(time.Microsecond)), nil, []string{"noon+1us", "last", "next"}},
		{nil, ptr(noon.Add(-time.Microsecond)), []string{"prevlast", "first"}},
		// Other zones are the same instants.
		{ptr(noon.In(time.FixedZone("EST", -5*3600))), ptr(noon.In(time.FixedZone("IST", 19800))), []string{"noon"}},
		// Sub-microsecond bounds: the stores keep microseconds.
		{ptr(noon.Add(999 * time.Nanosecond)), ptr(noon.Add(999 * time.Nanosecond)), []string{"noon"}},
		{ptr(at["next"]), ptr(day), nil},
	} {
		if got := list(c.from, c.to); !slices.Equal(got, c.want) {
			t.Errorf("window %v..%v = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}

func testListArguments(t *testing.T, s Store) {
	ctx := tctx(t)
	a := mustAccount(t, s, "a")
	var rs []Recording
	for i := range 60 {
		rs = append(rs, sampleRec(a.Sid, i))
	}
	if err := s.PutRecordings(ctx, rs); err != nil {
		t.Fatal(err)
	}
	p, err := s.ListRecordings(ctx, Query{AccountSid: a.Sid})
	if err != nil || len(p.Items) != DefaultPageSize || p.Total != 60 {
		t.Fatalf("default page: %d items, Total %d, %v", len(p.Items), p.Total, err)
	}
	p, err = s.ListRecordings(ctx, Query{AccountSid: a.Sid, Offset: 1000, Limit: 10})
	if err != nil || len(p.Items) != 0 || p.Total != 60 {
		t.Fatalf("page past the end: %d items, Total %d, %v", len(p.Items), p.Total, err)
	}
	p, err = s.ListRecordings(ctx, Query{AccountSid: a.Sid, Limit: MaxPageSize + 1})
	if err != nil || len(p.Items) != 60 {
		t.Fatalf("large Limit: %d items, %v", len(p.Items), err)
	}
	for _, q := range []Query{
		{},
		{AccountSid: a.Sid, Offset: -1},
		{AccountSid: a.Sid, SortBy: "Name"},
		{AccountSid: a.Sid, SortBy: "DateCreated; DROP TABLE recordings"},
		{AccountSid: a.Sid, SortBy: "sid"},
	} {
		if _, err := s.ListRecordings(ctx, q); !errors.Is(err, ErrInvalid) {
			t.Errorf("ListRecordings(%+v) = %v, want ErrInvalid", q, err)
		}
	}
	if _, err := s.ListRecordings(ctx, Query{AccountSid: a.Sid, AfterSid: NewRecordingSid()}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown AfterSid: %v, want ErrNotFound", err)
	}
}

var injections = []string{
	`' OR '1'='1`,
	`' OR 1=1 --`,
	`x'; DROP TABLE recordings; --`,
	`"; DROP TABLE accounts; --`,
	`CA01' UNION SELECT sid, auth_token FROM accounts --`,
	`%`, `_`, `*`, `\`, `$1`, `?1`, `?`, `'`, "\x00",
	`) OR (1=1`,
}

func testInjection(t *testing.T, s Store) {
	ctx := tctx(t)
	a, recs := listFixture(t, s)
	for _, inj := range injections {
		if strings.ContainsRune(inj, 0) {
			continue // NUL is not valid in PostgreSQL text; checked below
		}
		p, err := s.ListRecordings(ctx, Query{AccountSid: a.Sid, CallSid: inj})
		if err != nil || p.Total != 0 || len(p.Items) != 0 {
			t.Fatalf("CallSid %q: %d rows, Total %d, %v", inj, len(p.Items), p.Total, err)
		}
		for _, acct := range []string{inj, a.Sid + inj} {
			p, err = s.ListRecordings(ctx, Query{AccountSid: acct})
			if err != nil || p.Total != 0 {
				t.Fatalf("AccountSid %q: %+v, %v", acct, p, err)
			}
		}
		if _, err := s.ListRecordings(ctx, Query{AccountSid: a.Sid, AfterSid: inj}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("AfterSid %q: %v", inj, err)
		}
		if _, err := s.RecordingBySid(ctx, inj); !errors.Is(err, ErrNotFound) {
			t.Fatalf("RecordingBySid(%q): %v", inj, err)
		}
		if _, err := s.Recording(ctx, a.Sid, inj); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Recording(%q): %v", inj, err)
		}
		if _, err := s.Recording(ctx, inj, recs[0].Sid); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Recording(account %q): %v", inj, err)
		}
		if err := s.DeleteRecording(ctx, inj, recs[0].Sid); !errors.Is(err, ErrNotFound) {
			t.Fatalf("DeleteRecording(account %q): %v", inj, err)
		}
		if err := s.DeleteRecordingByName(ctx, inj); !errors.Is(err, ErrNotFound) {
			t.Fatalf("DeleteRecordingByName(%q): %v", inj, err)
		}
		if _, err := s.AccountByName(ctx, inj); !errors.Is(err, ErrNotFound) {
			t.Fatalf("AccountByName(%q): %v", inj, err)
		}
	}
	// Stored SQL-looking values round-trip and match only themselves.
	for i, inj := range injections {
		if strings.ContainsRune(inj, 0) {
			continue
		}
		r := sampleRec(a.Sid, 1000+i)
		r.CallSid, r.Name, r.FilePath, r.CallerNumber = inj, "inj-"+inj, inj, inj
		mustPut(t, s, r)
		got, err := s.Recording(ctx, a.Sid, r.Sid)
		if err != nil {
			t.Fatal(err)
		}
		checkRec(t, got, normRec(r))
		p, err := s.ListRecordings(ctx, Query{AccountSid: a.Sid, CallSid: inj})
		if err != nil || p.Total != 1 || len(p.Items) != 1 || p.Items[0].Sid != r.Sid {
			t.Fatalf("stored CallSid %q: %v, %v", inj, sids(p.Items), err)
		}
		if _, err := s.CreateAccount(ctx, "acct-"+inj); err != nil {
			t.Fatalf("CreateAccount(%q): %v", inj, err)
		}
	}
	p, err := s.ListRecordings(ctx, Query{AccountSid: a.Sid})
	if err != nil || p.Total != len(recs)+len(injections)-1 {
		t.Fatalf("after injections: Total %d, %v; want %d", p.Total, err, len(recs)+len(injections)-1)
	}
	if as, err := s.ListAccounts(ctx); err != nil || len(as) != 2+len(injections)-1 {
		t.Fatalf("accounts after injections: %d, %v", len(as), err)
	}
}

func testConcurrentWriters(t *testing.T, s Store) {
	ctx := tctx(t)
	a := mustAccount(t, s, "a")
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errc := make(chan error, writers*each*2)
	for w := range writers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range each {
				r := sampleRec(a.Sid, w*each+i)
				if err := s.PutRecording(ctx, r); err != nil {
					errc <- err
					return
				}
				r.Status = StatusFailed
				if err := s.PutRecording(ctx, r); err != nil {
					errc <- err
					return
				}
			}
		}()
		go func() { // readers alongside
			defer wg.Done()
			for range each {
				if _, err := s.ListRecordings(ctx, Query{AccountSid: a.Sid, SortBy: SortDuration, Desc: true}); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	p, err := s.ListRecordings(ctx, Query{AccountSid: a.Sid, CallSid: sampleRec(a.Sid, 0).CallSid})
	if err != nil || p.Total != writers*each/5 {
		t.Fatalf("Total %d, %v; want %d", p.Total, err, writers*each/5)
	}
}

// Backend-independent helpers.

func TestSids(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		r, a, tok := NewRecordingSid(), NewAccountSid(), NewAuthToken()
		if !IsRecordingSid(r) || !IsAccountSid(a) || len(tok) != 32 || seen[r] || seen[a] || seen[tok] {
			t.Fatalf("bad or repeated: %s %s %s", r, a, tok)
		}
		seen[r], seen[a], seen[tok] = true, true, true
	}
	for _, bad := range []string{"", "RE", "re0123456789abcdef0123456789abcdef", "RE0123456789ABCDEF0123456789abcdef", "RE0123456789abcdef0123456789abcde", "AC0123456789abcdef0123456789abcdef"} {
		if IsRecordingSid(bad) {
			t.Errorf("IsRecordingSid(%q)", bad)
		}
	}
}

func TestParseSortBy(t *testing.T) {
	for _, c := range []struct {
		in    string
		field string
		desc  bool
		ok    bool
	}{
		{"", SortDateCreated, false, true},
		{"DateCreated", SortDateCreated, false, true},
		{"DateCreated:asc", SortDateCreated, false, true},
		{"DateCreated:desc", SortDateCreated, true, true},
		{"datecreated:DESC", SortDateCreated, true, true},
		{"Duration:desc", SortDuration, true, true},
		{"CallSid", SortCallSid, false, true},
		{" CallSid:asc ", SortCallSid, false, true},
		{"CallSid:up", "", false, false},
		{"Sid", "", false, false},
		{":desc", "", false, false},
		{"DateCreated:desc:asc", "", false, false},
		{"DateCreated; DROP TABLE x", "", false, false},
	} {
		f, d, err := ParseSortBy(c.in)
		if (err == nil) != c.ok || f != c.field || d != c.desc {
			t.Errorf("ParseSortBy(%q) = %q, %v, %v", c.in, f, d, err)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseSortBy(%q) error %v is not ErrInvalid", c.in, err)
		}
	}
	if got := EndOfDay(time.Date(2024, 2, 28, 13, 0, 0, 0, time.FixedZone("", 3600))); !got.Equal(time.Date(2024, 2, 28, 23, 59, 59, 999999000, time.UTC)) {
		t.Errorf("EndOfDay = %v", got)
	}
}

// testStatusDetailAndInProgress: the failure cause round-trips through
// PutRecording and PutRecordings and is cleared by an update without one;
// InProgress lists a node's in-progress rows (and those without a node) of
// every account, by name, bounded.
func testStatusDetailAndInProgress(t *testing.T, s Store) {
	ctx := tctx(t)
	a, b := mustAccount(t, s, "a"), mustAccount(t, s, "b")
	failed := sampleRec(a.Sid, 1)
	failed.Status, failed.StatusDetail = StatusFailed, "Disk full: write recording/x.wav: no space left on device"
	mustPut(t, s, failed)
	got, err := s.Recording(ctx, a.Sid, failed.Sid)
	if err != nil {
		t.Fatal(err)
	}
	checkRec(t, got, normRec(failed))
	failed.Status, failed.StatusDetail = StatusCompleted, ""
	mustPut(t, s, failed)
	if got, err = s.Recording(ctx, a.Sid, failed.Sid); err != nil || got.StatusDetail != "" || got.Status != StatusCompleted {
		t.Fatalf("after an update without detail: %+v %v", got, err)
	}
	batch := []Recording{sampleRec(b.Sid, 3), sampleRec(b.Sid, 4)}
	batch[0].Status, batch[0].StatusDetail = StatusFailed, "Permission denied"
	if err := s.PutRecordings(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if got, err = s.Recording(ctx, b.Sid, batch[0].Sid); err != nil || got.StatusDetail != "Permission denied" {
		t.Fatalf("PutRecordings detail: %+v %v", got, err)
	}

	if list, err := s.InProgress(ctx, "n1", 10); err != nil || len(list) != 0 {
		t.Fatalf("InProgress with none: %v %v", sids(list), err)
	}
	// n1's rows and rows without a node are n1's to settle; n2's are not.
	var want []Recording
	for i, acct := range []string{a.Sid, b.Sid, a.Sid, b.Sid, a.Sid, b.Sid} {
		r := sampleRec(acct, 10+i)
		r.Status = StatusInProgress
		r.Name = fmt.Sprintf("live/%d", 6-i) // names in reverse order of insertion
		r.Node = []string{"n1", "", "n1", "n2", "n1", "n1"}[i]
		mustPut(t, s, r)
		if r.Node != "n2" {
			want = append(want, normRec(r))
		}
	}
	slices.SortFunc(want, func(x, y Recording) int { return cmp.Compare(x.Name, y.Name) })
	list, err := s.InProgress(ctx, "n1", 10)
	if err != nil || len(list) != len(want) {
		t.Fatalf("InProgress = %v %v, want %v", sids(list), err, sids(want))
	}
	for i := range list {
		checkRec(t, list[i], want[i])
	}
	if list, err = s.InProgress(ctx, "n1", 2); err != nil || len(list) != 2 || list[1].Name != want[1].Name {
		t.Fatalf("InProgress(2) = %v %v", sids(list), err)
	}
	if list, err = s.InProgress(ctx, "n2", 0); err != nil || len(list) != 2 {
		t.Fatalf("InProgress(n2) = %v %v, want n2's row and the one without a node", sids(list), err)
	}
	// Settled rows leave the list.
	done := want[0]
	done.Status = StatusCompleted
	mustPut(t, s, done)
	if list, err = s.InProgress(ctx, "n1", 0); err != nil || len(list) != len(want)-1 || list[0].Name != want[1].Name {
		t.Fatalf("InProgress after settling %s = %v %v", done.Name, sids(list), err)
	}
}

// testStored: Stored pages through a node's completed and recovered rows
// (and those without a node) of every account, by name, after a name.
func testStored(t *testing.T, s Store) {
	ctx := tctx(t)
	a, b := mustAccount(t, s, "a"), mustAccount(t, s, "b")
	statuses := []Status{StatusCompleted, StatusRecovered, StatusInProgress, StatusFailed, StatusCompleted, StatusMissing, StatusCompleted}
	nodes := []string{"n1", "", "n1", "n1", "n2", "n1", "n1"}
	var want []string
	for i, st := range statuses {
		r := sampleRec([]string{a.Sid, b.Sid}[i%2], 20+i)
		r.Status, r.Node, r.Name = st, nodes[i], fmt.Sprintf("st/%d", 9-i)
		mustPut(t, s, r)
		if (st == StatusCompleted || st == StatusRecovered) && nodes[i] != "n2" {
			want = append(want, r.Name)
		}
	}
	slices.Sort(want)
	var got []string
	after := ""
	for {
		list, err := s.Stored(ctx, "n1", after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list {
			got = append(got, r.Name)
			after = r.Name
		}
		if len(list) < 2 {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Stored pages = %v, want %v", got, want)
	}

	// Finished adds failed rows, and other nodes' rows kept in object
	// storage (any node can serve those).
	blobRow := sampleRec(a.Sid, 40)
	blobRow.Status, blobRow.Node, blobRow.Name, blobRow.FilePath = StatusCompleted, "n2", "st/blob", "blob:x/y.wav"
	mustPut(t, s, blobRow)
	want = nil
	for i, st := range statuses {
		if (st == StatusCompleted || st == StatusRecovered || st == StatusFailed) && nodes[i] != "n2" {
			want = append(want, fmt.Sprintf("st/%d", 9-i))
		}
	}
	want = append(want, "st/blob")
	slices.Sort(want)
	list, err := s.Finished(ctx, "n1", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, r := range list {
		got = append(got, r.Name)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Finished = %v, want %v", got, want)
	}
	// Node "*": every node's (a cluster relays the others' local files).
	want = nil
	for i, st := range statuses {
		if st == StatusCompleted || st == StatusRecovered || st == StatusFailed {
			want = append(want, fmt.Sprintf("st/%d", 9-i))
		}
	}
	want = append(want, "st/blob")
	slices.Sort(want)
	if list, err = s.Finished(ctx, "*", "", 100); err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, r := range list {
		got = append(got, r.Name)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Finished(*) = %v, want %v", got, want)
	}
}

// testPageFilters: the recordings page's filters run in the query (status,
// source, an owner among Owners), BeforeSid pages backwards in the sort
// order, and CountLimit caps the count.
func testPageFilters(t *testing.T, s Store) {
	ctx := tctx(t)
	acc := mustAccount(t, s, "pages")
	var all []Recording
	for i := range 40 {
		r := sampleRec(acc.Sid, i)
		r.Status = []Status{StatusCompleted, StatusFailed, StatusAbsent, StatusCompleted}[i%4]
		r.Source = []string{SourceARI, SourcePolicy}[i%2]
		r.Owners = []string{"", "u-1", "u-1,u-2", "u-22", "x%y"}[i%5]
		all = append(all, r)
	}
	if err := s.PutRecordings(ctx, all); err != nil {
		t.Fatal(err)
	}
	count := func(q Query, want int, match func(Recording) bool) {
		t.Helper()
		q.AccountSid, q.Limit = acc.Sid, MaxPageSize
		p, err := s.ListRecordings(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) != want || p.Total != want || p.TotalCapped {
			t.Errorf("%+v: %d rows, total %d (capped %v); want %d", q, len(p.Items), p.Total, p.TotalCapped, want)
		}
		for _, r := range p.Items {
			if !match(r) {
				t.Errorf("%+v: row %s (%s, %s, %q) does not match", q, r.Name, r.Status, r.Source, r.Owners)
			}
		}
	}
	count(Query{Status: StatusFailed}, 10, func(r Recording) bool { return r.Status == StatusFailed })
	count(Query{Source: SourcePolicy}, 20, func(r Recording) bool { return r.Source == SourcePolicy })
	count(Query{Status: StatusCompleted, Source: SourceARI}, 10, func(r Recording) bool { return r.Status == StatusCompleted && r.Source == SourceARI })
	count(Query{Owner: "u-2"}, 8, func(r Recording) bool { return r.Owners == "u-1,u-2" })
	count(Query{Owner: "u-1"}, 16, func(r Recording) bool { return r.Owners == "u-1" || r.Owners == "u-1,u-2" })
	count(Query{Owner: "u-%"}, 0, nil)
	count(Query{Owner: "x%y"}, 8, func(r Recording) bool { return r.Owners == "x%y" })
	count(Query{Owner: "u_2"}, 0, nil)

	// Backwards by key: the page before a row, in the sort order.
	for _, desc := range []bool{false, true} {
		for _, sortBy := range []string{SortDateCreated, SortDuration, SortCallSid} {
			q := Query{AccountSid: acc.Sid, SortBy: sortBy, Desc: desc, Limit: MaxPageSize}
			full, err := s.ListRecordings(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			q.Limit, q.BeforeSid = 7, full.Items[20].Sid
			p, err := s.ListRecordings(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Items) != 7 {
				t.Fatalf("%s desc=%v: BeforeSid gave %d rows", sortBy, desc, len(p.Items))
			}
			for i, r := range p.Items {
				if r.Sid != full.Items[13+i].Sid {
					t.Errorf("%s desc=%v: BeforeSid row %d is %s, want %s", sortBy, desc, i, r.Name, full.Items[13+i].Name)
				}
			}
			q.BeforeSid = full.Items[3].Sid // fewer rows than the limit before it
			if p, err := s.ListRecordings(ctx, q); err != nil || len(p.Items) != 3 || p.Items[0].Sid != full.Items[0].Sid {
				t.Errorf("%s desc=%v: BeforeSid the 4th row: %d rows, %v", sortBy, desc, len(p.Items), err)
			}
		}
	}
	if _, err := s.ListRecordings(ctx, Query{AccountSid: acc.Sid, BeforeSid: all[0].Sid, AfterSid: all[1].Sid}); !errors.Is(err, ErrInvalid) {
		t.Errorf("BeforeSid with AfterSid: %v", err)
	}
	if _, err := s.ListRecordings(ctx, Query{AccountSid: acc.Sid, BeforeSid: NewRecordingSid()}); !errors.Is(err, ErrNotFound) {
		t.Errorf("BeforeSid of no recording: %v", err)
	}

	// The count stops past CountLimit.
	p, err := s.ListRecordings(ctx, Query{AccountSid: acc.Sid, CountLimit: 15, Limit: 5})
	if err != nil || p.Total != 16 || !p.TotalCapped || len(p.Items) != 5 {
		t.Errorf("CountLimit 15 of 40: total %d capped %v, %d rows, %v", p.Total, p.TotalCapped, len(p.Items), err)
	}
	p, err = s.ListRecordings(ctx, Query{AccountSid: acc.Sid, CountLimit: 15, Status: StatusFailed})
	if err != nil || p.Total != 10 || p.TotalCapped {
		t.Errorf("CountLimit 15 of 10: total %d capped %v, %v", p.Total, p.TotalCapped, err)
	}
	p, err = s.ListRecordings(ctx, Query{AccountSid: acc.Sid, CountLimit: -1, Owner: "u-1", Limit: 5})
	if err != nil || p.Total != -1 || !p.TotalCapped || len(p.Items) != 5 {
		t.Errorf("CountLimit -1: total %d capped %v, %d rows, %v", p.Total, p.TotalCapped, len(p.Items), err)
	}
	// A date window sorted by duration (sorted in an index, the page's
	// rows read after): pages by offset, deep too, by key both ways, with
	// a capped count, against the window's rows sorted here.
	var stored []Recording
	for _, r := range all {
		stored = append(stored, normRec(r))
	}
	winFrom, winTo := stored[7].DateCreated, stored[31].DateCreated
	for _, desc := range []bool{true, false} {
		q := Query{AccountSid: acc.Sid, StartFrom: &winFrom, StartTo: &winTo, SortBy: SortDuration, Desc: desc}
		want := expect(stored, q)
		if len(want) != 25 {
			t.Fatalf("window: %d rows expected", len(want))
		}
		for _, page := range []struct{ limit, offset int }{{10, 0}, {10, 10}, {10, 20}, {3, 12}, {4, 20}, {5, 30}} {
			q.Limit, q.Offset, q.AfterSid, q.BeforeSid = page.limit, page.offset, "", ""
			p, err := s.ListRecordings(ctx, q)
			wantRows := want[min(page.offset, len(want)):min(page.offset+page.limit, len(want))]
			if err != nil || p.Total != 25 || !slices.Equal(sids(p.Items), sids(wantRows)) {
				t.Errorf("window by duration desc=%v, %d at %d: total %d, %v, %v; want %v", desc, page.limit, page.offset, p.Total, sids(p.Items), err, sids(wantRows))
			}
		}
		q.Offset, q.Limit, q.AfterSid = 0, 6, want[9].Sid
		if p, err := s.ListRecordings(ctx, q); err != nil || !slices.Equal(sids(p.Items), sids(want[10:16])) {
			t.Errorf("window by duration desc=%v after the 10th: %v, %v; want %v", desc, sids(p.Items), err, sids(want[10:16]))
		}
		q.AfterSid, q.BeforeSid = "", want[9].Sid
		if p, err := s.ListRecordings(ctx, q); err != nil || !slices.Equal(sids(p.Items), sids(want[3:9])) {
			t.Errorf("window by duration desc=%v before the 10th: %v, %v; want %v", desc, sids(p.Items), err, sids(want[3:9]))
		}
		q.BeforeSid, q.CountLimit, q.Limit = "", 20, 5
		if p, err := s.ListRecordings(ctx, q); err != nil || p.Total != 21 || !p.TotalCapped || !slices.Equal(sids(p.Items), sids(want[:5])) {
			t.Errorf("window by duration desc=%v, count capped at 20: total %d capped %v, %v, %v", desc, p.Total, p.TotalCapped, sids(p.Items), err)
		}
	}
	// A deep offset page (counted in the page's order on PostgreSQL), both
	// directions and sort keys, under an Owner too: the capped count and
	// the page's rows as a shallow read gives them.
	for _, q := range []Query{
		{Desc: true}, {}, {SortBy: SortDuration, Desc: true}, {SortBy: SortDuration},
		{Owner: "u-1", Desc: true}, {Owner: "u-1"}, {Owner: "u-1", SortBy: SortDuration, Desc: true},
	} {
		q.AccountSid, q.Limit = acc.Sid, 100
		want, err := s.ListRecordings(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		q.CountLimit, q.Limit, q.Offset = 7, 2, 9
		p, err := s.ListRecordings(ctx, q)
		wantRows := want.Items[min(9, len(want.Items)):min(11, len(want.Items))]
		if err != nil || p.Total != min(8, want.Total) || p.TotalCapped != (want.Total > 7) || !slices.Equal(sids(p.Items), sids(wantRows)) {
			t.Errorf("%+v: total %d capped %v, %v, %v; want %d of %d, %v", q, p.Total, p.TotalCapped, sids(p.Items), err, min(8, want.Total), want.Total, sids(wantRows))
		}
	}
}

// testOutboxClaims: a node claims its own due notifications; another node
// takes none while the first is alive, takes over the pending ones of a
// node not seen since deadBefore, but never one whose claim has not
// expired; settling releases the claim; concurrent claimants over one
// dead node's items claim each item once.
func testOutboxClaims(t *testing.T, s Store) {
	ctx := tctx(t)
	ob := s.(Outbox)
	now := time.Now().Truncate(time.Millisecond)
	lease := time.Minute
	alive := now.Add(-30 * time.Second) // deadBefore: seen after it is alive
	for _, n := range []string{"a", "b"} {
		if err := ob.Heartbeat(ctx, n, now); err != nil {
			t.Fatal(err)
		}
	}
	var ids []int64
	for i := range 3 {
		id, err := ob.Enqueue(ctx, OutboxItem{Node: "a", Kind: "K", URL: "http://x/" + fmt.Sprint(i), ContentType: "text/plain",
			Body: []byte("b"), NextAt: now.Add(-time.Duration(3-i) * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if got, err := ob.Claim(ctx, "b", now, lease, alive, 10); err != nil || len(got) != 0 {
		t.Fatalf("b claimed %d of live a's items (%v)", len(got), err)
	}
	got, err := ob.Claim(ctx, "a", now, lease, alive, 2)
	if err != nil || len(got) != 2 || got[0].ID != ids[0] || got[1].ID != ids[1] {
		t.Fatalf("a claimed %+v %v, want its two oldest", got, err)
	}
	// a dies (not seen since before deadBefore): b takes the unclaimed one,
	// not the two a still holds.
	later := now.Add(40 * time.Second)
	dead := later.Add(-30 * time.Second)
	if err := ob.Heartbeat(ctx, "b", later); err != nil {
		t.Fatal(err)
	}
	got, err = ob.Claim(ctx, "b", later, lease, dead, 10)
	if err != nil || len(got) != 1 || got[0].ID != ids[2] {
		t.Fatalf("b took over %+v %v, want only a's unclaimed item", got, err)
	}
	if t2, ok, err := ob.NextClaimable(ctx, "b", dead); err != nil || !ok || t2.IsZero() {
		t.Fatalf("NextClaimable for b: %v %v %v", t2, ok, err)
	}
	// a's claims expire: b takes them too (and its own claim is its own
	// again: a restarted node reclaims what it held); a delivered one is
	// gone.
	if err := ob.SettleDelivered(ctx, []int64{ids[0]}, later); err != nil {
		t.Fatal(err)
	}
	expired := now.Add(2 * lease)
	got, err = ob.Claim(ctx, "b", expired, lease, expired.Add(-30*time.Second), 10)
	if err != nil || len(got) != 2 || got[0].ID != ids[1] || got[1].ID != ids[2] {
		t.Fatalf("after a's claims expired b took %+v %v, want a's two undelivered items", got, err)
	}
	// a comes back: it does not take what b holds.
	if err := ob.Heartbeat(ctx, "a", expired); err != nil {
		t.Fatal(err)
	}
	if got, err := ob.Claim(ctx, "a", expired, lease, expired.Add(-30*time.Second), 10); err != nil || len(got) != 0 {
		t.Fatalf("a took back %d items b holds (%v)", len(got), err)
	}
	// Settling releases: a retry due later is a's again.
	if err := ob.Settle(ctx, ids[1], OutboxPending, 1, expired, "x"); err != nil {
		t.Fatal(err)
	}
	if got, err := ob.Claim(ctx, "a", expired, lease, expired.Add(-30*time.Second), 10); err != nil || len(got) != 1 || got[0].ID != ids[1] {
		t.Fatalf("a after b settled: %+v %v", got, err)
	}

	// Concurrent takeover of a dead node's items: each claimed once.
	for i := range 40 {
		if _, err := ob.Enqueue(ctx, OutboxItem{Node: "gone", Kind: "K", URL: "http://x/" + fmt.Sprint(i), ContentType: "text/plain",
			Body: []byte("b"), NextAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ob.Heartbeat(ctx, "gone", now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[int64]string{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := fmt.Sprint("n", w)
			for {
				got, err := ob.Claim(ctx, node, now, lease, now.Add(-time.Minute), 3)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				var done []int64
				for _, it := range got {
					if prev, dup := seen[it.ID]; dup {
						t.Errorf("item %d claimed by %s and %s", it.ID, prev, node)
					}
					seen[it.ID] = node
					done = append(done, it.ID)
				}
				mu.Unlock()
				// (Delivered, as the sender settles a batch: a node's own
				// unsettled claims are its own to take again.)
				if err := ob.SettleDelivered(ctx, done, now); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != 40 {
		t.Fatalf("%d of 40 items claimed", len(seen))
	}
}

// testQuality: a recording's completeness is stored with its row, read back
// by every read (one, list, by name), updated, kept by a soft delete, and
// absent (nil) on rows that never had it.
func testQuality(t *testing.T, s Store) {
	ctx := tctx(t)
	a := mustAccount(t, s, "q")
	plain := sampleRec(a.Sid, 1)
	mustPut(t, s, plain)
	r := sampleRec(a.Sid, 2)
	r.Quality = &Quality{PacketsExpected: 200, PacketsReceived: 190, PacketsLost: 10, PacketsLate: 1, PacketsDuplicated: 3,
		LossSilenceMs: 200, JitterMs: 1.25, RecordedMs: 4000, CallMs: 5000, Degraded: true,
		Paused: []Paused{{Start: t0.Add(time.Second), LengthMs: 1000, Behavior: "skip", By: "twilio:" + a.Sid}}}
	mustPut(t, s, r)
	got, err := s.Recording(ctx, a.Sid, r.Sid)
	if err != nil {
		t.Fatal(err)
	}
	checkRec(t, got, normRec(r))
	if got.Quality.LossPercent() != 5 || got.Quality.Completeness() != 0.8 {
		t.Fatalf("loss %v%%, completeness %v", got.Quality.LossPercent(), got.Quality.Completeness())
	}
	if p, _ := s.Recording(ctx, a.Sid, plain.Sid); p.Quality != nil {
		t.Fatalf("a row without quality reads back %+v", p.Quality)
	}
	page, err := s.ListRecordings(ctx, Query{AccountSid: a.Sid})
	if err != nil || len(page.Items) != 2 {
		t.Fatalf("list: %v %d", err, len(page.Items))
	}
	for _, it := range page.Items {
		if it.Sid == r.Sid && !reflect.DeepEqual(it.Quality, got.Quality) {
			t.Fatalf("listed quality %+v", it.Quality)
		}
	}
	got.Quality.PacketsLost, got.DateCreated = 11, time.Time{}
	mustPut(t, s, got)
	if byName, _ := s.RecordingByName(ctx, r.Name); byName.Quality == nil || byName.Quality.PacketsLost != 11 {
		t.Fatalf("updated quality %+v", byName.Quality)
	}
	if err := s.SoftDeleteRecording(ctx, a.Sid, r.Sid, Audit{AccountSid: a.Sid, RecordingSid: r.Sid, Action: AuditDelete}); err != nil {
		t.Fatal(err)
	}
	del, err := s.DeletedRecording(ctx, a.Sid, r.Sid)
	if err != nil || del.Quality == nil || del.Quality.PacketsLost != 11 || len(del.Quality.Paused) != 1 {
		t.Fatalf("deleted row: %v %+v", err, del.Quality)
	}
}

// testLiveStatus: a live recording goes paused and back (with its quality),
// the reconciler's InProgress lists it either way, and a finished row is
// never moved back to a live status.
func testLiveStatus(t *testing.T, s Store) {
	ctx := tctx(t)
	a := mustAccount(t, s, "live")
	r := sampleRec(a.Sid, 3)
	r.Status, r.Node = StatusInProgress, "n1"
	mustPut(t, s, r)
	q := &Quality{RecordedMs: 1000, Paused: []Paused{{Start: t0, Behavior: "silence", By: "web:ann"}}}
	if err := s.SetLiveStatus(ctx, r.Name, StatusPaused, q); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Recording(ctx, a.Sid, r.Sid)
	if got.Status != StatusPaused || got.Quality == nil || len(got.Quality.Paused) != 1 || got.Quality.Paused[0].By != "web:ann" {
		t.Fatalf("paused row: %s %+v", got.Status, got.Quality)
	}
	live, err := s.InProgress(ctx, "n1", 10)
	if err != nil || len(live) != 1 || live[0].Sid != r.Sid {
		t.Fatalf("InProgress with a paused row: %v %d", err, len(live))
	}
	if err := s.SetLiveStatus(ctx, r.Name, StatusInProgress, q); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Recording(ctx, a.Sid, r.Sid); got.Status != StatusInProgress {
		t.Fatalf("resumed row: %s", got.Status)
	}
	if err := s.SetLiveStatus(ctx, r.Name, StatusCompleted, q); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a final status through SetLiveStatus: %v", err)
	}
	got.Status, got.DateCreated = StatusCompleted, time.Time{}
	mustPut(t, s, got)
	if err := s.SetLiveStatus(ctx, r.Name, StatusPaused, q); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pausing a finished row: %v", err)
	}
	if got, _ := s.Recording(ctx, a.Sid, r.Sid); got.Status != StatusCompleted {
		t.Fatalf("a finished row became %s", got.Status)
	}
}

// testSetChecksum: the checksum job's one statement sets size and checksum
// only while the row names the file and has none: not over a checksum
// already there, not on a row moved to another file, not on a missing row.
func testSetChecksum(t *testing.T, s Store) {
	ctx := tctx(t)
	a := mustAccount(t, s, "sum")
	r := sampleRec(a.Sid, 4)
	r.SHA256, r.Size, r.FilePath = "", 100, "sum/a.wav"
	mustPut(t, s, r)
	later := t0.Add(time.Hour)
	if ok, err := s.SetChecksum(ctx, r.Sid, "sum/other.wav", 200, "aa", later); err != nil || ok {
		t.Fatalf("SetChecksum of another file: %v %v, want false", ok, err)
	}
	if ok, err := s.SetChecksum(ctx, "RE00000000000000000000000000000000", r.FilePath, 200, "aa", later); err != nil || ok {
		t.Fatalf("SetChecksum of a missing row: %v %v, want false", ok, err)
	}
	if got, _ := s.Recording(ctx, a.Sid, r.Sid); got.SHA256 != "" || got.Size != 100 {
		t.Fatalf("row changed by a refused SetChecksum: %q %d", got.SHA256, got.Size)
	}
	if ok, err := s.SetChecksum(ctx, r.Sid, r.FilePath, 200, "bb", later); err != nil || !ok {
		t.Fatalf("SetChecksum: %v %v, want true", ok, err)
	}
	got, _ := s.Recording(ctx, a.Sid, r.Sid)
	if got.SHA256 != "bb" || got.Size != 200 || !got.DateUpdated.Equal(later) || got.Status != r.Status || got.Name != r.Name {
		t.Fatalf("row after SetChecksum: sum %q size %d updated %v status %s", got.SHA256, got.Size, got.DateUpdated, got.Status)
	}
	if ok, err := s.SetChecksum(ctx, r.Sid, r.FilePath, 300, "cc", later.Add(time.Hour)); err != nil || ok {
		t.Fatalf("SetChecksum over a checksum: %v %v, want false", ok, err)
	}
	if got, _ := s.Recording(ctx, a.Sid, r.Sid); got.SHA256 != "bb" || got.Size != 200 {
		t.Fatalf("a checksum was overwritten: %q %d", got.SHA256, got.Size)
	}
	if _, err := s.SetChecksum(ctx, r.Sid, r.FilePath, 1, "", later); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an empty checksum: %v, want ErrInvalid", err)
	}
}

// testStartRecording: a recording's start is one statement — a new name
// inserts the row as given; a name that has a row replaces that row's
// content but keeps its Sid and DateCreated (ifExists=overwrite); a name
// whose row is another account's is ErrConflict and changes nothing.
func testStartRecording(t *testing.T, s Store) {
	ctx := tctx(t)
	a := mustAccount(t, s, "start")
	b := mustAccount(t, s, "other")
	r := sampleRec(a.Sid, 3)
	r.Status, r.SHA256, r.Size, r.Duration, r.Owners = StatusInProgress, "", 0, 0, "u-1"
	sid, created, err := s.StartRecording(ctx, r)
	if err != nil || sid != r.Sid || !created.Equal(normTime(r.DateCreated)) {
		t.Fatalf("StartRecording of a new name: %q %v %v; want %q %v", sid, created, err, r.Sid, normTime(r.DateCreated))
	}
	if got, err := s.Recording(ctx, a.Sid, r.Sid); err != nil || !reflect.DeepEqual(got, normRec(r)) {
		t.Fatalf("row inserted:\n got %+v %v\nwant %+v", got, err, normRec(r))
	}
	// The finished row, then the name recorded again.
	done := r
	done.Status, done.SHA256, done.Size, done.Duration = StatusCompleted, strings.Repeat("cd", 32), 5000, 4.5
	mustPut(t, s, done)
	again := sampleRec(a.Sid, 3)
	again.Sid = NewRecordingSid()
	again.DateCreated = t0.Add(48 * time.Hour)
	again.DateUpdated = again.DateCreated
	again.Status, again.SHA256, again.Size, again.Duration, again.CallSid = StatusInProgress, "", 0, 0, "CA"+strings.Repeat("9", 32)
	again.Owners = "u-2"
	sid, created, err = s.StartRecording(ctx, again)
	if err != nil || sid != r.Sid || !created.Equal(normTime(r.DateCreated)) {
		t.Fatalf("StartRecording of a used name: %q %v %v; want the row's %q %v", sid, created, err, r.Sid, normTime(r.DateCreated))
	}
	want := normRec(again)
	want.Sid, want.DateCreated = r.Sid, normTime(r.DateCreated)
	if got, err := s.Recording(ctx, a.Sid, r.Sid); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("row replaced:\n got %+v %v\nwant %+v", got, err, want)
	}
	if _, err := s.RecordingBySid(ctx, again.Sid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a second row was made for the name: %v", err)
	}
	// The owners' index follows the replaced row.
	for owner, want := range map[string]int{"u-1": 0, "u-2": 1} {
		if p, err := s.ListRecordings(ctx, Query{AccountSid: a.Sid, Owner: owner}); err != nil || len(p.Items) != want {
			t.Fatalf("recordings of owner %s after the start: %d %v, want %d", owner, len(p.Items), err, want)
		}
	}
	// Another account's row of the name is not taken over.
	foreign := again
	foreign.Sid, foreign.AccountSid = NewRecordingSid(), b.Sid
	if _, _, err := s.StartRecording(ctx, foreign); !errors.Is(err, ErrConflict) {
		t.Fatalf("StartRecording over another account's row: %v, want ErrConflict", err)
	}
	if got, err := s.Recording(ctx, a.Sid, r.Sid); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("row changed by a refused start: %+v %v", got, err)
	}
}

// testOutboxDirectClaims: an item stored already claimed (the webhook
// sender's direct path) is neither due nor claimable, by its own node or
// another, until its claim ends; ReleaseClaims makes its claimant's pending
// items due at once and unclaimed, and no one else's; a dead node's
// direct claim is taken over once it expires; SettleDelivered settles
// batches of any size (padded to a power of two, chunked past the
// statement's limit) counting each attempt once.
func testOutboxDirectClaims(t *testing.T, s Store) {
	ctx := tctx(t)
	ob := s.(Outbox)
	now := time.Now().Truncate(time.Millisecond)
	lease := time.Minute
	for _, n := range []string{"a", "b"} {
		if err := ob.Heartbeat(ctx, n, now); err != nil {
			t.Fatal(err)
		}
	}
	enq := func(node, claimant string) int64 {
		id, err := ob.Enqueue(ctx, OutboxItem{Node: node, Kind: "K", URL: "http://x/", ContentType: "text/plain",
			Body: []byte("b"), ClaimedBy: claimant, ClaimUntil: now.Add(lease)})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	mine, other := enq("a", "a/direct"), enq("a", "a/elsewhere")
	it, err := ob.OutboxItem(ctx, mine)
	if err != nil || it.ClaimedBy != "a/direct" || !it.ClaimUntil.Equal(now.Add(lease)) || !it.NextAt.Equal(now.Add(lease)) || it.Status != OutboxPending {
		t.Fatalf("stored claimed: %+v %v", it, err)
	}
	alive := now.Add(-30 * time.Second)
	for _, n := range []string{"a", "b"} {
		if got, err := ob.Claim(ctx, n, now, lease, alive, 10); err != nil || len(got) != 0 {
			t.Fatalf("%s claimed %d directly claimed items (%v)", n, len(got), err)
		}
	}
	if n, err := ob.ReleaseClaims(ctx, "a/direct", now); err != nil || n != 1 {
		t.Fatalf("released %d (%v), want 1", n, err)
	}
	got, err := ob.Claim(ctx, "a", now, lease, alive, 10)
	if err != nil || len(got) != 1 || got[0].ID != mine {
		t.Fatalf("after release a claimed %+v %v, want only the released item", got, err)
	}
	// A settled item is not released again.
	if err := ob.SettleDelivered(ctx, []int64{mine}, now); err != nil {
		t.Fatal(err)
	}
	// a dies holding a direct claim: b takes it over once the claim ends.
	held := enq("a", "a/direct")
	later := now.Add(40 * time.Second)
	if got, err := ob.Claim(ctx, "b", later, lease, later.Add(-30*time.Second), 10); err != nil || len(got) != 0 {
		t.Fatalf("b took %d items whose claims have not ended (%v)", len(got), err)
	}
	expired := now.Add(lease + time.Second)
	got, err = ob.Claim(ctx, "b", expired, lease, expired.Add(-30*time.Second), 10)
	if err != nil || len(got) != 2 || got[0].ID != other || got[1].ID != held {
		t.Fatalf("after a's claims ended b took %+v %v, want both of a's held items", got, err)
	}
	if n, err := ob.ReleaseClaims(ctx, "a/direct", expired); err != nil || n != 0 {
		t.Fatalf("released %d items b holds (%v)", n, err)
	}

	// Batches: 3 (padded to 4 with a repeat) and 300 (chunked): each item
	// delivered with one attempt.
	for _, size := range []int{3, 300} {
		var ids []int64
		for range size {
			ids = append(ids, enq("c", "c/direct"))
		}
		if err := ob.SettleDelivered(ctx, ids, now); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			it, err := ob.OutboxItem(ctx, id)
			if err != nil || it.Status != OutboxDelivered || it.Attempts != 1 || it.ClaimedBy != "" {
				t.Fatalf("batch of %d: item %+v %v", size, it, err)
			}
		}
	}
	if n, err := ob.PendingCount(ctx, "c"); err != nil || n != 0 {
		t.Fatalf("%d of c's items pending (%v)", n, err)
	}
}

// testStatusCallback: a recording's status callback is kept with its row,
// read back whole, survives the row's later writes (the recording's own
// progress and its settling), and is absent from rows without one.
func testStatusCallback(t *testing.T, s Store) {
	ctx := tctx(t)
	sc, ok := s.(StatusCallbacks)
	if !ok {
		t.Fatalf("%T keeps no status callbacks", s)
	}
	a := mustAccount(t, s, "cb")
	plain, r := sampleRec(a.Sid, 1), sampleRec(a.Sid, 2)
	r.Status = StatusInProgress
	mustPut(t, s, plain)
	mustPut(t, s, r)
	want := StatusCallback{URL: "http://hooks.example/status?tenant=a%20b", Method: "GET", Events: []string{"completed", "failed"},
		Base: "http://node-a:8088", Track: "inbound"}
	if err := sc.SetStatusCallback(ctx, r.Sid, want); err != nil {
		t.Fatal(err)
	}
	if err := sc.SetStatusCallback(ctx, "RE"+strings.Repeat("0", 32), want); !errors.Is(err, ErrNotFound) {
		t.Errorf("set on an unknown recording: %v, want ErrNotFound", err)
	}
	if err := sc.SetStatusCallback(ctx, r.Sid, StatusCallback{Method: "POST"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("set without a URL: %v, want ErrInvalid", err)
	}
	// The recording's own writes (an upsert of the whole row) and its
	// settling leave the callback alone.
	r.Duration, r.DateCreated = 7, time.Time{}
	mustPut(t, s, r)
	if nl, ok := s.(NodeLiveness); ok {
		r.Status, r.StatusDetail, r.DateUpdated = StatusFailed, "Node lost: test", time.Now()
		if done, err := nl.SettleLost(ctx, r, r.Node); err != nil || !done {
			t.Fatalf("settle: %v %v", done, err)
		}
	}
	got, has, err := sc.StatusCallback(ctx, r.Sid)
	if err != nil || !has || !reflect.DeepEqual(got, want) {
		t.Fatalf("read back: %+v %v %v, want %+v", got, has, err, want)
	}
	if got, has, err := sc.StatusCallback(ctx, plain.Sid); err != nil || has || got.URL != "" {
		t.Errorf("a row without one: %+v %v %v", got, has, err)
	}
	if _, _, err := sc.StatusCallback(ctx, "RE"+strings.Repeat("1", 32)); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown recording: %v, want ErrNotFound", err)
	}
}

// failOutboxInserts installs, in the store's own database, a trigger that
// refuses every insert into webhook_outbox (a real failure of the insert,
// raised by the database inside the transaction), and returns what drops
// it.
func failOutboxInserts(t *testing.T, s Store) (drop func()) {
	t.Helper()
	ctx := tctx(t)
	db := s.(*sqlStore).w
	var install, remove []string
	switch s.(*sqlStore).d.name {
	case "sqlite":
		install = []string{`CREATE TRIGGER outbox_refused BEFORE INSERT ON webhook_outbox BEGIN SELECT RAISE(ABORT, 'outbox refused by the test'); END`}
		remove = []string{`DROP TRIGGER outbox_refused`}
	default:
		install = []string{`CREATE FUNCTION outbox_refused() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN RAISE EXCEPTION 'outbox refused by the test'; END $f$`,
			`CREATE TRIGGER outbox_refused BEFORE INSERT ON webhook_outbox FOR EACH ROW EXECUTE FUNCTION outbox_refused()`}
		remove = []string{`DROP TRIGGER outbox_refused ON webhook_outbox`, `DROP FUNCTION outbox_refused()`}
	}
	for _, q := range install {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return func() {
		t.Helper()
		for _, q := range remove {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
}

// testSettleLostQueuesInOneTransaction: settling a lost node's recording
// and queuing its notification are one transaction. With the outbox
// insert refused by the database (a trigger), SettleLost fails and the
// row stays live, as it was; once the insert is allowed again the next
// pass settles the row and queues the notification, exactly once (a
// further pass finds the row settled and queues nothing).
func testSettleLostQueuesInOneTransaction(t *testing.T, s Store) {
	ctx := tctx(t)
	nl := s.(NodeLiveness)
	ob := s.(Outbox)
	a := mustAccount(t, s, "lost")
	r := sampleRec(a.Sid, 1)
	r.Status, r.StatusDetail, r.Node, r.Size, r.Duration = StatusInProgress, "", "gone", 0, 0
	mustPut(t, s, r)
	note := OutboxItem{Node: "settler", Kind: "RecordingStatusCallback", CallID: r.CallSid, URL: "http://hooks.example/status",
		ContentType: "application/x-www-form-urlencoded", Body: []byte("RecordingSid=" + r.Sid + "&RecordingStatus=failed")}
	settled := r
	settled.Status, settled.StatusDetail, settled.DateUpdated = StatusFailed, "Node lost: node gone stopped", time.Now()
	pending := func() int {
		t.Helper()
		n, err := ob.PendingCount(ctx, "settler")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	drop := failOutboxInserts(t, s)
	done, err := nl.SettleLost(ctx, settled, "gone", note)
	if err == nil || done {
		t.Fatalf("settle with the outbox insert refused: done %v, err %v; want an error", done, err)
	}
	if !strings.Contains(err.Error(), "outbox refused by the test") {
		t.Errorf("the error does not say why: %v", err)
	}
	if got, err := s.RecordingBySid(ctx, r.Sid); err != nil || got.Status != StatusInProgress || got.StatusDetail != "" || got.Node != "gone" {
		t.Fatalf("the row after the failed settle: %+v %v; want it live, as it was (its notification was not queued)", got, err)
	}
	if n := pending(); n != 0 {
		t.Fatalf("%d notifications queued by the failed settle", n)
	}
	if err := ob.Heartbeat(ctx, "gone", time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if nodes, err := nl.LostNodes(ctx, "settler", time.Now()); err != nil || !slices.Contains(nodes, "gone") {
		t.Fatalf("lost nodes after the failed settle: %v %v; want the node still listed for the next pass", nodes, err)
	}

	drop()
	for pass := range 2 {
		done, err := nl.SettleLost(ctx, settled, "gone", note)
		if err != nil || done != (pass == 0) {
			t.Fatalf("pass %d: done %v, err %v; want done only at the first", pass, done, err)
		}
	}
	if got, err := s.RecordingBySid(ctx, r.Sid); err != nil || got.Status != StatusFailed || got.StatusDetail != settled.StatusDetail {
		t.Fatalf("the row after the settle: %+v %v", got, err)
	}
	if n := pending(); n != 1 {
		t.Fatalf("%d notifications queued, want exactly one", n)
	}
	due, err := ob.Due(ctx, "settler", time.Now().Add(time.Minute), 10)
	if err != nil || len(due) != 1 || string(due[0].Body) != string(note.Body) || due[0].Kind != note.Kind || due[0].ClaimedBy != "" {
		t.Fatalf("the queued notification: %+v %v", due, err)
	}
}

// testLostNodeReturnsAfterSettle: a node declared lost whose recording
// was settled (failed, its callback queued) and that then comes back and
// finishes the recording gets exactly one terminal callback: SettleLost
// clears the kept callback with the row it settles, so that the returning
// node's PutFinal queues nothing and its API (which sends from memory only
// a callback still kept) sends nothing. The returning node's final row
// still replaces the settled one: the recording's real end (its size and
// duration) is what the API shows.
func testLostNodeReturnsAfterSettle(t *testing.T, s Store) {
	ctx := tctx(t)
	nl := s.(NodeLiveness)
	fr := s.(FinalRows)
	ob := s.(Outbox)
	sc := s.(StatusCallbacks)
	a := mustAccount(t, s, "return")
	r := sampleRec(a.Sid, 1)
	r.Status, r.StatusDetail, r.Node, r.Size, r.Duration = StatusInProgress, "", "gone", 0, 0
	mustPut(t, s, r)
	if err := sc.SetStatusCallback(ctx, r.Sid, StatusCallback{URL: "http://hooks.example/status", Method: "POST",
		Events: []string{"completed", "failed"}}); err != nil {
		t.Fatal(err)
	}
	note := func(node, status string) OutboxItem {
		return OutboxItem{Node: node, Kind: "RecordingStatusCallback", CallID: r.CallSid, URL: "http://hooks.example/status",
			ContentType: "application/x-www-form-urlencoded", Body: []byte("RecordingSid=" + r.Sid + "&RecordingStatus=" + status)}
	}
	settled := r
	settled.Status, settled.StatusDetail, settled.Node, settled.DateUpdated = StatusFailed, "Node lost: node gone stopped", "settler", time.Now()
	if done, err := nl.SettleLost(ctx, settled, "gone", note("settler", "failed")); err != nil || !done {
		t.Fatalf("settle: done %v, err %v", done, err)
	}
	if _, has, err := sc.StatusCallback(ctx, r.Sid); err != nil || has {
		t.Fatalf("the status callback after the settle that queued its final status: kept %v, err %v; want it cleared", has, err)
	}
	// The lost node comes back and writes its final row as it would
	// (its notes made before it knew of the settle).
	final := r
	final.Status, final.Size, final.Duration, final.DateUpdated = StatusCompleted, 4321, 5, time.Now()
	queued, err := fr.PutFinal(ctx, final, nil, note("gone", "completed"))
	if err != nil || queued {
		t.Fatalf("the returning node's final row: queued %v, err %v; want nothing queued", queued, err)
	}
	if _, has, err := sc.StatusCallback(ctx, r.Sid); err != nil || has {
		t.Fatalf("the status callback after the return: kept %v, err %v; want none (its API must not send it)", has, err)
	}
	if got, err := s.RecordingBySid(ctx, r.Sid); err != nil || got.Status != StatusCompleted || got.Size != 4321 {
		t.Fatalf("the row after the return: %+v %v; want the real end (completed, its size)", got, err)
	}
	total := 0
	for _, node := range []string{"settler", "gone"} {
		n, err := ob.PendingCount(ctx, node)
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != 1 {
		t.Fatalf("%d terminal callbacks queued, want exactly one (the settle's)", total)
	}
	due, err := ob.Due(ctx, "settler", time.Now().Add(time.Minute), 10)
	if err != nil || len(due) != 1 || !strings.Contains(string(due[0].Body), "RecordingStatus=failed") {
		t.Fatalf("the queued callback: %+v %v", due, err)
	}

	// A settle that queued nothing (the settling node had nothing to send,
	// e.g. the callback did not ask for failed) keeps the callback: the
	// returning node's end is then the only terminal callback there is.
	r2 := sampleRec(a.Sid, 2)
	r2.Status, r2.StatusDetail, r2.Node = StatusInProgress, "", "gone"
	mustPut(t, s, r2)
	if err := sc.SetStatusCallback(ctx, r2.Sid, StatusCallback{URL: "http://hooks.example/status", Events: []string{"completed"}}); err != nil {
		t.Fatal(err)
	}
	s2 := r2
	s2.Status, s2.StatusDetail, s2.Node, s2.DateUpdated = StatusFailed, "Node lost: node gone stopped", "settler", time.Now()
	if done, err := nl.SettleLost(ctx, s2, "gone"); err != nil || !done {
		t.Fatalf("settle without notes: done %v, err %v", done, err)
	}
	if _, has, err := sc.StatusCallback(ctx, r2.Sid); err != nil || !has {
		t.Fatalf("the status callback after a settle that queued nothing: kept %v, err %v; want it kept", has, err)
	}
}

// testStatusCallbackQueuesInOneTransaction: keeping a recording's status
// callback and queuing its in-progress notification are one transaction:
// with the outbox insert refused (a trigger) neither is written; once
// allowed, both are.
func testStatusCallbackQueuesInOneTransaction(t *testing.T, s Store) {
	ctx := tctx(t)
	sc := s.(StatusCallbacks)
	ob := s.(Outbox)
	a := mustAccount(t, s, "started")
	r := sampleRec(a.Sid, 1)
	r.Status = StatusInProgress
	mustPut(t, s, r)
	cb := StatusCallback{URL: "http://hooks.example/status", Method: "POST", Events: []string{"in-progress"}}
	note := OutboxItem{Node: "self", Kind: "RecordingStatusCallback", CallID: r.CallSid, URL: cb.URL,
		ContentType: "application/x-www-form-urlencoded", Body: []byte("RecordingSid=" + r.Sid + "&RecordingStatus=in-progress")}
	state := func() (bool, int) {
		t.Helper()
		_, has, err := sc.StatusCallback(ctx, r.Sid)
		if err != nil {
			t.Fatal(err)
		}
		n, err := ob.PendingCount(ctx, "self")
		if err != nil {
			t.Fatal(err)
		}
		return has, n
	}
	drop := failOutboxInserts(t, s)
	if err := sc.SetStatusCallback(ctx, r.Sid, cb, note); err == nil || !strings.Contains(err.Error(), "outbox refused by the test") {
		t.Fatalf("keep with the outbox insert refused: %v; want the refusal", err)
	}
	if has, n := state(); has || n != 0 {
		t.Fatalf("after the refused keep: callback kept %v, %d queued; want neither", has, n)
	}
	drop()
	if err := sc.SetStatusCallback(ctx, r.Sid, cb, note); err != nil {
		t.Fatal(err)
	}
	if has, n := state(); !has || n != 1 {
		t.Fatalf("after the keep: callback kept %v, %d queued; want both", has, n)
	}
}

// testPing: Ping answers nil on a catalog, empty or not, and an error when
// the database answers without the catalog's tables or the call's context
// has ended (the readiness check's "catalog database" reason).
func testPing(t *testing.T, s Store) {
	ctx := tctx(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("empty catalog: %v", err)
	}
	for i := range 3 {
		if _, err := s.CreateAccount(ctx, fmt.Sprintf("ping-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("catalog with accounts: %v", err)
	}
	w := s.(*sqlStore).w
	if _, err := w.ExecContext(ctx, `ALTER TABLE accounts RENAME TO accounts_gone`); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping without the accounts table: nil")
	}
	if _, err := w.ExecContext(ctx, `ALTER TABLE accounts_gone RENAME TO accounts`); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("accounts table back: %v", err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Ping(done); err == nil {
		t.Error("Ping with an ended context: nil")
	}
}

// testWindowDurationPlan: a date window sorted by duration (Restcomm's
// StartTime/EndTime with SortBy=Duration) sorts the window's keys in the
// covering index recordings_account_created_duration and reads only the
// page's rows from the table (by rowid on SQLite; on PostgreSQL in the same
// index range, not by a search of the sid index per row), instead of
// reading every row of the window to sort them. Checked on the plan of the
// query ListRecordings runs, on a catalog analysed as autovacuum or
// PRAGMA optimize leave it.
func testWindowDurationPlan(t *testing.T, s Store) {
	ctx := tctx(t)
	st := s.(*sqlStore)
	var rs []Recording
	var acc Account
	for a := range 4 {
		acc = mustAccount(t, s, fmt.Sprintf("plan-%d", a))
		for i := range 1000 {
			r := sampleRec(acc.Sid, i)
			r.DateCreated = t0.Add(time.Duration(i*4+a) * 20 * time.Minute)
			r.Duration = float64((i*7919)%600) + 0.5
			r.Name = fmt.Sprintf("plan-%d-%d", a, i)
			rs = append(rs, r)
		}
	}
	for i := 0; i < len(rs); i += 500 {
		if err := s.PutRecordings(ctx, rs[i:i+500]); err != nil {
			t.Fatal(err)
		}
	}
	maint := "VACUUM ANALYZE recordings"
	if st.d.name == "sqlite" {
		maint = "ANALYZE"
	}
	if _, err := st.w.ExecContext(ctx, maint); err != nil {
		t.Fatal(err)
	}
	from, to := t0.Add(10*24*time.Hour), t0.Add(17*24*time.Hour)
	for _, q := range []Query{
		{StartFrom: &from, StartTo: &to, SortBy: SortDuration, Desc: true, Limit: 10},
		{StartFrom: &from, StartTo: &to, SortBy: SortDuration, Limit: 10, Offset: 40},
	} {
		q.AccountSid = acc.Sid
		var query string
		var args []any
		listHook = func(qs string, a []any) { query, args = qs, a }
		p, err := s.ListRecordings(ctx, q)
		listHook = nil
		if err != nil {
			t.Fatal(err)
		}
		var mine []Recording
		for _, r := range rs {
			if r.AccountSid == acc.Sid {
				mine = append(mine, normRec(r))
			}
		}
		want := expect(mine, q)
		if want = want[min(q.Offset, len(want)):min(q.Offset+q.Limit, len(want))]; len(want) != 10 || !slices.Equal(sids(p.Items), sids(want)) {
			t.Fatalf("%+v: %v, want %v", q, sids(p.Items), sids(want))
		}
		explain := "EXPLAIN "
		if st.d.name == "sqlite" {
			explain = "EXPLAIN QUERY PLAN "
		}
		rows, err := st.r.QueryContext(ctx, explain+query, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			cols, _ := rows.Columns()
			v := make([]any, len(cols))
			for i := range v {
				v[i] = new(any)
			}
			if err := rows.Scan(v...); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, fmt.Sprint(*v[len(v)-1].(*any)))
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		var must, mustNot []string
		if st.d.name == "sqlite" {
			// The window's keys from the covering index; the page's rows by
			// rowid.
			must = []string{"USING COVERING INDEX recordings_account_created_duration", "USING INTEGER PRIMARY KEY (rowid=?)"}
		} else {
			must = []string{"Index Only Scan using recordings_account_created_duration"}
			mustNot = []string{"recordings_pkey"}
		}
		for _, m := range must {
			if !strings.Contains(text, m) {
				t.Errorf("%+v: the plan has no %q:\n%s", q, m, text)
			}
		}
		for _, m := range mustNot {
			if strings.Contains(text, m) {
				t.Errorf("%+v: the plan has %q:\n%s", q, m, text)
			}
		}
	}
}

// testPutFinalQueuesInOneTransaction: a recording's final row, its call's
// record and its final status callback are one transaction. With the
// outbox insert refused by the database (a trigger), PutFinal fails and
// the row stays live, as it was, without the CDR; once the insert is
// allowed again the write (Reconcile's retry) commits all three, and
// writing the final row again (a retry of a committed write) queues
// nothing more: exactly one.
func testPutFinalQueuesInOneTransaction(t *testing.T, s Store) {
	ctx := tctx(t)
	fr := s.(FinalRows)
	ob := s.(Outbox)
	cs := s.(CDRs)
	a := mustAccount(t, s, "final")
	r := sampleRec(a.Sid, 1)
	r.Status, r.StatusDetail, r.Node, r.Size, r.Duration = StatusInProgress, "", "self", 0, 0
	mustPut(t, s, r)
	sc := s.(StatusCallbacks)
	if err := sc.SetStatusCallback(ctx, r.Sid, StatusCallback{URL: "http://hooks.example/status", Method: "POST", Events: []string{"completed"}}); err != nil {
		t.Fatal(err)
	}
	kept := func() bool {
		t.Helper()
		_, has, err := sc.StatusCallback(ctx, r.Sid)
		if err != nil {
			t.Fatal(err)
		}
		return has
	}
	note := OutboxItem{Node: "self", Kind: "RecordingStatusCallback", CallID: r.CallSid, URL: "http://hooks.example/status",
		ContentType: "application/x-www-form-urlencoded", Body: []byte("RecordingSid=" + r.Sid + "&RecordingStatus=completed")}
	final := r
	final.Status, final.Size, final.Duration, final.DateUpdated = StatusCompleted, 1234, 3, time.Now()
	cdr := CDR{Sid: "CA" + strings.Repeat("f", 32), AccountSid: a.Sid, CallID: "final-call", ChannelID: "final-chan", Status: "completed",
		StartTime: time.Now().Add(-time.Minute), EndTime: time.Now(), Node: "self"}
	pending := func() int {
		t.Helper()
		n, err := ob.PendingCount(ctx, "self")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	cdrs := func() int {
		t.Helper()
		_, n, err := cs.ListCDRs(ctx, CDRQuery{AccountSid: a.Sid})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	drop := failOutboxInserts(t, s)
	queued, err := fr.PutFinal(ctx, final, &cdr, note)
	if err == nil || queued {
		t.Fatalf("final write with the outbox insert refused: queued %v, err %v; want an error", queued, err)
	}
	if !strings.Contains(err.Error(), "outbox refused by the test") {
		t.Errorf("the error does not say why: %v", err)
	}
	if got, err := s.RecordingBySid(ctx, r.Sid); err != nil || got.Status != StatusInProgress || got.Size != 0 {
		t.Fatalf("the row after the failed write: %+v %v; want it live, as it was", got, err)
	}
	if n := pending(); n != 0 {
		t.Fatalf("%d notifications queued by the failed write", n)
	}
	if n := cdrs(); n != 0 {
		t.Fatalf("%d CDRs written by the failed write", n)
	}
	if !kept() {
		t.Fatal("the failed write cleared the row's status callback")
	}

	drop()
	for pass := range 2 {
		queued, err := fr.PutFinal(ctx, final, &cdr, note)
		if err != nil || queued != (pass == 0) {
			t.Fatalf("pass %d: queued %v, err %v; want queued only at the first", pass, queued, err)
		}
	}
	if got, err := s.RecordingBySid(ctx, r.Sid); err != nil || got.Status != StatusCompleted || got.Size != 1234 {
		t.Fatalf("the row after the write: %+v %v", got, err)
	}
	if n := cdrs(); n != 1 {
		t.Fatalf("%d CDRs, want 1", n)
	}
	if kept() {
		t.Fatal("the status callback is still kept with the row once its final status was queued")
	}
	if n := pending(); n != 1 {
		t.Fatalf("%d notifications queued, want exactly one", n)
	}
	due, err := ob.Due(ctx, "self", time.Now().Add(time.Minute), 10)
	if err != nil || len(due) != 1 || string(due[0].Body) != string(note.Body) || due[0].Kind != note.Kind {
		t.Fatalf("the queued notification: %+v %v", due, err)
	}
	// A row written final at once (never seen live) queues its notes.
	r2 := sampleRec(a.Sid, 2)
	r2.Status = StatusFailed
	if queued, err := fr.PutFinal(ctx, r2, nil, note); err != nil || !queued {
		t.Fatalf("a new final row: queued %v, err %v", queued, err)
	}
	// ErrInvalid for a CDR without its channel, nothing written.
	bad := cdr
	bad.ChannelID = ""
	if _, err := fr.PutFinal(ctx, final, &bad, note); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a CDR without its channel: %v, want ErrInvalid", err)
	}
	if n := pending(); n != 2 {
		t.Fatalf("%d notifications queued, want 2", n)
	}
}

// testNoteLiveQueuesInOneTransaction: a live recording's paused (resumed,
// degraded) notification is queued in the transaction that writes its
// row's status: with the outbox insert refused (a trigger) neither is
// written; once allowed, both are, the quality kept when none is given
// and written when one is. A recording whose final row is written gets
// ErrNotFound and nothing queued.
func testNoteLiveQueuesInOneTransaction(t *testing.T, s Store) {
	ctx := tctx(t)
	sc := s.(StatusCallbacks)
	ob := s.(Outbox)
	a := mustAccount(t, s, "notelive")
	r := sampleRec(a.Sid, 1)
	r.Status = StatusInProgress
	r.Quality = &Quality{PacketsExpected: 50, PacketsReceived: 50}
	mustPut(t, s, r)
	note := func(status string) OutboxItem {
		return OutboxItem{Node: "self", Kind: "RecordingStatusCallback", CallID: r.CallSid, URL: "http://hooks.example/status",
			ContentType: "application/x-www-form-urlencoded", Body: []byte("RecordingSid=" + r.Sid + "&RecordingStatus=" + status),
			OrderKey: "RecordingStatusCallback:" + r.Sid}
	}
	state := func() (Recording, int) {
		t.Helper()
		got, err := s.Recording(ctx, a.Sid, r.Sid)
		if err != nil {
			t.Fatal(err)
		}
		n, err := ob.PendingCount(ctx, "self")
		if err != nil {
			t.Fatal(err)
		}
		return got, n
	}
	drop := failOutboxInserts(t, s)
	if err := sc.NoteLive(ctx, r.Name, StatusPaused, nil, note("paused")); err == nil || !strings.Contains(err.Error(), "outbox refused by the test") {
		t.Fatalf("note with the outbox insert refused: %v; want the refusal", err)
	}
	if got, n := state(); got.Status != StatusInProgress || n != 0 {
		t.Fatalf("after the refused note: status %s, %d queued; want in-progress and none", got.Status, n)
	}
	drop()
	if err := sc.NoteLive(ctx, r.Name, StatusPaused, nil, note("paused")); err != nil {
		t.Fatal(err)
	}
	got, n := state()
	if got.Status != StatusPaused || n != 1 || got.Quality == nil || got.Quality.PacketsExpected != 50 {
		t.Fatalf("after the note: status %s, %d queued, quality %+v; want paused, one, the quality kept", got.Status, n, got.Quality)
	}
	q := &Quality{PacketsExpected: 100, PacketsReceived: 90, PacketsLost: 10, Degraded: true}
	if err := sc.NoteLive(ctx, r.Name, StatusPaused, q, note("degraded")); err != nil {
		t.Fatal(err)
	}
	if got, n := state(); n != 2 || got.Quality == nil || !got.Quality.Degraded || got.Quality.PacketsLost != 10 {
		t.Fatalf("after the degraded note: %d queued, quality %+v", n, got.Quality)
	}
	final := r
	final.Status, final.Duration = StatusCompleted, 3
	mustPut(t, s, final)
	if err := sc.NoteLive(ctx, r.Name, StatusInProgress, nil, note("in-progress")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("note of a finished recording: %v, want ErrNotFound", err)
	}
	if got, n := state(); got.Status != StatusCompleted || n != 2 {
		t.Fatalf("after the note of a finished recording: status %s, %d queued; want completed and nothing more", got.Status, n)
	}
}

// testOutboxOrder: the items of one OrderKey are claimed one at a time,
// oldest first, by any node: the next waits while the one before is
// pending (claimed, or failed and waiting for its retry, which
// NextClaimable then names instead of the blocked one), and goes once it
// is delivered or given up. Items without a key, or of another key, are
// not held back; an ordered item cannot be stored claimed.
func testOutboxOrder(t *testing.T, s Store) {
	ctx := tctx(t)
	ob := s.(Outbox)
	now := time.Now().Truncate(time.Millisecond)
	lease := time.Minute
	alive := now.Add(-30 * time.Second)
	for _, n := range []string{"a", "b"} {
		if err := ob.Heartbeat(ctx, n, now); err != nil {
			t.Fatal(err)
		}
	}
	enqueue := func(key string, i int) int64 {
		t.Helper()
		id, err := ob.Enqueue(ctx, OutboxItem{Node: "a", Kind: "K", URL: "http://x/" + key + fmt.Sprint(i), ContentType: "text/plain",
			Body: []byte("b"), NextAt: now.Add(-time.Second), OrderKey: key})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	k1, k2, k3 := enqueue("k", 1), enqueue("k", 2), enqueue("k", 3)
	free := enqueue("", 1)
	other := enqueue("j", 1)
	ids := func(items []OutboxItem) []int64 {
		var out []int64
		for _, it := range items {
			out = append(out, it.ID)
		}
		return out
	}
	deadBefore := alive
	claim := func(node string, at time.Time, want ...int64) {
		t.Helper()
		got, err := ob.Claim(ctx, node, at, lease, deadBefore, 10)
		if err != nil || !slices.Equal(ids(got), want) {
			t.Fatalf("%s claimed %v (%v), want %v", node, ids(got), err, want)
		}
	}
	claim("a", now, k1, free, other)
	if err := ob.SettleDelivered(ctx, []int64{free, other}, now); err != nil {
		t.Fatal(err)
	}
	// k1 is still pending (a node claims again what it holds): k2 waits.
	claim("a", now, k1)
	// Another node, with a dead: it takes a's items once their claims
	// end, but not k2 before k1.
	deadBefore = now.Add(time.Second)
	claim("b", now.Add(2*lease), k1)
	deadBefore = alive
	// k1 fails and waits for its retry: k2 still waits behind it, and the
	// next claimable time is k1's retry, not k2's past due time.
	retry := now.Add(10 * time.Second)
	if err := ob.Settle(ctx, k1, OutboxPending, 1, retry, "answered 500"); err != nil {
		t.Fatal(err)
	}
	claim("a", now)
	if at, ok, err := ob.NextClaimable(ctx, "a", alive); err != nil || !ok || !at.Equal(retry) {
		t.Fatalf("NextClaimable %v %v %v, want k1's retry at %v", at, ok, err, retry)
	}
	claim("a", retry, k1)
	if err := ob.SettleDelivered(ctx, []int64{k1}, retry); err != nil {
		t.Fatal(err)
	}
	claim("a", retry, k2)
	// Given up: the next goes.
	if err := ob.Settle(ctx, k2, OutboxFailed, 8, retry, "given up"); err != nil {
		t.Fatal(err)
	}
	claim("a", retry, k3)
	if _, err := ob.Enqueue(ctx, OutboxItem{Node: "a", Kind: "K", URL: "http://x/c", ContentType: "text/plain", Body: []byte("b"),
		OrderKey: "k", ClaimedBy: "a/direct", ClaimUntil: now.Add(lease)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an ordered item stored claimed: %v, want ErrInvalid", err)
	}
	if it, err := ob.OutboxItem(ctx, k3); err != nil || it.OrderKey != "k" {
		t.Fatalf("k3 read back: %+v %v", it, err)
	}
}

// testStartKeepsCallbackAndEndReason: StartRecording keeps the callback of
// a recording (Ozeki's FinishedUrl) with its row in the statement that
// writes the row, so that no crash after the start leaves the row without
// it; a name started again without one loses the old one. A recording's
// EndReason is stored with its final row (PutFinal, which clears the kept
// callback as it queues the notification), with a lost node's settled
// row (SettleLost), and moves with a deleted row.
func testStartKeepsCallbackAndEndReason(t *testing.T, s Store) {
	ctx := tctx(t)
	sc := s.(StatusCallbacks)
	a := mustAccount(t, s, "keep")
	r := sampleRec(a.Sid, 4)
	r.Status, r.SHA256, r.Size, r.Duration, r.Node = StatusInProgress, "", 0, 0, "self"
	cb := StatusCallback{Kind: "RecordCompleted", URL: "http://hooks.example/done", Method: "POST", CallID: "chan-1"}
	bad := r
	bad.Callback = &StatusCallback{Kind: "RecordCompleted"}
	if _, _, err := s.StartRecording(ctx, bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a callback without a URL: %v, want ErrInvalid", err)
	}
	r.Callback = &cb
	if _, _, err := s.StartRecording(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, has, err := sc.StatusCallback(ctx, r.Sid); err != nil || !has || !reflect.DeepEqual(got, cb) {
		t.Fatalf("the callback kept at the start: %+v %v %v, want %+v", got, has, err, cb)
	}
	// The same name started again, without a callback: none is kept.
	again := r
	again.Sid, again.Callback = NewRecordingSid(), nil
	if sid, _, err := s.StartRecording(ctx, again); err != nil || sid != r.Sid {
		t.Fatalf("start again: %q %v", sid, err)
	}
	if _, has, err := sc.StatusCallback(ctx, r.Sid); err != nil || has {
		t.Fatalf("a name started again without a callback still has one: %v %v", has, err)
	}
	if _, _, err := s.StartRecording(ctx, r); err != nil {
		t.Fatal(err)
	}
	// The final row with its end reason and its notification.
	final := r
	final.Callback = nil
	final.Status, final.Size, final.Duration, final.EndReason, final.DateUpdated = StatusCompleted, 100, 2, "finish-digit", time.Now()
	note := OutboxItem{Node: "self", Kind: "RecordCompleted", CallID: "chan-1", URL: cb.URL,
		ContentType: "application/x-www-form-urlencoded", Body: []byte("NotificationName=RecordCompleted")}
	if queued, err := s.(FinalRows).PutFinal(ctx, final, nil, note); err != nil || !queued {
		t.Fatalf("PutFinal: %v %v", queued, err)
	}
	if got, err := s.RecordingBySid(ctx, r.Sid); err != nil || got.EndReason != "finish-digit" || got.Status != StatusCompleted {
		t.Fatalf("the final row: %+v %v; want its end reason", got, err)
	}
	if _, has, err := sc.StatusCallback(ctx, r.Sid); err != nil || has {
		t.Fatalf("the callback is still kept after its notification was queued: %v %v", has, err)
	}
	// A lost node's recording settled: its end reason with it.
	lost := sampleRec(a.Sid, 5)
	lost.Status, lost.Node = StatusInProgress, "gone"
	lost.Callback = &cb
	if _, _, err := s.StartRecording(ctx, lost); err != nil {
		t.Fatal(err)
	}
	settled := lost
	settled.Status, settled.StatusDetail, settled.EndReason, settled.Node = StatusFailed, "Node lost: test", "interrupted", "self"
	if done, err := s.(NodeLiveness).SettleLost(ctx, settled, "gone", note); err != nil || !done {
		t.Fatalf("SettleLost: %v %v", done, err)
	}
	got, err := s.RecordingBySid(ctx, lost.Sid)
	if err != nil || got.EndReason != "interrupted" || got.Status != StatusFailed {
		t.Fatalf("the settled row: %+v %v; want its end reason", got, err)
	}
	if _, has, err := sc.StatusCallback(ctx, lost.Sid); err != nil || has {
		t.Fatalf("the settled row's callback is still kept: %v %v", has, err)
	}
	// Deleted: the end reason moves with the row.
	if err := s.SoftDeleteRecording(ctx, a.Sid, lost.Sid, Audit{AccountSid: a.Sid, RecordingSid: lost.Sid, Action: "delete"}); err != nil {
		t.Fatal(err)
	}
	if del, err := s.DeletedRecording(ctx, a.Sid, lost.Sid); err != nil || del.EndReason != "interrupted" {
		t.Fatalf("the deleted row: %+v %v; want its end reason", del, err)
	}
}
