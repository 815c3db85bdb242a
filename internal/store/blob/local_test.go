package blob

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func newLocal(t *testing.T) *Local {
	t.Helper()
	l, err := NewLocal(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLocalConformance(t *testing.T) {
	testConformance(t, func(t *testing.T) Store { return newLocal(t) })
}

func TestLocalPutFileLayoutAndURI(t *testing.T) {
	l := newLocal(t)
	src, data := writeFile(t, t.TempDir(), 321)
	obj, err := l.Put(context.Background(), "AC1/RE1.wav", src, "audio/wav")
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(l.Root(), "AC1", "RE1.wav")
	if obj.URI != want {
		t.Errorf("URI = %q, want %q", obj.URI, want)
	}
	if got, err := os.ReadFile(want); err != nil || !bytes.Equal(got, data) {
		t.Errorf("file at %s: %d bytes, %v", want, len(got), err)
	}
}

func TestLocalPutInPlace(t *testing.T) {
	l := newLocal(t)
	p := filepath.Join(l.Root(), "AC1", "RE2.wav")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	data := []byte("already where it belongs")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// The same file named by another (uncleaned) path is still in place.
	for _, src := range []string{p, filepath.Join(l.Root(), "AC1", ".", "RE2.wav")} {
		obj, err := l.Put(context.Background(), "AC1/RE2.wav", src, "audio/wav")
		if err != nil {
			t.Fatalf("Put(%s): %v", src, err)
		}
		checkObject(t, obj, "AC1/RE2.wav", data)
		if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("file after in-place Put: %q, %v", got, err)
		}
	}
}

// Across file systems os.Rename fails with EXDEV; Put then copies, fsyncs
// and removes the source.
func TestLocalPutCrossDevice(t *testing.T) {
	calls := 0
	rename = func(from, to string) error {
		calls++
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: syscall.EXDEV}
	}
	defer func() { rename = os.Rename }()

	l := newLocal(t)
	src, data := writeFile(t, t.TempDir(), 200000)
	obj, err := l.Put(context.Background(), "x/RE3.wav", src, "audio/wav")
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if calls != 1 {
		t.Errorf("rename called %d times, want 1", calls)
	}
	checkObject(t, obj, "x/RE3.wav", data)
	if _, err := os.Stat(src); !os.IsNotExist(err) {
		t.Errorf("source after cross-device Put: %v, want removed", err)
	}
	if got := readAll(t, l, "x/RE3.wav"); !bytes.Equal(got, data) {
		t.Error("copied content differs")
	}
	ents, _ := os.ReadDir(filepath.Join(l.Root(), "x"))
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
	if fi, err := os.Stat(obj.URI); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("copied file mode: %v, %v", fi.Mode(), err)
	}
}

// A Put that fails (the key's path is a directory) keeps the local file.
func TestLocalFailedPutKeepsSource(t *testing.T) {
	l := newLocal(t)
	if err := os.MkdirAll(filepath.Join(l.Root(), "busy", "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	src, data := writeFile(t, t.TempDir(), 100)
	if _, err := l.Put(context.Background(), "busy", src, "audio/wav"); err == nil {
		t.Fatal("Put onto a directory succeeded")
	}
	if got, err := os.ReadFile(src); err != nil || !bytes.Equal(got, data) {
		t.Errorf("local file after failed Put: %v", err)
	}
	// Also with the copy path.
	rename = func(from, to string) error {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: syscall.EXDEV}
	}
	defer func() { rename = os.Rename }()
	if _, err := l.Put(context.Background(), "busy", src, "audio/wav"); err == nil {
		t.Fatal("copying Put onto a directory succeeded")
	}
	if got, err := os.ReadFile(src); err != nil || !bytes.Equal(got, data) {
		t.Errorf("local file after failed copying Put: %v", err)
	}
}

func TestLocalCancelledContext(t *testing.T) {
	l := newLocal(t)
	src, _ := writeFile(t, t.TempDir(), 100)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Put(ctx, "c/RE.wav", src, "audio/wav"); err == nil {
		t.Error("Put with a cancelled context succeeded")
	}
	if _, err := os.Stat(src); err != nil {
		t.Errorf("local file after cancelled Put: %v", err)
	}
}

func TestContentTypeFor(t *testing.T) {
	for key, want := range map[string]string{
		"a/b.wav": "audio/wav", "b.WAV": "audio/wav", "c.mp3": "audio/mpeg",
		"d.ogg": "audio/ogg", "e.flac": "audio/flac", "noext": "",
	} {
		if got := ContentTypeFor(key); got != want {
			t.Errorf("ContentTypeFor(%q) = %q, want %q", key, got, want)
		}
	}
}
