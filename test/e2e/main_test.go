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
// package runs (no -run, -skip or -list): they compile while the early
// tests wait on their calls' audio, instead of on the first test that needs
// them (a minute of a cold build cache). The builds' directory is removed
// at the end.
func TestMain(m *testing.M) {
	flag.Parse()
	whole := true
	for _, f := range []string{"test.run", "test.skip", "test.list"} {
		if fl := flag.Lookup(f); fl != nil && fl.Value.String() != "" {
			whole = false
		}
	}
	if whole {
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

// goBuild returns a function that builds the program in dir (relative to
// test/e2e) into the tests' build directory as name, once, with env added
// to the environment; callers wait for the build.
func goBuild(name, dir string, env ...string) func() (string, error) {
	return sync.OnceValues(func() (string, error) {
		bdir, err := buildDir()
		if err != nil {
			return "", err
		}
		goBin, err := exec.LookPath("go")
		if err != nil {
			return "", err
		}
		bin := filepath.Join(bdir, name)
		cmd := exec.Command(goBin, "build", "-o", bin, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", filepath.Join("test/e2e", dir), err, out)
		}
		return bin, nil
	})
}

// tapedeckBuild builds cmd/tapedeck.
var tapedeckBuild = goBuild("tapedeck", "../../cmd/tapedeck")

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
// own Go module (so the product's go.mod never holds ari/v5).
var goAriBuild = goBuild("goari", "../goari", "GOFLAGS=-mod=readonly -buildvcs=false")

// buildGoAri is the path of test/goari's executable. It needs the Go
// module proxy, or a module cache holding ari/v5 v5.3.0, the first time.
func buildGoAri(t *testing.T) string {
	t.Helper()
	bin, err := goAriBuild()
	if err != nil {
		testutil.SkipOrFail(t, "%v (test/goari needs CyCoreSystems/ari/v5 v5.3.0 from the module proxy)", err)
	}
	return bin
}
