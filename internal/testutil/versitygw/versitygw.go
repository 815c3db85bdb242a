// Package versitygw starts a real S3-compatible server for tests:
// versitygw (posix backend), run on 127.0.0.1 with a free port and a temp
// dir, once per test process (Shared), and killed when the process ends.
//
// The binary is found via $TAPEDECK_VERSITYGW, then
// <repo>/.cache/bin/versitygw (where scripts/s3-test.sh installs it), then
// PATH, then $(go env GOPATH)/bin. Without it the tests that need it skip,
// or fail when CI=true.
//
// versitygw runs under a watchdog shell that kills it (and removes its temp
// dir) when its stdin reaches EOF: when Stop closes it, or when the test
// process dies, however it dies. A TestMain may call Stop to shut it down
// early and SkipReason to report skipped tests.
//
// The package is imported only from _test.go files.
package versitygw

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The root credentials of the test server.
const (
	AccessKey = "tapedecktestkey"
	SecretKey = "tapedecktestsecret0123456789"
)

// Server is a running versitygw.
type Server struct {
	endpoint string // 127.0.0.1:port
	cmd      *exec.Cmd
	stdin    io.WriteCloser // closing it makes the watchdog shell kill versitygw
	exited   chan struct{}  // closed when the watchdog shell has exited
	dir      string
	dataDir  string
	out      *syncBuffer
	client   *minio.Client
	stopOnce sync.Once
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
	skipReason string // why the S3 tests skip (binary missing)
	stopped    atomic.Bool
	bucketSeq  atomic.Int64
)

// Shared returns the process's versitygw server, starting it on first use.
// When the binary is missing the test skips (fails under CI=true); when it
// does not start the test fails.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() {
		bin, tried := Find()
		if bin == "" {
			skipReason = "versitygw not found (looked at " + strings.Join(tried, ", ") +
				"); install it with scripts/s3-test.sh"
			return
		}
		shared, sharedErr = Start(bin)
	})
	if skipReason != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: %s", skipReason)
		}
		t.Skip("SKIP S3 test: " + skipReason)
	}
	if sharedErr != nil {
		t.Fatalf("starting versitygw: %v", sharedErr)
	}
	if stopped.Load() {
		t.Fatal("versitygw: Shared called after Stop")
	}
	return shared
}

// SkipReason is why tests calling Shared skipped ("" when they did not).
func SkipReason() string {
	sharedOnce.Do(func() {}) // no race with a Shared in progress
	return skipReason
}

// Stop stops the shared server if it was started (for TestMain, after
// m.Run; without it the server still dies with the test process).
func Stop() {
	sharedOnce.Do(func() {})
	stopped.Store(true)
	if shared != nil {
		shared.Stop()
	}
}

// Find looks for the versitygw binary; it returns its path ("" when not
// found) and the places it looked at.
func Find() (string, []string) {
	var tried []string
	isExec := func(p string) bool {
		fi, err := os.Stat(p)
		return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
	}
	if p := os.Getenv("TAPEDECK_VERSITYGW"); p != "" {
		tried = append(tried, "$TAPEDECK_VERSITYGW="+p)
		if isExec(p) {
			return p, tried
		}
	}
	if root := repoRoot(); root != "" {
		p := filepath.Join(root, ".cache", "bin", "versitygw")
		tried = append(tried, p)
		if isExec(p) {
			return p, tried
		}
	}
	tried = append(tried, "PATH")
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, tried
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for gp := range strings.SplitSeq(strings.TrimSpace(string(out)), string(os.PathListSeparator)) {
			if gp == "" {
				continue
			}
			p := filepath.Join(gp, "bin", "versitygw")
			tried = append(tried, p)
			if isExec(p) {
				return p, tried
			}
		}
	}
	return "", tried
}

// repoRoot is the nearest directory at or above the working directory that
// holds go.mod.
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// FreePort returns a TCP port on 127.0.0.1 that is free right now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start runs a new versitygw from bin under the watchdog shell (see the
// package comment). A port taken between picking and binding is retried.
// Most tests want Shared instead.
func Start(bin string) (*Server, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		g, err := startOnce(bin)
		if err == nil {
			return g, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startOnce(bin string) (*Server, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tapedeck-versitygw-")
	if err != nil {
		return nil, err
	}
	data, meta := filepath.Join(dir, "data"), filepath.Join(dir, "meta")
	for _, d := range []string{data, meta} {
		if err := os.Mkdir(d, 0o755); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	endpoint := fmt.Sprintf("127.0.0.1:%d", port)
	// --sidecar keeps object metadata in files, so the data dir's file
	// system need not support extended attributes.
	args := []string{"--port", endpoint, "--quiet", "posix", "--sidecar", meta, data}
	// The shell kills versitygw and removes its temp dir once its stdin
	// reaches EOF: when Stop closes it, or when this process dies.
	const watchdog = `"$0" "$@" & pid=$!; read _ignored; kill $pid 2>/dev/null; wait $pid; rm -rf "$TAPEDECK_VGW_TMP"`
	cmd := exec.Command("sh", append([]string{"-c", watchdog, bin}, args...)...)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey,
		"TAPEDECK_VGW_TMP="+dir)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	g := &Server{endpoint: endpoint, cmd: cmd, stdin: stdin, exited: exited, dir: dir, dataDir: data, out: out}
	g.client, err = minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(AccessKey, SecretKey, "")})
	if err != nil {
		g.Stop()
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = g.client.ListBuckets(ctx)
		cancel()
		if err == nil {
			return g, nil
		}
		select {
		case <-exited:
			g.Stop()
			return nil, fmt.Errorf("versitygw %s exited: %s", strings.Join(args, " "), out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			g.Stop()
			return nil, fmt.Errorf("versitygw on %s not answering after 30s (last error %v): %s", endpoint, err, out.String())
		}
	}
}

// Stop kills the server and removes its files. Safe to call more than once.
func (g *Server) Stop() {
	g.stopOnce.Do(func() {
		g.stdin.Close()
		select {
		case <-g.exited:
		case <-time.After(10 * time.Second):
			g.cmd.Process.Kill() // the shell; versitygw may linger
			<-g.exited
		}
		os.RemoveAll(g.dir)
	})
}

// Endpoint is the server's host:port (plain HTTP).
func (g *Server) Endpoint() string { return g.endpoint }

// Client is a client with the root credentials.
func (g *Server) Client() *minio.Client { return g.client }

// DataDir is the posix backend's root: object KEY of bucket B is the file
// DataDir()/B/KEY.
func (g *Server) DataDir() string { return g.dataDir }

// Output is what versitygw printed so far.
func (g *Server) Output() string { return g.out.String() }

// NewBucketName returns a bucket name not used before in this process (the
// bucket is not created).
func NewBucketName(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), bucketSeq.Add(1))
}

// NewBucket creates a fresh bucket for one test and returns its name.
func (g *Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := NewBucketName("tapedeck-test")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.client.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket %s: %v", name, err)
	}
	return name
}

// ObjectExists reports whether bucket holds key (a HEAD through the S3 API).
func (g *Server) ObjectExists(ctx context.Context, bucket, key string) (bool, error) {
	_, err := g.client.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err == nil {
		return true, nil
	}
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return false, nil
	}
	return false, err
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
