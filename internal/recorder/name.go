package recorder

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// ResolveName returns the recording file path, without extension, for the
// ARI recording name under root. "/" in name makes subdirectories. Names that
// are empty, not valid UTF-8, absolute, contain NUL or "\", have empty, "." or ".." segments,
// or that resolve through existing symlinks to a place outside root are
// rejected with ErrInvalidName. Nothing is created.
func ResolveName(root, name string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	if root == "" {
		return "", fmt.Errorf("%w: empty recordings root", ErrInvalidName)
	}
	p := filepath.Join(root, filepath.FromSlash(name))
	realRoot, err := resolveExisting(root)
	if err != nil {
		return "", err
	}
	realPath, err := resolveExisting(p)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrInvalidName, name, err)
	}
	if !within(realRoot, realPath) {
		return "", fmt.Errorf("%w: %q resolves outside the recordings root", ErrInvalidName, name)
	}
	return p, nil
}

func checkName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: %q: %s", ErrInvalidName, name, why)
	}
	switch {
	case name == "":
		return bad("empty")
	case strings.IndexByte(name, 0) >= 0:
		return bad("contains NUL")
	case strings.IndexByte(name, '\\') >= 0:
		return bad(`contains "\"`)
	case strings.HasPrefix(name, "/"):
		return bad("absolute path")
	case !utf8.ValidString(name):
		// The APIs speak JSON, which cannot carry these bytes: the name
		// could never be given back to address the recording.
		return bad("not valid UTF-8")
	}
	for _, seg := range strings.Split(name, "/") {
		switch seg {
		case "":
			return bad("empty path segment")
		case ".", "..":
			return bad(fmt.Sprintf("%q path segment", seg))
		}
	}
	return nil
}

// resolveExisting evaluates symlinks in the deepest existing ancestor of p
// (p included) and appends the rest, giving an absolute, clean path.
func resolveExisting(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	rest := ""
	cur := abs
	for {
		_, err := os.Lstat(cur)
		if err == nil {
			real, err := filepath.EvalSymlinks(cur)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					// A dangling symlink: its target decides. Treat it as
					// escaping unless the target is inside after all.
					target, lerr := os.Readlink(cur)
					if lerr != nil {
						return "", err
					}
					if !filepath.IsAbs(target) {
						target = filepath.Join(filepath.Dir(cur), target)
					}
					real, err = resolveExisting(target)
					if err != nil {
						return "", err
					}
				} else {
					return "", err
				}
			}
			return filepath.Join(real, rest), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return filepath.Join(cur, rest), nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

func within(root, p string) bool {
	if p == root {
		return true
	}
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
