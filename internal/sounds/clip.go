package sounds

import (
	"container/list"
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"github.com/tapedeck/tapedeck/internal/media"
)

// Media is what Index.Open returns: a finite, seekable 8 kHz mono source.
// Its dynamic type is *Clip.
type Media interface {
	media.Source
	media.Seeker
	media.Durationer
}

var (
	_ Media            = (*Clip)(nil)
	_ media.Source     = (*Clip)(nil)
	_ media.Seeker     = (*Clip)(nil)
	_ media.Durationer = (*Clip)(nil)
)

// Clip is a decoded in-memory clip of 8 kHz mono int16 samples with a read
// position. The samples are immutable and may be shared by several clips
// (Clone); the position is the clip's own, so one Clip serves one reader
// (not safe for concurrent use; different clones are).
type Clip struct {
	pcm []int16
	pos int64
}

// NewClip wraps samples (not copied; they must not be modified afterwards).
func NewClip(pcm []int16) *Clip {
	if pcm == nil {
		pcm = []int16{}
	}
	return &Clip{pcm: pcm}
}

// Read copies the next samples into pcm. At the end it returns 0, io.EOF.
// It does not allocate.
func (c *Clip) Read(pcm []int16) (int, error) {
	if c.pos >= int64(len(c.pcm)) {
		return 0, io.EOF
	}
	n := copy(pcm, c.pcm[c.pos:])
	c.pos += int64(n)
	return n, nil
}

var errWhence = errors.New("sounds: invalid whence")

// Seek sets the position in samples; whence as io.Seeker. The result is
// clamped to [0, Length()].
func (c *Clip) Seek(offset int64, whence int) (int64, error) {
	var p int64
	switch whence {
	case io.SeekStart:
		p = offset
	case io.SeekCurrent:
		p = c.pos + offset
	case io.SeekEnd:
		p = int64(len(c.pcm)) + offset
	default:
		return c.pos, errWhence
	}
	c.pos = min(max(p, 0), int64(len(c.pcm)))
	return c.pos, nil
}

// Length is the clip's length in samples.
func (c *Clip) Length() int64 { return int64(len(c.pcm)) }

// Position is the current read position in samples.
func (c *Clip) Position() int64 { return c.pos }

// Duration is the clip's length as a duration.
func (c *Clip) Duration() time.Duration {
	return time.Duration(len(c.pcm)) * time.Second / OutputRate
}

// Samples returns the clip's samples (shared; do not modify).
func (c *Clip) Samples() []int16 { return c.pcm }

// Clone returns a new clip over the same samples, positioned at the start.
func (c *Clip) Clone() *Clip { return &Clip{pcm: c.pcm} }

// clipCache keeps decoded files, bounded by their total number of samples,
// least recently used evicted first; entries are revalidated by file size
// and modification time at every open.
type clipCache struct {
	mu    sync.Mutex
	limit int64 // samples
	total int64
	lru   *list.List // of *cacheEntry, front = most recent
	byKey map[string]*list.Element
}

type cacheEntry struct {
	path  string
	size  int64
	mtime time.Time
	pcm   []int16
}

// defaultCacheSamples: 16 M samples = 32 MB = ~35 min of audio.
const defaultCacheSamples = 16 << 20

func newClipCache(limit int64) *clipCache {
	return &clipCache{limit: limit, lru: list.New(), byKey: map[string]*list.Element{}}
}

func (cc *clipCache) open(path string) (*Clip, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	cc.mu.Lock()
	if el := cc.byKey[path]; el != nil {
		e := el.Value.(*cacheEntry)
		if e.size == fi.Size() && e.mtime.Equal(fi.ModTime()) {
			cc.lru.MoveToFront(el)
			cc.mu.Unlock()
			return NewClip(e.pcm), nil
		}
		cc.remove(el)
	}
	cc.mu.Unlock()

	clip, err := DecodeFile(path)
	if err != nil {
		return nil, err
	}
	n := int64(len(clip.pcm))
	if n > cc.limit/4 {
		return clip, nil // too big to keep
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if el := cc.byKey[path]; el != nil {
		cc.remove(el)
	}
	cc.byKey[path] = cc.lru.PushFront(&cacheEntry{path: path, size: fi.Size(), mtime: fi.ModTime(), pcm: clip.pcm})
	cc.total += n
	for cc.total > cc.limit {
		cc.remove(cc.lru.Back())
	}
	return clip, nil
}

func (cc *clipCache) remove(el *list.Element) {
	e := cc.lru.Remove(el).(*cacheEntry)
	delete(cc.byKey, e.path)
	cc.total -= int64(len(e.pcm))
}
