// Package sounds finds, decodes and fetches the media played by `sound:` URIs:
// an index of Asterisk-style sound directories (the ARI /sounds resource),
// decoders of the usual Asterisk file formats into in-memory 8 kHz mono clips,
// and an HTTP fetcher with a disk cache for `sound:http(s)://...`.
//
// Layout of a sound directory (as Asterisk's):
//
//	<dir>/<lang>/<name>.<ext>          e.g. en/tt-monkeys.wav
//	<dir>/<lang>/<sub>/<name>.<ext>    e.g. en/digits/1.wav  (id "digits/1")
//	<dir>/<name>.<ext>                 no language: language "" (default)
//	<dir>/<sub>/<name>.<ext>           top-level dir that is not a language name
//
// A top-level directory is a language directory when its name looks like a
// language code: 2–3 letters, optionally followed by "_"-separated parts
// (en, fr_CA, en_US_f_Allison). A directory such as Debian's en_US_f_Allison
// (package asterisk-core-sounds-en-wav) also answers for its prefixes en_US
// and en, without any symlink; its sounds are reported as language "en"
// (what Asterisk reports through Debian's en -> en_US_f_Allison symlink).
package sounds

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

var (
	// ErrInvalidName: the sound id is empty, absolute, contains "..", a
	// backslash or a NUL, or is otherwise not a clean relative name.
	ErrInvalidName = errors.New("sounds: invalid sound name")
	// ErrNotFound: no sound file of that id in a decodable format.
	ErrNotFound = errors.New("sounds: sound not found")
	// ErrUnsupported: a file/content format this package cannot decode.
	ErrUnsupported = errors.New("sounds: unsupported media format")
	// ErrTooLarge: the file or download exceeds the size limit.
	ErrTooLarge = errors.New("sounds: media too large")
)

// Sound is the ARI Sound model.
type Sound struct {
	ID      string       `json:"id"`
	Text    string       `json:"text,omitempty"`
	Formats []FormatLang `json:"formats"`
}

// FormatLang is the ARI FormatLangPair model.
type FormatLang struct {
	Language string `json:"language"`
	Format   string `json:"format"`
}

// File is one sound file chosen by Resolve.
type File struct {
	Path     string // absolute path of the file
	Language string // reported language ("en" for en_US_f_Allison, "" for none)
	Dir      string // language directory name as on disk ("" for none)
	Format   string // Asterisk format name: wav, slin16, ulaw, ...
}

// Limits of a scan (protection against pathological trees).
const (
	maxScanFiles = 500000
	maxScanDepth = 16
)

// DefaultDirs returns the default search path: <dataDir>/sounds,
// /var/lib/asterisk/sounds and /usr/share/asterisk/sounds, keeping only those
// that exist as directories (earlier ones win on duplicates).
func DefaultDirs(dataDir string) []string {
	var cand []string
	if dataDir != "" {
		cand = append(cand, filepath.Join(dataDir, "sounds"))
	}
	cand = append(cand, "/var/lib/asterisk/sounds", "/usr/share/asterisk/sounds")
	var out []string
	for _, d := range cand {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			out = append(out, d)
		}
	}
	return out
}

type fileEntry struct {
	File
	aliases []string // languages this file answers for (Dir and its prefixes)
	dirIdx  int      // position of its sound dir in the search path
}

type soundEntry struct {
	id    string
	text  string
	files []fileEntry // in scan order: search-path order
}

// Index is an index of sound files over a search path of sound directories.
// It is scanned lazily on first use and again by Refresh; Get and Open
// rescan by themselves (at most every rescanInterval, 2 s) when asked for an
// unknown id, so files added later are found. Entries are immutable once
// scanned (a Refresh swaps the whole map), so readers never see a partial
// scan. Decoded clips are kept in a bounded LRU cache
// (validated by file size and modification time). Safe for concurrent use.
type Index struct {
	dirs []string

	mu       sync.RWMutex
	scanned  bool
	scanTime time.Time
	scanErr  error
	sounds   map[string]*soundEntry
	ids      []string // sorted

	cache *clipCache
}

