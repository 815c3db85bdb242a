package catalog

import (
	"context"
	"database/sql"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// TestSettleLostNode: node B settles the live recordings of node A once
// A's heartbeat has been gone for LostAfter: failed, "node lost", its name
// claim released; a recording whose file (with its in-progress marker) is
// in the recordings directory B shares is recovered by B instead. A node
// still beating, or silent for less, keeps its rows. A coming back with
// the file wins: its recovery at start completes the failed row.
func TestSettleLostNode(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	shared := t.TempDir() // a recordings directory the nodes share
	b := &Service{Meta: st, Root: shared, Node: "nb", Now: clock, LostAfter: 30 * time.Second}
	defer b.Close()
	ob := st.(meta.Outbox)
	claims := st.(nameClaimer)
	live := func(node, name string, file bool) meta.Recording {
		t.Helper()
		acc, err := st.EnsureDefaultAccount(ctx)
		if err != nil {
			t.Fatal(err)
		}
		row := meta.Recording{Sid: meta.NewRecordingSid(), AccountSid: acc.Sid, Name: name, FilePath: name + ".wav", Format: "wav",
			Status: meta.StatusInProgress, Node: node, Source: meta.SourceARI, StartTime: now}
		if err := st.PutRecording(ctx, row); err != nil {
			t.Fatal(err)
		}
		if _, err := claims.ClaimRecordingName(ctx, name, node); err != nil {
			t.Fatal(err)
		}
		if file {
			p := filepath.Join(shared, name+".wav")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, wavBytes(8000), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(recorder.InProgressMarker(p), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return row
	}
	gone := live("na", "lost/one", false)
	onShared := live("na", "lost/shared", true)
	beating := live("nc", "lost/beating", false)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ob.Heartbeat(ctx, "na", now.Add(-10*time.Second)))
	must(ob.Heartbeat(ctx, "nc", now.Add(-10*time.Second)))
	must(b.Reconcile(ctx))
	if r, _ := st.RecordingBySid(ctx, gone.Sid); r.Status != meta.StatusInProgress {
		t.Fatalf("silent for 10 s of 30: %+v", r)
	}

	// A silent for 31 s; C beats on.
	now = now.Add(21 * time.Second)
	must(ob.Heartbeat(ctx, "nc", now))
	must(b.Reconcile(ctx))
	r, _ := st.RecordingBySid(ctx, gone.Sid)
	if r.Status != meta.StatusFailed || !IsNodeLost(r) || !strings.Contains(r.StatusDetail, "node na") || r.Node != "na" {
		t.Fatalf("A's recording after 31 s: %+v", r)
	}
	if holder, err := claims.ClaimRecordingName(ctx, "lost/one", "nb"); err != nil || holder != "nb" {
		t.Errorf("the lost recording's name is still claimed: %q %v", holder, err)
	}
	s, _ := st.RecordingBySid(ctx, onShared.Sid)
	if s.Status != meta.StatusRecovered || !IsNodeLost(s) || s.Node != "nb" || s.Size != 44+8000*2 || s.Duration < 0.99 {
		t.Fatalf("A's recording in the shared directory: %+v", s)
	}
	if _, err := os.Stat(recorder.InProgressMarker(filepath.Join(shared, "lost/shared.wav"))); !os.IsNotExist(err) {
		t.Errorf("the in-progress marker of the recovered file: %v", err)
	}
	if r, _ := st.RecordingBySid(ctx, beating.Sid); r.Status != meta.StatusInProgress {
		t.Errorf("C's recording (C beating): %+v", r)
	}

	// A comes back with the file: its recovery at start completes the
	// failed row; the one B recovered is B's now and stays so.
	aRoot := t.TempDir()
	a := &Service{Meta: st, Root: aRoot, Node: "na", Now: clock}
	defer a.Close()
	p := filepath.Join(aRoot, "lost", "one.wav")
	must(os.MkdirAll(filepath.Dir(p), 0o755))
	must(os.WriteFile(p, wavBytes(4000), 0o644))
	must(a.Recovered(ctx, Info{Name: "lost/one", Path: p, Format: "wav", ContentType: "audio/wav", Duration: 500 * time.Millisecond, Channels: 1}))
	if r, _ := st.RecordingBySid(ctx, gone.Sid); r.Status != meta.StatusRecovered || r.Node != "na" || r.Size != 44+4000*2 {
		t.Fatalf("A's failed recording after A's recovery: %+v", r)
	}
	p2 := filepath.Join(aRoot, "lost", "shared.wav")
	must(os.WriteFile(p2, wavBytes(100), 0o644))
	must(a.Recovered(ctx, Info{Name: "lost/shared", Path: p2, Format: "wav", ContentType: "audio/wav", Duration: time.Second, Channels: 1}))
	if r, _ := st.RecordingBySid(ctx, onShared.Sid); r.Node != "nb" || r.Size != 44+8000*2 {
		t.Fatalf("B's recovered recording after A's recovery of a stale file: %+v", r)
	}
}

// wavBytes is a mono 8 kHz 16-bit WAV file of n samples of a ramp.
func wavBytes(n int) []byte {
	data := 2 * n
	b := make([]byte, 44+data)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+data))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
	binary.LittleEndian.PutUint16(b[22:], 1)
	binary.LittleEndian.PutUint32(b[24:], 8000)
	binary.LittleEndian.PutUint32(b[28:], 16000)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(data))
	for i := range n {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(i%2000))
	}
	return b
}

