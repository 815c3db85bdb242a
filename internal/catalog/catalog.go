// Package catalog keeps the catalog of recordings: one metadata row per
// recording (SQLite or PostgreSQL) and its file (local disk or S3). It is
// fed by the call model as recordings start and finish, and serves the
// Restcomm-compatible Recordings API and ARI's stored recordings alike.
package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapedeck/tapedeck/internal/contain"
	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/store/blob"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// ErrNotFound is returned for unknown (or foreign) recordings.
var ErrNotFound = meta.ErrNotFound

// ErrUnavailable: the recording's file is on another node's disk and that
// node does not answer (down, or out of reach): the APIs answer 503, and a
// delete leaves the recording as it was.
var ErrUnavailable = errors.New("catalog: the node holding the recording's file does not answer")

// PeerFiles reaches the files that other nodes keep on their own disks
// (the cluster's relay, over NATS): a recording made on node A without
// object storage is downloaded and deleted through node B. Both fail with
// ErrUnavailable when the node does not answer, and ErrNotFound when it
// answers that it has no such file.
type PeerFiles interface {
	// OpenFile opens the file of row, which row.Node keeps under
	// row.FilePath in its local store.
	OpenFile(ctx context.Context, row meta.Recording) (blob.Reader, error)
	// DeleteFile removes it there.
	DeleteFile(ctx context.Context, row meta.Recording) error
}

// Info describes a recording as the call model knows it.
type Info struct {
	Name         string // ARI name (relative path without extension)
	Path         string // local file
	Format       string
	ContentType  string
	AccountSid   string
	CallSid      string
	CallerNumber string
	CalledNumber string
	Source       string // ari, command, policy, script
	// TenantUUID, Direction and Owners (comma-separated user UUIDs)
	// describe a policy recording.
	TenantUUID, Direction, Owners string
	Channels                      int
	Started                       time.Time
	Duration                      time.Duration
	Status                        string // in-progress, completed, failed, recovered
	Cause                         string // why it failed, in words (the row's StatusDetail)
	// AbsentBelow: a completed recording with less audio than this is
	// absent, as Twilio keeps none under a second (0: only one without
	// audio is).
	AbsentBelow time.Duration
	// Silent: the recording's starter keeps no silent recording and no
	// frame of this one was sound (Twilio's absent, error 16102).
	Silent bool
	// Quality is the recording's completeness (nil: not measured).
	Quality *meta.Quality
	// EndedBeforeStart, on Finished: the recording's first row was
	// written before it began (a row-first recording) and it ended before
	// its file was opened. Its row is final, absent
	// (DetailEndedBeforeStart), with no file and nothing recorded.
	EndedBeforeStart bool
	// Stalled, on Finished with Status "failed": the recording's disk
	// stalled, and a write to its file had not returned when it ended.
	// Its file is then not repaired or read (recorder.Repair would wait for
	// the same disk, holding up the hangup that finishes it): the row's
	// size is the file's, by stat, and its duration Duration (the audio of
	// the writes that returned: recorder.StoredSoFar). The writer
	// finalises the file's header itself once the write returns, and the
	// row then takes the file's size and the audio stored (StalledClosed).
	Stalled bool
	// EndReason, on Finished, is why the recording ended (the row's
	// EndReason: hangup, stopped, duration, ...; Recovered's default is
	// EndInterrupted).
	EndReason string
	// Callback, on Started (and on Finished when the start was not
	// written), is kept with the row from its first write
	// (meta.Recording.Callback): Ozeki's FinishedUrl.
	Callback *meta.StatusCallback
	// WaitUpload makes Finished wait for the first attempt of the upload
	// to object storage (a stop asked for; a hangup never waits).
	WaitUpload bool
	// CDR, on Finished, is the record of the call whose hangup ended the
	// recording: it is written with the recording's final row, in one
	// transaction (meta.CDRs.PutRecordingCDR), and alone when that fails
	// or there is no row to write, so that a recording's failure never
	// loses its call's record. Its empty AccountSid is the default
	// account's, its empty Node this node's.
	CDR *meta.CDR
	// ReleaseClaim, on Finished, says this node holds the cluster-wide
	// claim on the recording's name (ClaimName): FinishedReleasing drops
	// it in the statement that writes the final row and the CDR where the
	// store can (PostgreSQL), and says so; the caller releases it
	// otherwise (ReleaseName).
	ReleaseClaim bool
}

