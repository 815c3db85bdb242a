package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/tapedeck/tapedeck/internal/testutil/versitygw"
)

// newS3 returns an S3 store on a fresh bucket of the test server.
func newS3(t *testing.T, mod func(*S3Config)) (*S3, *versitygw.Server) {
	t.Helper()
	g := needS3(t)
	cfg := s3Config(g, g.NewBucket(t))
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewS3(cfg)
	if err != nil {
		t.Fatalf("NewS3: %v", err)
	}
	return s, g
}

func TestS3Conformance(t *testing.T) {
	needS3(t)
	testConformance(t, func(t *testing.T) Store { s, _ := newS3(t, nil); return s })
}

func TestS3ConformanceWithPrefix(t *testing.T) {
	needS3(t)
	testConformance(t, func(t *testing.T) Store {
		s, _ := newS3(t, func(c *S3Config) { c.Prefix = "/recordings/" })
		return s
	})
}

func TestS3URIAndPrefix(t *testing.T) {
	s, g := newS3(t, func(c *S3Config) { c.Prefix = "rec/x" })
	src, data := writeFile(t, t.TempDir(), 100)
	obj, err := s.Put(context.Background(), "AC1/RE1.wav", src, "audio/wav")
	if err != nil {
		t.Fatal(err)
	}
	if want := "s3://" + s.cfg.Bucket + "/rec/x/AC1/RE1.wav"; obj.URI != want {
		t.Errorf("URI = %q, want %q", obj.URI, want)
	}
	info, err := g.Client().StatObject(context.Background(), s.cfg.Bucket, "rec/x/AC1/RE1.wav", minio.StatObjectOptions{})
	if err != nil {
		t.Fatalf("object not at prefixed name: %v", err)
	}
	if info.Size != int64(len(data)) || info.UserMetadata["Sha256"] != sha256Hex(data) || info.ContentType != "audio/wav" {
		t.Errorf("stored object: size %d, metadata %v, content type %q", info.Size, info.UserMetadata, info.ContentType)
	}
}

func TestS3KeepLocal(t *testing.T) {
	s, _ := newS3(t, func(c *S3Config) { c.KeepLocal = true })
	src, data := writeFile(t, t.TempDir(), 1000)
	obj, err := s.Put(context.Background(), "keep/RE.wav", src, "audio/wav")
	if err != nil {
		t.Fatal(err)
	}
	checkObject(t, obj, "keep/RE.wav", data)
	if got, err := os.ReadFile(src); err != nil || !bytes.Equal(got, data) {
		t.Errorf("local file with KeepLocal: %v", err)
	}
}

