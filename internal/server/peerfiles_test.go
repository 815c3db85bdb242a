package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/store/blob"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// TestPeerFilesOverNATS: node B reads node A's local file through a real
// NATS server, chunk by chunk (a small chunk here: many requests), with
// seeks as Range requests make them; A serves only the file its catalog
// row names (a forged key or a row of another node is 404), a deleted
// file is gone from A's disk, and a node that is not there is
// ErrUnavailable, quickly.
func TestPeerFilesOverNATS(t *testing.T) {
	url := os.Getenv("TAPEDECK_TEST_NATS_URL")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	nc, err := nats.Connect(url, nats.Timeout(3*time.Second))
	if err != nil {
		testutil.SkipOrFail(t, "SKIP NATS test: %s unreachable (%v); start nats-server -js or set TAPEDECK_TEST_NATS_URL", url, err)
	}
	defer nc.Close()
	ctx := context.Background()
	ms, err := meta.OpenSQLite(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	acc, err := ms.EnsureDefaultAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	run := hex.EncodeToString(suffix)
	prefix := "t" + run + ".ari."
	root := t.TempDir()
	a := &catalog.Service{Meta: ms, Root: root, Node: "pfa" + run}
	b := &catalog.Service{Meta: ms, Root: t.TempDir(), Node: "pfb" + run}
	log := slog.New(slog.DiscardHandler)
	pa, err := startPeerFiles(nc, prefix, a.Node, a, log)
	if err != nil {
		t.Fatal(err)
	}
	defer pa.close()
	pb, err := startPeerFiles(nc, prefix, b.Node, b, log)
	if err != nil {
		t.Fatal(err)
	}
	defer pb.close()
	pb.chunk = 4096
	b.Peers = pb

	data := make([]byte, 100_000)
	rand.Read(data)
	if err := os.MkdirAll(filepath.Join(root, "pf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "pf", "one.wav"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	row := meta.Recording{Sid: meta.NewRecordingSid(), AccountSid: acc.Sid, Name: "pf/one", FilePath: "pf/one.wav",
		Format: "wav", Status: meta.StatusCompleted, Node: a.Node, Size: int64(len(data))}
	if err := ms.PutRecording(ctx, row); err != nil {
		t.Fatal(err)
	}

	m, err := b.Open(ctx, row, "audio/wav")
	if err != nil {
		t.Fatal(err)
	}
	if m.Size != int64(len(data)) {
		t.Fatalf("size %d, want %d", m.Size, len(data))
	}
	got, err := io.ReadAll(m)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read through B: %d bytes (%v), want A's %d", len(got), err, len(data))
	}
	if _, err := m.Seek(70_001, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 10_000)
	if _, err := io.ReadFull(m, part); err != nil || !bytes.Equal(part, data[70_001:80_001]) {
		t.Fatalf("range 70001-80000 through B: %v", err)
	}
	m.Close()

	// A serves only what its catalog row names.
	forged := row
	forged.FilePath = "../../etc/passwd"
	if _, err := b.Open(ctx, forged, ""); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("a forged key: %v, want ErrNotFound", err)
	}
	other := row
	other.Sid = meta.NewRecordingSid()
	other.Name, other.Node = "pf/two", "pfc"+run
	if err := ms.PutRecording(ctx, other); err != nil {
		t.Fatal(err)
	}
	other.Node = a.Node // asked of A, but the row says another node keeps it
	if _, err := b.Open(ctx, other, ""); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("a row A does not keep: %v, want ErrNotFound", err)
	}

	// A node nobody answers for.
	gone := row
	gone.Node = "pfgone" + run
	start := time.Now()
	if _, err := b.Open(ctx, gone, ""); !errors.Is(err, catalog.ErrUnavailable) {
		t.Errorf("a node that is not there: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > fileTimeout+time.Second {
		t.Errorf("a node that is not there took %v", d)
	}

	// Not deleted while A records under the name again (its file is
	// being rewritten): 409, the file stays.
	in := catalog.Info{Name: "pf/one", Path: filepath.Join(root, "pf", "one.wav"), Format: "wav", ContentType: "audio/wav", AccountSid: acc.Sid}
	if _, err := a.Started(ctx, in); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := b.Remove(ctx, meta.Audit{AccountSid: acc.Sid, RecordingSid: row.Sid, Actor: "test", API: "test"}); !errors.Is(err, meta.ErrConflict) {
		t.Fatalf("delete through B while A records the name again: %v, want ErrConflict", err)
	}
	if _, err := os.Stat(filepath.Join(root, "pf", "one.wav")); err != nil {
		t.Fatalf("A's file after the refused delete: %v", err)
	}
	in.Status, in.Duration = "completed", time.Second
	if err := a.Finished(ctx, in); err != nil {
		t.Fatal(err)
	}

	// Deleted through B: gone from A's disk, its row soft-deleted.
	if err := b.Remove(ctx, meta.Audit{AccountSid: acc.Sid, RecordingSid: row.Sid, Actor: "test", API: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "pf", "one.wav")); !os.IsNotExist(err) {
		t.Fatalf("A's file after the delete through B: %v", err)
	}
	if _, err := ms.Recording(ctx, acc.Sid, row.Sid); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("row after the delete: %v", err)
	}
}

