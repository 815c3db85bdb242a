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

// stmtStore is the real SQLite store, counting the recording statements the
// recorder's path makes.
type stmtStore struct {
	meta.Store
	byName, bySid, put, checksum atomic.Int32
}

func (c *stmtStore) RecordingByName(ctx context.Context, name string) (meta.Recording, error) {
	c.byName.Add(1)
	return c.Store.RecordingByName(ctx, name)
}

func (c *stmtStore) RecordingBySid(ctx context.Context, sid string) (meta.Recording, error) {
	c.bySid.Add(1)
	return c.Store.RecordingBySid(ctx, sid)
}

func (c *stmtStore) PutRecording(ctx context.Context, r meta.Recording) error {
	c.put.Add(1)
	return c.Store.PutRecording(ctx, r)
}

func (c *stmtStore) SetChecksum(ctx context.Context, sid, filePath string, size int64, sum string, now time.Time) (bool, error) {
	c.checksum.Add(1)
	return c.Store.SetChecksum(ctx, sid, filePath, size, sum, now)
}

// TestRecordingStatements: a recording that ends by a hangup costs four
// catalog statements — Started's look-up (a reused name keeps its row) and
// insert, Finished's update of the row Started wrote (not read back), and
// the checksum job's one conditional UPDATE — and the row ends completed
// with the file's size and SHA-256 and what Paused changed.
func TestRecordingStatements(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.EnsureDefaultAccount(ctx); err != nil {
		t.Fatal(err)
	}
	cs := &stmtStore{Store: st}
	svc := &Service{Meta: cs, Root: dir, Node: "n1"}
	defer svc.Close()

	p := filepath.Join(dir, "calls", "a.wav")
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	audio := make([]byte, 44+16000)
	for i := range audio {
		audio[i] = byte(i * 7)
	}
	must(t, os.WriteFile(p, audio, 0o644))
	in := Info{Name: "calls/a", Path: p, Format: "wav", ContentType: "audio/wav", Started: time.Now(), Status: "in-progress"}
	sid, err := svc.Started(ctx, in)
	must(t, err)
	q := &meta.Quality{RecordedMs: 500, Paused: []meta.Paused{{Start: time.Now().UTC().Truncate(time.Millisecond), Behavior: "silence", By: "web:ann"}}}
	must(t, svc.Paused(ctx, "calls/a", true, q))
	must(t, svc.Paused(ctx, "calls/a", false, q))
	in.Status, in.Duration = "completed", time.Second
	must(t, svc.Finished(ctx, in)) // a hangup: the job hashes the file
	testutil.Eventually(t, 10*time.Second, 5*time.Millisecond, func() bool { return svc.Uploading() == 0 },
		"the checksum job did not end")

	row, err := st.RecordingBySid(ctx, sid)
	must(t, err)
	size, sum, err := fileSum(p)
	must(t, err)
	if row.Status != meta.StatusCompleted || row.Size != size || row.SHA256 != sum || row.Duration != 1 {
		t.Fatalf("row: status %s size %d sum %q duration %v; want completed, %d, %q, 1", row.Status, row.Size, row.SHA256, row.Duration, size, sum)
	}
	if row.Quality == nil || len(row.Quality.Paused) != 1 || row.Quality.Paused[0].By != "web:ann" {
		t.Fatalf("row's quality %+v, want Paused's interval", row.Quality)
	}
	if n, s, p, c := cs.byName.Load(), cs.bySid.Load(), cs.put.Load(), cs.checksum.Load(); n != 1 || s != 0 || p != 2 || c != 1 {
		t.Fatalf("statements: %d look-ups by name, %d by Sid, %d puts, %d checksum updates; want 1, 0, 2, 1", n, s, p, c)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