// rescanInterval bounds the automatic rescans triggered by Open misses.
const rescanInterval = 2 * time.Second

// NewIndex returns an index over dirs (in priority order). Nothing is read
// until the first List/Get/Open/Refresh.
func NewIndex(dirs []string) *Index {
	return &Index{
		dirs:  append([]string(nil), dirs...),
		cache: newClipCache(defaultCacheSamples),
	}
}

// Dirs returns the search path.
func (ix *Index) Dirs() []string { return append([]string(nil), ix.dirs...) }

// Refresh rescans the sound directories now.
func (ix *Index) Refresh() {
	sounds, ids, err := scan(ix.dirs)
	ix.mu.Lock()
	ix.sounds, ix.ids, ix.scanErr = sounds, ids, err
	ix.scanned = true
	ix.scanTime = time.Now()
	ix.mu.Unlock()
}

// Err returns the first error of the last scan (an unreadable directory);
// missing directories are not errors.
func (ix *Index) Err() error {
	ix.ensure()
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.scanErr
}

func (ix *Index) ensure() {
	ix.mu.RLock()
	ok := ix.scanned
	ix.mu.RUnlock()
	if !ok {
		ix.mu.Lock()
		ok = ix.scanned
		ix.mu.Unlock()
		if !ok {
			ix.Refresh()
		}
	}
}

// List returns the sounds (sorted by id) having at least one file matching
// lang and format (empty = any). lang matches a file's language directory
// name or any of its prefixes (so "en", "en_US" and "en_US_f_Allison" all
// match Debian's en_US_f_Allison); format matches the Asterisk format name
// (wav, slin16, ulaw...) or a file extension (sln16, pcm...). Each Sound's
// Formats holds only the matching (language, format) pairs, deduplicated.
// The result is never nil.
func (ix *Index) List(lang, format string) []Sound {
	ix.ensure()
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := []Sound{}
	for _, id := range ix.ids {
		if s, ok := ix.sounds[id].sound(lang, format); ok {
			out = append(out, s)
		}
	}
	return out
}

// Get returns the sound with this id and all its (language, format) pairs.
func (ix *Index) Get(id string) (Sound, bool) {
	if ValidName(id) != nil {
		return Sound{}, false
	}
	e := ix.lookup(id)
	if e == nil {
		return Sound{}, false
	}
	return e.sound("", "")
}

// lookup finds an id, rescanning once (at most every rescanInterval) when it
// is unknown so that files added since the last scan are found.
func (ix *Index) lookup(id string) *soundEntry {
	ix.ensure()
	ix.mu.RLock()
	e := ix.sounds[id]
	stale := time.Since(ix.scanTime) > rescanInterval
	ix.mu.RUnlock()
	if e == nil && stale {
		ix.Refresh()
		ix.mu.RLock()
		e = ix.sounds[id]
		ix.mu.RUnlock()
	}
	return e
}

func (e *soundEntry) sound(lang, format string) (Sound, bool) {
	s := Sound{ID: e.id, Text: e.text, Formats: []FormatLang{}}
	seen := map[FormatLang]bool{}
	for _, f := range e.files {
		if lang != "" && !f.answers(lang) {
			continue
		}
		if format != "" && !formatMatches(f.Format, format) {
			continue
		}
		p := FormatLang{Language: f.Language, Format: f.Format}
		if !seen[p] {
			seen[p] = true
			s.Formats = append(s.Formats, p)
		}
	}
	if len(s.Formats) == 0 {
		return Sound{}, false
	}
	sort.Slice(s.Formats, func(i, j int) bool {
		a, b := s.Formats[i], s.Formats[j]
		if a.Language != b.Language {
			return a.Language < b.Language
		}
		return a.Format < b.Format
	})
	return s, true
}

func (f *fileEntry) answers(lang string) bool {
	for _, a := range f.aliases {
		if strings.EqualFold(a, lang) {
			return true
		}
	}
	return false
}

