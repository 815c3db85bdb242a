package call

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/contain"
	"github.com/tapedeck/tapedeck/internal/gopool"
	"github.com/tapedeck/tapedeck/internal/media/audio"
	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// Catalog is what the call model tells the recordings catalog.
type Catalog interface {
	Started(ctx context.Context, in catalog.Info) (string, error)
	Finished(ctx context.Context, in catalog.Info) error
	// Paused lists a live recording as paused (on) or in progress again.
	Paused(ctx context.Context, name string, on bool, q *meta.Quality) error
	AccountSid(ctx context.Context, name string) (string, error)
	// The catalog is the only index of stored recordings, and reaches
	// their files through its blob stores (local disk, S3).

	// StoredNames lists the stored recordings (ARI's /recordings/stored).
	StoredNames(ctx context.Context) ([]catalog.StoredName, error)
	// Stored returns a stored recording's row by name (catalog.ErrNotFound
	// for unknown, in progress or missing).
	Stored(ctx context.Context, name string) (meta.Recording, error)
	// OpenByName opens a stored recording's file.
	OpenByName(ctx context.Context, name, contentType string) (*catalog.Media, string, error)
	// DeleteByName deletes a stored recording's file and row, leaving
	// the audit row by (who asked, through which API, from where).
	DeleteByName(ctx context.Context, name string, by meta.Audit) error
	// Copy copies a stored recording to a new name (meta.ErrConflict when
	// that is taken).
	Copy(ctx context.Context, src, dst string) (meta.Recording, error)
}

// NewCallSid makes a Restcomm-style call id: "CA" + 32 hex digits.
func NewCallSid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "CA" + hex.EncodeToString(b[:])
}

// SetCatalog sets the catalog (before use).
func (m *Manager) SetCatalog(c Catalog) { m.opts.Catalog = c }

func catalogCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// hangupCatalogTimeout bounds the catalog write of a recording ended by its
// channel's hangup.
const hangupCatalogTimeout = 2 * time.Second

// catalogInfo describes a recording for the catalog.
func (r *LiveRecording) catalogInfo(status string) catalog.Info {
	in := catalog.Info{Name: r.name, Path: r.path, Format: r.format.Name, ContentType: r.format.ContentType,
		Source: nonEmpty(r.source, "ari"), Started: r.startedAt, Status: status, Channels: 1,
		WaitUpload: !r.hangup.Load()}
	if r.stereo {
		in.Channels = 2
	}
	in.TenantUUID, in.Direction, in.Owners = r.opts.policy.tenant, r.opts.policy.direction, r.opts.policy.owners
	in.AbsentBelow = r.opts.AbsentBelow
	in.Callback = r.opts.Callback
	r.mu.Lock()
	in.EndReason = r.endReason
	in.Silent = r.silent
	in.Duration = time.Duration(r.written) * time.Second / audio.SampleRate
	in.Quality = r.qualityLocked()
	if status == "failed" {
		in.Cause = r.cause
		in.Stalled = r.stalled
	}
	r.mu.Unlock()
	var ch *Channel
	if r.ch != nil {
		ch = r.ch
	} else if r.br != nil {
		r.br.mu.Lock()
		if len(r.br.members) > 0 {
			ch = r.br.members[0].ch
		}
		r.br.mu.Unlock()
		if ch == nil {
			ch = r.firstMember
		}
	}
	if ch != nil {
		in.CallSid, in.AccountSid = ch.callSid, ch.accountSid
		ch.mu.Lock() // SetVar(CALLERID(num)) writes caller
		in.CallerNumber, in.CalledNumber = ch.caller.Number, ch.dialplan.Exten
		ch.mu.Unlock()
	}
	return in
}

func (r *LiveRecording) catalogStarted() error {
	c := r.m.opts.Catalog
	if c == nil {
		return nil
	}
	r.catMu.Lock()
	defer r.catMu.Unlock()
	if r.catFinished {
		return nil // ended before its start was written: the end wrote the row
	}
	ctx, cancel := catalogCtx()
	defer cancel()
	if !r.opts.rowFirst {
		// Nobody is answered after this row (only RecordingStarted
		// waits for it): it may share its commit with other calls'
		// rows (meta.WithCommitDelay).
		ctx = meta.WithCommitDelay(ctx)
	}
	_, err := c.Started(ctx, r.catalogInfo("in-progress"))
	if err != nil {
		r.m.log.Error("catalog: recording start not recorded", "name", r.name, "err", err)
		return err
	}
	r.rowWritten = true
	return nil
}

