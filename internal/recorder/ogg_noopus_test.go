//go:build !opus || !cgo

package recorder

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestOggUnavailable: without -tags opus, ogg is a known format that answers
// the 422-style UnavailableError saying how to enable it, and Create leaves
// nothing behind.
func TestOggUnavailable(t *testing.T) {
	const want = "ogg (Opus) needs libopus: build with -tags opus and libopus-dev (Debian: apt-get install libopus-dev)"
	if opusInProcess {
		t.Fatal("opusInProcess without -tags opus")
	}
	check := func(what string, err error) {
		t.Helper()
		var ue *UnavailableError
		if !errors.As(err, &ue) || !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrUnknownFormat) {
			t.Fatalf("%s: %v", what, err)
		}
		if ue.Format != "ogg" || err.Error() != want {
			t.Errorf("%s: format %q, message %q", what, ue.Format, err)
		}
	}
	_, err := Lookup("ogg")
	check("Lookup(ogg)", err)
	_, err = Lookup("OGG")
	check("Lookup(OGG)", err)
	dir := t.TempDir()
	path := filepath.Join(dir, "x.ogg")
	_, err = Create(path, Format{Name: "ogg"}, Fail)
	check("Create", err)
	if exists(path) || exists(InProgressMarker(path)) {
		t.Error("Create left a file or marker")
	}
	f, err := os.Create(filepath.Join(dir, "y.ogg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = NewWith(f, Format{Name: "ogg"})
	check("NewWith", err)
	if _, err := newOpusEncoder(); err == nil {
		t.Error("newOpusEncoder without -tags opus")
	}
	if f, ok := ByExt("ogg"); !ok || f.AppendOK {
		t.Errorf("ByExt(ogg) = %+v, %v", f, ok)
	}
}