// Resolve picks the file Open would play first: the language is chosen in
// the order requested lang (a directory of exactly that name, then one it is
// a prefix of), its base language ("en" of "en_US"), "en", no language (""),
// then any language; within it the best format (wav, slin, higher-rate PCM,
// ulaw, alaw); then the earliest sound directory.
func (ix *Index) Resolve(id, lang string) (File, error) {
	c, err := ix.candidates(id, lang)
	if err != nil {
		return File{}, err
	}
	return c[0].File, nil
}

// Open decodes the sound id in the best language/format (see Resolve) into a
// fresh clip positioned at its start. If the preferred file cannot be decoded
// the next candidate is tried. Errors: ErrInvalidName, ErrNotFound, or the
// decoding error of the preferred file.
func (ix *Index) Open(id, lang string) (Media, error) {
	c, err := ix.candidates(id, lang)
	if err != nil {
		return nil, err
	}
	var first error
	for _, f := range c {
		clip, err := ix.cache.open(f.Path)
		if err == nil {
			return clip, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

func (ix *Index) candidates(id, lang string) ([]fileEntry, error) {
	if err := ValidName(id); err != nil {
		return nil, err
	}
	e := ix.lookup(id)
	if e == nil {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	type ranked struct {
		f                 fileEntry
		tier, fmtr, order int
	}
	rs := make([]ranked, 0, len(e.files))
	for i, f := range e.files {
		rs = append(rs, ranked{f, langTier(&f, lang), formatRank(f.Format), i})
	}
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.tier != b.tier {
			return a.tier < b.tier
		}
		if a.fmtr != b.fmtr {
			return a.fmtr < b.fmtr
		}
		return a.order < b.order
	})
	out := make([]fileEntry, len(rs))
	for i, r := range rs {
		out[i] = r.f
	}
	return out, nil
}

// langTier ranks a file for a requested language (lower is better).
func langTier(f *fileEntry, lang string) int {
	tier := func(base int, l string) int {
		if l == "" {
			return -1
		}
		if strings.EqualFold(f.Dir, l) {
			return base
		}
		if f.answers(l) {
			return base + 1
		}
		return -1
	}
	if lang != "" {
		if t := tier(0, lang); t >= 0 {
			return t
		}
		if b, _, ok := strings.Cut(lang, "_"); ok {
			if t := tier(2, b); t >= 0 {
				return t
			}
		}
	}
	if t := tier(4, "en"); t >= 0 {
		return t
	}
	if f.Dir == "" {
		return 6
	}
	return 7
}

// ValidName checks a sound id: a clean relative slash-separated name without
// "..", backslashes, NUL or other control characters.
func ValidName(id string) error {
	if id == "" || len(id) > 1024 || strings.Contains(id, "..") || strings.HasPrefix(id, "/") ||
		strings.ContainsRune(id, '\\') || filepath.IsAbs(id) || path.Clean(id) != id {
		return fmt.Errorf("%w: %q", ErrInvalidName, id)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %q", ErrInvalidName, id)
		}
	}
	return nil
}

// langAliases returns the languages a top-level directory answers for, or
// nil if its name is not a language code: "en_US_f_Allison" -> [en_US_f_Allison
// en_US en]; "fr" -> [fr].
func langAliases(name string) []string {
	parts := strings.Split(name, "_")
	if len(parts[0]) < 2 || len(parts[0]) > 3 {
		return nil
	}
	for _, c := range parts[0] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return nil
		}
	}
	for _, p := range parts[1:] {
		if p == "" {
			return nil
		}
		for _, c := range p {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return nil
			}
		}
	}
	al := []string{name}
	if len(parts) > 2 {
		al = append(al, parts[0]+"_"+parts[1])
	}
	if len(parts) > 1 {
		al = append(al, parts[0])
	}
	return al
}

// reportedLang is the language shown in FormatLang for a language directory:
// the name itself for "xx" and "xx_YY", the base "xx" for voice-specific
// names such as en_US_f_Allison.
func reportedLang(dir string) string {
	parts := strings.Split(dir, "_")
	if len(parts) > 2 {
		return parts[0]
	}
	return dir
}

