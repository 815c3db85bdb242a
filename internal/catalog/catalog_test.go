package catalog

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// countingStore is the real SQLite store, counting default-account lookups.
type countingStore struct {
	meta.Store
	ensures atomic.Int32
}

func (c *countingStore) EnsureDefaultAccount(ctx context.Context) (meta.Account, error) {
	c.ensures.Add(1)
	return c.Store.EnsureDefaultAccount(ctx)
}

// TestDefaultAccountLookedUpOnce: recordings without an account go to the
// default account, whose Sid is read from the database once, not once per
// recording (a query on the writer connection for every call otherwise).
func TestDefaultAccountLookedUpOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cs := &countingStore{Store: st}
	svc := &Service{Meta: cs, Root: dir}

	acc, err := st.EnsureDefaultAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"one", "two", "three"} {
		sid, err := svc.Started(ctx, Info{Name: name, Path: filepath.Join(dir, name+".wav"), Format: "wav", Started: time.Now()})
		if err != nil {
			t.Fatalf("Started(%s): %v", name, err)
		}
		row, err := st.RecordingBySid(ctx, sid)
		if err != nil {
			t.Fatal(err)
		}
		if row.AccountSid != acc.Sid {
			t.Fatalf("recording %d in account %q, want the default %q", i, row.AccountSid, acc.Sid)
		}
	}
	if got, err := svc.AccountSid(ctx, ""); err != nil || got != acc.Sid {
		t.Fatalf(`AccountSid("") = %q, %v; want %q`, got, err, acc.Sid)
	}
	if n := cs.ensures.Load(); n != 1 {
		t.Fatalf("default account looked up %d times for 3 recordings and AccountSid; want once", n)
	}
}

// TestReconcileLeavesLiveRecordings: the periodic reconcile settles a row
// left in progress by an earlier run, but never the row of a recording
// being made now (between Started and Finished), even though its file is
// there; once that one finishes, its own write decides.
func TestReconcileLeavesLiveRecordings(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := &Service{Meta: st, Root: dir, Node: "n1"}
	wav := func(name string, samples int) string {
		p := filepath.Join(dir, name+".wav")
		if err := os.WriteFile(p, testutil.SilentWAV(samples), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	live := Info{Name: "live", Path: wav("live", 4000), Format: "wav", Started: time.Now()}
	if _, err := svc.Started(ctx, live); err != nil {
		t.Fatal(err)
	}
	stale := Info{Name: "stale", Path: wav("stale", 12000), Format: "wav", Started: time.Now()}
	if _, err := svc.Started(ctx, stale); err != nil {
		t.Fatal(err)
	}
	// A restart forgets what was live: a fresh service over the same store
	// sees "stale" as left in progress; "live" is made by this one.
	svc = &Service{Meta: st, Root: dir, Node: "n1"}
	if _, err := svc.Started(ctx, live); err != nil {
		t.Fatal(err)
	}
	if err := svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if row, err := st.RecordingByName(ctx, "live"); err != nil || row.Status != meta.StatusInProgress {
		t.Fatalf("live recording's row after reconcile: %+v %v, want in-progress", row, err)
	}
	row, err := st.RecordingByName(ctx, "stale")
	if err != nil || row.Status != meta.StatusRecovered || row.Size != 44+24000 || row.Duration != 1.5 || row.StatusDetail == "" {
		t.Fatalf("stale row after reconcile: %+v %v, want recovered, 24044 bytes, 1.5 s", row, err)
	}
	live.Duration = 500 * time.Millisecond
	if err := svc.Finished(ctx, live); err != nil {
		t.Fatal(err)
	}
	if err := svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if row, err := st.RecordingByName(ctx, "live"); err != nil || row.Status != meta.StatusCompleted || row.StatusDetail != "" {
		t.Fatalf("live recording's row after it finished: %+v %v, want completed", row, err)
	}
}
