package sounds

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/netguard"
)

// mediaServer serves a few fixed resources and counts requests per path.
type mediaServer struct {
	*httptest.Server
	mu       sync.Mutex
	hits     map[string]int
	cond304  atomic.Int32 // conditional requests answered 304
	release  chan struct{}
	slowDone chan struct{} // closed when the slow handler saw its client go
}

func newMediaServer(t *testing.T, wav []byte) *mediaServer {
	t.Helper()
	ms := &mediaServer{hits: map[string]int{}, release: make(chan struct{}), slowDone: make(chan struct{})}
	var slowOnce sync.Once
	mux := http.NewServeMux()
	mux.HandleFunc("/prompt.wav", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/wav")
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			ms.cond304.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write(wav)
	})
	mux.HandleFunc("/noext", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/basic")
		w.Write(ulawBytes(ramp(800)))
	})
	mux.HandleFunc("/octet/x.sln16", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(slnBytes(sine(16000, 16000, 1000, 8000)))
	})
	mux.HandleFunc("/l16", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/L16;rate=8000;channels=1")
		w.Write([]byte{0x01, 0x02, 0xff, 0xfe})
	})
	mux.HandleFunc("/sniff", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(wav)
	})
	mux.HandleFunc("/big.wav", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/wav")
		w.Write(make([]byte, 64<<10))
	})
	mux.HandleFunc("/bigchunked.wav", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/wav")
		w.(http.Flusher).Flush() // no Content-Length
		for i := 0; i < 64; i++ {
			if _, err := w.Write(make([]byte, 1<<10)); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/slow.wav", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			slowOnce.Do(func() { close(ms.slowDone) })
		case <-ms.release:
		case <-time.After(10 * time.Second):
		}
	})
	mux.HandleFunc("/gated.wav", func(w http.ResponseWriter, r *http.Request) {
		<-ms.release
		w.Header().Set("Content-Type", "audio/wav")
		w.Write(wav)
	})
	mux.HandleFunc("/page.wav", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<html>not found, really</html>")
	})
	mux.HandleFunc("/garbage.wav", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		fmt.Fprint(w, "definitely not a RIFF file")
	})
	mux.HandleFunc("/song.mp3", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/mpeg")
		w.Write([]byte("ID3\x03\x00\x00\x00"))
	})
	mux.HandleFunc("/unknown", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write([]byte("1234567890abcdef"))
	})
	ms.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ms.mu.Lock()
		ms.hits[r.URL.Path]++
		ms.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		select {
		case <-ms.release:
		default:
			close(ms.release)
		}
		ms.Close()
	})
	return ms
}

// allowServer is an allow-list of one test server's host:port (loopback).
func allowServer(t testing.TB, serverURL string) *netguard.Policy {
	t.Helper()
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := netguard.Parse([]string{u.Host})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (ms *mediaServer) count(p string) int {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.hits[p]
}

func TestFetchSuccessAndCache(t *testing.T) {
	want := ramp(8000)
	ms := newMediaServer(t, wavBytes(8000, 1, want))
	dir := t.TempDir()
	f := NewFetcher(dir, 1<<20, allowServer(t, ms.URL))
	ctx := context.Background()

	c, err := f.Fetch(ctx, ms.URL+"/prompt.wav")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Samples(), want) {
		t.Fatal("fetched samples differ")
	}
	c.Seek(0, 2)
	// cache hit within the TTL: no request, a fresh clip
	c2, err := f.Fetch(ctx, ms.URL+"/prompt.wav")
	if err != nil {
		t.Fatal(err)
	}
	if c2.Position() != 0 || !slices.Equal(c2.Samples(), want) {
		t.Fatal("cached clip wrong")
	}
	if n := ms.count("/prompt.wav"); n != 1 {
		t.Fatalf("server saw %d requests, want 1 (cache hit)", n)
	}
	// a new fetcher over the same directory uses the disk cache
	f2 := NewFetcher(dir, 1<<20, allowServer(t, ms.URL))
	if _, err := f2.Fetch(ctx, ms.URL+"/prompt.wav"); err != nil {
		t.Fatal(err)
	}
	if n := ms.count("/prompt.wav"); n != 1 {
		t.Fatalf("server saw %d requests after a restart, want 1", n)
	}
	// TTL expired: revalidated with If-None-Match, 304 → cached copy
	f2.TTL = 0
	c3, err := f2.Fetch(ctx, ms.URL+"/prompt.wav")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c3.Samples(), want) || ms.cond304.Load() != 1 || ms.count("/prompt.wav") != 2 {
		t.Fatalf("revalidation: %d requests, %d answered 304", ms.count("/prompt.wav"), ms.cond304.Load())
	}
	// the cache holds exactly one body + one meta file for the URL
	m, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(m) != 2 {
		t.Fatalf("cache dir holds %v", m)
	}
	if err := f2.Purge(); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) != 0 {
		t.Fatalf("after Purge: %v", m)
	}

	// no cache dir: every fetch downloads
	f3 := NewFetcher("", 0, allowServer(t, ms.URL))
	for i := 0; i < 2; i++ {
		if _, err := f3.Fetch(ctx, ms.URL+"/noext"); err != nil {
			t.Fatal(err)
		}
	}
	if n := ms.count("/noext"); n != 2 {
		t.Fatalf("without a cache: %d requests", n)
	}
}