// scan walks the search path.
func scan(dirs []string) (map[string]*soundEntry, []string, error) {
	s := &scanner{sounds: map[string]*soundEntry{}}
	for i, d := range dirs {
		s.dirIdx = i
		root, err := filepath.EvalSymlinks(d)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				s.noteErr(err)
			}
			continue
		}
		root, _ = filepath.Abs(root)
		ents, err := os.ReadDir(root)
		if err != nil {
			s.noteErr(err)
			continue
		}
		for _, de := range ents {
			name := de.Name()
			full := filepath.Join(root, name)
			isDir := de.IsDir()
			if de.Type()&fs.ModeSymlink != 0 {
				fi, err := os.Stat(full)
				if err != nil {
					continue
				}
				isDir = fi.IsDir()
				if !isDir && !fi.Mode().IsRegular() {
					continue
				}
			} else if !isDir && !de.Type().IsRegular() {
				continue
			}
			if !isDir {
				s.addFile(full, name, "", nil)
				continue
			}
			if al := langAliases(name); al != nil {
				dirPath, err := filepath.EvalSymlinks(full)
				if err != nil {
					continue
				}
				s.walk(dirPath, "", name, al, 0)
				s.readTexts(dirPath)
			} else {
				s.walk(full, name, "", nil, 1)
			}
		}
	}
	ids := make([]string, 0, len(s.sounds))
	for id := range s.sounds {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return s.sounds, ids, s.err
}

type scanner struct {
	sounds map[string]*soundEntry
	dirIdx int
	nfiles int
	err    error
}

func (s *scanner) noteErr(err error) {
	if s.err == nil {
		s.err = err
	}
}

// walk indexes dir, whose files get ids prefixed by prefix ("" or "a/b").
// Symlinked files are followed, symlinked directories are not (no loops).
func (s *scanner) walk(dir, prefix, lang string, aliases []string, depth int) {
	if depth > maxScanDepth {
		return
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		s.noteErr(err)
		return
	}
	for _, de := range ents {
		name := de.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		full := filepath.Join(dir, name)
		rel := name
		if prefix != "" {
			rel = prefix + "/" + name
		}
		switch t := de.Type(); {
		case t.IsDir():
			s.walk(full, rel, lang, aliases, depth+1)
		case t.IsRegular():
			s.addFile(full, rel, lang, aliases)
		case t&fs.ModeSymlink != 0:
			if fi, err := os.Stat(full); err == nil && fi.Mode().IsRegular() {
				s.addFile(full, rel, lang, aliases)
			}
		}
	}
}

func (s *scanner) addFile(full, rel, lang string, aliases []string) {
	dot := strings.LastIndexByte(rel, '.')
	if dot <= 0 || strings.HasSuffix(rel[:dot], "/") {
		return
	}
	f, ok := formatByExt(rel[dot+1:])
	if !ok {
		return
	}
	id := rel[:dot]
	if ValidName(id) != nil {
		return
	}
	if s.nfiles >= maxScanFiles {
		s.noteErr(fmt.Errorf("sounds: more than %d files, rest ignored", maxScanFiles))
		return
	}
	s.nfiles++
	e := s.sounds[id]
	if e == nil {
		e = &soundEntry{id: id}
		s.sounds[id] = e
	}
	if aliases == nil {
		aliases = []string{""}
	}
	e.files = append(e.files, fileEntry{
		File:    File{Path: full, Language: reportedLang(lang), Dir: lang, Format: f.name},
		aliases: aliases,
		dirIdx:  s.dirIdx,
	})
}

// readTexts reads the sound descriptions shipped by Asterisk's sound
// tarballs (<lang>/core-sounds-<lang>.txt, extra-sounds-*.txt: lines
// "name: description", ';' comments) and fills Sound.Text.
func (s *scanner) readTexts(dir string) {
	matches, _ := filepath.Glob(filepath.Join(dir, "*-sounds-*.txt"))
	for _, m := range matches {
		fh, err := os.Open(m)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || line[0] == ';' || line[0] == '#' {
				continue
			}
			name, text, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			name, text = strings.TrimSpace(name), strings.TrimSpace(text)
			if e := s.sounds[name]; e != nil && e.text == "" {
				e.text = text
			}
		}
		fh.Close()
	}
}
