package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"modernc.org/sqlite"
)

// groupStore opens a SQLite catalog with a commit window of window and
// n calls' rows in it.
func groupStore(t *testing.T, window time.Duration, n int) (*sqlStore, string, string) {
	t.Helper()
	path := t.TempDir() + "/tapedeck.db"
	st, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := st.(*sqlStore)
	s.group.window = window
	def, err := s.EnsureDefaultAccount(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		callRows(t, s, def.Sid, i, nil)
	}
	return s, path, def.Sid
}

func (g *commitGroup) state() (queued int, commits int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.jobs), g.commits
}

// awaitQueued waits until n writes wait in the group (false, with the
// test failed, when they do not within 10 s).
func awaitQueued(t testing.TB, g *commitGroup, n int) bool {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if q, _ := g.state(); q >= n {
			return true
		}
		if time.Now().After(deadline) {
			q, _ := g.state()
			t.Errorf("%d writes queued, want %d", q, n)
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

// sharedWrites makes n+1 writes meant to share a commit: write(ctx, i)
// for i < n under WithCommitDelay, in order (each queued before the next
// starts: the first leads), then write(ctx, n) in this goroutine without
// it, which commits at once, taking the waiting ones along. It returns
// their errors.
func sharedWrites(t testing.TB, g *commitGroup, n int, write func(ctx context.Context, i int) error) []error {
	t.Helper()
	ctx := context.Background()
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if i > 0 && !awaitQueued(t, g, i) {
				return
			}
			errs[i] = write(WithCommitDelay(ctx), i)
		})
	}
	if !awaitQueued(t, g, n) {
		t.FailNow()
	}
	errs[n] = write(ctx, n)
	wg.Wait()
	return errs
}

func liveRow(acct string, i int) Recording {
	now := time.Now().UTC()
	return Recording{
		Sid: NewRecordingSid(), AccountSid: acct, CallSid: fmt.Sprintf("CA%032x", i),
		DateCreated: now, DateUpdated: now, StartTime: now, Channels: 1, Format: "wav",
		Source: "dialplan", Status: StatusInProgress, Name: fmt.Sprintf("calls/2001-node-%d", i),
		FilePath: fmt.Sprintf("calls/2001-node-%d.wav", i), CallerNumber: "loadgen", CalledNumber: "2001",
		ApiVersion: APIVersion, Node: "node", Direction: "inbound",
	}
}

func finalOf(r Recording, acct string, i int) (Recording, CDR) {
	r.DateUpdated, r.Duration, r.Status, r.Size, r.EndReason = r.StartTime.Add(30*time.Second), 30, StatusCompleted, 480044, "hangup"
	return r, CDR{Sid: r.CallSid, AccountSid: acct, CallID: fmt.Sprintf("call-%d", i), ChannelID: fmt.Sprintf("node-%d", i),
		From: "loadgen", To: "2001", Direction: "inbound", Status: "completed", StartTime: r.StartTime, AnswerTime: r.StartTime,
		EndTime: r.DateUpdated, Duration: 30, Billsec: 30, Cause: 16, CauseText: "Normal Clearing", RTPReceived: 1500, Node: "node"}
}