func TestFetchContentTypes(t *testing.T) {
	want := ramp(800)
	ms := newMediaServer(t, wavBytes(8000, 1, want))
	f := NewFetcher(t.TempDir(), 1<<20, allowServer(t, ms.URL))
	ctx := context.Background()
	c, err := f.Fetch(ctx, ms.URL+"/noext") // audio/basic
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := Decode(bytesReader(ulawBytes(ramp(800))), "ulaw")
	if !slices.Equal(c.Samples(), ref.Samples()) {
		t.Fatal("audio/basic decoded wrong")
	}
	c, err = f.Fetch(ctx, ms.URL+"/octet/x.sln16") // by extension
	if err != nil {
		t.Fatal(err)
	}
	if c.Length() != 8000 || toneAmp(c.Samples()[1000:7000], 1000) < 7900 {
		t.Fatal("sln16 by extension decoded wrong")
	}
	c, err = f.Fetch(ctx, ms.URL+"/l16")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Samples(), []int16{0x0102, -2}) {
		t.Fatalf("audio/L16 = %v", c.Samples())
	}
	c, err = f.Fetch(ctx, ms.URL+"/sniff") // octet-stream, no extension, RIFF content
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Samples(), want) {
		t.Fatal("sniffed WAV wrong")
	}
	// and from the disk cache the formats are remembered
	for _, p := range []string{"/noext", "/octet/x.sln16", "/l16", "/sniff"} {
		if _, err := f.Fetch(ctx, ms.URL+p); err != nil {
			t.Fatalf("%s from cache: %v", p, err)
		}
		if n := ms.count(p); n != 1 {
			t.Fatalf("%s: %d requests", p, n)
		}
	}
}

func TestFetchErrors(t *testing.T) {
	ms := newMediaServer(t, wavBytes(8000, 1, ramp(100)))
	dir := t.TempDir()
	f := NewFetcher(dir, 32<<10, allowServer(t, ms.URL))
	ctx := context.Background()

	_, err := f.Fetch(ctx, ms.URL+"/missing.wav")
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 404 {
		t.Fatalf("404: err = %v", err)
	}
	if _, err := f.Fetch(ctx, ms.URL+"/big.wav"); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("too large (Content-Length): %v", err)
	}
	if _, err := f.Fetch(ctx, ms.URL+"/bigchunked.wav"); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("too large (chunked): %v", err)
	}
	for _, p := range []string{"/page.wav", "/song.mp3", "/unknown"} {
		if _, err := f.Fetch(ctx, ms.URL+p); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("%s: err = %v, want ErrUnsupported", p, err)
		}
	}
	if _, err := f.Fetch(ctx, ms.URL+"/garbage.wav"); err == nil {
		t.Fatal("garbage.wav decoded")
	}
	for _, u := range []string{"file:///etc/passwd", "ftp://127.0.0.1/x.wav", "/etc/passwd", "http://", "gopher://x", "http//x"} {
		if _, err := f.Fetch(ctx, u); !errors.Is(err, ErrBadURL) {
			t.Errorf("Fetch(%q) err = %v, want ErrBadURL", u, err)
		}
	}
	// errors are not cached: nothing in the cache dir
	if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) != 0 {
		t.Fatalf("failed fetches left %v", m)
	}
	// connection refused
	dead := httptest.NewServer(http.NotFoundHandler())
	u := dead.URL
	dead.Close()
	fd := NewFetcher("", 0, allowServer(t, u))
	if _, err := fd.Fetch(ctx, u+"/x.wav"); err == nil || errors.Is(err, netguard.ErrRefused) {
		t.Fatalf("fetch from a closed server: err = %v, want a connection error", err)
	}
}

