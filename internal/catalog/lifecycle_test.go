package catalog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// TestAbsentAndRemove: a recording that ends without one frame of audio is
// catalogued absent (its empty file kept, not hashed), one with audio
// completed; Remove deletes the file at once and keeps the row as deleted
// with an audit row until PurgeDeleted, past the retention, forgets it.
func TestAbsentAndRemove(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	svc := &Service{Meta: st, Root: dir, Now: func() time.Time { return now }, DeletedRetention: 24 * time.Hour}
	rec := func(name string, dur time.Duration, size int) meta.Recording {
		p := filepath.Join(dir, name+".wav")
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
		in := Info{Name: name, Path: p, Format: "wav", ContentType: "audio/wav", Started: now, WaitUpload: true}
		if _, err := svc.Started(ctx, in); err != nil {
			t.Fatal(err)
		}
		in.Duration, in.Status = dur, "completed"
		if err := svc.Finished(ctx, in); err != nil {
			t.Fatal(err)
		}
		row, err := st.RecordingByName(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return row
	}
	empty := rec("empty", 0, 44)
	if empty.Status != meta.StatusAbsent || empty.StatusDetail != DetailNoAudio || empty.Size != 44 || empty.SHA256 != "" {
		t.Errorf("no audio: %+v", empty)
	}
	full := rec("full", 2*time.Second, 44+32000)
	if full.Status != meta.StatusCompleted {
		t.Errorf("with audio: %+v", full)
	}
	if _, err := svc.Stored(ctx, "empty"); err != nil {
		t.Errorf("an absent recording is still a stored recording for ARI: %v", err)
	}

	a := meta.Audit{AccountSid: full.AccountSid, RecordingSid: full.Sid, Actor: full.AccountSid, API: "twilio", Remote: "192.0.2.1:5555"}
	if err := svc.Remove(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "full.wav")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the file after Remove: %v", err)
	}
	if _, err := svc.Meta.Recording(ctx, full.AccountSid, full.Sid); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("the live row after Remove: %v", err)
	}
	if r, err := st.DeletedRecording(ctx, full.AccountSid, full.Sid); err != nil || r.Status != meta.StatusDeleted {
		t.Errorf("the deleted row: %+v %v", r, err)
	}
	trail, err := st.AuditTrail(ctx, full.AccountSid, full.Sid)
	if err != nil || len(trail) != 1 || trail[0].Action != meta.AuditDelete || !trail[0].At.Equal(now) || trail[0].Remote != a.Remote {
		t.Errorf("audit: %+v %v", trail, err)
	}
	if err := svc.Remove(ctx, a); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("second Remove: %v", err)
	}
	// The deletion is recorded at the store's clock (now); past the
	// retention, the reconcile forgets the row.
	if n, err := svc.PurgeDeleted(ctx); err != nil || n != 0 {
		t.Errorf("purge within the retention: %d %v", n, err)
	}
	now = time.Now().Add(25 * time.Hour)
	if err := svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DeletedRecording(ctx, full.AccountSid, full.Sid); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("the deleted row past its retention: %v", err)
	}
}
