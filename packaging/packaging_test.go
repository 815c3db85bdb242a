// Package packaging holds tapedeck's systemd unit and container build; its
// tests check them with the real tools.
package packaging

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil"
)

// TestSystemdUnitVerifies: systemd-analyze verify accepts the unit without
// a word (with ExecStart pointed at a real binary: verify checks that it is
// executable), and the unit drains on stop and reloads with SIGHUP.
func TestSystemdUnitVerifies(t *testing.T) {
	sa := testutil.RequireTool(t, "systemd-analyze")
	unit, err := os.ReadFile("tapedeck.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecStart=/usr/local/bin/tapedeck serve ", "ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGTERM", "KillMode=mixed", "TimeoutStopSec=90", "UMask=0077", "StateDirectoryMode=0700"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tapedeck")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/tapedeck").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	path := filepath.Join(dir, "tapedeck.service")
	os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/tapedeck", bin)), 0o644)
	out, err := exec.Command(sa, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestContainerImage builds the image with packaging/container/build.sh
// (buildah, FROM scratch) and checks its configuration: the binary as
// entrypoint, serve, a non-root user, the /data volume, the listeners on all
// addresses, SIGTERM to stop, a health check that runs `tapedeck health`
// (/readyz), the version stamped; the image holds the binary and /data only.
func TestContainerImage(t *testing.T) {
	testutil.RequireTool(t, "buildah")
	out := filepath.Join(t.TempDir(), "image.tar")
	cmd := exec.Command("bash", "container/build.sh", out)
	cmd.Env = append(os.Environ(), "VERSION=7.7.7-test", "COMMIT=feedface", "BUILDAH_ARGS=--storage-driver vfs")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, b)
	}
	files := readTar(t, out)
	var manifest []struct {
		Config string
		Layers []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("manifest.json: %v %s", err, files["manifest.json"])
	}
	var img struct {
		Config struct {
			User        string
			Entrypoint  []string
			Cmd         []string
			Env         []string
			Volumes     map[string]struct{}
			StopSignal  string
			Labels      map[string]string
			Healthcheck struct{ Test []string }
		} `json:"config"`
	}
	if err := json.Unmarshal(files[manifest[0].Config], &img); err != nil {
		t.Fatalf("image config: %v", err)
	}
	c := img.Config
	if c.User != "65532:65532" || !slices.Equal(c.Entrypoint, []string{"/tapedeck"}) || !slices.Equal(c.Cmd, []string{"serve"}) || c.StopSignal != "SIGTERM" {
		t.Errorf("user %q entrypoint %q cmd %q stop %q", c.User, c.Entrypoint, c.Cmd, c.StopSignal)
	}
	if _, ok := c.Volumes["/data"]; !ok {
		t.Errorf("volumes %v", c.Volumes)
	}
	for _, e := range []string{"TAPEDECK_DATA_DIR=/data", "TAPEDECK_HTTP_LISTEN=0.0.0.0:8088", "TAPEDECK_SIP_LISTEN=0.0.0.0:5060"} {
		if !slices.Contains(c.Env, e) {
			t.Errorf("env lacks %s: %v", e, c.Env)
		}
	}
	if !slices.Equal(c.Healthcheck.Test, []string{"CMD", "/tapedeck", "health"}) {
		t.Errorf("health check %q", c.Healthcheck.Test)
	}
	if c.Labels["org.opencontainers.image.version"] != "7.7.7-test" || c.Labels["org.opencontainers.image.revision"] != "feedface" {
		t.Errorf("labels %v", c.Labels)
	}
	// The layer: the static binary and /data, nothing else (no base image).
	var names []string
	for _, l := range manifest[0].Layers {
		for name, hdr := range readTarHeaders(t, files[l]) {
			names = append(names, name)
			if name == "tapedeck" && hdr.Mode&0o111 == 0 {
				t.Errorf("/tapedeck not executable: %o", hdr.Mode)
			}
			if name == "data/" && (hdr.Uid != 65532 || hdr.Mode&0o777 != 0o700) {
				t.Errorf("/data: uid %d mode %o", hdr.Uid, hdr.Mode)
			}
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"data/", "tapedeck"}) {
		t.Errorf("image files: %v", names)
	}
	checkOCIArchive(t, strings.TrimSuffix(out, ".tar")+".oci.tar")
	startImage(t, out)
}