// catalogQueuedEnd is the catalog's part of the end of a recording that
// ended before it began (canceled, no file): it has no row, and none is
// written after, unless its first row was written before its start
// (firstRow: its starter was promised the row, and its notification goes
// with it), which is then written final: absent, nothing recorded, no
// file (catalog.Info.EndedBeforeStart), with its end reason.
func (r *LiveRecording) catalogQueuedEnd() {
	if r.m.opts.Catalog == nil {
		return
	}
	r.catMu.Lock()
	if !r.rowWritten {
		r.catFinished = true
		r.catMu.Unlock()
		return
	}
	r.catMu.Unlock()
	r.catalogFinal(string(meta.StatusAbsent), true)
}

// catalogPaused lists the recording as paused or in progress again.
func (r *LiveRecording) catalogPaused(on bool) {
	c := r.m.opts.Catalog
	if c == nil {
		return
	}
	r.catMu.Lock()
	defer r.catMu.Unlock()
	if r.catFinished {
		return
	}
	ctx, cancel := catalogCtx()
	defer cancel()
	if err := c.Paused(ctx, r.name, on, r.Quality()); err != nil {
		r.m.log.Error("catalog: recording pause not recorded", "name", r.name, "paused", on, "err", err)
	}
}

func (r *LiveRecording) catalogFinished(state RecordingState) {
	c := r.m.opts.Catalog
	if c == nil {
		return
	}
	status := "completed"
	switch state {
	case RecFailed:
		status = "failed"
	case RecCanceled:
		status = "canceled"
	}
	r.catalogFinal(status, false)
}

// catalogFinal writes the recording's final row with status (see
// catalogFinished and catalogQueuedEnd).
func (r *LiveRecording) catalogFinal(status string, endedBeforeStart bool) {
	c := r.m.opts.Catalog
	r.catMu.Lock()
	defer r.catMu.Unlock()
	r.catFinished = true
	ctx, cancel := catalogCtx()
	if r.hangup.Load() {
		// A hangup waits at most this for the database; a write that
		// does not make it is retried by the catalog's reconcile.
		cancel()
		ctx, cancel = context.WithTimeout(context.Background(), hangupCatalogTimeout)
		// Not meta.WithCommitDelay: RecordingFinished, StasisEnd and
		// ChannelDestroyed follow this row (unless the database holds
		// it past hangupCatalogWait), and finishing a recording never
		// delays them (issue 13). It commits at once, taking
		// any live rows waiting to share a commit with it.
	}
	defer cancel()
	in := r.catalogInfo(status)
	in.EndedBeforeStart = endedBeforeStart
	// The hangup's call record, if offered, goes with the final row (one
	// transaction; alone if the row cannot be written).
	in.CDR = r.takeCDR()
	var err error
	if fr, ok := c.(releasingCatalog); ok {
		// The name's claim (claimName) goes in the final row's statement
		// where the catalog can: one request to a shared database at the
		// call's end, not two; else releaseName drops it after.
		r.mu.Lock()
		in.ReleaseClaim = r.claimed
		r.mu.Unlock()
		var released bool
		released, err = fr.FinishedReleasing(ctx, in)
		if released {
			r.mu.Lock()
			r.claimed = false
			r.mu.Unlock()
		}
	} else {
		err = c.Finished(ctx, in)
	}
	if err != nil {
		r.m.log.Error("catalog: recording end not recorded", "name", r.name, "err", err)
	}
}

// stalledCatalog is a Catalog told when the file of a recording that ended
// stalled is closed at last (catalog.Service).
type stalledCatalog interface {
	StalledClosed(ctx context.Context, in catalog.Info) error
}

// awaitStalledClose waits, on a goroutine of its own, for the writer w of
// a recording that ended with a write not returned (its disk stalled) to
// close the file once the write returns, and then has the catalog give the
// failed row the file's size and the audio stored: its end could only take
// the size by stat and the audio known stored then.
func (r *LiveRecording) awaitStalledClose(w recorder.Writer) {
	sc, ok := r.m.opts.Catalog.(stalledCatalog)
	if !ok {
		return
	}
	in := catalog.Info{Name: r.name, Path: r.path, Format: r.format.Name, Started: r.startedAt}
	ch := int64(1)
	if r.stereo {
		ch = 2
	}
	go func() {
		defer contain.Recover(r.logger(), "stalled-recording-close", nil)
		<-r.q.closed
		in.Duration = time.Duration(recorder.Stored(w)/ch) * time.Second / audio.SampleRate
		ctx, cancel := catalogCtx()
		defer cancel()
		if err := sc.StalledClosed(ctx, in); err != nil {
			r.m.log.Error("catalog: a stalled recording's row not updated once its file was closed", "name", r.name, "err", err)
		}
	}()
}

