// Package packaging holds tapedeck's systemd unit and container build; its
// tests check them with the real tools.
package packaging

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

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