// checkOCIArchive: the OCI archive beside the Docker one holds the same
// image configuration (but the health check, which OCI's has no field for).
func checkOCIArchive(t *testing.T, path string) {
	files := readTar(t, path)
	var index struct{ Manifests []struct{ Digest string } }
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("OCI index.json: %v %s", err, files["index.json"])
	}
	blob := func(digest string) []byte { return files["blobs/"+strings.Replace(digest, ":", "/", 1)] }
	var manifest struct {
		MediaType string
		Config    struct{ Digest string }
	}
	if err := json.Unmarshal(blob(index.Manifests[0].Digest), &manifest); err != nil {
		t.Fatalf("OCI manifest: %v", err)
	}
	var img struct {
		Config struct {
			User       string
			Entrypoint []string
			Cmd        []string
			Volumes    map[string]struct{}
		} `json:"config"`
	}
	if err := json.Unmarshal(blob(manifest.Config.Digest), &img); err != nil {
		t.Fatalf("OCI image config: %v", err)
	}
	c := img.Config
	if manifest.MediaType != "application/vnd.oci.image.manifest.v1+json" || c.User != "65532:65532" ||
		!slices.Equal(c.Entrypoint, []string{"/tapedeck"}) || !slices.Equal(c.Cmd, []string{"serve"}) {
		t.Errorf("OCI image: %s, user %q entrypoint %q cmd %q", manifest.MediaType, c.User, c.Entrypoint, c.Cmd)
	}
	if _, ok := c.Volumes["/data"]; !ok {
		t.Errorf("OCI volumes %v", c.Volumes)
	}
}

// startImage runs the image from the Docker archive with buildah (chroot
// isolation: podman and crun cannot set their rlimits and cgroups in the
// containers these tests run in), sharing the host's network on free
// loopback ports, and waits for /readyz to answer 200; then the image's
// health check command succeeds against it.
func startImage(t *testing.T, archive string) {
	bargs := []string{"--storage-driver", "vfs"}
	from, err := exec.Command("buildah", append(bargs, "from", "docker-archive:"+archive)...).CombinedOutput()
	if err != nil {
		t.Fatalf("buildah from: %v\n%s", err, from)
	}
	ctr := strings.TrimSpace(string(from[strings.LastIndexByte(strings.TrimSpace(string(from)), '\n')+1:]))
	imageID, _ := exec.Command("buildah", append(bargs, "inspect", "--format", "{{.FromImageID}}", ctr)...).Output()
	t.Cleanup(func() {
		exec.Command("buildah", append(bargs, "rm", ctr)...).Run()
		if id := strings.TrimSpace(string(imageID)); id != "" {
			exec.Command("buildah", append(bargs, "rmi", id)...).Run()
		}
	})
	// SIP listens on UDP and TCP (and TLS on the next port): a port free
	// for UDP alone was once taken on TCP by a parallel test. The ports
	// come from testutil's range, outside the kernel's ephemeral ones.
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreeTCPPort(t))
	sipAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreeSIPPort(t))
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 12)
	env := []string{"TAPEDECK_HTTP_LISTEN=" + httpAddr, "TAPEDECK_SIP_LISTEN=" + sipAddr, "TAPEDECK_ARI_USER=app:secret",
		fmt.Sprintf("TAPEDECK_RTP_PORTS=%d-%d", rtpLo, rtpHi)}
	run := func(ctx context.Context, args ...string) *exec.Cmd {
		a := append(slices.Clone(bargs), "run", "--isolation", "chroot", "--network", "host")
		for _, e := range env {
			a = append(a, "--env", e)
		}
		cmd := exec.CommandContext(ctx, "buildah", append(append(a, ctr), args...)...)
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 10 * time.Second
		return cmd
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := run(ctx, "/tapedeck", "serve") // the entrypoint and command (buildah run takes no default)
	var log lockedBuffer
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = srv.Wait(); close(exited) }()
	t.Cleanup(func() {
		cancel()
		<-exited
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			t.Fatalf("the image's tapedeck exited before /readyz answered: %v\n%s", exitErr, log.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz of the image's tapedeck: no 200 within 60 s\n%s", log.String())
		}
	}
	if !strings.Contains(log.String(), "data=/data") {
		t.Errorf("the image's tapedeck does not keep its data in /data:\n%s", log.String())
	}
	hctx, hcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer hcancel()
	if out, err := run(hctx, "/tapedeck", "health").CombinedOutput(); err != nil {
		t.Errorf("the image's health check against it: %v\n%s", err, out)
	}
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func readTar(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = b
	}
}

func readTarHeaders(t *testing.T, layer []byte) map[string]*tar.Header {
	t.Helper()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(strings.NewReader(string(layer)))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("layer: %v", err)
		}
		out[strings.TrimPrefix(h.Name, "./")] = h
	}
}