// Service is the catalog.
type Service struct {
	Meta meta.Store
	// Blob is object storage (S3) when configured; nil: files stay in
	// the local store, where the recorder wrote them.
	Blob blob.Store
	// Root is the recordings root, the local blob store every row that is
	// not in object storage names its file in (FilePath is its key).
	Root   string
	Log    *slog.Logger
	Now    func() time.Time
	Upload time.Duration // bound for one upload attempt (at least 10 minutes)
	Node   string        // this node's id, stored on the rows it makes
	// RetryBase is the first delay between upload attempts (0: 1 s); it
	// doubles up to 5 minutes.
	RetryBase time.Duration
	// DeletedRetention is how long the row of a deleted recording is kept
	// (0: DefaultDeletedRetention; negative: forever).
	DeletedRetention time.Duration
	// HashInBackground (recording.checksum: background) makes a background
	// job compute the SHA-256 of every finished recording kept on local
	// disk, one file at a time. Without it (on_demand, the default) a
	// local recording's checksum is computed when something needs it
	// (Checksum: the media caches' keys), never on the hangup's path.
	// With object storage the upload computes it either way, from the
	// same read that sends the file.
	HashInBackground bool
	// LostAfter: the live recordings of another node whose heartbeat has
	// been gone this long are settled by this one (settleLost); 0: never.
	LostAfter time.Duration
	// OnLost, when set, is told of each recording settled for its lost
	// node (lost), with its new row (the cluster tells the applications
	// that followed it).
	OnLost func(lost string, row meta.Recording)
	// LostNotices, when set, makes the webhook outbox rows that tell of a
	// recording settled for its lost node (row, as it is about to be
	// written): its Twilio status callback. They are queued in the
	// transaction that settles the row (meta.NodeLiveness.SettleLost), so
	// a node dying in between loses neither. An error leaves the row live
	// for the next pass (return one only for what may pass: a notification
	// that can never be sent is logged and left out).
	LostNotices func(ctx context.Context, row meta.Recording) ([]meta.OutboxItem, error)
	// FinalNotices, when set, makes the webhook outbox rows that tell of
	// a recording's end (row, final, as it is about to be written): its
	// Twilio status callback. They are queued in the transaction that
	// writes the final row (meta.FinalRows), by Finished and by
	// Reconcile's retries and settling of this node's rows left in
	// progress, so that a node dying in between loses neither. An error
	// leaves the row as it was, for Reconcile to retry (return one only
	// for what may pass).
	FinalNotices func(ctx context.Context, row meta.Recording) ([]meta.OutboxItem, error)
	// NoticesQueued, when set, is called once notifications were queued
	// with a final row (FinalNotices): the sender's wake-up.
	NoticesQueued func()
	// Peers, when set, serves and deletes the recordings kept on other
	// nodes' disks; without it they are not this node's to serve.
	Peers PeerFiles

	up         uploads
	finishing  atomic.Int64 // Finished calls under way (WaitUploads)
	hashing    sync.Mutex   // one background hash at a time
	localOnce  sync.Once
	localStore *blob.Local
	localErr   error
	checkAfter string // where checkFiles goes on (guarded by mu)

	defaultSid atomic.Pointer[string] // the default account's Sid, once known

	mu     sync.Mutex
	active map[string]bool // names between Started and Finished: being recorded here
	// live keeps the row Started wrote (and Paused changed) until
	// Finished, which updates it without reading it back.
	live    map[string]meta.Recording
	pending map[string]Info // Finished writes that failed, retried by Reconcile
	// ends: AwaitEnd's waiters, by name, told when the catalog is done
	// with the recording's end (endedLocked).
	ends map[string][]chan struct{}
}

// AwaitEnd returns a channel that is closed once the catalog is done with
// the end of the recording name being recorded here: its final write
// (Finished, or Reconcile's retry of one that failed) has succeeded (the
// final row written, or a canceled recording's row deleted), has failed
// in a way no retry mends, or was made moot by a new recording of the
// name. It is closed at once when no such write is under way or pending.
// A caller that asks first and then reads the row misses no write: a
// row still live when read is final (or gone) by the time the channel
// closes. stop forgets the waiter (call it when done waiting).
func (s *Service) AwaitEnd(name string) (ended <-chan struct{}, stop func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, pending := s.pending[name]; !s.active[name] && !pending {
		close(ch)
		return ch, func() {}
	}
	if s.ends == nil {
		s.ends = map[string][]chan struct{}{}
	}
	s.ends[name] = append(s.ends[name], ch)
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		list := s.ends[name]
		for i, c := range list {
			if c == ch {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(s.ends, name)
		} else {
			s.ends[name] = list
		}
	}
}

