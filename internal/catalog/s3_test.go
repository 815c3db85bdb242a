package catalog

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
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
	g := versitygw.Shared(t)
	ctx := context.Background()
	dir := t.TempDir()
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	must(t, err)
	defer st.Close()
	s3, err := blob.NewS3(blob.S3Config{Endpoint: g.Endpoint(), AccessKey: versitygw.AccessKey, SecretKey: versitygw.SecretKey, Bucket: g.NewBucket(t)})
	must(t, err)
	svc := &Service{Meta: st, Blob: s3, Root: dir, Node: "n1"}
	defer svc.Close()
	opens := countOpens(t)
	content := bytes.Repeat([]byte("tapedeck"), 1000)
	p := filepath.Join(dir, "up.wav")
	must(t, os.WriteFile(p, content, 0o644))
	in := Info{Name: "up", Path: p, Format: "wav", ContentType: "audio/wav", Started: time.Now()}
	sid, err := svc.Started(ctx, in)
	must(t, err)
	in.Status, in.Duration = "completed", time.Second
	must(t, svc.Finished(ctx, in)) // a hangup: the job uploads
	var row meta.Recording
	testutil.Eventually(t, 20*time.Second, 10*time.Millisecond, func() bool {
		row, err = st.RecordingBySid(ctx, sid)
		return err == nil && strings.HasPrefix(row.FilePath, "blob:")
	}, "the upload")
	if row.SHA256 != sha256Hex(content) || row.Size != int64(len(content)) || row.Status != meta.StatusCompleted {
		t.Fatalf("row after the upload: sum %q size %d status %s; want %q, %d, completed", row.SHA256, row.Size, row.Status, sha256Hex(content), len(content))
	}
	if n := opens.Load(); n != 0 {
		t.Fatalf("the catalog opened %d files to hash them; want none (the upload hashes)", n)
	}
	m, err := svc.Open(ctx, row, "audio/wav")
	must(t, err)
	defer m.Close()
	var got bytes.Buffer
	if _, err := got.ReadFrom(m); err != nil || !bytes.Equal(got.Bytes(), content) {
		t.Fatalf("object read back: %d bytes, %v", got.Len(), err)
	}
}