// TestSettleLostNodeJournal: a lost node that listed its recordings in its
// journal (no marker files) in the shared recordings directory: the file
// it was writing is recovered by B, and the lost node's journal says so,
// so that the lost node, back, leaves the file alone. A file of the same
// path that the journal does not list (the lost node had finished it) is
// not taken: the row fails as "node lost".
func TestSettleLostNodeJournal(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	shared := t.TempDir()
	b := &Service{Meta: st, Root: shared, Node: "nb", Now: func() time.Time { return now }, LostAfter: 30 * time.Second}
	defer b.Close()
	acc, err := st.EnsureDefaultAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	j, err := recorder.OpenJournal(shared, "na")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]meta.Recording{}
	for _, name := range []string{"lost/listed", "lost/unlisted"} {
		row := meta.Recording{Sid: meta.NewRecordingSid(), AccountSid: acc.Sid, Name: name, FilePath: name + ".wav", Format: "wav",
			Status: meta.StatusInProgress, Node: "na", Source: meta.SourceARI, StartTime: now}
		if err := st.PutRecording(ctx, row); err != nil {
			t.Fatal(err)
		}
		rows[name] = row
		p := filepath.Join(shared, name+".wav")
		w, err := recorder.Create(p, recorder.Format{Name: "wav"}, recorder.Fail, recorder.WithJournal(j))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(make([]int16, 8000)); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if name == "lost/unlisted" {
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := os.Stat(recorder.InProgressMarker(filepath.Join(shared, "lost/listed.wav"))); !os.IsNotExist(err) {
		t.Fatalf("a marker file beside a journalled recording: %v", err)
	}
	if err := st.(meta.Outbox).Heartbeat(ctx, "na", now); err != nil {
		t.Fatal(err)
	}
	now = now.Add(31 * time.Second)
	if err := b.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	r, _ := st.RecordingBySid(ctx, rows["lost/listed"].Sid)
	if r.Status != meta.StatusRecovered || !IsNodeLost(r) || r.Node != "nb" || r.Size != 44+8000*2 {
		t.Fatalf("the journalled recording in the shared directory: %+v", r)
	}
	if r, _ := st.RecordingBySid(ctx, rows["lost/unlisted"].Sid); r.Status != meta.StatusFailed || !IsNodeLost(r) {
		t.Fatalf("a finished file of the path, not in the journal: %+v", r)
	}
	if recorder.InJournal(shared, "na", filepath.Join(shared, "lost/listed.wav")) {
		t.Error("the lost node's journal still lists the file B took over")
	}
	j.Close()
}

// TestSettleLostQueuesWithTheRow: the notification of a lost node's
// recording (LostNotices: its status callback) is queued in the
// transaction that settles the row. With the outbox insert refused by the
// database (a trigger raising on insert), the pass fails, the row stays
// live and OnLost is not told; once the trigger is dropped the next pass
// settles the row with its notification queued, and later passes queue
// nothing more: exactly one.
func TestSettleLostQueuesWithTheRow(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	b := &Service{Meta: st, Root: t.TempDir(), Node: "nb", Now: func() time.Time { return now }, LostAfter: 30 * time.Second}
	defer b.Close()
	ob := st.(meta.Outbox)
	acc, err := st.EnsureDefaultAccount(ctx)
	must(t, err)
	row := meta.Recording{Sid: meta.NewRecordingSid(), AccountSid: acc.Sid, Name: "lost/cb", FilePath: "lost/cb.wav", Format: "wav",
		Status: meta.StatusInProgress, Node: "na", Source: meta.SourceARI, StartTime: now}
	must(t, st.PutRecording(ctx, row))
	must(t, ob.Heartbeat(ctx, "na", now.Add(-time.Minute)))
	var told []meta.Recording
	b.OnLost = func(lost string, r meta.Recording) { told = append(told, r) }
	b.LostNotices = func(ctx context.Context, r meta.Recording) ([]meta.OutboxItem, error) {
		return []meta.OutboxItem{{Node: "nb", Kind: "RecordingStatusCallback", CallID: r.CallSid, URL: "http://127.0.0.1:9/status",
			ContentType: "application/x-www-form-urlencoded", Body: []byte("RecordingSid=" + r.Sid + "&RecordingStatus=" + string(r.Status))}}, nil
	}
	// A real failure of the insert, inside the database.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "tapedeck.db")+"?_busy_timeout=10000")
	must(t, err)
	defer db.Close()
	_, err = db.ExecContext(ctx, `CREATE TRIGGER outbox_refused BEFORE INSERT ON webhook_outbox BEGIN SELECT RAISE(ABORT, 'outbox refused by the test'); END`)
	must(t, err)

	if err := b.Reconcile(ctx); err == nil || !strings.Contains(err.Error(), "outbox refused by the test") {
		t.Fatalf("reconcile with the outbox refused: %v, want its error", err)
	}
	if r, _ := st.RecordingBySid(ctx, row.Sid); r.Status != meta.StatusInProgress || r.Node != "na" {
		t.Fatalf("the row after the failed pass: %+v, want it live (its callback was not queued)", r)
	}
	if len(told) != 0 {
		t.Fatalf("OnLost told of a row that was not settled: %+v", told)
	}
	if n, err := ob.PendingCount(ctx, "nb"); err != nil || n != 0 {
		t.Fatalf("%d queued (%v) by the failed pass", n, err)
	}

	_, err = db.ExecContext(ctx, `DROP TRIGGER outbox_refused`)
	must(t, err)
	for range 3 {
		must(t, b.Reconcile(ctx))
	}
	r, _ := st.RecordingBySid(ctx, row.Sid)
	if r.Status != meta.StatusFailed || !IsNodeLost(r) {
		t.Fatalf("the row after the trigger is gone: %+v", r)
	}
	if n, err := ob.PendingCount(ctx, "nb"); err != nil || n != 1 {
		t.Fatalf("%d notifications queued (%v), want exactly one", n, err)
	}
	if len(told) != 1 || told[0].Sid != row.Sid {
		t.Fatalf("OnLost told %+v, want the row once", told)
	}
}