// endedLocked tells AwaitEnd's waiters of name that the catalog is done
// with its end (s.mu held).
func (s *Service) endedLocked(name string) {
	for _, ch := range s.ends[name] {
		close(ch)
	}
	delete(s.ends, name)
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// DefaultAccount returns (creating once) the default account.
func (s *Service) DefaultAccount(ctx context.Context) (meta.Account, error) {
	acc, err := s.Meta.EnsureDefaultAccount(ctx)
	if err == nil {
		s.defaultSid.Store(&acc.Sid)
	}
	return acc, err
}

// defaultAccountSid is the default account's Sid. Accounts are never
// deleted and the default flag never moves once set, so the Sid is looked
// up once: not with a query on the writer connection for every recording.
func (s *Service) defaultAccountSid(ctx context.Context) (string, error) {
	if p := s.defaultSid.Load(); p != nil {
		return *p, nil
	}
	acc, err := s.DefaultAccount(ctx)
	return acc.Sid, err
}

// Started records an in-progress recording; it returns its Sid.
func (s *Service) Started(ctx context.Context, in Info) (string, error) {
	s.mu.Lock()
	if s.active == nil {
		s.active = map[string]bool{}
	}
	s.active[in.Name] = true
	// A new recording of the name replaces the file an unsettled earlier
	// one left: that one's final write is moot.
	if _, pending := s.pending[in.Name]; pending {
		delete(s.pending, in.Name)
		s.endedLocked(in.Name)
	}
	delete(s.live, in.Name)
	s.mu.Unlock()
	row, err := s.started(ctx, in)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	if s.active[in.Name] {
		if s.live == nil {
			s.live = map[string]meta.Recording{}
		}
		s.live[in.Name] = row
	}
	s.mu.Unlock()
	return row.Sid, nil
}

func (s *Service) started(ctx context.Context, in Info) (meta.Recording, error) {
	if in.AccountSid == "" {
		sid, err := s.defaultAccountSid(ctx)
		if err != nil {
			return meta.Recording{}, err
		}
		in.AccountSid = sid
	}
	now := s.now()
	row := meta.Recording{
		Sid: meta.NewRecordingSid(), AccountSid: in.AccountSid, CallSid: in.CallSid,
		DateCreated: now, DateUpdated: now, StartTime: in.Started.UTC(),
		Format: in.Format, Source: nonEmpty(in.Source, "ari"), Status: "in-progress",
		Name: in.Name, FilePath: s.rel(in.Path), Channels: max(in.Channels, 1),
		CallerNumber: in.CallerNumber, CalledNumber: in.CalledNumber, ApiVersion: "2012-04-24",
		Node: s.Node, TenantUUID: in.TenantUUID, Direction: in.Direction, Owners: in.Owners,
		Quality: in.Quality, Callback: in.Callback,
	}
	// A name reused with ifExists=overwrite replaces the previous row,
	// keeping its Sid: one upsert on the name, no look-up.
	sid, created, err := s.Meta.StartRecording(ctx, row)
	if err != nil {
		return meta.Recording{}, err
	}
	row.Sid, row.DateCreated = sid, created
	return row, nil
}

// Paused marks a live recording paused (on) or in progress again, with its
// quality then (its paused intervals); a recording that has finished
// meanwhile keeps its final row (nil error).
func (s *Service) Paused(ctx context.Context, name string, on bool, q *meta.Quality) error {
	st := meta.StatusInProgress
	if on {
		st = meta.StatusPaused
	}
	err := s.Meta.SetLiveStatus(ctx, name, st, q)
	if errors.Is(err, meta.ErrNotFound) {
		return nil
	}
	if err == nil {
		s.mu.Lock()
		if row, ok := s.live[name]; ok {
			row.Status, row.Quality = st, q
			s.live[name] = row
		}
		s.mu.Unlock()
	}
	return err
}

// Finished completes a recording's row: duration, size, checksum, the
// failure cause, and the upload to S3 when configured. Canceled recordings
// lose their row. A failed recording's file holds what was written before
// the failure: it is repaired in place and measured. When the write fails
// (e.g. the database's disk is full) Reconcile retries it.
func (s *Service) Finished(ctx context.Context, in Info) error {
	_, err := s.FinishedReleasing(ctx, in)
	return err
}

// FinishedReleasing is Finished that reports whether the name claim of
// in.ReleaseClaim was dropped with the final row (one request to the
// database where a row, its CDR and the release were two).
func (s *Service) FinishedReleasing(ctx context.Context, in Info) (released bool, err error) {
	s.finishing.Add(1) // until its upload job is registered
	defer s.finishing.Add(-1)
	var cdr *meta.CDR
	if in.CDR != nil {
		c := *in.CDR
		cdr = &c
		if c.AccountSid == "" {
			if acc, err := s.defaultAccountSid(ctx); err == nil {
				cdr.AccountSid = acc
			}
		}
		if c.Node == "" {
			cdr.Node = s.Node
		}
	}
	in.CDR = nil // a retry by Reconcile writes the row alone
	release := in.ReleaseClaim
	in.ReleaseClaim = false // nor does a retry release
	var row *meta.Recording
	row, released, err = s.finished(ctx, in, &cdr, release)
	if cdr != nil {
		// Not written with the row (it failed, or there was none to
		// write): the call's record goes alone, with a time of its own
		// (the row's write may have used up the caller's deadline), as
		// the hangup's separate CDR write had.
		if cs, ok := s.Meta.(meta.CDRs); ok {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cdrAloneTimeout)
			if err := cs.PutCDR(cctx, *cdr); err != nil {
				s.log().Warn("CDR not stored", "call_sid", cdr.Sid, "channel", cdr.ChannelID, "err", err)
			}
			cancel()
		}
	}
	s.mu.Lock()
	delete(s.active, in.Name)
	s.setPendingLocked(in, err)
	if _, pending := s.pending[in.Name]; !pending {
		s.endedLocked(in.Name)
	}
	s.mu.Unlock()
	if row != nil && s.wantsJob(*row) {
		first := s.startUpload(*row, in.ContentType)
		if in.WaitUpload {
			select {
			case <-first:
			case <-ctx.Done():
			}
		}
	}
	return released, err
}

// cdrAloneTimeout bounds the write of a call's record that could not go
// with its recording's row (Finished).
const cdrAloneTimeout = 2 * time.Second

// setPendingLocked keeps a failed write for Reconcile (unless retrying
// cannot help) or forgets a done one.
func (s *Service) setPendingLocked(in Info, err error) {
	if err != nil && !errors.Is(err, meta.ErrInvalid) && !errors.Is(err, meta.ErrConflict) {
		if s.pending == nil {
			s.pending = map[string]Info{}
		}
		s.pending[in.Name] = in
	} else {
		delete(s.pending, in.Name)
	}
}

// StalledClosed is told that the file of a recording that ended with a
// write not returned (Finished with Info.Stalled) was closed at last: the
// write returned and the writer finalised the file. The failed row then
// takes the file's size, by stat, and in.Duration, the audio the writer
// stored (recorder.Stored once it closed the file), instead of what they
// were at its end. in is the Info that Finished had (Name, Path, Format,
// Started) with that Duration. The file is only read: a new recording of
// the name may be writing it. Nothing changes when the row is no longer
// that recording's (deleted, or a new recording of the name began); a
// Finished still pending (its write failed) is retried with these.
func (s *Service) StalledClosed(ctx context.Context, in Info) error {
	fi, err := os.Stat(in.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return err
	}
	// Under s.mu, as settle: a recording of the name that starts now
	// writes its in-progress row after this one.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active[in.Name] {
		return nil
	}
	if p, ok := s.pending[in.Name]; ok {
		if p.Stalled && p.Path == in.Path && p.Started.Equal(in.Started) {
			p.Duration = in.Duration
			s.pending[in.Name] = p
		}
		return nil
	}
	row, err := s.Meta.RecordingByName(ctx, in.Name)
	if errors.Is(err, meta.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if row.Status != meta.StatusFailed || row.Node != s.Node || s.abs(row.FilePath) != in.Path ||
		row.StartTime.Sub(in.Started).Abs() > time.Millisecond {
		return nil // another recording's row now
	}
	if row.Size == fi.Size() && row.Duration == in.Duration.Seconds() {
		return nil
	}
	row.Size, row.Duration, row.DateUpdated = fi.Size(), in.Duration.Seconds(), s.now()
	if err := s.Meta.PutRecording(ctx, row); err != nil {
		return err
	}
	s.log().Info("catalog: a stalled recording's file was closed; its row takes the file's size and audio",
		"name", in.Name, "bytes", row.Size, "duration", row.Duration)
	return nil
}

