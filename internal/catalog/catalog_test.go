package catalog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
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
	byName, bySid, put, start, checksum atomic.Int32
	putCDR, putRecCDR                   atomic.Int32
}

func (c *stmtStore) PutCDR(ctx context.Context, r meta.CDR) error {
	c.putCDR.Add(1)
	return c.Store.(meta.CDRs).PutCDR(ctx, r)
}

func (c *stmtStore) PutRecordingCDR(ctx context.Context, r meta.Recording, cdr meta.CDR) error {
	c.putRecCDR.Add(1)
	return c.Store.(meta.CDRs).PutRecordingCDR(ctx, r, cdr)
}

func (c *stmtStore) ListCDRs(ctx context.Context, q meta.CDRQuery) ([]meta.CDR, int, error) {
	return c.Store.(meta.CDRs).ListCDRs(ctx, q)
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

func (c *stmtStore) StartRecording(ctx context.Context, r meta.Recording) (string, time.Time, error) {
	c.start.Add(1)
	return c.Store.StartRecording(ctx, r)
}

func (c *stmtStore) SetChecksum(ctx context.Context, sid, filePath string, size int64, sum string, now time.Time) (bool, error) {
	c.checksum.Add(1)
	return c.Store.SetChecksum(ctx, sid, filePath, size, sum, now)
}

// countOpens counts the files the catalog opens to hash them.
func countOpens(t *testing.T) *atomic.Int32 {
	var n atomic.Int32
	old := openFile
	openFile = func(name string) (*os.File, error) {
		n.Add(1)
		return old(name)
	}
	t.Cleanup(func() { openFile = old })
	return &n
}

// TestRecordingStatements: a recording that ends by a hangup costs two
// catalog statements — Started's upsert on the name (a reused name keeps
// its row, without a look-up) and Finished's update of the row Started
// wrote (not read back) — and no read of its file: the row ends completed
// with the file's size, no checksum (recording.checksum: on_demand) and
// what Paused changed. The name recorded again keeps its Sid, still with
// one statement at the start.
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
	opens := countOpens(t)

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
	must(t, svc.Finished(ctx, in)) // a hangup
	if n := svc.Uploading(); n != 0 {
		t.Fatalf("%d background jobs after a local recording's end; want none", n)
	}

	row, err := st.RecordingBySid(ctx, sid)
	must(t, err)
	if row.Status != meta.StatusCompleted || row.Size != int64(len(audio)) || row.SHA256 != "" || row.Duration != 1 {
		t.Fatalf("row: status %s size %d sum %q duration %v; want completed, %d, no checksum, 1", row.Status, row.Size, row.SHA256, row.Duration, len(audio))
	}
	if row.Quality == nil || len(row.Quality.Paused) != 1 || row.Quality.Paused[0].By != "web:ann" {
		t.Fatalf("row's quality %+v, want Paused's interval", row.Quality)
	}
	if n, s, st, p, c, o := cs.byName.Load(), cs.bySid.Load(), cs.start.Load(), cs.put.Load(), cs.checksum.Load(), opens.Load(); n != 0 || s != 0 || st != 1 || p != 1 || c != 0 || o != 0 {
		t.Fatalf("statements: %d look-ups by name, %d by Sid, %d starts, %d puts, %d checksum updates, %d files hashed; want 0, 0, 1, 1, 0, 0", n, s, st, p, c, o)
	}
	again, err := svc.Started(ctx, in)
	must(t, err)
	if again != sid || cs.start.Load() != 2 || cs.byName.Load() != 0 {
		t.Fatalf("the name recorded again: Sid %s (want %s), %d starts, %d look-ups; want 2, 0", again, sid, cs.start.Load(), cs.byName.Load())
	}
}