// TestSQLiteGroupCommit: recorded calls' rows that may wait
// (WithCommitDelay) while others arrive share one commit, which an
// eager write makes at once; the WAL gets the pages they share once. The
// live rows of 8 calls, one commit each, appended 13 pages each (the
// table, 11 indexes, the count); their final rows and CDRs about 11.
func TestSQLiteGroupCommit(t *testing.T) {
	const n = 8
	s, path, acct := groupStore(t, time.Hour, 50)
	ctx := context.Background()
	checkpoint := func() {
		t.Helper()
		if _, err := s.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			t.Fatal(err)
		}
	}
	rows := make([]Recording, n+1)
	for i := range rows {
		rows[i] = liveRow(acct, 1000+i)
	}
	// Live rows: n that may wait, then one that may not.
	checkpoint()
	_, commits0 := s.group.state()
	errs := sharedWrites(t, s.group, n, func(ctx context.Context, i int) error {
		_, _, err := s.StartRecording(ctx, rows[i])
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	_, commits := s.group.state()
	livePages := walFrames(t, s, path)
	t.Logf("%d live rows: %d commits, %d WAL pages", n+1, commits-commits0, livePages)
	if c := commits - commits0; c > 2 {
		// (The first write leads: it commits alone if it came before
		// the others; every later one shares a commit.)
		t.Errorf("%d live rows took %d commits, want at most 2", n+1, c)
	}
	if max := int64(13 * (n + 1) / 2); livePages > max {
		t.Errorf("%d live rows appended %d WAL pages, want at most %d", n+1, livePages, max)
	}

	// Final rows with their CDRs, the same way.
	checkpoint()
	_, commits0 = s.group.state()
	errs = sharedWrites(t, s.group, n, func(ctx context.Context, i int) error {
		r, c := finalOf(rows[i], acct, 1000+i)
		return s.PutRecordingCDR(ctx, r, c)
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	_, commits = s.group.state()
	finalPages := walFrames(t, s, path)
	t.Logf("%d final rows and CDRs: %d commits, %d WAL pages", n+1, commits-commits0, finalPages)
	if c := commits - commits0; c > 2 {
		t.Errorf("%d final rows took %d commits, want at most 2", n+1, c)
	}
	if max := int64(11 * (n + 1) / 2); finalPages > max {
		t.Errorf("%d final rows appended %d WAL pages, want at most %d", n+1, finalPages, max)
	}
	for i, r := range rows {
		want, _ := finalOf(r, acct, 1000+i)
		got, err := s.Recording(ctx, acct, r.Sid)
		if err != nil {
			t.Fatal(err)
		}
		if !sameRec(got, normRec(want)) {
			t.Errorf("row %d = %+v, want %+v", i, got, normRec(want))
		}
	}
	cdrs, total, err := s.ListCDRs(ctx, CDRQuery{AccountSid: acct, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if want := 50 + n + 1; total != want || len(cdrs) != want {
		t.Errorf("%d CDRs (%d listed), want %d", total, len(cdrs), want)
	}
}

// TestSQLiteGroupCommitFailsAlone: a write that fails in a shared commit
// is rolled back alone (its final row and its CDR: neither), and the
// others commit.
func TestSQLiteGroupCommitFailsAlone(t *testing.T) {
	s, _, acct := groupStore(t, time.Hour, 5)
	ctx := context.Background()
	if _, err := s.w.ExecContext(ctx, `CREATE TRIGGER refuse_cdr BEFORE INSERT ON cdr WHEN NEW.channel_id = 'node-bad'
BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
	const n = 4
	rows := make([]Recording, n)
	for i := range rows {
		rows[i] = liveRow(acct, 2000+i)
		if _, _, err := s.StartRecording(ctx, rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	_, commits0 := s.group.state()
	errs := sharedWrites(t, s.group, n-1, func(ctx context.Context, i int) error {
		r, c := finalOf(rows[i], acct, 2000+i)
		if i == 1 {
			c.ChannelID = "node-bad"
		}
		return s.PutRecordingCDR(ctx, r, c)
	})
	if _, commits := s.group.state(); commits-commits0 > 2 {
		t.Errorf("%d commits, want the writes to share them", commits-commits0)
	}
	for i, err := range errs {
		got, gerr := s.Recording(ctx, acct, rows[i].Sid)
		if gerr != nil {
			t.Fatal(gerr)
		}
		if i == 1 {
			if err == nil {
				t.Error("the refused CDR's write returned no error")
			}
			if got.Status != StatusInProgress {
				t.Errorf("the refused write's row is %s: its final row was kept without its CDR", got.Status)
			}
			continue
		}
		if err != nil {
			t.Errorf("write %d: %v (failed with another's)", i, err)
		}
		if got.Status != StatusCompleted {
			t.Errorf("write %d: row %s, want completed", i, got.Status)
		}
	}
	_, total, err := s.ListCDRs(ctx, CDRQuery{AccountSid: acct, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if want := 5 + n - 1; total != want {
		t.Errorf("%d CDRs, want %d", total, want)
	}
}

// TestSQLiteCommitDelayOnlyUnderLoad: a write that may wait does not when
// no other came within the window (a quiet server adds no delay): with a
// window of an hour it still returns.
func TestSQLiteCommitDelayOnlyUnderLoad(t *testing.T) {
	s, _, acct := groupStore(t, time.Hour, 0)
	s.group.mu.Lock()
	s.group.last = time.Now().Add(-2 * time.Hour)
	s.group.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		_, _, err := s.StartRecording(WithCommitDelay(context.Background()), liveRow(acct, 1))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a lone write waited for others")
	}
}

// lockWriter holds the catalog's write lock at path from a connection of
// its own, as another process would, until unlock (or the test's end).
func lockWriter(t *testing.T, path string) (unlock func()) {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		conn.Close()
		db.Close()
		t.Fatal(err)
	}
	var once sync.Once
	unlock = func() {
		once.Do(func() {
			if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
				t.Error(err)
			}
			conn.Close()
			db.Close()
		})
	}
	t.Cleanup(unlock)
	return unlock
}

// TestSQLiteGroupCommitOutlivesAShortDeadline: a hangup's final row with
// its CDR (a short deadline, as the call model's hangupCatalogTimeout)
// joins a shared commit with two calls' live rows while the commit waits
// for the database (its write lock held by another connection, as another
// process would). At its deadline the hangup's write fails alone: its
// writer hears so then, not when the commit is done, and nothing of it is
// written (its row stays live, no CDR). The live rows commit once the
// database is free. Before, the shared transaction ended by the earliest
// of its writers' deadlines: the hangup's writer heard only when the
// busy wait gave up (10 s), and the live rows failed with it.
func TestSQLiteGroupCommitOutlivesAShortDeadline(t *testing.T) {
	const calls = 5
	s, path, acct := groupStore(t, time.Hour, calls)
	ctx := context.Background()
	const n = 2
	rows := make([]Recording, n+1)
	for i := range rows {
		rows[i] = liveRow(acct, 3000+i)
	}
	// The recording that hangs up has its live row already.
	if _, _, err := s.StartRecording(ctx, rows[n]); err != nil {
		t.Fatal(err)
	}
	_, commits0 := s.group.state()
	unlock := lockWriter(t, path)
	s.group.mu.Lock()
	s.group.last = time.Now() // the first live row waits for the others too
	s.group.mu.Unlock()
	const short = 300 * time.Millisecond
	var took time.Duration
	errs := sharedWrites(t, s.group, n, func(ctx context.Context, i int) error {
		if i < n {
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second) // as the call model's catalogCtx
			defer cancel()
			_, _, err := s.StartRecording(ctx, rows[i])
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, short)
		defer cancel()
		r, c := finalOf(rows[n], acct, 3000+n)
		start := time.Now()
		err := s.PutRecordingCDR(ctx, r, c)
		took = time.Since(start)
		unlock() // the database is free once the hangup's writer heard
		return err
	})
	if err := errs[n]; !errors.Is(err, context.DeadlineExceeded) || !Transient(err) {
		t.Errorf("the hangup's write: %v; want its own deadline's error (transient: the catalog retries it)", err)
	}
	if took > 5*time.Second {
		t.Errorf("the hangup's write (deadline %v) returned after %v: it waited for the shared commit", short, took)
	}
	for i := range n {
		if errs[i] != nil {
			t.Errorf("live row %d: %v (failed with the hangup's write)", i, errs[i])
		}
	}
	for i, r := range rows {
		got, err := s.Recording(ctx, acct, r.Sid)
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if got.Status != StatusInProgress {
			t.Errorf("row %d is %s, want in-progress (the hangup's final row is not written)", i, got.Status)
		}
	}
	if _, total, err := s.ListCDRs(ctx, CDRQuery{AccountSid: acct, Limit: 1000}); err != nil || total != calls {
		t.Errorf("%d CDRs (%v), want %d: none for the hangup whose write failed", total, err, calls)
	}
	if _, commits := s.group.state(); commits-commits0 != 1 {
		t.Errorf("%d commits, want the live rows' one", commits-commits0)
	}
}

// TestSQLiteGroupCommitTakenWriteOutlivesItsDeadline: a write whose
// statements ran in a shared commit, and whose deadline passes before the
// commit is done, hears the commit's outcome: its row and the others'
// are written, and none of them fails. Before, its deadline ended the
// shared transaction and all three failed.
func TestSQLiteGroupCommitTakenWriteOutlivesItsDeadline(t *testing.T) {
	s, _, _ := groupStore(t, time.Hour, 0)
	ctx := context.Background()
	if _, err := s.w.ExecContext(ctx, "CREATE TABLE group_probe (k INTEGER PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	_, commits0 := s.group.state()
	s.group.mu.Lock()
	s.group.last = time.Now() // the first write waits for the others
	s.group.mu.Unlock()
	const n = 2
	errs := sharedWrites(t, s.group, n, func(ctx context.Context, i int) error {
		timeout := 30 * time.Second
		if i == 0 {
			timeout = 200 * time.Millisecond
		}
		wctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return s.group.do(wctx, func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "INSERT INTO group_probe VALUES (?)", i); err != nil {
				return err
			}
			if i == 0 {
				<-wctx.Done() // its deadline passes with its row in the transaction
			}
			return nil
		})
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var k int
	if err := s.w.QueryRowContext(ctx, "SELECT count(*) FROM group_probe").Scan(&k); err != nil || k != n+1 {
		t.Fatalf("%d rows (%v), want %d", k, err, n+1)
	}
	if _, commits := s.group.state(); commits-commits0 != 1 {
		t.Errorf("%d commits, want 1", commits-commits0)
	}
}

// TestSQLiteGroupPrepareFailureLeaksNothing: when one of the savepoint
// statements cannot be prepared (RELEASE, refused by an authorizer on the
// writer connection), those prepared before it are closed: the writer
// connection's statement memory (SQLITE_DBSTATUS_STMT_USED) is as it was,
// and none is kept half-prepared. The next shared commit prepares the
// three. Before, the two prepared first stayed open and were prepared
// again by the next try.
func TestSQLiteGroupPrepareFailureLeaksNothing(t *testing.T) {
	s, _, acct := groupStore(t, time.Hour, 0)
	ctx := context.Background()
	writer := func(f func(dc any) error) { // on the one writer connection
		t.Helper()
		conn, err := s.w.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.Raw(f); err != nil {
			t.Fatal(err)
		}
	}
	stmtMem := func() (used int) {
		writer(func(dc any) (err error) {
			used, _, err = dc.(sqlite.DBStatus).Status(sqlite.DBStatusStmtUsed, false)
			return err
		})
		return used
	}
	writer(func(dc any) error {
		return dc.(sqlite.AuthorizerRegisterer).RegisterAuthorizer(func(action sqlite.AuthorizerActionCode, arg1, _, _, _ string) sqlite.AuthorizerReturnCode {
			if action == sqlite.AuthSavepoint && arg1 == "RELEASE" {
				return sqlite.AuthorizerDeny
			}
			return sqlite.AuthorizerOK
		})
	})
	before := stmtMem()
	if err := s.group.prepare(ctx); err == nil {
		t.Fatal("the savepoints were prepared with RELEASE refused")
	}
	if after := stmtMem(); after != before {
		t.Errorf("the writer connection's statements use %d bytes after the failed prepare, %d before: the ones prepared were left open", after, before)
	}
	if g := s.group; g.sp != nil || g.rollback != nil || g.release != nil {
		t.Errorf("savepoint statements kept from the failed prepare: SAVEPOINT %v, ROLLBACK TO %v, RELEASE %v", g.sp != nil, g.rollback != nil, g.release != nil)
	}
	writer(func(dc any) error { return dc.(sqlite.AuthorizerRegisterer).RegisterAuthorizer(nil) })
	s.group.mu.Lock()
	s.group.last = time.Now()
	s.group.mu.Unlock()
	errs := sharedWrites(t, s.group, 1, func(ctx context.Context, i int) error {
		_, _, err := s.StartRecording(ctx, liveRow(acct, 4000+i))
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if s.group.release == nil {
		t.Error("a shared commit without its savepoint statements")
	}
}

// TestSQLiteSharedCommitRunsNoSavepoint: a shared commit whose writes all
// succeed runs no SAVEPOINT (each write's savepoint cost two statements
// and kept SQLite's sub-journal open across its statements, spilling it to
// a temporary file; RESULTS.md, call13): with SAVEPOINT refused on the
// writer connection, a batch of live rows and final rows with their CDRs
// still commits, in one commit. A failing write still fails alone
// (TestSQLiteGroupCommitFailsAlone): the batch is then run again with a
// savepoint per write.
func TestSQLiteSharedCommitRunsNoSavepoint(t *testing.T) {
	s, _, acct := groupStore(t, time.Hour, 20)
	ctx := context.Background()
	const n = 3
	rows := make([]Recording, n)
	for i := range rows {
		rows[i] = liveRow(acct, 5000+i)
		if _, _, err := s.StartRecording(ctx, rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	// The savepoint statements are prepared before a shared commit's
	// transaction (the writer connection is then the transaction's), so
	// they are ready for a batch that must run again; registering an
	// authorizer expires them: they are prepared again, and refused, if
	// they run.
	if err := s.group.prepare(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = conn.Raw(func(dc any) error {
		return dc.(sqlite.AuthorizerRegisterer).RegisterAuthorizer(func(action sqlite.AuthorizerActionCode, arg1, _, _, _ string) sqlite.AuthorizerReturnCode {
			if action == sqlite.AuthSavepoint {
				return sqlite.AuthorizerDeny
			}
			return sqlite.AuthorizerOK
		})
	})
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	s.group.mu.Lock()
	s.group.last = time.Now()
	s.group.mu.Unlock()
	_, commits0 := s.group.state()
	live := make([]Recording, n)
	errs := sharedWrites(t, s.group, 2*n-1, func(ctx context.Context, i int) error {
		if i < n {
			r, c := finalOf(rows[i], acct, 5000+i)
			return s.PutRecordingCDR(ctx, r, c)
		}
		live[i-n] = liveRow(acct, 6000+i)
		_, _, err := s.StartRecording(ctx, live[i-n])
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("a shared commit with SAVEPOINT refused: %v", err)
	}
	if _, commits := s.group.state(); commits-commits0 > 2 {
		t.Errorf("%d commits, want the writes to share them", commits-commits0)
	}
	for i, r := range append(rows, live...) {
		want := StatusCompleted
		if i >= n {
			want = StatusInProgress
		}
		got, err := s.Recording(ctx, acct, r.Sid)
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if got.Status != want {
			t.Errorf("row %d is %s, want %s", i, got.Status, want)
		}
	}
	if _, total, err := s.ListCDRs(ctx, CDRQuery{AccountSid: acct, Limit: 1000}); err != nil {
		t.Fatal(err)
	} else if want := 20 + n; total != want {
		t.Errorf("%d CDRs, want %d", total, want)
	}
}

// TestSQLiteSharedCommitWritesOnlyItsWAL: a shared commit of three calls'
// live rows and three final rows with their CDRs, in a catalog of a few
// thousand calls, makes two write system calls per WAL frame (its header
// and its page) and at most three more. The statement journals of its
// writes stay in memory (temp_store=MEMORY on the writer): before, a
// statement that changed more than 16 pages (a page split in one of the
// indexes) spilled its journal to a temporary file, written page by page
// (up to 100 writes more per commit). The writer's page cache is made
// large enough here that no dirty page is written to the WAL before the
// commit (a cache spill rewrites frames: more writes than frames).
func TestSQLiteSharedCommitWritesOnlyItsWAL(t *testing.T) {
	io := func() int64 {
		t.Helper()
		b, err := os.ReadFile("/proc/self/io")
		if err != nil {
			t.Skip("no /proc/self/io:", err)
		}
		for l := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "syscw: "); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
		}
		t.Skip("no syscw in /proc/self/io")
		return 0
	}
	io()
	s, path, acct := groupStore(t, time.Hour, 3000)
	ctx := context.Background()
	if _, err := s.w.ExecContext(ctx, "PRAGMA cache_size=-8192"); err != nil {
		t.Fatal(err)
	}
	const k, batches = 3, 15
	start := func(ctx context.Context, r *Recording) error {
		sid, created, err := s.StartRecording(ctx, *r)
		r.Sid, r.DateCreated = sid, created
		return err
	}
	prev := make([]Recording, k)
	for i := range prev {
		prev[i] = liveRow(acct, 9000+i)
		if err := start(ctx, &prev[i]); err != nil {
			t.Fatal(err)
		}
	}
	for n := range batches {
		if _, err := s.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			t.Fatal(err)
		}
		rows := make([]Recording, k)
		for i := range rows {
			rows[i] = liveRow(acct, 10000+n*k+i)
		}
		s.group.mu.Lock()
		s.group.last = time.Now()
		s.group.mu.Unlock()
		w0 := io()
		errs := sharedWrites(t, s.group, 2*k-1, func(ctx context.Context, i int) error {
			if i < k {
				return start(ctx, &rows[i])
			}
			r, c := finalOf(prev[i-k], acct, 10000+(n-1)*k+i-k)
			return s.PutRecordingCDR(ctx, r, c)
		})
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		// syscw counts the whole process's writes: beside the commit's
		// (2 a frame, and 2 more) the runtime's own (netpollBreak's eventfd
		// writes when a timer moves) and other goroutines' add a few (5
		// more once in CI). A statement journal spilled to a temporary
		// file adds 38 to 108 a commit (temp_store left at its default).
		const others = 12
		writes, frames := io()-w0, walFrames(t, s, path)
		if writes > 2*frames+3+others {
			t.Errorf("commit %d: %d write system calls for %d WAL frames, want at most %d", n, writes, frames, 2*frames+3+others)
		}
		prev = rows
	}
}