// finished writes the row; it returns it when its file is to be uploaded.
// A *cdr that is not nil is written with the row, in one transaction, and
// then set to nil (left as it is when the row is not written). With
// release, the node's claim on the name goes with them where the store can
// (released).
func (s *Service) finished(ctx context.Context, in Info, cdr **meta.CDR, release bool) (_ *meta.Recording, released bool, _ error) {
	// The row Started wrote, kept: no look-up (a retry by Reconcile, or a
	// recording whose Started failed, reads it).
	s.mu.Lock()
	row, kept := s.live[in.Name]
	delete(s.live, in.Name)
	s.mu.Unlock()
	var err error
	if !kept {
		row, err = s.Meta.RecordingByName(ctx, in.Name)
	}
	if errors.Is(err, meta.ErrNotFound) {
		row, err = s.started(ctx, in)
	}
	if err != nil {
		return nil, false, err
	}
	if in.Status == "canceled" {
		return nil, false, s.Meta.DeleteRecording(ctx, row.AccountSid, row.Sid)
	}
	row.DateUpdated = s.now()
	row.Duration = in.Duration.Seconds()
	row.Status = meta.Status(nonEmpty(in.Status, "completed"))
	row.StatusDetail = in.Cause
	row.EndReason = in.EndReason
	row.Node = s.Node
	if in.Quality != nil {
		row.Quality = in.Quality
	}
	// The row gets the file's size; its checksum is computed later, by
	// the upload (object storage), the background job (checksum:
	// background) or when something needs it (Checksum): finishing never
	// reads the file back.
	row.Size, row.SHA256 = 0, ""
	switch {
	case in.EndedBeforeStart:
		// No file to measure or read: nothing was recorded.
		row.Status, row.StatusDetail, row.Duration = meta.StatusAbsent, DetailEndedBeforeStart, 0
	case in.Status == "failed" && in.Stalled:
		if fi, err := os.Stat(in.Path); err == nil {
			row.Size = fi.Size()
		}
	case in.Status == "failed":
		if size, dur, err := measure(in.Path, in.Format); err == nil {
			row.Size = size
			if dur > 0 || size == 0 {
				row.Duration = dur.Seconds()
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			s.log().Warn("catalog: cannot measure failed recording", "name", in.Name, "err", err)
		}
	default:
		if fi, err := os.Stat(in.Path); err != nil {
			row.Status = "failed"
			row.StatusDetail = "The finished recording's file cannot be read: " + err.Error()
			s.log().Warn("catalog: cannot read finished recording", "name", in.Name, "err", err)
		} else {
			row.Size = fi.Size()
		}
		if row.Status == meta.StatusCompleted && in.Silent {
			// Audio, but silent throughout: Twilio's "absent" with
			// 16102 (whatever its length; trimmed, it is empty).
			row.Status, row.StatusDetail = meta.StatusAbsent, DetailSilent
		} else if row.Status == meta.StatusCompleted && (in.Duration <= 0 || in.Duration < in.AbsentBelow) {
			// Not one frame of audio was received, or less than its
			// starter keeps: Twilio's "absent". The file stays, on
			// local disk: no upload job.
			row.Status, row.StatusDetail = meta.StatusAbsent, DetailNoAudio
			if in.Duration > 0 {
				row.StatusDetail = fmt.Sprintf(DetailTooShort, in.Duration.Seconds(), in.AbsentBelow.Seconds())
			}
		}
	}
	name := ""
	if release {
		name = in.Name
	}
	released, err = s.putFinal(ctx, row, cdr, name)
	if err != nil {
		return nil, released, err
	}
	if row.Status != "completed" {
		return nil, released, nil
	}
	return &row, released, nil
}

// putFinal writes a recording's final row, with the call's record *cdr
// when there is one (then set to nil once both are committed). A claim
// (this node's on the name claimName, when not "") is dropped in the same
// statement where the store can (released; PostgreSQL, with a CDR).
func (s *Service) putFinal(ctx context.Context, row meta.Recording, cdr **meta.CDR, claimName string) (released bool, _ error) {
	if fr, ok := s.Meta.(meta.FinalRows); ok && s.FinalNotices != nil {
		notes, err := s.FinalNotices(ctx, row)
		if err != nil {
			return false, fmt.Errorf("its notifications: %w", err)
		}
		if len(notes) > 0 {
			return false, s.putFinalNotes(ctx, fr, row, cdr, notes)
		}
	}
	if cdr != nil && *cdr != nil {
		if cr, ok := s.Meta.(meta.ClaimReleasingCDRs); ok && claimName != "" {
			if ok, released, err := cr.PutRecordingCDRReleasing(ctx, row, **cdr, claimName, s.Node); ok {
				switch {
				case err == nil:
					*cdr = nil
					return released, nil
				case errors.Is(err, meta.ErrInvalid):
					return released, s.Meta.PutRecording(ctx, row)
				}
				return released, err
			}
		}
		if cs, ok := s.Meta.(meta.CDRs); ok {
			err := cs.PutRecordingCDR(ctx, row, **cdr)
			if err == nil {
				*cdr = nil
				return false, nil
			}
			if errors.Is(err, meta.ErrInvalid) {
				// The CDR's fault (no channel id): the row alone, and
				// the CDR refused again, alone, by Finished.
				return false, s.Meta.PutRecording(ctx, row)
			}
			return false, err
		}
	}
	return false, s.Meta.PutRecording(ctx, row)
}

// putFinalNotes is putFinal with the notifications of the row's end,
// queued in the same transaction.
func (s *Service) putFinalNotes(ctx context.Context, fr meta.FinalRows, row meta.Recording, cdr **meta.CDR, notes []meta.OutboxItem) error {
	var c *meta.CDR
	if cdr != nil {
		c = *cdr
	}
	queued, err := fr.PutFinal(ctx, row, c, notes...)
	if c != nil && errors.Is(err, meta.ErrInvalid) {
		// The CDR's fault (no channel id): the row alone, and the CDR
		// refused again, alone, by Finished.
		c = nil
		queued, err = fr.PutFinal(ctx, row, nil, notes...)
	}
	if err != nil {
		return err
	}
	if c != nil {
		*cdr = nil
	}
	if queued && s.NoticesQueued != nil {
		s.NoticesQueued()
	}
	return nil
}

// measure repairs a file in place (recorder.Repair) and returns its size
// and duration (0 when the format does not tell).
func measure(path, format string) (int64, time.Duration, error) {
	var dur time.Duration
	if f, err := recorder.Lookup(format); err == nil {
		var rerr error
		if _, dur, rerr = recorder.Repair(path, f); rerr != nil && errors.Is(rerr, os.ErrNotExist) {
			return 0, 0, rerr
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	return fi.Size(), dur, nil
}

// DetailNoAudio is the StatusDetail of an absent recording.
const DetailNoAudio = "The recording received no audio"

// DetailEndedBeforeStart is the StatusDetail of an absent recording
// whose first row was written before it began (a row-first recording)
// and which ended before its file was opened: nothing was recorded and
// there is no file.
const DetailEndedBeforeStart = "The recording ended before it began: its call ended, or it was stopped, before its file was opened"

// DetailTooShort is the StatusDetail of a recording shorter than its
// starter keeps (Twilio's rule: under a second is absent, error 16101).
const DetailTooShort = "The recording is too short: %.3g s of audio, under %.3g s"

// DetailSilent is the StatusDetail of a recording that is absent because
// no frame of it was sound (Twilio's error 16102).
const DetailSilent = "The recording is silent: no frame reached the silence threshold"

// Twilio's error codes of an absent recording.
const (
	CodeTooShort = 16101 // no audio, or less than its starter keeps
	CodeSilent   = 16102 // silent throughout
)

// AbsentCode is Twilio's error code of an absent recording: 16102 when it
// is silent, 16101 (too short) otherwise.
func AbsentCode(rec meta.Recording) int {
	if rec.StatusDetail == DetailSilent {
		return CodeSilent
	}
	return CodeTooShort
}

// EndInterrupted is the EndReason of a recording whose node stopped (a
// crash, a kill) or was lost while it recorded: its row is settled from
// its file (Recovered, Reconcile, settleLost).
const EndInterrupted = "interrupted"

// Settled statuses' details, for rows that Reconcile settles.
const (
	DetailSettledFromFile = "The end of the recording was never catalogued; size and duration are taken from its file"
	DetailFileMissing     = "The end of the recording was never catalogued and its file is missing"
	DetailFileRemoved     = "The recording's file was removed outside tapedeck"
)

// Reconcile brings the catalog back to the truth on disk. It retries the
// writes of finished recordings that failed (e.g. while the database's
// disk was full), then settles this node's rows left in progress whose
// recording is no longer being made here (after a restart, every one):
// when the file is there it is repaired and measured and the row becomes
// "recovered" with the file's size and duration; when it is not,
// the row becomes "failed". Each settled row says so in its StatusDetail.
// It runs at start-up and then periodically (Run) until it succeeds.
func (s *Service) Reconcile(ctx context.Context) error {
	s.mu.Lock()
	var retry []Info
	for name, in := range s.pending {
		if !s.active[name] {
			retry = append(retry, in)
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, in := range retry {
		row, _, err := s.finished(ctx, in, nil, false)
		if row != nil && s.wantsJob(*row) {
			defer s.startUpload(*row, in.ContentType)
		}
		s.mu.Lock()
		if s.active[in.Name] {
			// A new recording of the name began meanwhile; its own end
			// will be catalogued.
			delete(s.pending, in.Name)
		} else {
			s.setPendingLocked(in, err)
			if _, pending := s.pending[in.Name]; !pending {
				s.endedLocked(in.Name)
			}
		}
		s.mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("recording %q: %w", in.Name, err))
		} else {
			s.log().Info("catalog: recording's end catalogued on retry", "name", in.Name, "status", in.Status)
		}
	}
	for {
		rows, err := s.Meta.InProgress(ctx, s.Node, 500)
		if err != nil {
			errs = append(errs, err)
			break
		}
		settled := 0
		for _, row := range rows {
			ok, err := s.settle(ctx, row)
			if err != nil {
				errs = append(errs, fmt.Errorf("recording %q: %w", row.Name, err))
			}
			if ok {
				settled++
			}
		}
		if settled == 0 || len(rows) < 500 {
			break
		}
	}
	if err := s.checkFiles(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.settleLost(ctx); err != nil {
		errs = append(errs, err)
	}
	if n, err := s.PurgeDeleted(ctx); err != nil {
		errs = append(errs, err)
	} else if n > 0 {
		s.log().Info("catalog: forgot deleted recordings past their retention", "rows", n)
	}
	return errors.Join(errs...)
}

// checkFiles marks this node's stored recordings whose local file is gone
// (deleted by hand, a lost disk) as missing, so that no listing shows them
// completed, and restarts the background job of those still lacking their
// checksum or upload. Each pass looks at most checkPerPass rows, going on
// where the last one stopped (and round again), so that a large catalog
// costs a bounded amount of work per reconcile.
func (s *Service) checkFiles(ctx context.Context) error {
	s.mu.Lock()
	after := s.checkAfter
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.checkAfter = after
		s.mu.Unlock()
	}()
	for seen := 0; seen < checkPerPass; {
		rows, err := s.Meta.Stored(ctx, s.Node, after, 500)
		if err != nil {
			return err
		}
		seen += len(rows)
		for _, row := range rows {
			prev := after
			after = row.Name
			if row.FilePath == "" || isRemote(row) || s.busy(row.Name) {
				continue
			}
			if _, err := os.Stat(s.abs(row.FilePath)); !errors.Is(err, os.ErrNotExist) {
				if err == nil {
					s.rescanUpload(row) // an upload a restart or an outage left undone
				}
				continue
			}
			s.mu.Lock()
			if s.active[row.Name] {
				s.mu.Unlock()
				continue
			}
			row.Status, row.StatusDetail, row.DateUpdated = meta.StatusMissing, DetailFileRemoved, s.now()
			err := s.Meta.PutRecording(ctx, row)
			s.mu.Unlock()
			if err != nil {
				after = prev // this row again next time
				return fmt.Errorf("recording %q: %w", row.Name, err)
			}
			s.log().Warn("catalog: a recording's file was removed outside tapedeck; marked missing", "name", row.Name, "path", row.FilePath)
		}
		if len(rows) < 500 {
			after = "" // the end: round again next time
			return nil
		}
	}
	return nil
}

// checkPerPass bounds the rows checkFiles looks at in one reconcile.
const checkPerPass = 20000

// settle settles one row left in progress unless its recording is live.
func (s *Service) settle(ctx context.Context, row meta.Recording) (bool, error) {
	if s.busy(row.Name) || isRemote(row) {
		return false, nil
	}
	p := s.abs(row.FilePath)
	size, dur, err := measure(p, row.Format)
	switch {
	case err == nil:
		row.Status, row.StatusDetail = meta.StatusRecovered, DetailSettledFromFile
		row.Size, row.SHA256, row.Duration = size, "", dur.Seconds()
	case errors.Is(err, os.ErrNotExist) || p == "":
		row.Status, row.StatusDetail = meta.StatusFailed, DetailFileMissing
		row.Size, row.SHA256, row.Duration = 0, "", 0
	default:
		return false, err
	}
	row.DateUpdated, row.EndReason = s.now(), EndInterrupted
	// Under s.mu, so that a recording of the name that starts now writes
	// its in-progress row after this one, not before.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active[row.Name] || s.pending[row.Name].Name != "" {
		return false, nil
	}
	if _, err := s.putFinal(ctx, row, nil, ""); err != nil {
		return false, err
	}
	s.log().Warn("catalog: settled a recording left in progress", "name", row.Name, "status", row.Status, "bytes", row.Size, "duration", row.Duration)
	return true, nil
}

func (s *Service) busy(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, pending := s.pending[name]
	return s.active[name] || pending
}

// Run reconciles every interval until ctx ends.
func (s *Service) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.reconcileContained(ctx, every)
		}
	}
}

