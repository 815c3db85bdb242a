package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapedeck/tapedeck/internal/contain"
	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/store/blob"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// Uploads to object storage are background jobs: a finished recording's row
// is written at once with its local file, and a job uploads the file, then
// points the row at the object. A failed attempt is retried with back-off
// (RetryBase, doubling, at most maxRetryDelay apart) until it succeeds or
// the service closes; Reconcile (at start-up and periodically) starts a job
// for every stored row of this node still on local disk, so no upload is
// lost across a restart. Each attempt has its own timeout (Upload, at least
// 10 minutes), not the caller's.

const maxRetryDelay = 5 * time.Minute

type uploads struct {
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
	jobs   map[string]bool // names with a job running
	wg     sync.WaitGroup
	failed atomic.Int64 // failed attempts, for monitoring and tests
}

// FailedUploads is the number of upload attempts that failed (and were or
// will be retried) since the start.
func (s *Service) FailedUploads() int64 { return s.up.failed.Load() }

// Uploading is the number of upload jobs running or waiting to retry.
func (s *Service) Uploading() int {
	s.up.mu.Lock()
	defer s.up.mu.Unlock()
	return len(s.up.jobs)
}

func (s *Service) jobCtx() context.Context {
	s.up.mu.Lock()
	defer s.up.mu.Unlock()
	if s.up.ctx == nil {
		s.up.ctx, s.up.cancel = context.WithCancel(context.Background())
		s.up.jobs = map[string]bool{}
	}
	return s.up.ctx
}

// startUpload starts the upload job of row (unless one is running for its
// name); first receives the first attempt's result (nil when a job was
// already running).
func (s *Service) startUpload(row meta.Recording, contentType string) (first <-chan error) {
	ctx := s.jobCtx()
	out := make(chan error, 1)
	s.up.mu.Lock()
	if s.up.jobs[row.Name] || ctx.Err() != nil {
		s.up.mu.Unlock()
		out <- nil
		return out
	}
	s.up.jobs[row.Name] = true
	s.up.wg.Add(1)
	s.up.mu.Unlock()
	go func() {
		defer s.up.wg.Done()
		defer func() {
			s.up.mu.Lock()
			delete(s.up.jobs, row.Name)
			s.up.mu.Unlock()
		}()
		// A panic in the job (a store's bug) fails this upload only; the
		// next start's Reconcile tries it again.
		defer contain.Recover(s.log(), "upload", func() {
			s.up.failed.Add(1)
			select {
			case out <- errUploadPanicked:
			default: // the first attempt's result was already given
			}
		})
		delay := s.RetryBase
		if delay <= 0 {
			delay = time.Second
		}
		for attempt := 1; ; attempt++ {
			done, err := s.uploadOnce(ctx, row, contentType)
			if attempt == 1 {
				out <- err
			}
			if done {
				return
			}
			s.up.failed.Add(1)
			s.log().Warn("catalog: upload failed; retrying", "name", row.Name, "attempt", attempt, "in", delay, "err", err)
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return // Reconcile at the next start picks it up
			case <-t.C:
			}
			delay = min(delay*2, maxRetryDelay)
		}
	}()
	return out
}

// localKeeper is an object store (blob.S3) that can upload without
// removing the local file, and says whether Put would have removed it.
type localKeeper interface {
	PutKeepingLocal(ctx context.Context, key, path, contentType string) (blob.Object, error)
	RemovesLocal() bool
}

