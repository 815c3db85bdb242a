package say

import (
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/tapedeck/tapedeck/internal/media"
)

// Gap is the silence between two prompts, in samples (50 ms at 8 kHz).
const Gap = 400

// DefaultLanguage is the only language with prompts; others fall back to it.
const DefaultLanguage = "en"

//go:embed prompts/*/*.sln
var promptFS embed.FS

type promptSet map[string][]int16

var (
	promptsOnce sync.Once
	prompts     map[string]promptSet // language -> prompt name -> PCM
	promptsErr  error
)

// loadPrompts decodes the embedded .sln files (8 kHz mono s16le) once.
func loadPrompts() (map[string]promptSet, error) {
	promptsOnce.Do(func() {
		prompts = map[string]promptSet{}
		langs, err := promptFS.ReadDir("prompts")
		if err != nil {
			promptsErr = err
			return
		}
		for _, l := range langs {
			dir := path.Join("prompts", l.Name())
			files, err := promptFS.ReadDir(dir)
			if err != nil {
				promptsErr = err
				return
			}
			set := promptSet{}
			for _, f := range files {
				name, ok := strings.CutSuffix(f.Name(), ".sln")
				if !ok {
					continue
				}
				b, err := promptFS.ReadFile(path.Join(dir, f.Name()))
				if err != nil {
					promptsErr = err
					return
				}
				pcm := make([]int16, len(b)/2)
				for i := range pcm {
					pcm[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
				}
				set[name] = pcm
			}
			prompts[l.Name()] = set
		}
	})
	return prompts, promptsErr
}

// Language returns the prompt language used for lang: the primary subtag of
// lang ("en_US" -> "en") if prompts exist for it, DefaultLanguage otherwise.
func Language(lang string) string {
	all, err := loadPrompts()
	if err != nil {
		return DefaultLanguage
	}
	l := strings.ToLower(lang)
	if i := strings.IndexAny(l, "_-"); i >= 0 {
		l = l[:i]
	}
	if _, ok := all[l]; ok {
		return l
	}
	return DefaultLanguage
}

// Prompts returns the names of the prompts available for lang, sorted.
func Prompts(lang string) []string {
	all, _ := loadPrompts()
	set := all[Language(lang)]
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type segment struct {
	pcm   []int16 // nil: gap of silence
	n     int64
	start int64
}

// Speech plays a sequence of prompts separated by Gap samples of silence.
// It implements media.Source, media.Seeker and media.Durationer and is not
// safe for concurrent use.
type Speech struct {
	words []string
	lang  string
	segs  []segment
	total int64

	pos int64
	seg int   // current segment
	off int64 // offset in the current segment
}

var (
	_ media.Source     = (*Speech)(nil)
	_ media.Seeker     = (*Speech)(nil)
	_ media.Durationer = (*Speech)(nil)
)

// errMissingPrompt reports a word with no prompt; with the generated prompt
// set this cannot happen for the words this package produces.
var errMissingPrompt = errors.New("say: missing prompt")

func newSpeech(words []string, lang string) (*Speech, error) {
	if len(words) == 0 {
		return nil, ErrEmpty
	}
	all, err := loadPrompts()
	if err != nil {
		return nil, fmt.Errorf("say: loading prompts: %w", err)
	}
	l := Language(lang)
	set := all[l]
	s := &Speech{words: words, lang: l, segs: make([]segment, 0, 2*len(words)-1)}
	for i, w := range words {
		pcm, ok := set[w]
		if !ok {
			return nil, fmt.Errorf("%w %q (%s)", errMissingPrompt, w, l)
		}
		if i > 0 {
			s.segs = append(s.segs, segment{n: Gap, start: s.total})
			s.total += Gap
		}
		s.segs = append(s.segs, segment{pcm: pcm, n: int64(len(pcm)), start: s.total})
		s.total += int64(len(pcm))
	}
	return s, nil
}

// Words returns the prompt names being spoken.
func (s *Speech) Words() []string { return append([]string(nil), s.words...) }

// Lang returns the prompt language in use.
func (s *Speech) Lang() string { return s.lang }

// Length returns the total length in samples (prompts plus gaps).
func (s *Speech) Length() int64 { return s.total }

// Position returns the current position in samples.
func (s *Speech) Position() int64 { return s.pos }

// Read copies the next samples into pcm; it never allocates. At the end it
// returns 0, io.EOF.
func (s *Speech) Read(pcm []int16) (int, error) {
	if len(pcm) == 0 {
		return 0, nil
	}
	n := 0
	for n < len(pcm) && s.seg < len(s.segs) {
		sg := &s.segs[s.seg]
		k := int64(len(pcm) - n)
		if rem := sg.n - s.off; k > rem {
			k = rem
		}
		if sg.pcm == nil {
			clear(pcm[n : n+int(k)])
		} else {
			copy(pcm[n:n+int(k)], sg.pcm[s.off:s.off+k])
		}
		n += int(k)
		s.off += k
		s.pos += k
		if s.off >= sg.n {
			s.seg++
			s.off = 0
		}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Seek repositions playback (offsets in samples, whence as in io.Seeker),
// clamping to [0, Length()]. Seek(0, io.SeekStart) restarts.
func (s *Speech) Seek(offset int64, whence int) (int64, error) {
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = s.pos
	case io.SeekEnd:
		base = s.total
	default:
		return s.pos, errors.New("say: invalid whence")
	}
	p := base + offset
	if offset > 0 && p < base {
		p = s.total
	}
	p = max(0, min(p, s.total))
	// Binary search for the last segment starting at or before p.
	lo, hi := 0, len(s.segs)
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if s.segs[mid].start <= p {
			lo = mid
		} else {
			hi = mid
		}
	}
	s.seg, s.off, s.pos = lo, p-s.segs[lo].start, p
	if s.off >= s.segs[lo].n { // at the very end
		s.seg, s.off = len(s.segs), 0
	}
	return p, nil
}