// TestChecksumOnDemand (recording.checksum: on_demand): a local recording
// has no checksum until something asks (Checksum), which hashes the file
// once and stores it; a recording made again under the name starts
// without one, so the next ask gives the new file's (the media caches'
// key changes with the file); the periodic reconcile hashes nothing and
// still marks a file deleted by hand missing.
func TestChecksumOnDemand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	must(t, err)
	defer st.Close()
	svc := &Service{Meta: st, Root: dir, Node: "n1"}
	defer svc.Close()
	opens := countOpens(t)
	record := func(name string, content []byte) meta.Recording {
		t.Helper()
		p := filepath.Join(dir, name+".wav")
		must(t, os.WriteFile(p, content, 0o644))
		in := Info{Name: name, Path: p, Format: "wav", ContentType: "audio/wav", Started: time.Now()}
		_, err := svc.Started(ctx, in)
		must(t, err)
		in.Status, in.Duration = "completed", time.Second
		must(t, svc.Finished(ctx, in))
		row, err := st.RecordingByName(ctx, name)
		must(t, err)
		return row
	}
	first := bytes.Repeat([]byte{1}, 2000)
	row := record("a", first)
	must(t, svc.Reconcile(ctx))
	if row, _ = st.RecordingBySid(ctx, row.Sid); row.SHA256 != "" || opens.Load() != 0 {
		t.Fatalf("before anything asked: checksum %q, %d files hashed; want none", row.SHA256, opens.Load())
	}
	got, err := svc.Checksum(ctx, row)
	must(t, err)
	if want := sha256Hex(first); got.SHA256 != want || opens.Load() != 1 {
		t.Fatalf("Checksum: %q (%d files hashed), want %q, one", got.SHA256, opens.Load(), want)
	}
	if stored, _ := st.RecordingBySid(ctx, row.Sid); stored.SHA256 != got.SHA256 {
		t.Fatalf("stored checksum %q, want %q", stored.SHA256, got.SHA256)
	}
	if again, err := svc.Checksum(ctx, got); err != nil || again.SHA256 != got.SHA256 || opens.Load() != 1 {
		t.Fatalf("Checksum of a row that has one: %q %v, %d files hashed; want no new read", again.SHA256, err, opens.Load())
	}

	second := bytes.Repeat([]byte{2}, 2000) // same size, other audio
	row2 := record("a", second)
	if row2.Sid != row.Sid || row2.SHA256 != "" {
		t.Fatalf("recorded again: Sid %s checksum %q; want %s and none", row2.Sid, row2.SHA256, row.Sid)
	}
	got2, err := svc.Checksum(ctx, row2)
	must(t, err)
	if want := sha256Hex(second); got2.SHA256 != want || got2.SHA256 == got.SHA256 {
		t.Fatalf("Checksum after recording again: %q, want %q", got2.SHA256, want)
	}

	must(t, os.Remove(filepath.Join(dir, "a.wav")))
	must(t, svc.Reconcile(ctx))
	if row, _ := st.RecordingBySid(ctx, row.Sid); row.Status != meta.StatusMissing || row.StatusDetail != DetailFileRemoved {
		t.Fatalf("after the file was deleted by hand: %s %q, want missing", row.Status, row.StatusDetail)
	}
	if _, err := svc.Checksum(ctx, meta.Recording{Sid: row.Sid, Name: "a", FilePath: "a.wav"}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Checksum of a missing file: %v, want not exist", err)
	}
	if n := opens.Load(); n != 2 {
		t.Fatalf("%d files hashed; want 2 (the two asks)", n)
	}
}

// TestChecksumInBackground (recording.checksum: background): the job
// hashes each finished local recording after its end, and the reconcile
// restarts it for a row that lacks one (a restart left it undone).
func TestChecksumInBackground(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	must(t, err)
	defer st.Close()
	svc := &Service{Meta: st, Root: dir, Node: "n1", HashInBackground: true}
	defer svc.Close()
	content := bytes.Repeat([]byte{3}, 3000)
	p := filepath.Join(dir, "b.wav")
	must(t, os.WriteFile(p, content, 0o644))
	in := Info{Name: "b", Path: p, Format: "wav", ContentType: "audio/wav", Started: time.Now()}
	sid, err := svc.Started(ctx, in)
	must(t, err)
	in.Status, in.Duration = "completed", time.Second
	must(t, svc.Finished(ctx, in))
	testutil.Eventually(t, 10*time.Second, 5*time.Millisecond, func() bool {
		row, err := st.RecordingBySid(ctx, sid)
		return err == nil && row.SHA256 == sha256Hex(content)
	}, "the background job's checksum")
	// A row left without one: the reconcile's rescan hashes it.
	row, err := st.RecordingBySid(ctx, sid)
	must(t, err)
	row.SHA256 = ""
	must(t, st.PutRecording(ctx, row))
	must(t, svc.Reconcile(ctx))
	testutil.Eventually(t, 10*time.Second, 5*time.Millisecond, func() bool {
		row, err := st.RecordingBySid(ctx, sid)
		return err == nil && row.SHA256 == sha256Hex(content)
	}, "the rescan's checksum")
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestNoNameClaimsInSQLite: a SQLite catalog is one node's own, so
// ClaimName writes no claim there (two statements per recording saved):
// another node id can claim the same name in it at once.
func TestNoNameClaimsInSQLite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	must(t, err)
	defer st.Close()
	svc := &Service{Meta: st, Root: dir, Node: "n1"}
	must(t, svc.ClaimName(ctx, "calls/x", true))
	c := st.(interface {
		ClaimRecordingName(ctx context.Context, name, node string) (string, error)
	})
	if holder, err := c.ClaimRecordingName(ctx, "calls/x", "n2"); err != nil || holder != "n2" {
		t.Fatalf("another node's claim after ClaimName on SQLite: %q %v; want it granted (no claim made)", holder, err)
	}
	svc.ReleaseName(ctx, "calls/x") // nothing to release; must not drop n2's claim
	if holder, err := c.ClaimRecordingName(ctx, "calls/x", "n3"); !errors.Is(err, meta.ErrConflict) || holder != "n2" {
		t.Fatalf("n2's claim after ReleaseName: %q %v; want it kept", holder, err)
	}
}