// uploadOnce makes one attempt; done is false when it should be retried.
func (s *Service) uploadOnce(ctx context.Context, row meta.Recording, contentType string) (done bool, err error) {
	if s.busy(row.Name) {
		return true, nil // recorded again meanwhile: that recording's end uploads it
	}
	local := s.abs(row.FilePath)
	if s.Blob == nil {
		// Local disk only (checksum: background): hash the file, one at
		// a time.
		if row.SHA256 != "" {
			return true, nil
		}
		s.hashing.Lock()
		defer s.hashing.Unlock()
		done, err := s.hashRow(ctx, &row, local)
		return done || err == nil, err
	}
	// The upload reads the file once and computes its SHA-256 from that
	// read (blob.S3.Put): no hashing here.
	key := row.AccountSid + "/" + row.Sid + "." + extOf(local)
	uctx, cancel := context.WithTimeout(ctx, max(s.Upload, 10*time.Minute))
	var obj blob.Object
	removeLocal := false // the store left the file to us to remove
	if k, ok := s.Blob.(localKeeper); ok {
		// The local file goes only once the row names the object (below):
		// a reader (an ARI client fetching the file on RecordingFinished,
		// another node) never finds the row naming a file already gone.
		obj, err = k.PutKeepingLocal(uctx, key, local, contentType)
		removeLocal = err == nil && k.RemovesLocal()
	} else {
		obj, err = s.Blob.Put(uctx, key, local, contentType)
	}
	cancel()
	if errors.Is(err, os.ErrNotExist) {
		return true, nil // removed: Reconcile marks it missing
	}
	if err != nil {
		return false, err
	}
	if obj.SHA256 != "" && row.SHA256 != "" && obj.SHA256 != row.SHA256 {
		s.log().Error("catalog: checksum differs after upload", "name", row.Name)
	}
	// Point the row at the object, unless it changed meanwhile.
	s.mu.Lock()
	defer s.mu.Unlock()
	// finish removes the uploaded file, under s.mu, unless a new
	// recording of the name (which writes to the same path) began
	// meanwhile; the upload is done.
	finish := func() (bool, error) {
		if _, pending := s.pending[row.Name]; removeLocal && !s.active[row.Name] && !pending {
			if err := os.Remove(local); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log().Warn("catalog: removing an uploaded recording's local file", "name", row.Name, "err", err)
			}
		}
		return true, nil
	}
	cur, err := s.Meta.RecordingBySid(ctx, row.Sid)
	if err != nil || cur.FilePath != row.FilePath || s.active[row.Name] {
		if errors.Is(err, meta.ErrNotFound) {
			_ = s.Blob.Delete(ctx, key) // deleted while uploading
			return finish()
		}
		if err != nil {
			return false, err // retried, the file kept
		}
		return finish()
	}
	cur.S3URI = obj.URI
	cur.FilePath = remotePrefix + obj.Key
	if obj.SHA256 != "" {
		cur.Size, cur.SHA256 = obj.Size, obj.SHA256
	}
	cur.DateUpdated = s.now()
	if err := s.Meta.PutRecording(ctx, cur); err != nil {
		return false, err // retried, the file kept
	}
	s.log().Info("catalog: recording uploaded", "name", row.Name, "uri", obj.URI)
	return finish()
}

// hashRow computes the checksum of a local row's file and writes it into
// the row; done when there is nothing more to do (the file or the row is
// gone or changed).
func (s *Service) hashRow(ctx context.Context, row *meta.Recording, local string) (done bool, err error) {
	size, sum, err := fileSum(local)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return true, nil // removed: Reconcile marks it missing
		}
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active[row.Name] {
		return true, nil // recorded again: that recording's end hashes it
	}
	// One conditional UPDATE: the row still names this file and has no
	// checksum. Only when it changed nothing is the row read, to tell why.
	now := s.now()
	if ok, err := s.Meta.SetChecksum(ctx, row.Sid, row.FilePath, size, sum, now); err != nil {
		return false, err
	} else if ok {
		row.Size, row.SHA256, row.DateUpdated = size, sum, now
		return false, nil
	}
	cur, err := s.Meta.RecordingBySid(ctx, row.Sid)
	if errors.Is(err, meta.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if cur.FilePath != row.FilePath || cur.SHA256 == "" {
		return true, nil
	}
	*row = cur // checksummed meanwhile (a stop's Finished, Reconcile)
	return false, nil
}

