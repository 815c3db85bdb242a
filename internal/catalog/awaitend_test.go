package catalog

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil/sqlitetest"
)

// TestAwaitEnd: AwaitEnd's channel closes when the catalog is done with a
// recording's end, and not before, over a real SQLite catalog: at once for
// a name not being recorded; for one being recorded, when its final write
// succeeds (a canceled recording's row deleted included), not while that
// write fails and waits for Reconcile's retry (a trigger refusing the
// final row), but when the retry succeeds. A stopped waiter is forgotten.
func TestAwaitEnd(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := sqlitetest.Open(t, filepath.Join(dir, "tapedeck.db"))
	root := t.TempDir()
	svc := &Service{Meta: db.Store, Root: root, Node: "na"}
	defer svc.Close()
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	start := func(name string) Info {
		t.Helper()
		path := filepath.Join(root, name+".wav")
		must(t, os.WriteFile(path, make([]byte, 8044), 0o600))
		in := Info{Name: name, Path: path, Format: "wav", Started: time.Now()}
		_, err := svc.Started(ctx, in)
		must(t, err)
		return in
	}

	if ch, stop := svc.AwaitEnd("nothing"); !closed(ch) {
		t.Fatal("AwaitEnd of a name not being recorded: not closed at once")
	} else {
		stop()
	}

	in := start("done")
	ch, stop := svc.AwaitEnd("done")
	if closed(ch) {
		t.Fatal("AwaitEnd of a recording under way: closed before its end")
	}
	in.Status, in.Duration = "completed", time.Second
	must(t, svc.Finished(ctx, in))
	if !closed(ch) {
		t.Fatal("AwaitEnd: not closed once the final row was written")
	}
	stop()

	in = start("canceled")
	ch, stop = svc.AwaitEnd("canceled")
	in.Status = "canceled"
	must(t, svc.Finished(ctx, in))
	if _, err := db.Store.RecordingByName(ctx, "canceled"); err == nil {
		t.Fatal("the canceled recording's row is still there")
	}
	if !closed(ch) {
		t.Fatal("AwaitEnd: not closed once the canceled recording's row was deleted")
	}
	stop()

	in = start("retried")
	ch, stop = svc.AwaitEnd("retried")
	db.Refuse(t, "recordings", "UPDATE")
	in.Status, in.Duration = "completed", time.Second
	if err := svc.Finished(ctx, in); err == nil {
		t.Fatal("Finished with its row refused: nil")
	}
	if closed(ch) {
		t.Fatal("AwaitEnd: closed while the final write waits for its retry")
	}
	if err := svc.Reconcile(ctx); err == nil {
		t.Fatal("Reconcile with the row refused: nil")
	}
	if closed(ch) {
		t.Fatal("AwaitEnd: closed after a retry that failed")
	}
	// A second waiter, stopped: forgotten, and not closed.
	ch2, stop2 := svc.AwaitEnd("retried")
	stop2()
	db.Allow(t, "recordings", "UPDATE")
	must(t, svc.Reconcile(ctx))
	if !closed(ch) {
		t.Fatal("AwaitEnd: not closed once the retry wrote the final row")
	}
	if closed(ch2) {
		t.Fatal("a stopped waiter was told")
	}
	if r, err := db.Store.RecordingByName(ctx, "retried"); err != nil || r.Status != meta.StatusCompleted {
		t.Fatalf("the retried row: %+v %v", r, err)
	}
	stop()
	svc.mu.Lock()
	left := len(svc.ends)
	svc.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d names still have waiters", left)
	}
}
