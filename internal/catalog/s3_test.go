package catalog

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/store/blob"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/versitygw"
)

// TestS3UploadStoresChecksum: with object storage (a real S3 server,
// versitygw) a recording's end makes the upload job, which stores the
// file's SHA-256 in the row from the upload's own read: the catalog opens
// no file to hash it (blob's TestS3PutReadsFileOnce proves the upload
// reads the file once), and the row ends pointing at the object with the
// right size and checksum.
func TestS3UploadStoresChecksum(t *testing.T) {
	ctx := context.Background()
	dir, st, s3 := s3Stores(t)
	svc := &Service{Meta: st, Blob: s3, Root: dir, Node: "n1"}
	defer svc.Close()
	opens := countOpens(t)
	content := bytes.Repeat([]byte("tapedeck"), 1000)
	in, sid := startedFile(t, svc, dir, "up", content)
	in.Status, in.Duration = "completed", time.Second
	must(t, svc.Finished(ctx, in)) // a hangup: the job uploads
	var row meta.Recording
	testutil.Eventually(t, 20*time.Second, 10*time.Millisecond, func() bool {
		r, err := st.RecordingBySid(ctx, sid)
		row = r
		return err == nil && strings.HasPrefix(row.FilePath, "blob:")
	}, "the upload")
	if row.SHA256 != sha256Hex(content) || row.Size != int64(len(content)) || row.Status != meta.StatusCompleted {
		t.Fatalf("row after the upload: sum %q size %d status %s; want %q, %d, completed", row.SHA256, row.Size, row.Status, sha256Hex(content), len(content))
	}
	if n := opens.Load(); n != 0 {
		t.Fatalf("the catalog opened %d files to hash them; want none (the upload hashes)", n)
	}
	readsBack(t, svc, row, content)
}

// s3Stores is a real SQLite catalog store in a fresh directory (closed
// when the test ends) and a real S3 store (versitygw) on a fresh bucket.
func s3Stores(t *testing.T) (dir string, st meta.Store, s3 *blob.S3) {
	t.Helper()
	g := versitygw.Shared(t)
	dir = t.TempDir()
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	must(t, err)
	t.Cleanup(func() { st.Close() })
	s3, err = blob.NewS3(blob.S3Config{Endpoint: g.Endpoint(), AccessKey: versitygw.AccessKey, SecretKey: versitygw.SecretKey, Bucket: g.NewBucket(t)})
	must(t, err)
	return dir, st, s3
}

// startedFile writes content as the WAV file of the recording name in dir
// and lists it as started in svc: its Info and its row's sid.
func startedFile(t *testing.T, svc *Service, dir, name string, content []byte) (Info, string) {
	t.Helper()
	p := filepath.Join(dir, name+".wav")
	must(t, os.WriteFile(p, content, 0o644))
	in := Info{Name: name, Path: p, Format: "wav", ContentType: "audio/wav", Started: time.Now()}
	sid, err := svc.Started(context.Background(), in)
	must(t, err)
	return in, sid
}

// readsBack checks that row opens through svc with content.
func readsBack(t *testing.T, svc *Service, row meta.Recording, content []byte) {
	t.Helper()
	m, err := svc.Open(context.Background(), row, "audio/wav")
	if err != nil {
		t.Fatalf("opening the row: %v", err)
	}
	defer m.Close()
	var got bytes.Buffer
	if _, err := got.ReadFrom(m); err != nil || !bytes.Equal(got.Bytes(), content) {
		t.Fatalf("read back %d bytes, %v; want the recording", got.Len(), err)
	}
}

// uploadSpy is the real catalog store, noting whether the row of the
// recording at local was pointed at its object while the local file was
// already gone.
type uploadSpy struct {
	meta.Store
	local string
	gone  atomic.Bool // the row named the object only after the file went
	moved atomic.Bool
}

func (u *uploadSpy) PutRecording(ctx context.Context, r meta.Recording) error {
	if strings.HasPrefix(r.FilePath, "blob:") {
		if _, err := os.Stat(u.local); err != nil {
			u.gone.Store(true)
		}
		u.moved.Store(true)
	}
	return u.Store.PutRecording(ctx, r)
}

// TestS3UploadKeepsFileUntilRowMoves: with object storage (versitygw) and
// no keep_local, the upload removes the local file only once the row names
// the object, so no reader finds the row naming a file already gone; and
// a row read before the upload ended (the local file) still opens
// afterwards, from the object. Before, an ARI client fetching the file
// right after RecordingFinished could get 403 "could not be opened"
// (TestClusterGoAriCallerHangsUpOnOtherNode).
func TestS3UploadKeepsFileUntilRowMoves(t *testing.T) {
	ctx := context.Background()
	dir, st, s3 := s3Stores(t)
	p := filepath.Join(dir, "race.wav")
	spy := &uploadSpy{Store: st, local: p}
	svc := &Service{Meta: spy, Blob: s3, Root: dir, Node: "n1"}
	defer svc.Close()
	content := bytes.Repeat([]byte("recorded"), 2000)
	in, sid := startedFile(t, svc, dir, "race", content)
	before, err := st.RecordingBySid(ctx, sid) // names the local file
	must(t, err)
	if strings.HasPrefix(before.FilePath, "blob:") || before.FilePath == "" {
		t.Fatalf("row before the upload names %q, want the local file", before.FilePath)
	}
	in.Status, in.Duration = "completed", time.Second
	must(t, svc.Finished(ctx, in))
	testutil.Eventually(t, 20*time.Second, 10*time.Millisecond, func() bool {
		_, err := os.Stat(p)
		return spy.moved.Load() && errors.Is(err, os.ErrNotExist)
	}, "the upload, and the local file removed")
	if spy.gone.Load() {
		t.Fatal("the row was pointed at the object after the local file was removed")
	}
	readsBack(t, svc, before, content) // the row read before the upload
}