// BenchmarkPeerFileRead: reading a 4 MiB recording file whole through
// another node (NATS request/reply in 256 KiB chunks, the owner checking
// its catalog row for each) against reading it from the local store.
func BenchmarkPeerFileRead(b *testing.B) {
	url := os.Getenv("TAPEDECK_TEST_NATS_URL")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	nc, err := nats.Connect(url, nats.Timeout(3*time.Second))
	if err != nil {
		testutil.SkipOrFail(b, "SKIP NATS benchmark: %s unreachable; start nats-server -js or set TAPEDECK_TEST_NATS_URL", url)
	}
	defer nc.Close()
	ctx := context.Background()
	ms, err := meta.OpenSQLite(filepath.Join(b.TempDir(), "catalog.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer ms.Close()
	acc, err := ms.EnsureDefaultAccount(ctx)
	if err != nil {
		b.Fatal(err)
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	run := hex.EncodeToString(suffix)
	prefix := "b" + run + ".ari."
	root := b.TempDir()
	owner := &catalog.Service{Meta: ms, Root: root, Node: "bpa" + run}
	other := &catalog.Service{Meta: ms, Root: b.TempDir(), Node: "bpb" + run}
	log := slog.New(slog.DiscardHandler)
	pa, err := startPeerFiles(nc, prefix, owner.Node, owner, log)
	if err != nil {
		b.Fatal(err)
	}
	defer pa.close()
	pb, err := startPeerFiles(nc, prefix, other.Node, other, log)
	if err != nil {
		b.Fatal(err)
	}
	defer pb.close()
	other.Peers = pb
	data := make([]byte, 4<<20)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(root, "bench.wav"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	row := meta.Recording{Sid: meta.NewRecordingSid(), AccountSid: acc.Sid, Name: "bench", FilePath: "bench.wav",
		Format: "wav", Status: meta.StatusCompleted, Node: owner.Node, Size: int64(len(data))}
	if err := ms.PutRecording(ctx, row); err != nil {
		b.Fatal(err)
	}
	for _, v := range []struct {
		name string
		svc  *catalog.Service
	}{{"local", owner}, {"peer", other}} {
		b.Run(v.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				m, err := v.svc.Open(ctx, row, "audio/wav")
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, m); err != nil || n != int64(len(data)) {
					b.Fatalf("%d bytes, %v", n, err)
				}
				m.Close()
			}
		})
	}
}

// TestPeerFileReadFollowsAnUpload: a download through B of A's local file
// that began (stat, first chunks) before the recording's upload ended goes
// on from object storage when A's copy goes (A removes it once the row
// names the object): every byte, where it failed after its 200 before.
func TestPeerFileReadFollowsAnUpload(t *testing.T) {
	url := os.Getenv("TAPEDECK_TEST_NATS_URL")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	nc, err := nats.Connect(url, nats.Timeout(3*time.Second))
	if err != nil {
		testutil.SkipOrFail(t, "SKIP NATS test: %s unreachable (%v); start nats-server -js or set TAPEDECK_TEST_NATS_URL", url, err)
	}
	defer nc.Close()
	ctx := context.Background()
	ms, err := meta.OpenSQLite(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	acc, err := ms.EnsureDefaultAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	objects, err := blob.NewLocal(t.TempDir()) // the shared object store
	if err != nil {
		t.Fatal(err)
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	run := hex.EncodeToString(suffix)
	prefix := "t" + run + ".ari."
	root := t.TempDir()
	a := &catalog.Service{Meta: ms, Root: root, Node: "pfa" + run, Blob: objects}
	b := &catalog.Service{Meta: ms, Root: t.TempDir(), Node: "pfb" + run, Blob: objects}
	log := slog.New(slog.DiscardHandler)
	pa, err := startPeerFiles(nc, prefix, a.Node, a, log)
	if err != nil {
		t.Fatal(err)
	}
	defer pa.close()
	pb, err := startPeerFiles(nc, prefix, b.Node, b, log)
	if err != nil {
		t.Fatal(err)
	}
	defer pb.close()
	pb.chunk = 4096
	b.Peers = pb

	data := make([]byte, 50_000)
	rand.Read(data)
	local := filepath.Join(root, "pf", "up.wav")
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(local, data, 0o644); err != nil {
		t.Fatal(err)
	}
	row := meta.Recording{Sid: meta.NewRecordingSid(), AccountSid: acc.Sid, Name: "pf/up", FilePath: "pf/up.wav",
		Format: "wav", Status: meta.StatusCompleted, Node: a.Node, Size: int64(len(data))}
	if err := ms.PutRecording(ctx, row); err != nil {
		t.Fatal(err)
	}
	m, err := b.Open(ctx, row, "audio/wav")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	head := make([]byte, 10_000)
	if _, err := io.ReadFull(m, head); err != nil || !bytes.Equal(head, data[:10_000]) {
		t.Fatalf("the first 10,000 bytes through B: %v", err)
	}
	// The upload ends: the object is stored (Local.Put moves A's file:
	// its local copy is gone) and the row names it.
	if _, err := objects.Put(ctx, "pf/up.wav", local, "audio/wav"); err != nil {
		t.Fatal(err)
	}
	uploaded := row
	uploaded.FilePath = "blob:pf/up.wav"
	if err := ms.PutRecording(ctx, uploaded); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(local); !os.IsNotExist(err) {
		t.Fatalf("A's local copy after the upload: %v, want gone", err)
	}
	rest, err := io.ReadAll(m)
	if err != nil || !bytes.Equal(append(head, rest...), data) {
		t.Fatalf("the rest through B after the upload: %d bytes (%v), want %d", len(rest), err, len(data)-10_000)
	}
	// Range requests go on from the object too.
	if _, err := m.Seek(30_000, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 5_000)
	if _, err := io.ReadFull(m, part); err != nil || !bytes.Equal(part, data[30_000:35_000]) {
		t.Fatalf("range 30000-34999 after the upload: %v", err)
	}
}
