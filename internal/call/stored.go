package call

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tapedeck/tapedeck/internal/recorder"
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
}

// StoredRecording is a finished recording file.
type StoredRecording struct {
	StoredRecordingJSON
	Path        string // local file; empty when the file lives in object storage
	ContentType string
}

// Open opens the recording's bytes (local file or, through the catalog,
// object storage).
func (m *Manager) OpenStored(ctx context.Context, rec *StoredRecording) (io.ReadSeekCloser, time.Time, error) {
	if rec.Path != "" {
		f, err := os.Open(rec.Path)
		if err != nil {
			return nil, time.Time{}, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, time.Time{}, err
		}
		return f, st.ModTime(), nil
	}
	if m.opts.Catalog == nil {
		return nil, time.Time{}, errRecordingNotFound
	}
	md, _, err := m.opts.Catalog.OpenByName(ctx, rec.Name, rec.ContentType)
	if err != nil {
		return nil, time.Time{}, err
	}
	return md, md.ModTime, nil
}

var errRecordingNotFound = errf(404, "Recording not found")

// ListStored lists the stored recordings, sorted by name, one entry per
// name: a query of the catalog, the only index of stored recordings.
// Recordings still being written are left out. Without a catalog (tests of
// the call model alone) it walks the recordings root.
func (m *Manager) ListStored() ([]StoredRecordingJSON, error) {
	if c := m.opts.Catalog; c != nil {
		ctx, cancel := catalogCtx()
		defer cancel()
		names, err := c.StoredNames(ctx)
		if err != nil {
			return nil, errf(500, "listing recordings: %v", err)
		}
		out := []StoredRecordingJSON{}
		for _, n := range names {
			if !m.isLive(n.Name) {
				out = append(out, StoredRecordingJSON{Name: n.Name, Format: n.Format, Recovered: n.Recovered})
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		return out, nil
	}
	return m.walkStored()
}

// walkStored lists the recording files under the root.
func (m *Manager) walkStored() ([]StoredRecordingJSON, error) {
	root := m.opts.RecordingsDir
	seen := map[string]bool{}
	var out []StoredRecordingJSON
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && path != root {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		name, f, ok := m.recordingName(path)
		if !ok || seen[name] || m.isLive(name) {
			return nil
		}
		seen[name] = true
		out = append(out, StoredRecordingJSON{Name: name, Format: f.Name, Recovered: recorder.IsRecovered(path)})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if out == nil {
		out = []StoredRecordingJSON{}
	}
	return out, err
}

func (m *Manager) isLive(name string) bool {
	m.recMu.Lock()
	defer m.recMu.Unlock()
	_, ok := m.live[name]
	return ok
}

// catalogState adds what the catalog knows of a stored recording: that it
// failed and why, or that its row was settled from the file.
func (m *Manager) catalogState(rec *StoredRecording) {
	c := m.opts.Catalog
	if c == nil || m.isLive(rec.Name) {
		return
	}
	ctx, cancel := catalogCtx()
	defer cancel()
	status, detail, err := c.Lookup(ctx, rec.Name)
	if err != nil {
		return
	}
	switch status {
	case "failed":
		rec.Cause = detail
	case "recovered":
		rec.Recovered = true
	}
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

// GetStored finds a stored recording by name.
func (m *Manager) GetStored(name string) (*StoredRecording, error) {
	base, err := recorder.ResolveName(m.opts.RecordingsDir, name)
	if err != nil {
		return nil, errf(400, "Recording name invalid")
	}
	// As in Asterisk, a stored recording is its file: a live recording of
	// the same name (e.g. re-recording with ifExists=overwrite while the
	// beep plays) does not hide the previous file from GET or DELETE.
	for _, f := range m.storedFormats(base) {
		p := base + "." + f.Ext
		if st, err := os.Lstat(p); err != nil || !st.Mode().IsRegular() {
			continue
		}
		rec := &StoredRecording{
			StoredRecordingJSON: StoredRecordingJSON{Name: name, Format: f.Name, Recovered: recorder.IsRecovered(p)},
			Path:                p,
			ContentType:         f.ContentType,
		}
		m.catalogState(rec)
		return rec, nil
	}
	// Not on disk: the catalog may hold it in object storage.
	if c := m.opts.Catalog; c != nil {
		ctx, cancel := catalogCtx()
		defer cancel()
		if md, format, err := c.OpenByName(ctx, name, ""); err == nil {
			md.Close()
			f, err := recorder.Lookup(format)
			if err == nil {
				return &StoredRecording{StoredRecordingJSON: StoredRecordingJSON{Name: name, Format: f.Name}, ContentType: f.ContentType}, nil
			}
		}
	}
	return nil, errRecordingNotFound
}

// DeleteStored removes a stored recording (every format of the name). A
// recording being written is not deleted (409, as Asterisk); one still
// queued has not opened its file, so an earlier take of the name can be.
func (m *Manager) DeleteStored(name string) error {
	rec, err := m.GetStored(name)
	if err != nil {
		return err
	}
	if m.writing(name) {
		return errf(409, "Recording is in progress")
	}
	if rec.Path == "" {
		// Kept only in object storage: the catalog removes object and row.
		ctx, cancel := catalogCtx()
		defer cancel()
		if err := m.opts.Catalog.DeletedByName(ctx, name); err != nil {
			return errf(500, "deleting recording: %v", err)
		}
		return nil
	}
	base := strings.TrimSuffix(rec.Path, filepath.Ext(rec.Path))
	for _, f := range m.storedFormats(base) {
		p := base + "." + f.Ext
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return errf(500, "deleting recording: %v", err)
		}
		os.Remove(filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".recovered"))
	}
	if c := m.opts.Catalog; c != nil {
		ctx, cancel := catalogCtx()
		defer cancel()
		if err := c.DeletedByName(ctx, name); err != nil {
			m.log.Error("catalog: deleting the row of a deleted recording", "name", name, "err", err)
		}
	}
	return nil
}

// CopyStored copies a stored recording to a new name (subdirectories are
// created); 409 if the destination exists in any format.
func (m *Manager) CopyStored(src, dst string) (*StoredRecording, error) {
	rec, err := m.GetStored(src)
	if err != nil {
		return nil, err
	}
	base, err := recorder.ResolveName(m.opts.RecordingsDir, dst)
	if err != nil {
		return nil, errf(400, "Destination recording name invalid")
	}
	if len(m.storedFormats(base)) > 0 || m.isLive(dst) {
		return nil, errf(409, "A recording with the same name already exists on the system")
	}
	f, _ := recorder.Lookup(rec.Format)
	target := base + "." + f.Ext
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return nil, errf(500, "creating directory: %v", err)
	}
	if err := m.copyStored(rec, target); err != nil {
		os.Remove(target)
		return nil, errf(500, "copying recording: %v", err)
	}
	if c := m.opts.Catalog; c != nil {
		ctx, cancel := catalogCtx()
		defer cancel()
		if err := c.Copied(ctx, src, dst, target); err != nil {
			m.log.Error("catalog: cataloguing a copied recording", "name", dst, "err", err)
		}
	}
	return &StoredRecording{StoredRecordingJSON: StoredRecordingJSON{Name: dst, Format: rec.Format}, Path: target, ContentType: rec.ContentType}, nil
}

// copyStored copies a stored recording (local or in object storage) to a
// new local file.
func (m *Manager) copyStored(rec *StoredRecording, dst string) error {
	if rec.Path != "" {
		return copyFile(rec.Path, dst)
	}
	ctx, cancel := catalogCtx()
	defer cancel()
	in, _, err := m.OpenStored(ctx, rec)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeNew(dst, in)
}

func writeNew(dst string, in io.Reader) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	return out.Close()
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	return out.Close()
}
