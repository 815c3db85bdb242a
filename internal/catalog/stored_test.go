package catalog

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/store/blob"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// TestStoredIsTheCatalog: ARI's stored recordings are the catalog's rows,
// their files reached through the local blob store: a stored row is found,
// opened, copied (into the local store, catalogued under a new Sid) and
// deleted (file and row); a file no row names, a row in progress, one
// whose file went missing, another node's, and a failed one without a file
// are not found; a copy onto a catalogued name or an existing file is a
// conflict.
func TestStoredIsTheCatalog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	root := filepath.Join(dir, "recordings")
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := &Service{Meta: st, Root: root, Node: "n1"}
	acc, err := svc.DefaultAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("RIFF....WAVEfmt some audio")
	put := func(name, file string, status meta.Status, node string) {
		t.Helper()
		if file != "" {
			p := filepath.Join(root, filepath.FromSlash(file))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Now().UTC()
		if err := st.PutRecording(ctx, meta.Recording{Sid: meta.NewRecordingSid(), AccountSid: acc.Sid, DateCreated: now,
			DateUpdated: now, StartTime: now, Format: "wav", Source: "ari", Status: status, Name: name,
			FilePath: filepath.ToSlash(file), Channels: 1, Node: node, ApiVersion: meta.APIVersion}); err != nil {
			t.Fatal(err)
		}
	}
	put("vm/one", "vm/one.wav", meta.StatusCompleted, "n1")
	put("busy", "busy.wav", meta.StatusInProgress, "n1")
	put("gone", "", meta.StatusMissing, "n1")
	put("elsewhere", "elsewhere.wav", meta.StatusCompleted, "n2")
	put("empty", "empty.wav", meta.StatusFailed, "n1")
	if err := os.Remove(filepath.Join(root, "empty.wav")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "stray.wav"), data, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"stray", "busy", "gone", "elsewhere", "empty", "nope"} {
		if _, err := svc.Stored(ctx, name); !errors.Is(err, ErrNotFound) {
			t.Errorf("Stored(%s) = %v, want ErrNotFound", name, err)
		}
		if _, _, err := svc.OpenByName(ctx, name, ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("OpenByName(%s) = %v, want ErrNotFound", name, err)
		}
		if err := svc.DeleteByName(ctx, name, meta.Audit{API: "ari"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("DeleteByName(%s) = %v, want ErrNotFound", name, err)
		}
		if _, err := svc.Copy(ctx, name, name+"-copy"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Copy(%s) = %v, want ErrNotFound", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "stray.wav")); err != nil {
		t.Fatalf("the uncatalogued file: %v", err)
	}
	names, err := svc.StoredNames(ctx)
	if err != nil || len(names) != 1 || names[0].Name != "vm/one" {
		t.Fatalf("StoredNames = %+v, %v; want vm/one only", names, err)
	}

	m, format, err := svc.OpenByName(ctx, "vm/one", "audio/wav")
	if err != nil || format != "wav" {
		t.Fatalf("OpenByName(vm/one) = %v, %q", err, format)
	}
	got, _ := io.ReadAll(m)
	m.Close()
	if !bytes.Equal(got, data) || m.Size != int64(len(data)) {
		t.Fatalf("vm/one reads %q (size %d)", got, m.Size)
	}

	cp, err := svc.Copy(ctx, "vm/one", "copies/one")
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if cp.Name != "copies/one" || cp.FilePath != "copies/one.wav" || cp.S3URI != "" {
		t.Fatalf("the copy's row %+v", cp)
	}
	if b, err := os.ReadFile(filepath.Join(root, "copies", "one.wav")); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("the copy's file: %v %q", err, b)
	}
	if left, _ := filepath.Glob(filepath.Join(root, "copies", ".*")); len(left) != 0 {
		t.Fatalf("temporary files left by the copy: %v", left)
	}
	for _, dst := range []string{"copies/one", "busy", "stray"} {
		if _, err := svc.Copy(ctx, "vm/one", dst); !errors.Is(err, meta.ErrConflict) {
			t.Errorf("Copy onto %s = %v, want meta.ErrConflict", dst, err)
		}
	}

	for _, name := range []string{"vm/one", "copies/one"} {
		row, err := st.RecordingByName(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.DeleteByName(ctx, name, meta.Audit{Actor: "asterisk", API: "ari", Remote: "192.0.2.7:5000"}); err != nil {
			t.Fatalf("DeleteByName(%s): %v", name, err)
		}
		// as the Recordings APIs delete: the row is kept as deleted,
		// with an audit row naming who asked
		if del, err := st.DeletedRecording(ctx, row.AccountSid, row.Sid); err != nil || del.Status != "deleted" {
			t.Fatalf("%s's deleted row: %+v, %v", name, del, err)
		}
		trail, err := st.AuditTrail(ctx, row.AccountSid, row.Sid)
		if err != nil || len(trail) != 1 || trail[0].Action != meta.AuditDelete || trail[0].Actor != "asterisk" || trail[0].API != "ari" || trail[0].Remote != "192.0.2.7:5000" {
			t.Fatalf("%s's audit trail: %+v, %v", name, trail, err)
		}
		if _, err := st.RecordingByName(ctx, name); !errors.Is(err, meta.ErrNotFound) {
			t.Fatalf("%s's row after the delete: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(name)+".wav")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s's file after the delete: %v", name, err)
		}
	}
}

// TestOpenRemoteWithoutObjectStorage: a row whose file is in object
// storage cannot be opened by a node without it (not found, not a panic
// or a local path).
func TestOpenRemoteWithoutObjectStorage(t *testing.T) {
	svc := &Service{Root: t.TempDir()}
	_, err := svc.Open(context.Background(), meta.Recording{Name: "x", FilePath: remotePrefix + "AC1/RE1.wav"}, "")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open = %v, want ErrNotFound", err)
	}
	if st, key, err := svc.locate(meta.Recording{Name: "y", FilePath: "a/y.wav"}); err != nil || key != "a/y.wav" {
		t.Fatalf("locate of a local row: %v %q %v", st, key, err)
	} else if _, ok := st.(*blob.Local); !ok {
		t.Fatalf("a local row's store is %T, want *blob.Local", st)
	}
}
