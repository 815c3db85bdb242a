package catalog

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/contain"
	"github.com/tapedeck/tapedeck/internal/store/blob"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// panicBlob is object storage whose upload panics (a store's bug).
type panicBlob struct{ blob.Store }

func (panicBlob) Put(context.Context, string, string, string) (blob.Object, error) {
	panic("object store bug")
}

// A panic in an upload job fails that job only: the waiter gets an error,
// the job is counted failed and as a panic, the row stays for Reconcile,
// and the process goes on. Without containment it ends the test process.
func TestUploadPanicFailsOnlyThatJob(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := &Service{Meta: st, Root: dir, Node: "n1", Blob: panicBlob{}}
	defer svc.Close()
	p := filepath.Join(dir, "up.wav")
	if err := os.WriteFile(p, testutil.SilentWAV(8000), 0o644); err != nil {
		t.Fatal(err)
	}
	in := Info{Name: "up", Path: p, Format: "wav", ContentType: "audio/wav", Started: time.Now()}
	if _, err := svc.Started(ctx, in); err != nil {
		t.Fatal(err)
	}
	before := contain.Count("upload")
	in.Duration, in.WaitUpload = time.Second, true
	if err := svc.Finished(ctx, in); err != nil {
		t.Fatal(err)
	}
	if got := contain.Count("upload") - before; got != 1 {
		t.Fatalf("%v upload panics counted", got)
	}
	if svc.FailedUploads() != 1 {
		t.Fatalf("%d failed uploads", svc.FailedUploads())
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the local file is gone after a failed upload: %v", err)
	}
	if row, err := st.RecordingByName(ctx, "up"); err != nil || row.S3URI != "" {
		t.Fatalf("row %+v %v", row, err)
	}
}

// panicInProgress is the real store whose InProgress panics (a store bug).
type panicInProgress struct {
	meta.Store
	calls atomic.Int32
}

func (p *panicInProgress) InProgress(context.Context, string, int) ([]meta.Recording, error) {
	p.calls.Add(1)
	panic("store bug")
}

// A panic in the periodic reconcile is contained: counted, and the next
// period runs again. Without containment it ends the test process.
func TestReconcilePanicKeepsRunning(t *testing.T) {
	dir := t.TempDir()
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ps := &panicInProgress{Store: st}
	svc := &Service{Meta: ps, Root: dir, Node: "n1"}
	before := contain.Count("catalog")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx, 10*time.Millisecond); close(done) }()
	testutil.Eventually(t, 10*time.Second, 5*time.Millisecond, func() bool { return ps.calls.Load() >= 3 },
		"the reconcile loop stopped after a panic")
	cancel()
	<-done
	if got := contain.Count("catalog") - before; got < 3 {
		t.Fatalf("%v catalog panics counted", got)
	}
}