// TestHangupRowAndCDRInOneTransaction: a recording ended by its call's
// hangup (Info.CDR) writes its final row and the call's record in one
// transaction (one commit, PutRecordingCDR) instead of one write each;
// the CDR gets the default account and this node. When the row cannot be
// written (the database refuses it: a trigger), the CDR is written alone,
// not lost, and the row is written by the next reconcile, without the CDR
// again.
func TestHangupRowAndCDRInOneTransaction(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "tapedeck.db")
	st, err := meta.OpenSQLite(dbPath)
	must(t, err)
	defer st.Close()
	acc, err := st.EnsureDefaultAccount(ctx)
	must(t, err)
	cs := &stmtStore{Store: st}
	svc := &Service{Meta: cs, Root: dir, Node: "n1"}
	defer svc.Close()
	record := func(name string) Info {
		t.Helper()
		p := filepath.Join(dir, "calls", name+".wav")
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, wavBytes(8000), 0o644))
		in := Info{Name: "calls/" + name, Path: p, Format: "wav", ContentType: "audio/wav", Started: time.Now(), Status: "in-progress"}
		_, err := svc.Started(ctx, in)
		must(t, err)
		in.Status, in.Duration = "completed", time.Second
		return in
	}
	cdrs := func() map[string]meta.CDR {
		t.Helper()
		list, _, err := st.(meta.CDRs).ListCDRs(ctx, meta.CDRQuery{AccountSid: acc.Sid})
		must(t, err)
		out := map[string]meta.CDR{}
		for _, c := range list {
			out[c.ChannelID] = c
		}
		return out
	}
	t0 := time.Now().UTC().Truncate(time.Second)

	in := record("a")
	in.CDR = &meta.CDR{Sid: "CA1", ChannelID: "n1-1.1", Status: "completed", StartTime: t0, AnswerTime: t0, EndTime: t0.Add(time.Second), Duration: 1, Billsec: 1}
	must(t, svc.Finished(ctx, in))
	if p, pc, c := cs.put.Load(), cs.putRecCDR.Load(), cs.putCDR.Load(); p != 0 || pc != 1 || c != 0 {
		t.Fatalf("writes at the hangup: %d rows alone, %d rows with the CDR, %d CDRs alone; want 0, 1, 0 (one transaction)", p, pc, c)
	}
	row, err := st.RecordingByName(ctx, "calls/a")
	must(t, err)
	if row.Status != meta.StatusCompleted {
		t.Fatalf("row: %+v", row)
	}
	if c, ok := cdrs()["n1-1.1"]; !ok || c.Node != "n1" || c.Sid != "CA1" {
		t.Fatalf("the CDR: %+v (found %v), want it in the default account, node n1", c, ok)
	}

	// The row refused by the database: the CDR goes alone.
	in = record("b")
	in.CDR = &meta.CDR{Sid: "CA2", ChannelID: "n1-2.1", Status: "completed", StartTime: t0, EndTime: t0.Add(time.Second), Duration: 1}
	db, err := sql.Open("sqlite", "file:"+dbPath+"?_busy_timeout=10000")
	must(t, err)
	defer db.Close()
	_, err = db.ExecContext(ctx, `CREATE TRIGGER row_refused BEFORE UPDATE ON recordings WHEN NEW.status <> 'in-progress' BEGIN SELECT RAISE(ABORT, 'row refused by the test'); END`)
	must(t, err)
	if err := svc.Finished(ctx, in); err == nil || !strings.Contains(err.Error(), "row refused by the test") {
		t.Fatalf("Finished with the row refused: %v, want its error", err)
	}
	if c, ok := cdrs()["n1-2.1"]; !ok || c.Sid != "CA2" {
		t.Fatalf("the CDR of the call whose recording's row failed: %+v (found %v); want it stored", c, ok)
	}
	if row, _ := st.RecordingByName(ctx, "calls/b"); row.Status != meta.StatusInProgress {
		t.Fatalf("row b with its write refused: %+v", row)
	}
	_, err = db.ExecContext(ctx, `DROP TRIGGER row_refused`)
	must(t, err)
	puts := cs.putCDR.Load()
	must(t, svc.Reconcile(ctx))
	if row, _ := st.RecordingByName(ctx, "calls/b"); row.Status != meta.StatusCompleted {
		t.Fatalf("row b after the reconcile: %+v", row)
	}
	if n := cs.putCDR.Load(); n != puts || cs.putRecCDR.Load() != 2 {
		t.Errorf("the reconcile wrote the CDR again (%d, %d)", n-puts, cs.putRecCDR.Load())
	}
}