// wantsJob reports whether a finished row on local disk needs the
// background job: its upload to object storage, or (checksum: background)
// its checksum.
func (s *Service) wantsJob(row meta.Recording) bool {
	if row.FilePath == "" || isRemote(row) {
		return false
	}
	return s.Blob != nil || (s.HashInBackground && row.SHA256 == "")
}

// rescanUpload starts the job of a stored row still on local disk that
// lacks its upload or, with checksum: background, its checksum.
func (s *Service) rescanUpload(row meta.Recording) {
	if !s.wantsJob(row) {
		return
	}
	ct := ""
	if f, err := recorder.Lookup(row.Format); err == nil {
		ct = f.ContentType
	}
	s.startUpload(row, ct)
}

// WaitUploads waits until no recording's end is being catalogued
// (Finished) and no upload (or background checksum) job is running or
// waiting to retry, or until ctx is done; it reports whether all were
// done. A drain (server.Shutdown) calls it once its calls have ended, so
// that the recordings it let finish reach object storage before Close
// stops the jobs: a stopped job resumes only at the node's next start,
// which a node taken out of a cluster never has.
func (s *Service) WaitUploads(ctx context.Context) bool {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if s.finishing.Load() == 0 && s.Uploading() == 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// Close stops the upload jobs (those unfinished are started again by the
// next start's Reconcile) and waits for them.
func (s *Service) Close() {
	s.jobCtx()
	s.up.cancel()
	s.up.wg.Wait()
}

// Checksum returns row with its SHA-256 filled in: the stored one, or for
// a local file that has none yet (recording.checksum: on_demand) one
// computed now from the file and stored in the row (unless the name is
// being recorded again meanwhile). It is what reads the checksum calls
// first (the media caches' keys), so the catalog never hashes a file on
// the recording's path. A missing file is an error wrapping
// os.ErrNotExist; a row in object storage without a checksum (uploaded by
// an older version without one) is returned as it is; one on another
// node's disk is hashed through that node (Peers) and not stored.
func (s *Service) Checksum(ctx context.Context, row meta.Recording) (meta.Recording, error) {
	if row.SHA256 != "" || row.FilePath == "" || isRemote(row) {
		return row, nil
	}
	if s.onPeer(row) {
		// On another node's disk: hashed as read through that node, and
		// not stored (only the owner knows whether it records the name
		// again meanwhile).
		m, err := s.Open(ctx, row, "")
		if err != nil {
			return row, err
		}
		defer m.Close()
		h := sha256.New()
		n, err := io.Copy(h, m)
		if err != nil {
			return row, err
		}
		row.Size, row.SHA256 = n, hex.EncodeToString(h.Sum(nil))
		return row, nil
	}
	local := s.abs(row.FilePath)
	before, err := os.Stat(local)
	if err != nil {
		return row, err
	}
	size, sum, err := fileSum(local)
	if err != nil {
		return row, err
	}
	after, err := os.Stat(local)
	if err != nil {
		return row, err
	}
	if after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) || size != after.Size() {
		return row, fmt.Errorf("recording %q: its file changed while it was hashed", row.Name)
	}
	row.Size, row.SHA256 = size, sum
	s.mu.Lock()
	defer s.mu.Unlock()
	_, pending := s.pending[row.Name]
	if s.active[row.Name] || pending {
		return row, nil // recorded again meanwhile: not stored
	}
	now := s.now()
	if ok, err := s.Meta.SetChecksum(ctx, row.Sid, row.FilePath, size, sum, now); err != nil {
		s.log().Warn("catalog: storing a checksum", "name", row.Name, "err", err)
	} else if ok {
		row.DateUpdated = now
	}
	return row, nil
}

var errUploadPanicked = errors.New("catalog: upload job failed (an internal error, logged with its stack)")