// reconcileContained is one periodic Reconcile: a panic in it (a store's
// bug met by one row) is logged with its stack and counted
// (tapedeck_panics_total{site="catalog"}), and the next period tries again.
func (s *Service) reconcileContained(ctx context.Context, every time.Duration) {
	defer contain.Recover(s.log(), "catalog", nil)
	if err := s.Reconcile(ctx); err != nil && ctx.Err() == nil {
		s.log().Warn("catalog: reconcile incomplete; retrying later", "err", err, "every", every)
	}
}

// Recovered catalogs a file repaired at start-up.
func (s *Service) Recovered(ctx context.Context, in Info) error {
	in.Status = "recovered"
	if in.EndReason == "" {
		in.EndReason = EndInterrupted
	}
	row, err := s.Meta.RecordingByName(ctx, in.Name)
	if errors.Is(err, meta.ErrNotFound) {
		if _, err := s.Started(ctx, in); err != nil {
			return err
		}
	} else if err == nil && row.Node != "" && row.Node != s.Node {
		// The name is another node's recording now (this node was lost
		// and its name released meanwhile): not this file's row.
		s.log().Warn("catalog: a recovered file's name is another node's recording; the file is left uncatalogued",
			"name", in.Name, "path", in.Path, "node", row.Node)
		return nil
	}
	return s.Finished(ctx, in)
}