// TestHangupCDRKeptPastTheDeadline: when a hangup's write of its
// recording's row runs out of the caller's time (a context already done
// here), the call's record is still written alone, with a time of its
// own; the row is kept for the reconcile.
func TestHangupCDRKeptPastTheDeadline(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	must(t, err)
	defer st.Close()
	acc, err := st.EnsureDefaultAccount(ctx)
	must(t, err)
	svc := &Service{Meta: st, Root: dir, Node: "n1"}
	defer svc.Close()
	p := filepath.Join(dir, "calls", "late.wav")
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, wavBytes(8000), 0o644))
	in := Info{Name: "calls/late", Path: p, Format: "wav", ContentType: "audio/wav", Started: time.Now(), Status: "in-progress"}
	_, err = svc.Started(ctx, in)
	must(t, err)
	in.Status, in.Duration = "completed", time.Second
	t0 := time.Now().UTC().Truncate(time.Second)
	in.CDR = &meta.CDR{Sid: "CA7", ChannelID: "n1-7.1", Status: "completed", StartTime: t0, EndTime: t0.Add(time.Second), Duration: 1}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := svc.Finished(done, in); err == nil {
		t.Fatal("Finished with its context done: no error")
	}
	list, total, err := st.(meta.CDRs).ListCDRs(ctx, meta.CDRQuery{AccountSid: acc.Sid})
	if err != nil || total != 1 || list[0].ChannelID != "n1-7.1" {
		t.Fatalf("CDRs: %+v %d %v; want the call's, written alone", list, total, err)
	}
	must(t, svc.Reconcile(ctx))
	if row, _ := st.RecordingByName(ctx, "calls/late"); row.Status != meta.StatusCompleted {
		t.Fatalf("the row after the reconcile: %+v", row)
	}
}

// TestStalledClosedUpdatesTheRow: once the stalled write of a recording
// that ended stalled returns and its writer closes the file, StalledClosed
// gives the failed row the file's size and the audio the writer stored,
// without writing the file; it leaves the row alone while a new recording
// of the name is under way, and once the row is that recording's.
func TestStalledClosedUpdatesTheRow(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	must(t, err)
	defer st.Close()
	_, err = st.EnsureDefaultAccount(ctx)
	must(t, err)
	svc := &Service{Meta: st, Root: dir, Node: "n1"}
	defer svc.Close()

	// wav is a mono 8 kHz wav of n samples whose header (open) still says
	// no audio, as its writer leaves it until it closes it.
	wav := func(n int, open bool) []byte {
		b := make([]byte, 44+2*n)
		copy(b, "RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x00\x00\x00\x00")
		if !open {
			binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
			binary.LittleEndian.PutUint32(b[40:], uint32(2*n))
		}
		return b
	}
	p := filepath.Join(dir, "stall", "a.wav")
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, wav(8000, true), 0o644))
	in := Info{Name: "stall/a", Path: p, Format: "wav", ContentType: "audio/wav", Started: time.Now(), Status: "in-progress"}
	_, err = svc.Started(ctx, in)
	must(t, err)
	in.Status, in.Cause, in.Duration, in.Stalled = "failed", "disk stalled", 500*time.Millisecond, true
	must(t, svc.Finished(ctx, in))
	row := func() meta.Recording {
		r, err := st.RecordingByName(ctx, "stall/a")
		must(t, err)
		return r
	}
	if r := row(); r.Size != 44+16000 || r.Duration != 0.5 {
		t.Fatalf("row at the stalled end: %d bytes, %v s; want %d, 0.5", r.Size, r.Duration, 44+16000)
	}

	// The write returns and the writer closes the file with 3 s in it.
	closed := wav(24000, false)
	must(t, os.WriteFile(p, closed, 0o644))
	in.Duration = 3 * time.Second
	must(t, svc.StalledClosed(ctx, in))
	if r := row(); r.Status != meta.StatusFailed || r.Size != 44+48000 || r.Duration != 3 {
		t.Fatalf("row once the file was closed: %s, %d bytes, %v s; want failed, %d, 3", r.Status, r.Size, r.Duration, 44+48000)
	}
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, closed) {
		t.Fatalf("StalledClosed wrote the file (%v)", err)
	}

	// A new recording of the name: its row is not the stalled one's.
	must(t, os.WriteFile(p, wav(0, true), 0o644))
	in2 := Info{Name: "stall/a", Path: p, Format: "wav", ContentType: "audio/wav", Started: time.Now().Add(time.Second), Status: "in-progress"}
	_, err = svc.Started(ctx, in2)
	must(t, err)
	must(t, os.WriteFile(p, wav(16000, true), 0o644))
	must(t, svc.StalledClosed(ctx, in))
	if r := row(); r.Status != meta.StatusInProgress || r.Size != 0 {
		t.Fatalf("a new recording's row after a late StalledClosed of the old: %s, %d bytes; want in-progress, 0", r.Status, r.Size)
	}
	in2.Status, in2.Cause, in2.Duration = "failed", "write failed", time.Second
	must(t, svc.Finished(ctx, in2))
	must(t, os.WriteFile(p, wav(40000, false), 0o644))
	must(t, svc.StalledClosed(ctx, in))
	if r := row(); r.Size != 44+32000 || r.Duration != 2 {
		t.Fatalf("a later failed recording's row after a late StalledClosed of an earlier one: %d bytes, %v s; want %d, 2", r.Size, r.Duration, 44+32000)
	}
}