// A file larger than PartSize goes up as a multipart upload (the ETag of a
// multipart object ends in -<parts>) and reads back intact, also across part
// boundaries.
func TestS3MultipartUpload(t *testing.T) {
	s, g := newS3(t, func(c *S3Config) { c.PartSize = MinPartSize })
	const size = 2*MinPartSize + 12345 // three parts
	src, data := writeFile(t, t.TempDir(), size)
	ctx := context.Background()
	obj, err := s.Put(ctx, "big/RE.wav", src, "audio/wav")
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	checkObject(t, obj, "big/RE.wav", data)
	info, err := g.Client().StatObject(ctx, s.cfg.Bucket, "big/RE.wav", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(strings.Trim(info.ETag, `"`), "-3") {
		t.Errorf("ETag %q: want a 3-part multipart ETag", info.ETag)
	}
	if _, err := os.Stat(src); !os.IsNotExist(err) {
		t.Errorf("local file after upload: %v", err)
	}
	if got := readAll(t, s, "big/RE.wav"); !bytes.Equal(got, data) {
		t.Fatal("multipart object differs from the file")
	}
	r, err := s.Open(ctx, "big/RE.wav")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Seek(MinPartSize-50, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if _, err := io.ReadFull(r, buf); err != nil || !bytes.Equal(buf, data[MinPartSize-50:MinPartSize+50]) {
		t.Errorf("read across the part boundary: %v", err)
	}
}

func TestS3ConfigErrors(t *testing.T) {
	_, err := NewS3(S3Config{Endpoint: "127.0.0.1:1", Bucket: "bucket", PartSize: 1 << 20})
	if err == nil {
		t.Fatal("NewS3 accepted a 1 MiB part size")
	}
	if _, err := NewS3(S3Config{Endpoint: "127.0.0.1:1", Bucket: "b"}); err == nil {
		t.Fatal("NewS3 accepted an invalid bucket name")
	}
	if _, err := NewS3(S3Config{Endpoint: "http://127.0.0.1:1", Bucket: "bucket"}); err == nil {
		t.Fatal("NewS3 accepted an endpoint with a scheme")
	}
}

func TestS3CreateBucket(t *testing.T) {
	g := needS3(t)
	cfg := s3Config(g, versitygw.NewBucketName("tapedeck-created"))
	cfg.CreateBucket = true
	for i := 0; i < 2; i++ { // the second time it exists already
		s, err := NewS3(cfg)
		if err != nil {
			t.Fatalf("NewS3 #%d: %v", i+1, err)
		}
		src, _ := writeFile(t, t.TempDir(), 10)
		if _, err := s.Put(context.Background(), "a.wav", src, ""); err != nil {
			t.Fatalf("Put #%d: %v", i+1, err)
		}
	}
}

func TestS3MissingBucketKeepsLocal(t *testing.T) {
	g := needS3(t)
	s, err := NewS3(s3Config(g, "tapedeck-no-such-bucket"))
	if err != nil {
		t.Fatal(err)
	}
	src, data := writeFile(t, t.TempDir(), 1000)
	if _, err := s.Put(context.Background(), "a/RE.wav", src, "audio/wav"); err == nil {
		t.Fatal("Put into a missing bucket succeeded")
	} else {
		t.Logf("Put error (expected): %v", err)
	}
	if got, err := os.ReadFile(src); err != nil || !bytes.Equal(got, data) {
		t.Errorf("local file after failed Put: %v", err)
	}
}

func TestS3ServerDownKeepsLocal(t *testing.T) {
	port, err := versitygw.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewS3(S3Config{Endpoint: fmt.Sprintf("127.0.0.1:%d", port), AccessKey: "k", SecretKey: "s", Bucket: "tapedeck-down"})
	if err != nil {
		t.Fatal(err)
	}
	src, data := writeFile(t, t.TempDir(), 1000)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.Put(ctx, "a/RE.wav", src, "audio/wav"); err == nil {
		t.Fatal("Put to a stopped server succeeded")
	} else {
		t.Logf("Put error (expected): %v", err)
	}
	if got, err := os.ReadFile(src); err != nil || !bytes.Equal(got, data) {
		t.Errorf("local file after failed Put: %v", err)
	}
}

// proxy is a reverse proxy in front of the test server that records request
// Range headers and can tamper with HEAD responses.
type proxy struct {
	*httptest.Server
	mu      sync.Mutex
	gets    []string // Range header of each object GET ("" = whole object)
	badHash bool     // rewrite x-amz-meta-sha256 in HEAD responses
}

func newProxy(t *testing.T, g *versitygw.Server) *proxy {
	target, _ := url.Parse("http://" + g.Endpoint())
	p := &proxy{}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if resp.Request.Method == http.MethodHead && p.badHash && resp.Header.Get("X-Amz-Meta-Sha256") != "" {
			resp.Header.Set("X-Amz-Meta-Sha256", strings.Repeat("0", 64))
		}
		return nil
	}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Count(strings.Trim(r.URL.Path, "/"), "/") >= 1 {
			p.mu.Lock()
			p.gets = append(p.gets, r.Header.Get("Range"))
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *proxy) takeGets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.gets
	p.gets = nil
	return g
}

// If the stored hash does not match, Put deletes the object, fails and keeps
// the local file.
func TestS3VerificationMismatch(t *testing.T) {
	g := needS3(t)
	p := newProxy(t, g)
	cfg := s3Config(g, g.NewBucket(t))
	cfg.Endpoint = strings.TrimPrefix(p.URL, "http://")
	s, err := NewS3(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.badHash = true
	p.mu.Unlock()
	src, data := writeFile(t, t.TempDir(), 5000)
	_, err = s.Put(context.Background(), "v/RE.wav", src, "audio/wav")
	if err == nil || !strings.Contains(err.Error(), "verification") {
		t.Fatalf("Put with a corrupted stored hash: err = %v, want a verification error", err)
	}
	t.Logf("Put error (expected): %v", err)
	if got, err := os.ReadFile(src); err != nil || !bytes.Equal(got, data) {
		t.Errorf("local file after failed verification: %v", err)
	}
	_, err = g.Client().StatObject(context.Background(), cfg.Bucket, "v/RE.wav", minio.StatObjectOptions{})
	if minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		t.Errorf("object after failed verification: stat err = %v, want NoSuchKey", err)
	}
}

// Open and Seek make no GETs; each read after a seek makes one ranged GET
// from the new offset.
func TestS3LazyRangedReads(t *testing.T) {
	g := needS3(t)
	p := newProxy(t, g)
	cfg := s3Config(g, g.NewBucket(t))
	cfg.Endpoint = strings.TrimPrefix(p.URL, "http://")
	s, err := NewS3(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src, data := writeFile(t, t.TempDir(), 1<<20)
	if _, err := s.Put(ctx, "lazy/RE.wav", src, "audio/wav"); err != nil {
		t.Fatal(err)
	}
	p.takeGets()
	r, err := s.Open(ctx, "lazy/RE.wav")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Seek(0, io.SeekEnd) // what http.ServeContent does to learn the size
	r.Seek(100, io.SeekStart)
	if gets := p.takeGets(); len(gets) != 0 {
		t.Fatalf("GETs before any Read: %q", gets)
	}
	buf := make([]byte, 100)
	if _, err := io.ReadFull(r, buf); err != nil || !bytes.Equal(buf, data[100:200]) {
		t.Fatalf("read 100-199: %v", err)
	}
	if _, err := io.ReadFull(r, buf); err != nil || !bytes.Equal(buf, data[200:300]) {
		t.Fatalf("read 200-299: %v", err)
	}
	r.Seek(-10, io.SeekEnd)
	if _, err := io.ReadFull(r, buf[:10]); err != nil || !bytes.Equal(buf[:10], data[len(data)-10:]) {
		t.Fatalf("read last 10: %v", err)
	}
	n := len(data)
	want := []string{"bytes=100-" + fmt.Sprint(n-1), fmt.Sprintf("bytes=%d-%d", n-10, n-1)}
	if gets := p.takeGets(); fmt.Sprint(gets) != fmt.Sprint(want) {
		t.Errorf("GET ranges %q, want %q", gets, want)
	}
}

// An object replaced after Open is not silently mixed into the reader.
func TestS3ReplacedWhileOpen(t *testing.T) {
	s, _ := newS3(t, func(c *S3Config) { c.KeepLocal = true })
	ctx := context.Background()
	src1, _ := writeFile(t, t.TempDir(), 4000)
	if _, err := s.Put(ctx, "r/RE.wav", src1, "audio/wav"); err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(ctx, "r/RE.wav")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	src2, _ := writeFile(t, t.TempDir(), 4000)
	if _, err := s.Put(ctx, "r/RE.wav", src2, "audio/wav"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); err == nil {
		t.Error("reading an object replaced after Open succeeded")
	} else if errors.Is(err, ErrNotFound) {
		t.Errorf("unexpected ErrNotFound: %v", err)
	}
}

// countingFile counts the bytes read from a file Put uploads.
type countingFile struct {
	*os.File
	n *atomic.Int64
}

func (c countingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.File.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// Put reads the file once: the SHA-256 it stores on the object (and
// returns, for the catalog) comes from the upload's own reads, single PUT
// and multipart alike, and verifies.
func TestS3PutReadsFileOnce(t *testing.T) {
	var read atomic.Int64
	old := openUpload
	openUpload = func(name string) (uploadFile, error) {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		return countingFile{f, &read}, nil
	}
	t.Cleanup(func() { openUpload = old })
	s, g := newS3(t, func(c *S3Config) { c.PartSize = MinPartSize })
	for _, size := range []int{0, 5000, 2*MinPartSize + 12345} {
		read.Store(0)
		src, data := writeFile(t, t.TempDir(), size)
		key := fmt.Sprintf("once/RE%d.wav", size)
		obj, err := s.Put(context.Background(), key, src, "audio/wav")
		if err != nil {
			t.Fatalf("%d bytes: Put: %v", size, err)
		}
		checkObject(t, obj, key, data)
		if n := read.Load(); n != int64(size) {
			t.Errorf("%d bytes: %d bytes read from the file, want %d (one read)", size, n, size)
		}
		info, err := g.Client().StatObject(context.Background(), s.cfg.Bucket, key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if info.UserMetadata["Sha256"] != sha256Hex(data) || info.ContentType != "audio/wav" || info.Size != int64(size) {
			t.Errorf("%d bytes: stored object: size %d, metadata %v, content type %q", size, info.Size, info.UserMetadata, info.ContentType)
		}
		if got := readAll(t, s, key); !bytes.Equal(got, data) {
			t.Errorf("%d bytes: object differs from the file", size)
		}
	}
}
