package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWritableDir: a data directory that exists, or whose nearest existing
// parent is a writable directory, passes; one under a regular file is
// named as such.
func TestWritableDir(t *testing.T) {
	base := t.TempDir()
	if err := writableDir(base); err != nil {
		t.Errorf("existing directory: %v", err)
	}
	if err := writableDir(filepath.Join(base, "new", "deeper")); err != nil {
		t.Errorf("creatable directory: %v", err)
	}
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	if err := writableDir(filepath.Join(file, "data")); err == nil || !strings.Contains(err.Error(), file+" is not a directory") {
		t.Errorf("under a file: %v", err)
	}
	if os.Geteuid() != 0 { // root writes everywhere
		ro := filepath.Join(base, "ro")
		os.Mkdir(ro, 0o500)
		if err := writableDir(filepath.Join(ro, "data")); err == nil || !strings.Contains(err.Error(), "is not writable by this user") {
			t.Errorf("under a read-only directory: %v", err)
		}
	}
}
