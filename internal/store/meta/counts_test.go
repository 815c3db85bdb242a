package meta

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
)

// keptCountsOf: the live and deleted counts recording_counts keeps for
// acct, and the rows of each table counted.
func keptCountsOf(t *testing.T, s Store, acct string) (live, deleted, liveRows, deletedRows int) {
	t.Helper()
	ctx := tctx(t)
	st := s.(*sqlStore)
	if err := st.r.QueryRowContext(ctx, st.q(`SELECT COALESCE(SUM(live), 0), COALESCE(SUM(deleted), 0) FROM recording_counts WHERE account_sid = $1`), acct).Scan(&live, &deleted); err != nil {
		t.Fatal(err)
	}
	if err := st.r.QueryRowContext(ctx, st.q(`SELECT COUNT(*) FROM recordings WHERE account_sid = $1`), acct).Scan(&liveRows); err != nil {
		t.Fatal(err)
	}
	if err := st.r.QueryRowContext(ctx, st.q(`SELECT COUNT(*) FROM deleted_recordings WHERE account_sid = $1`), acct).Scan(&deletedRows); err != nil {
		t.Fatal(err)
	}
	return
}

// testKeptCounts: an account's list total without filters comes from
// recording_counts (migration 00019), which the triggers keep equal to the
// rows of recordings and deleted_recordings through every write: put,
// batch upserts (new rows and updates, over several accounts), a batch
// refused as a whole, StartRecording, delete, soft delete, purge; and the
// count query reads recording_counts, not the account's rows.
func testKeptCounts(t *testing.T, s Store) {
	ctx := tctx(t)
	a, b := mustAccount(t, s, "count-a"), mustAccount(t, s, "count-b")
	check := func(step string, wantA, wantADel, wantB int) {
		t.Helper()
		for _, c := range []struct {
			acct      string
			live, del int
		}{{a.Sid, wantA, wantADel}, {b.Sid, wantB, 0}} {
			live, del, liveRows, delRows := keptCountsOf(t, s, c.acct)
			if live != c.live || del != c.del || liveRows != c.live || delRows != c.del {
				t.Fatalf("%s: kept %d live, %d deleted; rows %d, %d; want %d, %d", step, live, del, liveRows, delRows, c.live, c.del)
			}
			p, err := s.ListRecordings(ctx, Query{AccountSid: c.acct, Limit: 5})
			if err != nil || p.Total != c.live {
				t.Fatalf("%s: Total %d, %v; want %d", step, p.Total, err, c.live)
			}
			p, err = s.ListRecordings(ctx, Query{AccountSid: c.acct, Limit: 5, IncludeDeleted: true})
			if err != nil || p.Total != c.live+c.del {
				t.Fatalf("%s: Total with deleted %d, %v; want %d", step, p.Total, err, c.live+c.del)
			}
			p, err = s.ListRecordings(ctx, Query{AccountSid: c.acct, Limit: 5, CountLimit: 3})
			if wantTotal := min(c.live, 4); err != nil || p.Total != wantTotal || p.TotalCapped != (c.live > 3) {
				t.Fatalf("%s: Total with CountLimit 3: %d %v, %v; want %d", step, p.Total, p.TotalCapped, err, wantTotal)
			}
		}
	}
	check("empty", 0, 0, 0)
	var recs []Recording
	for i := range 10 {
		r := sampleRec(a.Sid, i)
		mustPut(t, s, r)
		recs = append(recs, r)
	}
	check("put", 10, 0, 0)
	// A batch: 3 of a's rows updated, 6 new of a's, 6 new of b's, mixed.
	var batch []Recording
	for i := range 15 {
		switch {
		case i < 3:
			r := recs[i]
			r.Duration += 100
			batch = append(batch, r)
		case i%2 == 0:
			batch = append(batch, sampleRec(a.Sid, 100+i))
		default:
			batch = append(batch, sampleRec(b.Sid, 200+i))
		}
	}
	if err := s.PutRecordings(ctx, batch); err != nil {
		t.Fatal(err)
	}
	check("batch", 16, 0, 6)
	// Refused as a whole: the last row is one of a's under b.
	bad := []Recording{sampleRec(b.Sid, 300), sampleRec(b.Sid, 301), recs[4]}
	bad[2].AccountSid = b.Sid
	if err := s.PutRecordings(ctx, bad); err == nil {
		t.Fatal("a batch with another account's row: nil")
	}
	check("refused batch", 16, 0, 6)
	r := sampleRec(a.Sid, 400)
	r.Status, r.DateCreated = StatusInProgress, time.Time{}
	if _, _, err := s.StartRecording(ctx, r); err != nil {
		t.Fatal(err)
	}
	check("start", 17, 0, 6)
	if err := s.DeleteRecording(ctx, a.Sid, recs[5].Sid); err != nil {
		t.Fatal(err)
	}
	check("delete", 16, 0, 6)
	for _, r := range recs[6:9] {
		if err := s.SoftDeleteRecording(ctx, a.Sid, r.Sid, Audit{Actor: "test", API: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	check("soft delete", 13, 3, 6)
	if n, err := s.PurgeDeleted(ctx, time.Now().Add(time.Hour)); err != nil || n != 3 {
		t.Fatalf("PurgeDeleted: %d, %v", n, err)
	}
	check("purge", 13, 0, 6)

	// The count reads the kept count alone.
	var query string
	var args []any
	countHook = func(q string, a []any) { query, args = q, a }
	_, err := s.ListRecordings(ctx, Query{AccountSid: a.Sid, Desc: true, Limit: 5, Offset: 6})
	countHook = nil
	if err != nil {
		t.Fatal(err)
	}
	st := s.(*sqlStore)
	explain := "EXPLAIN "
	if st.d.name == "sqlite" {
		explain = "EXPLAIN QUERY PLAN "
	}
	plan := explainText(t, st, explain+query, args)
	if !strings.Contains(plan, "recording_counts") || strings.Contains(plan, "recordings_") ||
		strings.Contains(strings.ReplaceAll(plan, "recording_counts", ""), "recordings") {
		t.Fatalf("the count of an account reads its rows:\n%s\n%s", query, plan)
	}
}

// explainText is the plan of query, one line per row (the last column).
func explainText(t *testing.T, st *sqlStore, query string, args []any) string {
	t.Helper()
	rows, err := st.r.QueryContext(tctx(t), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
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
	return strings.Join(plan, "\n")
}

// testFlipOffset: a page past the middle of the account, by offset, is
// read from the other end (the opposite order, skipping the rows after it,
// then turned round), and every page is the page the reference order
// gives, as with the rows counted and skipped from the start: every
// offset, both directions, every sort, pages of 7 and 10, and with
// CountLimit for the date order.
func testFlipOffset(t *testing.T, s Store) {
	ctx := tctx(t)
	a := mustAccount(t, s, "flip")
	other := mustAccount(t, s, "flip-other")
	var recs []Recording
	var batch []Recording
	for i := range 53 {
		r := sampleRec(a.Sid, i)
		r.Duration = float64((i * 37) % 25) // ties, broken by sid
		recs = append(recs, normRec(r))
		batch = append(batch, r, sampleRec(other.Sid, 1000+i))
	}
	if err := s.PutRecordings(ctx, batch); err != nil {
		t.Fatal(err)
	}
	defer func() { keptCounts, flipOffset = true, true }()
	for _, sortBy := range []string{SortDateCreated, SortDuration, SortCallSid} {
		for _, desc := range []bool{true, false} {
			for _, limit := range []int{7, 10} {
				for _, countLimit := range []int{0, 20} {
					if countLimit > 0 && sortBy != SortDateCreated {
						continue
					}
					for off := 0; off <= 60; off++ {
						q := Query{AccountSid: a.Sid, SortBy: sortBy, Desc: desc, Limit: limit, Offset: off, CountLimit: countLimit}
						want := expect(recs, q)
						want = want[min(off, len(want)):min(off+limit, len(want))]
						for _, kept := range []bool{true, false} {
							keptCounts, flipOffset = kept, kept
							p, err := s.ListRecordings(ctx, q)
							if err != nil || !slices.Equal(sids(p.Items), sids(want)) {
								t.Fatalf("%+v (kept counts %v): %v, %v\nwant %v", q, kept, sids(p.Items), err, sids(want))
							}
						}
					}
				}
			}
		}
	}
	keptCounts, flipOffset = true, true
	// Offset 45 of 53 in pages of 5: skips 3 rows from the other end.
	var args []any
	listHook = func(_ string, a []any) { args = a }
	if _, err := s.ListRecordings(ctx, Query{AccountSid: a.Sid, Desc: true, Limit: 5, Offset: 45}); err != nil {
		t.Fatal(err)
	}
	listHook = nil
	if !slices.Contains(args, any(3)) || slices.Contains(args, any(45)) {
		t.Fatalf("offset 45 of 53: page query's arguments %v, want the offset 3 from the other end", args)
	}
}

// countsBackfill: a catalog made before migration 00019 (live and
// soft-deleted rows of two accounts) gets its counts when it migrates.
func countsBackfill(t *testing.T, db *sql.DB, d *dialect, gd goose.Dialect, dir string, reopen func() Store) {
	ctx := tctx(t)
	p, err := goose.NewProvider(gd, db, migrations(dir), goose.WithDisableGlobalRegistry(true), goose.WithAllowOutofOrder(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 18); err != nil {
		t.Fatal(err)
	}
	q := func(query string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, d.rebind(query), args...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	want := map[string][2]int{}
	for n, live := range []int{0, 7, 12} {
		acct := NewAccountSid()
		q(`INSERT INTO accounts (sid, auth_token, name, created, is_default) VALUES ($1, $2, $3, $4, $5)`,
			acct, NewAuthToken(), fmt.Sprintf("old-%d", n), d.timeArg(t0), false)
		del := n * 2
		for i := range live + del {
			table, extra, extraVal := "recordings", "", ""
			args := []any{NewRecordingSid(), acct, d.timeArg(t0.Add(time.Duration(i) * time.Minute))}
			if i >= live {
				table, extra, extraVal = "deleted_recordings", ", deleted_at", ", $4"
				args = append(args, d.timeArg(t0.Add(time.Hour)))
			}
			q(`INSERT INTO `+table+` (sid, account_sid, date_created, date_updated, status`+extra+`)
VALUES ($1, $2, $3, $3, 'completed'`+extraVal+`)`, args...)
		}
		want[acct] = [2]int{live, del}
	}
	s := reopen()
	defer s.Close()
	for acct, w := range want {
		live, del, _, _ := keptCountsOf(t, s, acct)
		if live != w[0] || del != w[1] {
			t.Fatalf("%s after the migration: %d live, %d deleted; want %v", acct, live, del, w)
		}
		pg, err := s.ListRecordings(ctx, Query{AccountSid: acct, IncludeDeleted: true, Limit: 100})
		if err != nil || pg.Total != w[0]+w[1] || len(pg.Items) != w[0]+w[1] {
			t.Fatalf("%s after the migration: total %d, %d rows, %v; want %d", acct, pg.Total, len(pg.Items), err, w[0]+w[1])
		}
	}
}

func TestSQLiteCountsBackfill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_foreign_keys=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	countsBackfill(t, db, sqliteDialect, goose.DialectSQLite3, "sqlite", func() Store {
		s, err := OpenSQLite(path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestPostgresCountsBackfill(t *testing.T) {
	dsn := pgTestDSN(t)
	db, err := pgConnect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	countsBackfill(t, db, postgresDialect, goose.DialectPostgres, "postgres", func() Store {
		s, err := OpenPostgres(tctx(t), dsn, WithTokenKey(testTokenKey))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
