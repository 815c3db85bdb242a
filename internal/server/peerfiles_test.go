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

// natsURL is the test NATS server's URL (TAPEDECK_TEST_NATS_URL, or the
// local default).
func natsURL() string {
	if url := os.Getenv("TAPEDECK_TEST_NATS_URL"); url != "" {
		return url
	}
	return "nats://127.0.0.1:4222"
}

// natsConn connects to the test NATS server, closed when the test ends
// (skipped, or failed under CI, when none answers).
func natsConn(tb testing.TB) *nats.Conn {
	tb.Helper()
	url := natsURL()
	nc, err := nats.Connect(url, nats.Timeout(3*time.Second))
	if err != nil {
		testutil.SkipOrFail(tb, "SKIP NATS test: %s unreachable (%v); start nats-server -js or set TAPEDECK_TEST_NATS_URL", url, err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// runID is a random suffix that keeps a test's subjects and node names
// apart from any other run's on the shared NATS server.
func runID() string {
	r := make([]byte, 4)
	rand.Read(r)
	return hex.EncodeToString(r)
}

// peerPair is two nodes' catalogs over one real SQLite store, with their
// peer file services on a real NATS server: b reads a's local files
// through NATS (pb, b's service). Both keep their objects in objects
// (nil: none). Everything is closed when the test ends.
type peerPair struct {
	ms   meta.Store
	acc  meta.Account
	a, b *catalog.Service
	pb   *peerFiles
	root string // a's recordings
	run  string
}

func newPeerPair(tb testing.TB, objects blob.Store) *peerPair {
	tb.Helper()
	nc := natsConn(tb)
	ms, err := meta.OpenSQLite(filepath.Join(tb.TempDir(), "catalog.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ms.Close() })
	acc, err := ms.EnsureDefaultAccount(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	p := &peerPair{ms: ms, acc: acc, root: tb.TempDir(), run: runID()}
	prefix := "t" + p.run + ".ari."
	p.a = &catalog.Service{Meta: ms, Root: p.root, Node: "pfa" + p.run, Blob: objects}
	p.b = &catalog.Service{Meta: ms, Root: tb.TempDir(), Node: "pfb" + p.run, Blob: objects}
	log := slog.New(slog.DiscardHandler)
	pa, err := startPeerFiles(nc, prefix, p.a.Node, p.a, log)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pa.close)
	if p.pb, err = startPeerFiles(nc, prefix, p.b.Node, p.b, log); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.pb.close)
	p.b.Peers = p.pb
	return p
}

// file writes data as a's file rel (under a's root) and its completed row
// (named name, kept by a).
func (p *peerPair) file(tb testing.TB, name, rel string, data []byte) meta.Recording {
	tb.Helper()
	local := filepath.Join(p.root, rel)
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(local, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	row := meta.Recording{Sid: meta.NewRecordingSid(), AccountSid: p.acc.Sid, Name: name, FilePath: rel,
		Format: "wav", Status: meta.StatusCompleted, Node: p.a.Node, Size: int64(len(data))}
	if err := p.ms.PutRecording(context.Background(), row); err != nil {
		tb.Fatal(err)
	}
	return row
}

// TestPeerFilesOverNATS: node B reads node A's local file through a real
// NATS server, chunk by chunk (a small chunk here: many requests), with
// seeks as Range requests make them; A serves only the file its catalog
// row names (a forged key or a row of another node is 404), a deleted
// file is gone from A's disk, and a node that is not there is
// ErrUnavailable, quickly.
func TestPeerFilesOverNATS(t *testing.T) {
	ctx := context.Background()
	p := newPeerPair(t, nil)
	ms, acc, a, b, root, run := p.ms, p.acc, p.a, p.b, p.root, p.run
	p.pb.chunk = 4096

	data := make([]byte, 100_000)
	rand.Read(data)
	row := p.file(t, "pf/one", "pf/one.wav", data)

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
	ctx := context.Background()
	p := newPeerPair(b, nil)
	owner, other := p.a, p.b
	data := make([]byte, 4<<20)
	rand.Read(data)
	row := p.file(b, "bench", "bench.wav", data)
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
	ctx := context.Background()
	objects, err := blob.NewLocal(t.TempDir()) // the shared object store
	if err != nil {
		t.Fatal(err)
	}
	p := newPeerPair(t, objects)
	ms, b := p.ms, p.b
	p.pb.chunk = 4096

	data := make([]byte, 50_000)
	rand.Read(data)
	local := filepath.Join(p.root, "pf", "up.wav")
	row := p.file(t, "pf/up", "pf/up.wav", data)
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
