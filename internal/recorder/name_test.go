package recorder

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestResolveName(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "rec")
	outside := filepath.Join(base, "outside")
	os.MkdirAll(filepath.Join(root, "sub"), 0o755)
	os.MkdirAll(outside, 0o755)
	os.Symlink(outside, filepath.Join(root, "escape"))                    // dir symlink out
	os.Symlink(filepath.Join(root, "sub"), filepath.Join(root, "in"))     // dir symlink in
	os.Symlink("../../outside/x", filepath.Join(root, "sub", "dangling")) // dangling, out
	os.Symlink("../../rec/sub", filepath.Join(outside, "back"))

	good := map[string]string{
		"foo":            filepath.Join(root, "foo"),
		"a/b/c":          filepath.Join(root, "a", "b", "c"),
		"sub/x":          filepath.Join(root, "sub", "x"),
		"in/x":           filepath.Join(root, "in", "x"),
		"in/new/deep/x":  filepath.Join(root, "in", "new", "deep", "x"),
		"name.with.dots": filepath.Join(root, "name.with.dots"),
		"...":            filepath.Join(root, "..."),
		"..x/y..":        filepath.Join(root, "..x", "y.."),
		"with space":     filepath.Join(root, "with space"),
	}
	for name, want := range good {
		got, err := ResolveName(root, name)
		if err != nil || got != want {
			t.Errorf("ResolveName(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	bad := []string{
		"", "\x00", "a\x00b", `a\b`, `..\x`, "/abs", "/", "..", "../x", "a/../b", "a/..", "bad\xffname", "d\xc3/x",
		"a//b", "a/", "./a", "a/./b", ".", "escape/x", "escape", "escape/new/dir/x", "sub/dangling",
		"sub/dangling/x",
	}
	for _, name := range bad {
		if got, err := ResolveName(root, name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("ResolveName(%q) = %q, %v; want ErrInvalidName", name, got, err)
		}
	}
	// Nothing was created.
	for _, p := range []string{"foo", "a", "in/new"} {
		if exists(filepath.Join(root, p)) {
			t.Errorf("%s created", p)
		}
	}
	// A root that is itself a symlink works.
	link := filepath.Join(base, "rootlink")
	os.Symlink(root, link)
	if got, err := ResolveName(link, "sub/x"); err != nil || got != filepath.Join(link, "sub", "x") {
		t.Errorf("symlinked root: %q, %v", got, err)
	}
	// A root that does not exist yet.
	if _, err := ResolveName(filepath.Join(base, "later"), "x/y"); err != nil {
		t.Errorf("missing root: %v", err)
	}
}

func FuzzResolveName(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../x", "a//b", "/x", `a\b`, "..."} {
		f.Add(s)
	}
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, name string) {
		p, err := ResolveName(root, name)
		if err != nil {
			if !errors.Is(err, ErrInvalidName) {
				t.Fatalf("%q: error %v not ErrInvalidName", name, err)
			}
			return
		}
		rel, rerr := filepath.Rel(root, p)
		if rerr != nil || rel == "." || rel == ".." || len(rel) >= 3 && rel[:3] == "../" || filepath.IsAbs(rel) {
			t.Fatalf("%q resolved to %q outside %q", name, p, root)
		}
	})
}
