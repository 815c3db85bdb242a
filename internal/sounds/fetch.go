package sounds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tapedeck/tapedeck/internal/netguard"
)

// Fetcher downloads the media of `sound:http(s)://...` URIs.
//
//   - Only http and https URLs; anything else fails with ErrBadURL.
//   - Only where the allow policy lets it connect (netguard): public
//     addresses, plus the hosts and networks the policy lists. The check is
//     made on the resolved address of every connection, redirects included
//     (at most netguard.MaxRedirects); URLs with credentials are refused,
//     and no proxy is used. Refusals wrap netguard.ErrRefused, and the
//     refused server sees no request.
//   - Size-limited: a Content-Length over the limit is refused before the
//     body is read, a body growing past it is aborted (ErrTooLarge).
//   - Content: audio/wav, audio/x-wav, audio/wave, audio/vnd.wave → WAV
//     (any of the encodings Decode handles); audio/basic, audio/pcmu,
//     audio/x-mulaw → raw μ-law 8 kHz; audio/pcma, audio/x-alaw-basic → raw
//     A-law; audio/L16 (;rate=;channels=) → raw big-endian 16-bit. Other or
//     missing types (application/octet-stream...) use the URL path's
//     extension (.wav, .sln16, .ulaw...), else a RIFF header is sniffed.
//     text/*, JSON, XML, HTML and unknown audio types (mp3...) fail with
//     ErrUnsupported, and so does content that does not decode.
//   - Cache: with a cache directory, each URL's body is kept as
//     <sha256(url)>.body plus <sha256(url)>.json (validators). A cached copy
//     younger than TTL is used without any request; an older one is
//     revalidated with If-None-Match / If-Modified-Since (304 → cached copy).
//     A failed revalidation (error status, network error) is an error: the
//     playback fails rather than playing something stale or silent.
//   - Concurrent fetches of one URL share one download; each caller gets its
//     own Clip over the shared samples. A caller's ctx bounds its own wait;
//     the download itself is cancelled once every waiter has given up, and is
//     bounded by Timeout.
type Fetcher struct {
	dir    string
	max    int64
	client *http.Client

	// TTL: how long a cached copy is used without revalidation (default
	// DefaultTTL; 0 = revalidate every time; set before the first Fetch).
	TTL time.Duration
	// Timeout bounds one download (default DefaultFetchTimeout).
	Timeout time.Duration

	mu       sync.Mutex
	inflight map[string]*fetchCall
}

// Defaults of NewFetcher.
const (
	DefaultTTL          = 5 * time.Minute
	DefaultFetchTimeout = 60 * time.Second
)

// ErrBadURL: not an absolute http(s) URL.
var ErrBadURL = errors.New("sounds: only http and https URLs can be fetched")

// StatusError is the error of a download answered with a non-2xx status.
type StatusError struct {
	URL    string
	Status int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("sounds: fetching %s: HTTP status %d %s", e.URL, e.Status, http.StatusText(e.Status))
}

type fetchCall struct {
	done    chan struct{}
	pcm     []int16
	err     error
	waiters int
	cancel  context.CancelFunc
}

// NewFetcher returns a fetcher caching under cacheDir ("" = no disk cache;
// the directory is created when needed), refusing media over maxBytes (<= 0:
// MaxFileSize; never more than MaxFileSize), connecting only where allow
// lets it (nil: public addresses only).
func NewFetcher(cacheDir string, maxBytes int64, allow *netguard.Policy) *Fetcher {
	if maxBytes <= 0 || maxBytes > MaxFileSize {
		maxBytes = MaxFileSize
	}
	return &Fetcher{
		dir:      cacheDir,
		max:      maxBytes,
		client:   allow.Client(),
		TTL:      DefaultTTL,
		Timeout:  DefaultFetchTimeout,
		inflight: map[string]*fetchCall{},
	}
}

