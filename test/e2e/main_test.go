package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tapedeck/tapedeck/internal/testutil"
)

// TestMain starts the builds of the programs some tests run (tapedeck as
// a process of its own, test/goari) before the first test, when the whole
// package runs (no -run): they compile while the early tests wait on their
// calls' audio, instead of on the first test that needs them (a minute of
// a cold build cache). The builds' directory is removed at the end.
func TestMain(m *testing.M) {
	flag.Parse()
	if flag.Lookup("test.run").Value.String() == "" {
		go tapedeckBuild()
		go goAriBuild()
	}
	code := m.Run()
	if dir, err := buildDir(); err == nil {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// buildDir is the directory of the tests' builds, made once.
var buildDir = sync.OnceValues(func() (string, error) {
	return os.MkdirTemp("", "tapedeck-e2e-bin")
})

// tapedeckBuild builds cmd/tapedeck once; callers wait for the build.
var tapedeckBuild = sync.OnceValues(func() (string, error) {
	dir, err := buildDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "tapedeck")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/tapedeck").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/tapedeck: %v\n%s", err, out)
	}
	return bin, nil
})

// tapedeckBin is the path of cmd/tapedeck built for the tests that need a
// process of its own (to be killed).
func tapedeckBin(t *testing.T) string {
	t.Helper()
	bin, err := tapedeckBuild()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// goAriBuild builds test/goari, a CyCoreSystems/ari v5 application in its
// own Go module (so the product's go.mod never holds ari/v5), once.
var goAriBuild = sync.OnceValues(func() (string, error) {
	dir, err := buildDir()
	if err != nil {
		return "", err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "goari")
	cmd := exec.Command(goBin, "build", "-o", bin, ".")
	cmd.Dir = filepath.Join("..", "goari")
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly -buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build test/goari (CyCoreSystems/ari/v5 v5.3.0 from the module proxy): %v\n%s", err, out)
	}
	return bin, nil
})

// buildGoAri is the path of test/goari's executable. It needs the Go
// module proxy, or a module cache holding ari/v5 v5.3.0, the first time.
func buildGoAri(t *testing.T) string {
	t.Helper()
	bin, err := goAriBuild()
	if err != nil {
		testutil.SkipOrFail(t, "%v", err)
	}
	return bin
}
