package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
)

// ownedBy reports whether user is one of r's comma-separated owners (the
// Owner filter's meaning, exact and case-sensitive).
func ownedBy(r Recording, user string) bool {
	return user != "" && slices.Contains(strings.Split(r.Owners, ","), user)
}

// expectOwned is the reference of ListRecordings with q.Owner (and Status):
// expect over the rows that user owns.
func expectOwned(recs []Recording, q Query) []Recording {
	var in []Recording
	for _, r := range recs {
		if ownedBy(r, q.Owner) && (q.Status == "" || r.Status == q.Status) {
			in = append(in, r)
		}
	}
	return expect(in, q)
}

// checkOwnerPages lists q (with its Owner) by offset, by key forwards and
// backwards, and checks rows, order and Total against want.
func checkOwnerPages(t *testing.T, s Store, name string, q Query, want []Recording) {
	t.Helper()
	ctx := tctx(t)
	size := q.Limit
	var got []Recording
	for page := 0; ; page++ {
		q.Offset = page * size
		p, err := s.ListRecordings(ctx, q)
		if err != nil {
			t.Fatalf("%s: page %d: %v", name, page, err)
		}
		if p.Total != len(want) || p.TotalCapped {
			t.Fatalf("%s: Total %d (capped %v), want %d", name, p.Total, p.TotalCapped, len(want))
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
	q.Offset = 0
	var keyset []Recording
	for {
		p, err := s.ListRecordings(ctx, q)
		if err != nil {
			t.Fatalf("%s: after %q: %v", name, q.AfterSid, err)
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
	if len(want) > size {
		q.AfterSid, q.BeforeSid = "", want[len(want)-1].Sid
		p, err := s.ListRecordings(ctx, q)
		if err != nil {
			t.Fatalf("%s: before %q: %v", name, q.BeforeSid, err)
		}
		if w := want[len(want)-1-size : len(want)-1]; !slices.Equal(sids(p.Items), sids(w)) {
			t.Fatalf("%s: the page before the last row\n got %v\nwant %v", name, sids(p.Items), sids(w))
		}
	}
}

// checkOwnersTables: recording_owners and deleted_recording_owners hold one
// row per (distinct, non-empty) owner of each row of recordings and
// deleted_recordings, with its account and date, and nothing else.
func checkOwnersTables(t *testing.T, s Store) {
	t.Helper()
	ctx := tctx(t)
	st := s.(*sqlStore)
	for _, tb := range [][2]string{{"recordings", "recording_owners"}, {"deleted_recordings", "deleted_recording_owners"}} {
		want := map[string]bool{}
		rows, err := st.r.QueryContext(ctx, `SELECT sid, account_sid, date_created, owners FROM `+tb[0])
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var sid, acct, owners string
			var dc dbTime
			if err := rows.Scan(&sid, &acct, &dc, &owners); err != nil {
				t.Fatal(err)
			}
			for _, u := range strings.Split(owners, ",") {
				if u != "" {
					want[fmt.Sprintf("%s|%s|%s|%s", u, acct, dc.t.Format(time.RFC3339Nano), sid)] = true
				}
			}
		}
		rows.Close()
		got := map[string]bool{}
		rows, err = st.r.QueryContext(ctx, `SELECT user_uuid, account_sid, date_created, sid FROM `+tb[1])
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var u, acct, sid string
			var dc dbTime
			if err := rows.Scan(&u, &acct, &dc, &sid); err != nil {
				t.Fatal(err)
			}
			got[fmt.Sprintf("%s|%s|%s|%s", u, acct, dc.t.Format(time.RFC3339Nano), sid)] = true
		}
		rows.Close()
		for k := range want {
			if !got[k] {
				t.Errorf("%s lacks %s", tb[1], k)
			}
		}
		for k := range got {
			if !want[k] {
				t.Errorf("%s has %s, which %s does not say", tb[1], k, tb[0])
			}
		}
	}
}

// testOwners: the user (Owner) filter, served by the owners tables, gives
// the user's recordings of the account, and no other, in every order and
// with every other filter, by offset and by key both ways, with an exact
// Total; the owners tables follow every change of a row's owners and date
// (PutRecording, PutRecordings, StartRecording and its overwrite of a
// name), its deletion, soft deletion and purge; owners with a quote, a backslash,
// repeated or empty items are indexed as they are matched.
func testOwners(t *testing.T, s Store) {
	ctx := tctx(t)
	a := mustAccount(t, s, "owners")
	b := mustAccount(t, s, "owners-other")
	rng := rand.New(rand.NewPCG(3, 4))
	ownerSets := []string{"", "u-1", "u-1,u-2", "u-2,u-1,u-2", ",u-1,", `x"y\z`, "ü-ñ,u-2", ""}
	live := map[string]Recording{}
	var batch []Recording
	for i := range 90 {
		r := sampleRec(a.Sid, i)
		// Repeated dates and durations, to exercise the Sid tie-break.
		r.DateCreated = t0.Add(time.Duration(rng.IntN(30)) * time.Minute)
		r.Duration = float64(rng.IntN(8))
		r.Status = []Status{StatusCompleted, StatusFailed, StatusCompleted}[i%3]
		r.Owners = ownerSets[i%len(ownerSets)]
		if i%15 == 4 {
			r.Owners = "u-rare"
		}
		if i%2 == 0 {
			batch = append(batch, r)
		} else {
			mustPut(t, s, r)
		}
		live[r.Sid] = normRec(r)
	}
	if err := s.PutRecordings(ctx, batch); err != nil {
		t.Fatal(err)
	}
	for i := range 20 { // the same users in another account
		r := sampleRec(b.Sid, i)
		r.Owners = "u-1,u-rare"
		mustPut(t, s, r)
	}
	recs := func() []Recording {
		var out []Recording
		for _, r := range live {
			out = append(out, r)
		}
		return out
	}
	from, to := t0.Add(8*time.Minute), t0.Add(20*time.Minute)
	check := func(stage string) {
		t.Helper()
		for _, user := range []string{"u-1", "u-2", "u-3", "u-rare", `x"y\z`, "ü-ñ", "u-none"} {
			for fi, f := range []Query{{}, {Status: StatusFailed}, {StartFrom: &from, StartTo: &to}, {CallSid: fmt.Sprintf("CA%032x", 2)}} {
				for _, sortBy := range []string{SortDateCreated, SortDuration, SortCallSid} {
					for _, desc := range []bool{false, true} {
						q := f
						q.AccountSid, q.Owner, q.SortBy, q.Desc, q.Limit = a.Sid, user, sortBy, desc, 4
						if fi > 0 && sortBy != SortDateCreated {
							q.Limit = 1000
						}
						checkOwnerPages(t, s, fmt.Sprintf("%s/%s/filter%d/%s/desc=%v", stage, user, fi, sortBy, desc), q, expectOwned(recs(), q))
					}
				}
			}
		}
		checkOwnersTables(t, s)
	}
	check("put")
	if n := len(expectOwned(recs(), Query{AccountSid: a.Sid, Owner: "u-1"})); n < 30 {
		t.Fatalf("fixture: u-1 owns %d recordings", n)
	}

	// The count stops past CountLimit, as for the other filters.
	p, err := s.ListRecordings(ctx, Query{AccountSid: a.Sid, Owner: "u-1", CountLimit: 10, Limit: 3})
	if err != nil || p.Total != 11 || !p.TotalCapped || len(p.Items) != 3 {
		t.Errorf("Owner with CountLimit 10: total %d capped %v, %d rows, %v", p.Total, p.TotalCapped, len(p.Items), err)
	}

	// Changes of owners and dates, one row and in a batch.
	var sorted []Recording
	for _, r := range recs() {
		sorted = append(sorted, r)
	}
	slices.SortFunc(sorted, func(x, y Recording) int { return strings.Compare(x.Sid, y.Sid) })
	moved := sorted[0]
	moved.Owners, moved.DateCreated = "u-rare,u-new", time.Time{} // keeps its date
	mustPut(t, s, moved)
	moved.DateCreated = live[moved.Sid].DateCreated
	live[moved.Sid] = normRec(moved)
	redated := sorted[1]
	redated.Owners, redated.DateCreated = "u-rare", t0.Add(-time.Hour)
	mustPut(t, s, redated)
	live[redated.Sid] = normRec(redated)
	var again []Recording
	for _, r := range sorted[2:12] {
		r.Owners = map[bool]string{true: "", false: "u-2"}[r.Owners != ""]
		r.DateCreated = r.DateCreated.Add(time.Duration(rng.IntN(3)) * time.Minute)
		again = append(again, r)
		live[r.Sid] = normRec(r)
	}
	if err := s.PutRecordings(ctx, again); err != nil {
		t.Fatal(err)
	}
	for _, r := range sorted[:12] { // DateUpdated is the store's
		got, err := s.Recording(ctx, a.Sid, r.Sid)
		if err != nil {
			t.Fatal(err)
		}
		if w := live[r.Sid]; !got.DateCreated.Equal(w.DateCreated) || got.Owners != w.Owners {
			t.Fatalf("%s after the update: created %v owners %q; want %v %q", r.Sid, got.DateCreated, got.Owners, w.DateCreated, w.Owners)
		}
		live[r.Sid] = got
	}
	check("update")

	// A policy recording starts (StartRecording, the recorder's write),
	// and its name is reused (ifExists=overwrite) for a call of other users:
	// the row keeps its Sid and date, its owners follow.
	started := sampleRec(a.Sid, 200)
	started.Owners, started.Status, started.Source = "u-rare,u-3", StatusInProgress, SourcePolicy
	sid, created, err := s.StartRecording(ctx, started)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Recording(ctx, a.Sid, sid); err != nil {
		t.Fatal(err)
	} else {
		live[sid] = got
	}
	check("start")
	again2 := sampleRec(a.Sid, 201)
	again2.Name, again2.Owners, again2.Source = started.Name, "u-3,u-1", SourcePolicy
	if sid2, created2, err := s.StartRecording(ctx, again2); err != nil || sid2 != sid || !created2.Equal(created) {
		t.Fatalf("StartRecording over %s: %s %v, %v", started.Name, sid2, created2, err)
	}
	if got, err := s.Recording(ctx, a.Sid, sid); err != nil || got.Owners != "u-3,u-1" {
		t.Fatalf("the overwritten row: %+v, %v", got, err)
	} else {
		live[sid] = got
	}
	check("start-overwrite")

	// Deletion, by Sid and by name; soft deletion and purge.
	var gone []Recording
	for i, r := range sorted[12:20] {
		switch i % 3 {
		case 0:
			err = s.DeleteRecording(ctx, a.Sid, r.Sid)
		case 1:
			err = s.DeleteRecordingByName(ctx, r.Name)
		default:
			err = s.SoftDeleteRecording(ctx, a.Sid, r.Sid, Audit{AccountSid: a.Sid, RecordingSid: r.Sid, Action: AuditDelete})
			r.Status = StatusDeleted
			gone = append(gone, r)
		}
		if err != nil {
			t.Fatal(err)
		}
		delete(live, r.Sid)
	}
	check("delete")
	// IncludeDeleted with an Owner: the user's live and deleted rows.
	for _, user := range []string{"u-1", "u-2", "u-rare"} {
		q := Query{AccountSid: a.Sid, Owner: user, IncludeDeleted: true, Desc: true, Limit: 1000}
		want := expectOwned(append(recs(), gone...), q)
		p, err := s.ListRecordings(ctx, q)
		if err != nil || p.Total != len(want) || !slices.Equal(sids(p.Items), sids(want)) {
			t.Fatalf("%s with IncludeDeleted: total %d, %v, %v; want %v", user, p.Total, sids(p.Items), err, sids(want))
		}
	}
	if n, err := s.PurgeDeleted(ctx, time.Now().Add(time.Hour)); err != nil || n != len(gone) {
		t.Fatalf("PurgeDeleted: %d, %v; want %d", n, err, len(gone))
	}
	check("purge")

	// Owners that the triggers could not read are refused.
	bad := sampleRec(a.Sid, 99)
	bad.Owners = "u-1,\nu-2"
	if err := s.PutRecording(ctx, bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("owners with a newline: %v, want ErrInvalid", err)
	}
	if err := s.PutRecordings(ctx, []Recording{bad}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("owners with a newline in a batch: %v, want ErrInvalid", err)
	}
}

// ownersBackfill: a catalog made before migration 00014 (rows with owners,
// live and soft-deleted) gets its owners tables filled when it migrates,
// and the user filter finds those rows.
func ownersBackfill(t *testing.T, db *sql.DB, d *dialect, gd goose.Dialect, dir string, reopen func() Store) {
	ctx := tctx(t)
	p, err := goose.NewProvider(gd, db, migrations(dir), goose.WithDisableGlobalRegistry(true), goose.WithAllowOutofOrder(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 13); err != nil {
		t.Fatal(err)
	}
	acct := NewAccountSid()
	q := func(query string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, d.rebind(query), args...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	q(`INSERT INTO accounts (sid, auth_token, name, created, is_default) VALUES ($1, $2, 'old', $3, $4)`,
		acct, NewAuthToken(), d.timeArg(t0), false)
	var want []string // u-1's, newest first
	for i := range 12 {
		sid := NewRecordingSid()
		owners := []string{"u-1", "u-2,u-1", "", "u-2"}[i%4]
		table, extra, extraVal := "recordings", "", ""
		if i%5 == 3 {
			table, extra, extraVal = "deleted_recordings", ", deleted_at", ", $5"
		}
		args := []any{sid, acct, d.timeArg(t0.Add(time.Duration(i) * time.Minute)), owners}
		if extra != "" {
			args = append(args, d.timeArg(t0.Add(time.Hour)))
		}
		q(`INSERT INTO `+table+` (sid, account_sid, date_created, date_updated, owners, status`+extra+`)
VALUES ($1, $2, $3, $3, $4, 'completed'`+extraVal+`)`, args...)
		if table == "recordings" && strings.Contains(owners, "u-1") {
			want = append([]string{sid}, want...)
		}
	}
	s := reopen()
	defer s.Close()
	pg, err := s.ListRecordings(ctx, Query{AccountSid: acct, Owner: "u-1", Desc: true, Limit: 100})
	if err != nil || pg.Total != len(want) || !slices.Equal(sids(pg.Items), want) {
		t.Fatalf("u-1 after the migration: total %d, %v, %v; want %v", pg.Total, sids(pg.Items), err, want)
	}
	checkOwnersTables(t, s)
	var n int
	if err := s.(*sqlStore).r.QueryRowContext(ctx, `SELECT COUNT(*) FROM deleted_recording_owners`).Scan(&n); err != nil || n == 0 {
		t.Fatalf("deleted_recording_owners after the migration: %d rows, %v", n, err)
	}
}

func TestSQLiteOwnersBackfill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_foreign_keys=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ownersBackfill(t, db, sqliteDialect, goose.DialectSQLite3, "sqlite", func() Store {
		s, err := OpenSQLite(path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestPostgresOwnersBackfill(t *testing.T) {
	dsn := pgTestDSN(t)
	db, err := pgConnect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ownersBackfill(t, db, postgresDialect, goose.DialectPostgres, "postgres", func() Store {
		s, err := OpenPostgres(tctx(t), dsn, WithTokenKey(testTokenKey))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