// IsURL reports whether a sound name is an http(s) URL to Fetch
// (`sound:http://host/x.wav` → "http://host/x.wav").
func IsURL(name string) bool {
	l := strings.ToLower(name)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

// Fetch returns the decoded media at rawURL, from the cache when fresh.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) (*Clip, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: %q", ErrBadURL, rawURL)
	}
	if err := netguard.CheckURL(u); err != nil {
		return nil, fmt.Errorf("sounds: fetching %s: %w", u.Redacted(), err)
	}
	key := u.String()

	f.mu.Lock()
	c := f.inflight[key]
	if c == nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.timeout())
		c = &fetchCall{done: make(chan struct{}), cancel: cancel}
		f.inflight[key] = c
		go func() {
			c.pcm, c.err = f.load(dctx, u)
			cancel()
			f.mu.Lock()
			if f.inflight[key] == c {
				delete(f.inflight, key)
			}
			f.mu.Unlock()
			close(c.done)
		}()
	}
	c.waiters++
	f.mu.Unlock()

	select {
	case <-c.done:
		if c.err != nil {
			return nil, c.err
		}
		return NewClip(c.pcm), nil
	case <-ctx.Done():
		f.mu.Lock()
		c.waiters--
		if c.waiters == 0 {
			// nobody wants it any more: stop the download, and let a later
			// Fetch of the URL start afresh rather than join a dying one
			c.cancel()
			if f.inflight[key] == c {
				delete(f.inflight, key)
			}
		}
		f.mu.Unlock()
		return nil, fmt.Errorf("sounds: fetching %s: %w", key, ctx.Err())
	}
}

func (f *Fetcher) timeout() time.Duration {
	if f.Timeout > 0 {
		return f.Timeout
	}
	return DefaultFetchTimeout
}

type cacheMeta struct {
	URL          string    `json:"url"`
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
	Kind         kind      `json:"kind"`
	Name         string    `json:"format"`
	Rate         int       `json:"rate"`
	Channels     int       `json:"channels"`
	Fetched      time.Time `json:"fetched"`
}

func (m *cacheMeta) format() format {
	return format{name: m.Name, kind: m.Kind, rate: m.Rate, channels: m.Channels}
}

func (f *Fetcher) paths(key string) (body, meta string) {
	h := sha256.Sum256([]byte(key))
	base := filepath.Join(f.dir, hex.EncodeToString(h[:]))
	return base + ".body", base + ".json"
}

// load answers from the cache or downloads; it returns decoded samples.
func (f *Fetcher) load(ctx context.Context, u *url.URL) ([]int16, error) {
	key := u.String()
	var meta *cacheMeta
	var bodyPath, metaPath string
	if f.dir != "" {
		bodyPath, metaPath = f.paths(key)
		meta = readMeta(metaPath, key)
		if meta != nil && f.TTL > 0 && time.Since(meta.Fetched) < f.TTL {
			if pcm, err := decodeCached(bodyPath, meta); err == nil {
				return pcm, nil
			}
			meta = nil // unreadable copy: download again
		}
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, key, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	req.Header.Set("Accept", "audio/wav, audio/x-wav, audio/basic, audio/*;q=0.8, */*;q=0.5")
	if meta != nil {
		if meta.ETag != "" {
			req.Header.Set("If-None-Match", meta.ETag)
		}
		if meta.LastModified != "" {
			req.Header.Set("If-Modified-Since", meta.LastModified)
		}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // a refused redirect's URL may carry credentials
			if pu, perr := url.Parse(ue.URL); perr == nil {
				ue.URL = pu.Redacted()
			}
		}
		return nil, fmt.Errorf("sounds: fetching %s: %w", key, err)
	}
	defer resp.Body.Close()

	if resp.StatusCode == http.StatusNotModified && meta != nil {
		pcm, err := decodeCached(bodyPath, meta)
		if err == nil {
			meta.Fetched = time.Now()
			writeMeta(metaPath, meta)
			return pcm, nil
		}
		return nil, fmt.Errorf("sounds: fetching %s: cached copy: %w", key, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &StatusError{URL: key, Status: resp.StatusCode}
	}
	if resp.ContentLength > f.max {
		return nil, fmt.Errorf("%w: %s: Content-Length %d over %d bytes", ErrTooLarge, key, resp.ContentLength, f.max)
	}
	ft, err := detectFormat(resp.Header.Get("Content-Type"), u.Path)
	if err != nil {
		return nil, fmt.Errorf("sounds: fetching %s: %w", key, err)
	}
	body, err := readLimited(resp.Body, f.max)
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, fmt.Errorf("%w: %s: over %d bytes", ErrTooLarge, key, f.max)
		}
		return nil, fmt.Errorf("sounds: fetching %s: %w", key, err)
	}
	// a RIFF/WAVE header wins over the type and extension
	if len(body) >= 12 && string(body[0:4]) == "RIFF" && string(body[8:12]) == "WAVE" {
		ft = extFormats["wav"]
	} else if ft.name == "" {
		return nil, fmt.Errorf("%w: %s: cannot tell the audio format (Content-Type %q)", ErrUnsupported, key, resp.Header.Get("Content-Type"))
	}
	clip, err := decodeBytes(body, ft)
	if err != nil {
		return nil, fmt.Errorf("sounds: fetching %s: %w", key, err)
	}
	if f.dir != "" {
		m := &cacheMeta{
			URL: key, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"),
			Kind: ft.kind, Name: ft.name, Rate: ft.rate, Channels: ft.channels, Fetched: time.Now(),
		}
		if err := os.MkdirAll(f.dir, 0o755); err == nil && writeFileAtomic(bodyPath, body) == nil {
			writeMeta(metaPath, m)
		}
	}
	return clip.pcm, nil
}