func TestFetchTimeout(t *testing.T) {
	ms := newMediaServer(t, nil)
	f := NewFetcher(t.TempDir(), 1<<20, allowServer(t, ms.URL))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := f.Fetch(ctx, ms.URL+"/slow.wav")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("timeout took %v", d)
	}
	// the abandoned download is cancelled: the server sees its client go
	select {
	case <-ms.slowDone:
	case <-time.After(5 * time.Second):
		t.Fatal("download not cancelled after its only waiter gave up")
	}
	// Fetcher.Timeout bounds a download even without a ctx deadline
	f.Timeout = 100 * time.Millisecond
	if _, err := f.Fetch(context.Background(), ms.URL+"/slow.wav?2"); err == nil {
		t.Fatal("download beyond Fetcher.Timeout succeeded")
	}
}

func TestFetchSingleflight(t *testing.T) {
	want := ramp(4000)
	ms := newMediaServer(t, wavBytes(8000, 1, want))
	f := NewFetcher(t.TempDir(), 1<<20, allowServer(t, ms.URL))
	const n = 20
	var wg sync.WaitGroup
	clips := make([]*Clip, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			clips[i], errs[i] = f.Fetch(context.Background(), ms.URL+"/gated.wav")
		}(i)
	}
	// let every goroutine join the in-flight download, then release the server
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		c := f.inflight[ms.URL+"/gated.wav"]
		w := 0
		if c != nil {
			w = c.waiters
		}
		f.mu.Unlock()
		if w == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d waiters joined", w)
		}
		time.Sleep(time.Millisecond)
	}
	close(ms.release)
	wg.Wait()
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !slices.Equal(clips[i].Samples(), want) {
			t.Fatal("wrong samples")
		}
	}
	clips[0].Seek(100, 0)
	if clips[1].Position() != 0 {
		t.Fatal("clips share a position")
	}
	if c := ms.count("/gated.wav"); c != 1 {
		t.Fatalf("server saw %d requests for %d concurrent fetches, want 1", c, n)
	}

	// one waiter giving up does not cancel the download for the others
	ms2 := newMediaServer(t, wavBytes(8000, 1, want))
	f2 := NewFetcher("", 1<<20, allowServer(t, ms2.URL))
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := f2.Fetch(context.Background(), ms2.URL+"/gated.wav")
		done <- err
	}()
	for ms2.count("/gated.wav") == 0 {
		time.Sleep(time.Millisecond)
	}
	if _, err := f2.Fetch(short, ms2.URL+"/gated.wav"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("short waiter: %v", err)
	}
	close(ms2.release)
	if err := <-done; err != nil {
		t.Fatalf("patient waiter failed after another gave up: %v", err)
	}
}

func TestDetectFormat(t *testing.T) {
	for _, c := range []struct {
		ct, path, want string
		err            bool
	}{
		{"audio/x-wav", "/a", "wav", false},
		{"audio/wave", "/a.ulaw", "wav", false},
		{"audio/basic", "/a", "ulaw", false},
		{"audio/PCMA", "/a", "alaw", false},
		{"", "/a.sln16", "slin16", false},
		{"application/octet-stream", "/a.WAV", "wav", false},
		{"binary/octet-stream", "/a", "", false},
		{"text/plain", "/a.wav", "", true},
		{"application/json", "/a.wav", "", true},
		{"audio/mpeg", "/a.mp3", "", true},
		{"audio/ogg", "/a", "", true},
	} {
		f, err := detectFormat(c.ct, c.path)
		if (err != nil) != c.err || f.name != c.want {
			t.Errorf("detectFormat(%q, %q) = %q, %v", c.ct, c.path, f.name, err)
		}
	}
	if !IsURL("HTTP://x/y.wav") || !IsURL("https://x") || IsURL("tt-monkeys") || IsURL("file:///x") {
		t.Fatal("IsURL")
	}
}

// secretServer stands for a loopback-only service (the server's own ARI, a
// metadata endpoint): it counts every request it receives.
func secretServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "audio/basic")
		w.Write(ulawBytes(ramp(800)))
	}))
	t.Cleanup(s.Close)
	return s, &hits
}

