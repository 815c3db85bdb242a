package catalog

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// TestFinishedQueuesWithTheRow: the final status callback of a recording
// (FinalNotices) is queued in the transaction that writes its final row.
// With the outbox insert refused by the database (a trigger raising on
// insert), Finished fails as a whole: the row stays live and nothing is
// queued; once the trigger is dropped Reconcile's retry writes the row
// with its callback queued, and later passes queue nothing more: exactly
// one. A row a killed run left in progress, settled by the next start's
// Reconcile, gets its callback the same way, once.
func TestFinishedQueuesWithTheRow(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	root := t.TempDir()
	svc := &Service{Meta: st, Root: root, Node: "na"}
	defer svc.Close()
	ob := st.(meta.Outbox)
	woken := 0
	svc.NoticesQueued = func() { woken++ }
	svc.FinalNotices = func(ctx context.Context, r meta.Recording) ([]meta.OutboxItem, error) {
		if r.Status.Live() {
			t.Errorf("FinalNotices asked for a live row: %+v", r)
		}
		return []meta.OutboxItem{{Node: "na", Kind: "RecordingStatusCallback", CallID: r.CallSid, URL: "http://127.0.0.1:9/status",
			ContentType: "application/x-www-form-urlencoded", Body: []byte("RecordingSid=" + r.Sid + "&RecordingStatus=" + string(r.Status))}}, nil
	}
	pending := func() int {
		t.Helper()
		n, err := ob.PendingCount(ctx, "na")
		must(t, err)
		return n
	}
	path := filepath.Join(root, "fin.wav")
	must(t, os.WriteFile(path, make([]byte, 8044), 0o600))
	in := Info{Name: "fin", Path: path, Format: "wav", Started: time.Now()}
	sid, err := svc.Started(ctx, in)
	must(t, err)

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "tapedeck.db")+"?_busy_timeout=10000")
	must(t, err)
	defer db.Close()
	_, err = db.ExecContext(ctx, `CREATE TRIGGER outbox_refused BEFORE INSERT ON webhook_outbox BEGIN SELECT RAISE(ABORT, 'outbox refused by the test'); END`)
	must(t, err)
	in.Status, in.Duration = "completed", 3*time.Second
	if err := svc.Finished(ctx, in); err == nil || !strings.Contains(err.Error(), "outbox refused by the test") {
		t.Fatalf("Finished with the outbox refused: %v, want its error", err)
	}
	if r, _ := st.RecordingBySid(ctx, sid); r.Status != meta.StatusInProgress {
		t.Fatalf("the row after the failed write: %+v, want it live (its callback was not queued)", r)
	}
	if n := pending(); n != 0 || woken != 0 {
		t.Fatalf("%d queued, sender woken %d times, by the failed write", n, woken)
	}
	// Still refused: Reconcile's retry fails too and keeps the row live.
	if err := svc.Reconcile(ctx); err == nil {
		t.Fatal("Reconcile with the outbox refused: nil")
	}
	if r, _ := st.RecordingBySid(ctx, sid); r.Status != meta.StatusInProgress {
		t.Fatalf("the row after the failed retry: %+v, want it live", r)
	}

	_, err = db.ExecContext(ctx, `DROP TRIGGER outbox_refused`)
	must(t, err)
	for range 3 {
		must(t, svc.Reconcile(ctx))
	}
	if r, _ := st.RecordingBySid(ctx, sid); r.Status != meta.StatusCompleted || r.Duration != 3 {
		t.Fatalf("the row after the trigger is gone: %+v", r)
	}
	if n := pending(); n != 1 || woken != 1 {
		t.Fatalf("%d callbacks queued, sender woken %d times; want exactly one", n, woken)
	}

	// A run killed while recording: its row is left in progress; the next
	// start's Reconcile settles it from its file and queues its callback
	// with it, once.
	kpath := filepath.Join(root, "killed.wav")
	must(t, os.WriteFile(kpath, make([]byte, 8044), 0o600))
	killed := &Service{Meta: st, Root: root, Node: "na"}
	ksid, err := killed.Started(ctx, Info{Name: "killed", Path: kpath, Format: "wav", Started: time.Now()})
	must(t, err)
	killed.Close()
	for range 2 {
		must(t, svc.Reconcile(ctx))
	}
	if r, _ := st.RecordingBySid(ctx, ksid); r.Status != meta.StatusRecovered {
		t.Fatalf("the killed run's row after the restart's reconcile: %+v", r)
	}
	due, err := ob.Due(ctx, "na", time.Now().Add(time.Minute), 10)
	must(t, err)
	n := 0
	for _, it := range due {
		if strings.Contains(string(it.Body), ksid) {
			n++
			if !strings.Contains(string(it.Body), "RecordingStatus=recovered") {
				t.Errorf("the killed run's callback: %s", it.Body)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d callbacks queued for the killed run's recording, want one: %+v", n, due)
	}
}