// TestStalledFailureLeavesTheFile: a recording that failed with a write
// to its file not returned (its disk stalled) is finished without
// touching the file: recorder.Repair, which a failed recording's end
// otherwise runs, would write its header and wait for the same stalled
// disk on the hangup's path. The row takes the file's size by stat and
// the duration the recording knew was stored; the same failure without
// Stalled repairs and measures the file.
func TestStalledFailureLeavesTheFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	must(t, err)
	defer st.Close()
	_, err = st.EnsureDefaultAccount(ctx)
	must(t, err)
	svc := &Service{Meta: st, Root: dir, Node: "n1"}
	defer svc.Close()

	// A wav whose header still says no audio, with 2 s of audio after it:
	// what a writer leaves before its header is rewritten at the end.
	file := make([]byte, 44+32000)
	copy(file, "RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x00\x00\x00\x00")
	for i := 44; i < len(file); i++ {
		file[i] = byte(i * 7)
	}
	for _, stalled := range []bool{true, false} {
		name := "stall/no"
		if stalled {
			name = "stall/yes"
		}
		p := filepath.Join(dir, name+".wav")
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, file, 0o644))
		old := time.Now().Add(-time.Hour).Truncate(time.Second)
		must(t, os.Chtimes(p, old, old))
		in := Info{Name: name, Path: p, Format: "wav", ContentType: "audio/wav", Started: time.Now(), Status: "in-progress"}
		sid, err := svc.Started(ctx, in)
		must(t, err)
		in.Status, in.Cause, in.Duration, in.Stalled = "failed", "disk stalled", 1500*time.Millisecond, stalled
		must(t, svc.Finished(ctx, in))
		row, err := st.RecordingBySid(ctx, sid)
		must(t, err)
		got, err := os.ReadFile(p)
		must(t, err)
		fi, err := os.Stat(p)
		must(t, err)
		if stalled {
			if !bytes.Equal(got, file) || !fi.ModTime().Equal(old) {
				t.Fatalf("stalled: the file was written (same bytes %v, modified %v, was %v): its end must leave it to its writer", bytes.Equal(got, file), fi.ModTime(), old)
			}
			if row.Status != meta.StatusFailed || row.Size != int64(len(file)) || row.Duration != 1.5 {
				t.Fatalf("stalled: row %s size %d duration %v, want failed, %d, 1.5 (the stored audio)", row.Status, row.Size, row.Duration, len(file))
			}
			continue
		}
		// Not stalled: repaired (the header's sizes set from the file's
		// length) and measured from the file.
		if bytes.Equal(got[:44], file[:44]) {
			t.Fatal("not stalled: the failed recording's header was not repaired")
		}
		if row.Status != meta.StatusFailed || row.Size != int64(len(file)) || row.Duration != 2 {
			t.Fatalf("not stalled: row %s size %d duration %v, want failed, %d, 2 (measured)", row.Status, row.Size, row.Duration, len(file))
		}
	}
}