// detectFormat chooses the decoder from the Content-Type, else the URL
// path's extension. A zero format (name "") means "sniff for RIFF".
func detectFormat(contentType, urlPath string) (format, error) {
	mt, params, _ := mime.ParseMediaType(contentType)
	mt = strings.ToLower(mt)
	switch mt {
	case "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave", "audio/x-pn-wav":
		return extFormats["wav"], nil
	case "audio/basic", "audio/pcmu", "audio/x-mulaw", "audio/mulaw", "audio/ulaw":
		return extFormats["ulaw"], nil
	case "audio/pcma", "audio/x-alaw-basic", "audio/alaw":
		return extFormats["alaw"], nil
	case "audio/l16":
		rate, err := strconv.Atoi(params["rate"])
		if err != nil || rate < 1000 || rate > 384000 {
			rate = 8000
		}
		ch, err := strconv.Atoi(params["channels"])
		if err != nil || ch < 1 || ch > 16 {
			ch = 1
		}
		return format{name: "slin", kind: kindL16, rate: rate, channels: ch}, nil
	}
	if strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "json") || strings.HasSuffix(mt, "xml") ||
		strings.HasSuffix(mt, "html") || strings.HasSuffix(mt, "javascript") {
		return format{}, fmt.Errorf("%w: Content-Type %q is not audio", ErrUnsupported, contentType)
	}
	ext := strings.ToLower(strings.TrimPrefix(path.Ext(urlPath), "."))
	if f, ok := formatByExt(ext); ok {
		return f, nil
	}
	if strings.HasPrefix(mt, "audio/") {
		return format{}, fmt.Errorf("%w: Content-Type %q", ErrUnsupported, contentType)
	}
	return format{}, nil
}

func readMeta(p, key string) *cacheMeta {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	var m cacheMeta
	if json.Unmarshal(b, &m) != nil || m.URL != key || m.Name == "" {
		return nil
	}
	return &m
}

func writeMeta(p string, m *cacheMeta) {
	if b, err := json.Marshal(m); err == nil {
		_ = writeFileAtomic(p, b)
	}
}

func decodeCached(bodyPath string, m *cacheMeta) ([]int16, error) {
	fh, err := os.Open(bodyPath)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	clip, err := decodeReader(fh, m.format())
	if err != nil {
		return nil, err
	}
	return clip.pcm, nil
}

func writeFileAtomic(p string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), ".fetch-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// Purge removes every cached download.
func (f *Fetcher) Purge() error {
	if f.dir == "" {
		return nil
	}
	for _, pat := range []string{"*.body", "*.json", ".fetch-*"} {
		m, _ := filepath.Glob(filepath.Join(f.dir, pat))
		for _, p := range m {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}