// Remove deletes a recording as Twilio does (the Recordings APIs' DELETE):
// its file goes at once, its row moves to the deleted recordings (status
// deleted, kept until PurgeDeleted forgets it, DeletedRetention after) with
// the audit row a, which names the recording and who asked.
func (s *Service) Remove(ctx context.Context, a meta.Audit) error {
	row, err := s.Meta.Recording(ctx, a.AccountSid, a.RecordingSid)
	if err != nil {
		return err
	}
	if err := s.removeFile(ctx, row); err != nil {
		return err
	}
	if a.Action == "" {
		a.Action = meta.AuditDelete
	}
	if a.At.IsZero() {
		a.At = s.now()
	}
	if err := s.Meta.SoftDeleteRecording(ctx, a.AccountSid, a.RecordingSid, a); err != nil {
		return err
	}
	s.log().Info("catalog: recording deleted", "sid", a.RecordingSid, "account", a.AccountSid, "by", a.Actor, "api", a.API, "remote", a.Remote)
	return nil
}

// DefaultDeletedRetention is how long a deleted recording's row is kept
// (Twilio keeps them 40 days).
const DefaultDeletedRetention = 40 * 24 * time.Hour

// PurgeDeleted forgets the deleted recordings older than DeletedRetention
// (default DefaultDeletedRetention; negative: never).
func (s *Service) PurgeDeleted(ctx context.Context) (int, error) {
	keep := s.DeletedRetention
	if keep == 0 {
		keep = DefaultDeletedRetention
	}
	if keep < 0 {
		return 0, nil
	}
	return s.Meta.PurgeDeleted(ctx, s.now().Add(-keep))
}

