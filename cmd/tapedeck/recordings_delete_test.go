package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// TestRecordingsDeleteCLIAudited: `tapedeck recordings delete SID`
// deletes as the APIs do: the file goes, the row is kept as deleted, and
// an audit row names the CLI and the operating-system user.
func TestRecordingsDeleteCLIAudited(t *testing.T) {
	bin := tapedeckBinary(t)
	data := t.TempDir()
	root := filepath.Join(data, "recording")
	ctx := context.Background()
	st, err := meta.OpenSQLite(filepath.Join(data, "tapedeck.db"))
	if err != nil {
		t.Fatal(err)
	}
	svc := &catalog.Service{Meta: st, Root: root}
	if _, err := svc.DefaultAccount(ctx); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "cli", "gone.wav")
	os.MkdirAll(filepath.Dir(p), 0o700)
	if err := os.WriteFile(p, testutil.SilentWAV(8000), 0o600); err != nil {
		t.Fatal(err)
	}
	in := catalog.Info{Name: "cli/gone", Path: p, Format: "wav", ContentType: "audio/wav", Source: "ari", Channels: 1, Duration: time.Second, Started: time.Now()}
	if _, err := svc.Started(ctx, in); err != nil {
		t.Fatal(err)
	}
	in.Status = "completed"
	if err := svc.Finished(ctx, in); err != nil {
		t.Fatal(err)
	}
	row, err := st.RecordingByName(ctx, "cli/gone")
	if err != nil {
		t.Fatal(err)
	}
	st.Close()

	cmd := exec.Command(bin, "recordings", "delete", row.Sid)
	cmd.Env = append(os.Environ(), "TAPEDECK_DATA_DIR="+data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("recordings delete: %v\n%s", err, stderr.String())
	}

	st, err = meta.OpenSQLite(filepath.Join(data, "tapedeck.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the file after the delete: %v", err)
	}
	if _, err := st.Recording(ctx, row.AccountSid, row.Sid); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("still listed after the delete: %v", err)
	}
	if del, err := st.DeletedRecording(ctx, row.AccountSid, row.Sid); err != nil || del.Status != "deleted" {
		t.Errorf("the deleted row: %+v, %v", del, err)
	}
	trail, err := st.AuditTrail(ctx, row.AccountSid, row.Sid)
	if err != nil || len(trail) != 1 || trail[0].API != "cli" || trail[0].Actor != cliActor() || trail[0].Action != meta.AuditDelete {
		t.Errorf("audit trail: %+v, %v", trail, err)
	}
}
