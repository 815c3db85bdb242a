package meta

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
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
func awaitQueued(t *testing.T, g *commitGroup, n int) bool {
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
	var wg sync.WaitGroup
	errs := make([]error, n+1)
	for i := range n {
		wg.Go(func() {
			if i > 0 && !awaitQueued(t, s.group, i) { // in order: the first leads
				return
			}
			_, _, errs[i] = s.StartRecording(WithCommitDelay(ctx), rows[i])
		})
	}
	if !awaitQueued(t, s.group, n) {
		t.FailNow()
	}
	_, _, errs[n] = s.StartRecording(ctx, rows[n])
	wg.Wait()
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
	for i := range n {
		wg.Go(func() {
			if i > 0 && !awaitQueued(t, s.group, i) {
				return
			}
			r, c := finalOf(rows[i], acct, 1000+i)
			errs[i] = s.PutRecordingCDR(WithCommitDelay(ctx), r, c)
		})
	}
	if !awaitQueued(t, s.group, n) {
		t.FailNow()
	}
	r, c := finalOf(rows[n], acct, 1000+n)
	errs[n] = s.PutRecordingCDR(ctx, r, c)
	wg.Wait()
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
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n - 1 {
		wg.Go(func() {
			if i > 0 && !awaitQueued(t, s.group, i) {
				return
			}
			r, c := finalOf(rows[i], acct, 2000+i)
			if i == 1 {
				c.ChannelID = "node-bad"
			}
			errs[i] = s.PutRecordingCDR(WithCommitDelay(ctx), r, c)
		})
	}
	if !awaitQueued(t, s.group, n-1) {
		t.FailNow()
	}
	r, c := finalOf(rows[n-1], acct, 2000+n-1)
	errs[n-1] = s.PutRecordingCDR(ctx, r, c)
	wg.Wait()
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