// DeleteByName deletes a stored recording (ARI's DELETE
// /recordings/stored) as Remove does: its file, through the blob store
// that holds it, goes at once; its row moves to the deleted recordings with
// the audit row by (whose AccountSid and RecordingSid are filled in here).
// ErrNotFound unless Stored finds it.
func (s *Service) DeleteByName(ctx context.Context, name string, by meta.Audit) error {
	row, err := s.Stored(ctx, name)
	if err != nil {
		return err
	}
	by.AccountSid, by.RecordingSid = row.AccountSid, row.Sid
	return s.Remove(ctx, by)
}

// Copy copies a stored recording (ARI's copy) to the name dst: the file is
// read through the blob store that holds it and written into the local
// store under dst plus the format's extension, and catalogued under a new
// Sid. ErrNotFound unless Stored finds src; meta.ErrConflict when dst is
// catalogued or its file exists.
func (s *Service) Copy(ctx context.Context, src, dst string) (meta.Recording, error) {
	row, err := s.Stored(ctx, src)
	if err != nil {
		return meta.Recording{}, err
	}
	f, err := recorder.Lookup(row.Format)
	if err != nil {
		return meta.Recording{}, fmt.Errorf("recording %q: %w", src, err)
	}
	local, err := s.local()
	if err != nil {
		return meta.Recording{}, err
	}
	key := dst + "." + f.Ext
	target, err := local.Path(key)
	if err != nil {
		return meta.Recording{}, err
	}
	if _, err := s.Meta.RecordingByName(ctx, dst); err == nil {
		return meta.Recording{}, fmt.Errorf("recording %q: %w", dst, meta.ErrConflict)
	} else if !errors.Is(err, meta.ErrNotFound) {
		return meta.Recording{}, err
	}
	if _, err := os.Lstat(target); err == nil {
		return meta.Recording{}, fmt.Errorf("recording %q: file exists: %w", dst, meta.ErrConflict)
	}
	in, err := s.Open(ctx, row, f.ContentType)
	if err != nil {
		return meta.Recording{}, err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return meta.Recording{}, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".copy-*")
	if err != nil {
		return meta.Recording{}, err
	}
	defer os.Remove(tmp.Name()) // gone once Put moved it
	_, err = io.Copy(tmp, in)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return meta.Recording{}, err
	}
	if _, err := local.Put(ctx, key, tmp.Name(), f.ContentType); err != nil {
		return meta.Recording{}, err
	}
	now := s.now()
	row.Sid = meta.NewRecordingSid()
	row.Name = dst
	row.FilePath = key
	row.S3URI = ""
	row.DateCreated, row.DateUpdated = now, now
	if err := s.Meta.PutRecording(ctx, row); err != nil {
		_ = local.Delete(ctx, key)
		return meta.Recording{}, err
	}
	return row, nil
}

// remotePrefix marks the FilePath of a row whose file is in object
// storage: "blob:" and the object's key. Every other FilePath is the key
// of the file in the local store (relative to Root).
const remotePrefix = "blob:"

func isRemote(row meta.Recording) bool { return strings.HasPrefix(row.FilePath, remotePrefix) }

// local is the local blob store, over Root.
func (s *Service) local() (*blob.Local, error) {
	s.localOnce.Do(func() { s.localStore, s.localErr = blob.NewLocal(s.Root) })
	return s.localStore, s.localErr
}

// locate returns the blob store that holds the row's file, and its key
// there: object storage for rows uploaded to it, else the local store.
func (s *Service) locate(row meta.Recording) (blob.Store, string, error) {
	if key, ok := strings.CutPrefix(row.FilePath, remotePrefix); ok {
		if s.Blob == nil {
			return nil, "", fmt.Errorf("recording %q is in object storage, which is not configured: %w", row.Name, ErrNotFound)
		}
		return s.Blob, key, nil
	}
	if row.FilePath == "" {
		return nil, "", fmt.Errorf("recording %q has no file: %w", row.Name, ErrNotFound)
	}
	l, err := s.local()
	if err != nil {
		return nil, "", err
	}
	return l, row.FilePath, nil
}

// onPeer reports whether the row's file is on another node's disk.
func (s *Service) onPeer(row meta.Recording) bool {
	return row.Node != "" && row.Node != s.Node && row.FilePath != "" && !isRemote(row)
}

