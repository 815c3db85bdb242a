package blob

// A real S3-compatible server for the tests: versitygw (posix backend),
// started once per test run on 127.0.0.1 with a free port and a temp dir, and
// killed when the run ends. The binary is found via $TAPEDECK_VERSITYGW, then
// <repo>/.cache/bin/versitygw (where scripts/s3-test.sh installs it), then
// PATH, then $(go env GOPATH)/bin. Without it the S3 tests skip, or fail
// when CI=true.

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

const (
	vgwAccessKey = "tapedecktestkey"
	vgwSecretKey = "tapedecktestsecret0123456789"
)

type versityGW struct {
	endpoint string // 127.0.0.1:port
	cmd      *exec.Cmd
	stdin    io.WriteCloser // closing it makes the watchdog shell kill versitygw
	exited   chan struct{}  // closed when the watchdog shell has exited
	dir      string
	out      *syncBuffer
	client   *minio.Client
}

var (
	vgwOnce   sync.Once
	vgw       *versityGW
	vgwErr    error
	vgwSkip   string // why the S3 tests skip (binary missing)
	bucketSeq atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	if vgw != nil {
		vgw.stop()
	}
	if vgwSkip != "" {
		fmt.Fprintln(os.Stderr, "blob: S3 tests SKIPPED:", vgwSkip)
	}
	os.Exit(code)
}

// needS3 returns the shared versitygw server, starting it on first use. When
// the binary is missing the test skips (fails under CI=true).
func needS3(t testing.TB) *versityGW {
	t.Helper()
	vgwOnce.Do(func() {
		bin, tried := findVersityGW()
		if bin == "" {
			vgwSkip = "versitygw not found (looked at " + strings.Join(tried, ", ") +
				"); install it with scripts/s3-test.sh"
			return
		}
		vgw, vgwErr = startVersityGW(bin)
	})
	if vgwSkip != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: %s", vgwSkip)
		}
		t.Skip("SKIP S3 test: " + vgwSkip)
	}
	if vgwErr != nil {
		t.Fatalf("starting versitygw: %v", vgwErr)
	}
	return vgw
}

func findVersityGW() (string, []string) {
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

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startVersityGW runs bin under a watchdog shell that kills it when our end
// of its stdin closes, which also happens if this test binary dies without
// cleaning up. A port taken between freePort and the bind is retried.
func startVersityGW(bin string) (*versityGW, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		g, err := startVersityGWOnce(bin)
		if err == nil {
			return g, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startVersityGWOnce(bin string) (*versityGW, error) {
	port, err := freePort()
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
	// reaches EOF: when stop closes it, or when this process dies.
	const watchdog = `"$0" "$@" & pid=$!; read _ignored; kill $pid 2>/dev/null; wait $pid; rm -rf "$TAPEDECK_VGW_TMP"`
	cmd := exec.Command("sh", append([]string{"-c", watchdog, bin}, args...)...)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+vgwAccessKey, "ROOT_SECRET_KEY="+vgwSecretKey,
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
	g := &versityGW{endpoint: endpoint, cmd: cmd, stdin: stdin, exited: exited, dir: dir, out: out}
	g.client, err = minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(vgwAccessKey, vgwSecretKey, "")})
	if err != nil {
		g.stop()
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
			g.stop()
			return nil, fmt.Errorf("versitygw %s exited: %s", strings.Join(args, " "), out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			g.stop()
			return nil, fmt.Errorf("versitygw on %s not answering after 30s (last error %v): %s", endpoint, err, out.String())
		}
	}
}

func (g *versityGW) stop() {
	g.stdin.Close()
	select {
	case <-g.exited:
	case <-time.After(10 * time.Second):
		g.cmd.Process.Kill() // the shell; versitygw may linger
		<-g.exited
	}
	os.RemoveAll(g.dir)
}

// newBucket creates a fresh bucket for one test.
func (g *versityGW) newBucket(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("tapedeck-test-%d-%d", os.Getpid(), bucketSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.client.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket %s: %v", name, err)
	}
	return name
}

// config returns an S3Config for this server.
func (g *versityGW) config(bucket string) S3Config {
	return S3Config{
		Endpoint:  g.endpoint,
		AccessKey: vgwAccessKey,
		SecretKey: vgwSecretKey,
		Bucket:    bucket,
	}
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
