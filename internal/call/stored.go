package call

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// StoredRecordingJSON is ARI's StoredRecording model. Recovered and Cause
// are tapedeck's: the file was repaired at start-up after a crash (or its
// catalog row was settled from it), and why the recording failed, as the
// catalog keeps it (GET of one stored recording).
type StoredRecordingJSON struct {
	Name      string `json:"name"`
	Format    string `json:"format"`
	Recovered bool   `json:"recovered,omitempty"`
	Cause     string `json:"cause,omitempty"`
	// Quality is tapedeck's extension: the recording's completeness, from
	// the catalog (absent when it was not measured).
	Quality *meta.QualityView `json:"quality,omitempty"`
}

// StoredRecording is a finished recording, as the catalog knows it.
type StoredRecording struct {
	StoredRecordingJSON
	ContentType string
}

// OpenStored opens the recording's bytes, through the catalog and the blob
// store that holds them (local disk or object storage).
func (m *Manager) OpenStored(ctx context.Context, rec *StoredRecording) (io.ReadSeekCloser, time.Time, error) {
	if m.opts.Catalog == nil {
		return nil, time.Time{}, errRecordingNotFound
	}
	md, _, err := m.opts.Catalog.OpenByName(ctx, rec.Name, rec.ContentType)
	if err != nil {
		return nil, time.Time{}, err
	}
	return md, md.ModTime, nil
}

var errRecordingNotFound = errf(ErrRecordingNotFound, "Recording not found")

// ListStored lists the stored recordings, sorted by name, one entry per
// name: a query of the catalog, the only index of stored recordings.
// Recordings still being written are left out. Without a catalog (tests of
// the call model alone) there are none.
func (m *Manager) ListStored() ([]StoredRecordingJSON, error) {
	out := []StoredRecordingJSON{}
	c := m.opts.Catalog
	if c == nil {
		return out, nil
	}
	ctx, cancel := catalogCtx()
	defer cancel()
	names, err := c.StoredNames(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing recordings: %w", err)
	}
	for _, n := range names {
		if !m.isLive(n.Name) {
			out = append(out, StoredRecordingJSON{Name: n.Name, Format: n.Format, Recovered: n.Recovered, Quality: n.Quality.View()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (m *Manager) isLive(name string) bool {
	m.recMu.Lock()
	defer m.recMu.Unlock()
	_, ok := m.live[name]
	return ok
}

// writing reports whether a live recording of that name has its file open.
func (m *Manager) writing(name string) bool {
	m.recMu.Lock()
	r := m.live[name]
	m.recMu.Unlock()
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return (r.writer != nil || r.opened != nil) && !r.finished // open, or being created
}

// storedErr maps the catalog's answers to the call model's kinds.
func storedErr(err error, what string) error {
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		return errRecordingNotFound
	case errors.Is(err, meta.ErrConflict):
		return errf(ErrConflict, "A recording with the same name already exists on the system")
	case errors.Is(err, catalog.ErrUnavailable):
		return errf(ErrUnavailable, "%s", err.Error())
	}
	return fmt.Errorf("%s: %w", what, err)
}

// GetStored finds a stored recording by name in the catalog, the only
// index of stored recordings. As in Asterisk, a live recording of the same
// name that has not yet replaced the previous take (e.g. re-recording with
// ifExists=overwrite while the beep plays) does not hide that take from
// GET or DELETE: its catalog row is replaced only once the new file opens.
func (m *Manager) GetStored(name string) (*StoredRecording, error) {
	if _, err := recorder.ResolveName(m.opts.RecordingsDir, name); err != nil {
		return nil, errf(ErrInvalidArgument, "Recording name invalid")
	}
	c := m.opts.Catalog
	if c == nil {
		return nil, errRecordingNotFound
	}
	ctx, cancel := catalogCtx()
	defer cancel()
	row, err := c.Stored(ctx, name)
	if err != nil {
		return nil, storedErr(err, "looking up recording")
	}
	f, err := recorder.Lookup(row.Format)
	if err != nil {
		return nil, errRecordingNotFound
	}
	rec := &StoredRecording{StoredRecordingJSON: StoredRecordingJSON{Name: name, Format: f.Name, Quality: row.Quality.View()},
		ContentType: f.ContentType}
	switch row.Status {
	case meta.StatusFailed:
		rec.Cause = row.StatusDetail
	case meta.StatusRecovered:
		rec.Recovered = true
	}
	return rec, nil
}

// DeleteStored removes a stored recording: its file, through the blob
// store that holds it, and its catalog row. A recording being written is
// not deleted (409, as Asterisk); one still queued has not opened its
// file, so an earlier take of the name can be.
func (m *Manager) DeleteStored(name string, by meta.Audit) error {
	if _, err := recorder.ResolveName(m.opts.RecordingsDir, name); err != nil {
		return errf(ErrInvalidArgument, "Recording name invalid")
	}
	if m.writing(name) {
		return errf(ErrConflict, "Recording is in progress")
	}
	c := m.opts.Catalog
	if c == nil {
		return errRecordingNotFound
	}
	ctx, cancel := catalogCtx()
	defer cancel()
	if err := c.DeleteByName(ctx, name, by); err != nil {
		if errors.Is(err, meta.ErrConflict) {
			// Being recorded again on the node that keeps the file.
			return errf(ErrConflict, "Recording is in progress")
		}
		return storedErr(err, "deleting recording")
	}
	return nil
}

// CopyStored copies a stored recording to a new name (subdirectories are
// created) in the local store; 409 if the destination is catalogued, its
// file exists, or it is being recorded.
func (m *Manager) CopyStored(src, dst string) (*StoredRecording, error) {
	// The destination is checked first: an invalid one is refused (400)
	// whatever the source.
	if _, err := recorder.ResolveName(m.opts.RecordingsDir, dst); err != nil {
		return nil, errf(ErrInvalidArgument, "Destination recording name invalid")
	}
	rec, err := m.GetStored(src)
	if err != nil {
		return nil, err
	}
	if m.isLive(dst) {
		return nil, errf(ErrConflict, "A recording with the same name already exists on the system")
	}
	ctx, cancel := catalogCtx()
	defer cancel()
	if _, err := m.opts.Catalog.Copy(ctx, src, dst); err != nil {
		return nil, storedErr(err, "copying recording")
	}
	return &StoredRecording{StoredRecordingJSON: StoredRecordingJSON{Name: dst, Format: rec.Format}, ContentType: rec.ContentType}, nil
}