// removeFile deletes the row's file (gone already is fine), and for a
// local file the marker a crash recovery left beside it. Another node's
// file is deleted by that node.
func (s *Service) removeFile(ctx context.Context, row meta.Recording) error {
	if s.onPeer(row) {
		if s.Peers == nil {
			return fmt.Errorf("recording %q is on node %s's disk: %w", row.Name, row.Node, ErrNotFound)
		}
		err := s.Peers.DeleteFile(ctx, row)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	st, key, err := s.locate(row)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := st.Delete(ctx, key); err != nil && !errors.Is(err, blob.ErrNotFound) {
		return err
	}
	if l, ok := st.(*blob.Local); ok {
		if p, err := l.Path(key); err == nil {
			_ = os.Remove(recorder.RecoveredMarker(p))
		}
	}
	return nil
}

// Media is an open recording file.
type Media struct {
	io.ReadSeekCloser
	Size        int64
	ModTime     time.Time
	ContentType string
}

// Open opens a recording's file for download, through the blob store that
// holds it (local or S3), or through the node that keeps it on its disk
// (Peers). A missing file is ErrNotFound; a node that does not answer,
// ErrUnavailable. A row read just before its upload ended names a local
// file that is gone by now: the row is read again, and the file opened
// where it names it now.
func (s *Service) Open(ctx context.Context, row meta.Recording, contentType string) (*Media, error) {
	m, err := s.open(ctx, row, contentType)
	if err == nil || !errors.Is(err, ErrNotFound) || isRemote(row) || row.Sid == "" || s.Meta == nil {
		return m, err
	}
	cur, err2 := s.Meta.RecordingBySid(ctx, row.Sid)
	if err2 != nil || cur.FilePath == row.FilePath || !isRemote(cur) {
		return nil, err
	}
	return s.open(ctx, cur, contentType)
}

func (s *Service) open(ctx context.Context, row meta.Recording, contentType string) (*Media, error) {
	if s.onPeer(row) {
		if s.Peers == nil {
			return nil, fmt.Errorf("recording %q is on node %s's disk: %w", row.Name, row.Node, ErrNotFound)
		}
		r, err := s.Peers.OpenFile(ctx, row)
		if err != nil {
			return nil, err
		}
		return &Media{ReadSeekCloser: r, Size: r.Size(), ModTime: r.ModTime(), ContentType: contentType}, nil
	}
	st, key, err := s.locate(row)
	if err != nil {
		return nil, err
	}
	r, err := st.Open(ctx, key)
	if err != nil {
		if errors.Is(err, blob.ErrNotFound) || errors.Is(err, blob.ErrInvalidKey) {
			return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
		}
		return nil, err
	}
	return &Media{ReadSeekCloser: r, Size: r.Size(), ModTime: r.ModTime(), ContentType: contentType}, nil
}

// LocalPath is the file of row on this node's disk ("" when it is in
// object storage or has none).
func (s *Service) LocalPath(row meta.Recording) string { return s.abs(row.FilePath) }

func (s *Service) rel(p string) string {
	if p == "" {
		return ""
	}
	if r, err := filepath.Rel(s.Root, p); err == nil && !strings.HasPrefix(r, "..") {
		return filepath.ToSlash(r)
	}
	return p
}

func (s *Service) abs(p string) string {
	if p == "" || strings.HasPrefix(p, remotePrefix) {
		return ""
	}
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(s.Root, filepath.FromSlash(p))
}

// openFile opens a file to hash it (tests count the files read).
var openFile = os.Open

func fileSum(path string) (int64, string, error) {
	f, err := openFile(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

func extOf(p string) string { return strings.TrimPrefix(filepath.Ext(p), ".") }

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// AccountSid resolves an account name ("" for the default account).
func (s *Service) AccountSid(ctx context.Context, name string) (string, error) {
	if name == "" {
		return s.defaultAccountSid(ctx)
	}
	acc, err := s.Meta.AccountByName(ctx, name)
	if err != nil {
		return "", fmt.Errorf("account %q: %w", name, err)
	}
	return acc.Sid, nil
}

// Stored returns the row of a stored recording by its ARI name: one that
// StoredNames lists (completed or recovered, or failed keeping a file).
// Unknown names, recordings in progress and those whose file went missing
// are ErrNotFound.
func (s *Service) Stored(ctx context.Context, name string) (meta.Recording, error) {
	row, err := s.Meta.RecordingByName(ctx, name)
	if err != nil {
		return meta.Recording{}, err
	}
	if !s.servable(row) {
		return meta.Recording{}, fmt.Errorf("recording %q (%s): %w", name, row.Status, ErrNotFound)
	}
	return row, nil
}

// servable reports whether a row is a stored recording: completed or
// recovered, or failed with a local file (one that failed before anything
// was written has none), on this node's disk or in object storage.
func (s *Service) servable(r meta.Recording) bool {
	if r.Node != "" && r.Node != s.Node && !isRemote(r) {
		// On another node's disk: served through it (Peers). A failed
		// one that kept a file was measured (Size) when it ended.
		if s.Peers == nil || r.Name == "" {
			return false
		}
		switch r.Status {
		case meta.StatusCompleted, meta.StatusRecovered, meta.StatusAbsent:
			return true
		case meta.StatusFailed:
			return r.FilePath != "" && r.Size > 0
		}
		return false
	}
	switch r.Status {
	case meta.StatusCompleted, meta.StatusRecovered, meta.StatusAbsent:
		return r.Name != ""
	case meta.StatusFailed:
		if r.Name == "" || r.FilePath == "" || isRemote(r) {
			return false
		}
		_, err := os.Stat(s.abs(r.FilePath))
		return err == nil
	}
	return false
}

// OpenByName opens a stored recording (Stored) by its ARI name, through
// the blob store that holds its file. It returns the media and the
// recording's format.
func (s *Service) OpenByName(ctx context.Context, name, contentType string) (*Media, string, error) {
	row, err := s.Stored(ctx, name)
	if err != nil {
		return nil, "", err
	}
	m, err := s.Open(ctx, row, contentType)
	if err != nil {
		return nil, "", err
	}
	return m, row.Format, nil
}

// StoredName is a stored recording as ARI lists it.
type StoredName struct {
	Name, Format string
	Recovered    bool // settled from its file after a crash
	Quality      *meta.Quality
}

// StoredNames lists the stored recordings this node can serve (with Peers,
// those on the other nodes' disks too), by name:
// ARI's /recordings/stored, one query of the catalog (the only index of
// stored recordings). Completed and recovered ones, and failed ones that
// kept a file; not those in progress or whose file went missing.
func (s *Service) StoredNames(ctx context.Context) ([]StoredName, error) {
	var out []StoredName
	after := ""
	for {
		node := s.Node
		if s.Peers != nil {
			node = "*" // the other nodes' files too, served through them
		}
		rows, err := s.Meta.Finished(ctx, node, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			after = r.Name
			if !s.servable(r) {
				continue
			}
			out = append(out, StoredName{Name: r.Name, Format: r.Format, Recovered: r.Status == meta.StatusRecovered, Quality: r.Quality})
		}
		if len(rows) < 1000 {
			return out, nil
		}
	}
}
