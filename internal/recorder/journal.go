package recorder

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Journal lists the recordings in progress under one recordings root for
// one node, in one append-only file, in place of a marker file per
// recording: starting a recording appends a line and finishing it appends
// another (one write each, on a descriptor kept open), where a marker cost
// creating a file, writing it, closing it and unlinking it (directory and
// inode updates on every recording). After a crash, OpenJournal finds the
// recordings begun and never finished, and Recover repairs them exactly as
// the markers' Recover does. The file is RootDir/.inprogress-NODE.journal;
// each node of a shared recordings directory has its own, so a node's
// restart never touches another live node's files.
//
// Lines: "+ FORMAT PATH" (begun) and "- PATH" (finished), PATH relative to
// the root and quoted (strconv.Quote). When the file grows past
// journalCompactAt it is rewritten with only the open recordings (a
// temporary file renamed over it: a crash meanwhile leaves the old or the
// new one, both correct).
type Journal struct {
	root string
	path string

	mu    sync.Mutex
	f     *os.File
	size  int64
	open  map[string]string // relative path -> format name, this run's
	found map[string]string // left open by the previous run (Recover)
}

// journalCompactAt is the size past which the journal is rewritten with
// only the open recordings (about 2,000 finished recordings of short
// names).
const journalCompactAt = 256 << 10

// JournalPath is the journal file of node under root.
func JournalPath(root, node string) string {
	return filepath.Join(root, ".inprogress-"+journalNode(node)+".journal")
}

func journalNode(node string) string {
	if node == "" {
		return "node"
	}
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 || r < ' ' {
			return '_'
		}
		return r
	}, node)
}

// OpenJournal opens (creating it if needed) node's journal under root and
// reads what a previous run left open, for Recover. Call it at start-up,
// before any recording under root begins.
func OpenJournal(root, node string) (*Journal, error) {
	j := &Journal{root: root, path: JournalPath(root, node), open: map[string]string{}}
	found, err := readJournal(j.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("recorder: journal %s: %w", j.path, err)
	}
	j.found = found
	if err := j.rewriteLocked(found); err != nil {
		return nil, err
	}
	return j, nil
}

// readJournal replays a journal: the recordings begun and not finished.
func readJournal(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	open := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "+ "):
			format, q, ok := strings.Cut(line[2:], " ")
			if !ok {
				continue
			}
			if rel, err := strconv.Unquote(q); err == nil {
				open[rel] = format
			}
		case strings.HasPrefix(line, "- "):
			if rel, err := strconv.Unquote(line[2:]); err == nil {
				delete(open, rel)
			}
		}
		// Anything else (a line torn by a crash) is skipped.
	}
	return open, sc.Err()
}

// rewriteLocked replaces the journal with one listing open and reopens it
// for appending.
func (j *Journal) rewriteLocked(open map[string]string) error {
	var b strings.Builder
	for rel, format := range open {
		b.WriteString(beginLine(format, rel))
	}
	tmp := j.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("recorder: journal: %w", err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("recorder: journal: %w", err)
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("recorder: journal: %w", err)
	}
	if j.f != nil {
		j.f.Close()
	}
	j.f, j.size = f, int64(b.Len())
	return nil
}

func beginLine(format, rel string) string { return "+ " + format + " " + strconv.Quote(rel) + "\n" }
func endLine(rel string) string           { return "- " + strconv.Quote(rel) + "\n" }

func (j *Journal) rel(path string) (string, error) {
	rel, err := filepath.Rel(j.root, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("recorder: %s is not under the journal's root %s", path, j.root)
	}
	return filepath.ToSlash(rel), nil
}

// covers reports whether path is under the journal's root.
func (j *Journal) covers(path string) bool {
	_, err := j.rel(path)
	return err == nil
}

func (j *Journal) appendLocked(s string) error {
	if j.f == nil {
		// Closed (the server stopped) while a recording was still
		// finishing: its line still belongs in the file.
		f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		n, err := f.WriteString(s)
		j.size += int64(n)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	n, err := j.f.WriteString(s)
	j.size += int64(n)
	return err
}

// begin records that path is being recorded in format.
func (j *Journal) begin(path, format string) error {
	rel, err := j.rel(path)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.appendLocked(beginLine(format, rel)); err != nil {
		return err
	}
	j.open[rel] = format
	return nil
}

// end records that path is finished (closed, or failed and closed).
func (j *Journal) end(path string) error {
	rel, err := j.rel(path)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.open, rel)
	if j.f != nil && j.size+int64(len(rel))+8 > journalCompactAt {
		return j.rewriteLocked(j.open)
	}
	return j.appendLocked(endLine(rel))
}

// Recover repairs the recordings that the previous run left open (see
// OpenJournal), as the markers' Recover does, leaves a recovered marker
// beside each (IsRecovered) and reports them. A recording whose file is
// gone is forgotten. Per-file failures are joined into the error; the
// others are still repaired. The journal then lists none of them.
func (j *Journal) Recover() ([]Recovered, error) {
	j.mu.Lock()
	found := j.found
	j.found = nil
	j.mu.Unlock()
	var out []Recovered
	var errs []error
	for rel, name := range found {
		path := filepath.Join(j.root, filepath.FromSlash(rel))
		f, ok := byName(name)
		if !ok {
			f = formatOfPath(path)
		}
		rec, ok, err := repairFile(j.root, path, f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			out = append(out, rec)
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(found) > 0 {
		if err := j.rewriteLocked(j.open); err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// Close closes the journal's file. Recordings still open stay listed;
// those that finish later still write their line (opening the file for
// it).
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

// InJournal reports whether node's journal under root lists path as being
// recorded: another node's recording in a shared directory, whose node was
// lost (see EndInJournal).
func InJournal(root, node, path string) bool {
	j := &Journal{root: root}
	rel, err := j.rel(path)
	if err != nil {
		return false
	}
	open, err := readJournal(JournalPath(root, node))
	if err != nil {
		return false
	}
	_, ok := open[rel]
	return ok
}

// EndInJournal appends to node's journal under root that path is finished:
// a node that took over a lost node's recording from a shared directory
// says so, and the lost node's Recover, if it comes back, leaves the file
// alone.
func EndInJournal(root, node, path string) error {
	j := &Journal{root: root}
	rel, err := j.rel(path)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(JournalPath(root, node), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(endLine(rel))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// WithJournal makes Create list the recording in j instead of creating an
// in-progress marker file beside it (a path outside j's root still gets a
// marker): Close, and a failed Create, take it out again.
func WithJournal(j *Journal) Option {
	return func(o *options) error {
		o.journal = j
		return nil
	}
}

func formatOfPath(path string) Format {
	ext := strings.TrimPrefix(filepath.Ext(path), ".")
	if f, ok := ByExt(filepath.Ext(path)); ok {
		return f
	}
	return Format{Name: ext, Ext: ext}
}