// TestFetchSSRF: loopback and private addresses are refused unless listed,
// on the first request and on every redirect; URLs with credentials are
// refused; the refused server never sees a request.
func TestFetchSSRF(t *testing.T) {
	wav := wavBytes(8000, 1, ramp(800))
	ms := newMediaServer(t, wav)
	secret, secretHits := secretServer(t)
	su, _ := url.Parse(secret.URL)
	_, secretPort, _ := net.SplitHostPort(su.Host)
	redirect := http.NewServeMux()
	redirect.HandleFunc("/to", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("u"), http.StatusFound)
	})
	var loops atomic.Int32
	redirect.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		loops.Add(1)
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	redirect.HandleFunc("/prompt.wav", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/wav")
		w.Write(wav)
	})
	rs := httptest.NewServer(redirect)
	t.Cleanup(rs.Close)
	ctx := context.Background()

	// Default policy: loopback is refused outright.
	def := NewFetcher("", 0, nil)
	if _, err := def.Fetch(ctx, ms.URL+"/prompt.wav"); !errors.Is(err, netguard.ErrRefused) {
		t.Fatalf("default policy, loopback: err = %v, want ErrRefused", err)
	}
	if _, err := def.Fetch(ctx, "http://localhost:"+secretPort+"/x.ulaw"); !errors.Is(err, netguard.ErrRefused) {
		t.Fatalf("default policy, localhost (checked after resolution): err = %v, want ErrRefused", err)
	}
	if _, err := def.Fetch(ctx, "http://10.255.255.1:9/x.wav"); !errors.Is(err, netguard.ErrRefused) {
		t.Fatalf("default policy, private address: err = %v, want ErrRefused", err)
	}
	if _, err := def.Fetch(ctx, "http://169.254.169.254/latest/meta-data"); !errors.Is(err, netguard.ErrRefused) {
		t.Fatalf("default policy, link-local metadata address: err = %v, want ErrRefused", err)
	}
	if n := ms.count("/prompt.wav"); n != 0 {
		t.Fatalf("refused server saw %d requests", n)
	}

	// Only the redirector's host:port is allowed.
	f := NewFetcher("", 0, allowServer(t, rs.URL))
	if c, err := f.Fetch(ctx, rs.URL+"/prompt.wav"); err != nil || c.Length() == 0 {
		t.Fatalf("allowed server: %v", err)
	}
	if c, err := f.Fetch(ctx, rs.URL+"/to?u=/prompt.wav"); err != nil || c.Length() == 0 {
		t.Fatalf("redirect within the allowed server: %v", err)
	}
	refused := map[string]string{
		"direct, another loopback port": secret.URL + "/x.ulaw",
		"direct, by name":               "http://localhost:" + secretPort + "/x.ulaw",
		"direct, 127.0.0.2":             "http://127.0.0.2:" + secretPort + "/x.ulaw",
		"redirect to another port":      rs.URL + "/to?u=" + url.QueryEscape(secret.URL+"/x.ulaw"),
		"redirect to localhost":         rs.URL + "/to?u=" + url.QueryEscape("http://localhost:"+secretPort+"/x.ulaw"),
		"redirect to IPv4-mapped":       rs.URL + "/to?u=" + url.QueryEscape("http://[::ffff:127.0.0.1]:"+secretPort+"/x.ulaw"),
		"credentials":                   "http://asterisk:asterisk@" + strings.TrimPrefix(rs.URL, "http://") + "/prompt.wav",
		"redirect with credentials":     rs.URL + "/to?u=" + url.QueryEscape("http://asterisk:asterisk@"+strings.TrimPrefix(rs.URL, "http://")+"/prompt.wav"),
		"redirect to file:":             rs.URL + "/to?u=" + url.QueryEscape("file:///etc/passwd"),
		"redirect loop":                 rs.URL + "/loop",
	}
	for name, u := range refused {
		if _, err := f.Fetch(ctx, u); !errors.Is(err, netguard.ErrRefused) {
			t.Errorf("%s: err = %v, want ErrRefused", name, err)
		} else if strings.Contains(err.Error(), "asterisk:asterisk") {
			t.Errorf("%s: the error shows the credentials: %v", name, err)
		}
	}
	if n := secretHits.Load(); n != 0 {
		t.Fatalf("the loopback secret server saw %d requests", n)
	}
	if n := loops.Load(); n != netguard.MaxRedirects+1 {
		t.Fatalf("redirect loop followed %d times, want %d", n, netguard.MaxRedirects+1)
	}
}