// releasingCatalog is a Catalog that drops a recording's name claim with
// its final row (catalog.Service).
type releasingCatalog interface {
	FinishedReleasing(ctx context.Context, in catalog.Info) (bool, error)
}

// offerCDR offers the record of the call whose hangup is ending the
// recording to its catalog write (catalogFinished), unless that write is
// done.
func (r *LiveRecording) offerCDR(c *meta.CDR) {
	r.cdrMu.Lock()
	defer r.cdrMu.Unlock()
	if !r.cdrClosed {
		r.cdr = c
	}
}

// takeCDR hands the offered record, if any, to the final row's write
// (catalogFinal), and closes the offer.
func (r *LiveRecording) takeCDR() *meta.CDR {
	r.cdrMu.Lock()
	defer r.cdrMu.Unlock()
	c := r.cdr
	r.cdr, r.cdrClosed = nil, true
	if c != nil {
		r.cdrTaken = true
	}
	return c
}

// cdrHandedOver reports whether the catalog took the offered record; if it
// did not (the recording's end wrote nothing to the catalog, or its final
// write had not begun when the hangup stopped waiting for it) the offer is
// withdrawn, for the channel to write the record itself. It never waits
// for the catalog.
func (r *LiveRecording) cdrHandedOver() bool {
	r.cdrMu.Lock()
	defer r.cdrMu.Unlock()
	r.cdr, r.cdrClosed = nil, true
	return r.cdrTaken
}

// hangupCatalogWait bounds how long a hangup waits for its recording's
// catalog end: the final row's write and the release of the name's claim.
// hangupCatalogTimeout bounds that write only until the database takes it:
// a commit already under way runs to its end however long a stalled disk
// holds its write or sync, and a start row in flight holds catMu as long.
const hangupCatalogWait = hangupCatalogTimeout + time.Second

// stopCatalogWait bounds how long any other end (a stop asked for, a
// maximum duration, a failure) waits for its catalog end: the final row's
// write has catalogCtx's 30 s while it waits for the database, and no
// bound once a commit has taken it.
const stopCatalogWait = 31 * time.Second

// catalogEndBounded runs end (the catalog's part of a recording's end) and
// waits for it at most hangupCatalogWait for a hangup's end, else
// stopCatalogWait (Manager.catalogWait when set: tests). Past that the
// write goes on in the background, and RecordingFinished (and a hangup's
// StasisEnd and ChannelDestroyed, or a stop's answer) go out without it: a
// stalled database delays a recording's row, not the end of its call or
// its stop. The row is written once (when the write returns, or by the
// catalog's Reconcile if it fails); the call's record is either in it or
// written by the channel, never both.
//
// Until the write returns, the name stays taken (Manager.finishing): a new
// recording of it gets the 409 of one in progress, instead of a row that
// the late write would finish as its own.
func (r *LiveRecording) catalogEndBounded(end func()) {
	wait := stopCatalogWait
	if r.hangup.Load() {
		wait = hangupCatalogWait
	} else if r.m.catalogWait > 0 {
		wait = r.m.catalogWait
	}
	done := make(chan struct{})
	gopool.Go(func() {
		defer close(done)
		defer contain.Recover(r.logger(), "recording-catalog-end", nil)
		end()
	})
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		r.m.log.Error("catalog: the recording's final row is not written yet (the database is stalled); its end goes on without waiting for it",
			"name", r.name, "waited", wait)
	}
}

// endFinishing frees the name of r, held in m.finishing from its removal from
// the live recordings until its catalog end is done.
func (m *Manager) endFinishing(r *LiveRecording) {
	m.recMu.Lock()
	if m.finishing[r.name] == r {
		delete(m.finishing, r.name)
	}
	m.recMu.Unlock()
}

// nameBusyLocked is the conflict of a new recording named name with one
// in progress or one whose final row is still being written (m.recMu
// held), or nil.
func (m *Manager) nameBusyLocked(name string) error {
	if _, busy := m.live[name]; busy {
		return errf(ErrConflict, "Recording with the same name is already in progress")
	}
	if _, busy := m.finishing[name]; busy {
		return errf(ErrConflict, "Recording with the same name is still finishing: its catalog row is not written yet")
	}
	return nil
}
