package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Local stores objects as files under a root directory: key "a/b.wav" is
// the file <root>/a/b.wav. Content types are not stored; Reader.ContentType
// is guessed from the key's extension (ContentTypeFor). Delete removes only
// the file, never the (possibly empty) directories above it.
type Local struct {
	root string // absolute, cleaned
}

var _ Store = (*Local)(nil)

// rename is os.Rename; a variable so tests can force the cross-device path.
var rename = os.Rename

// NewLocal returns a Local rooted at dir, creating dir if needed.
func NewLocal(dir string) (*Local, error) {
	if dir == "" {
		return nil, errors.New("blob: local store needs a directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob: local root: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("blob: local root: %w", err)
	}
	return &Local{root: abs}, nil
}

// Root returns the absolute root directory.
func (l *Local) Root() string { return l.root }

// Path returns the file path of key (after validating it).
func (l *Local) Path(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	return filepath.Join(l.root, filepath.FromSlash(key)), nil
}

// Put moves the file at src to key's path (rename; across file systems a
// copy that is fsynced before src is removed). If src already is that path
// the file is left in place. The SHA-256 is computed from the stored file.
func (l *Local) Put(ctx context.Context, key, src, contentType string) (Object, error) {
	dst, err := l.Path(key)
	if err != nil {
		return Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return Object{}, err
	}
	sfi, err := os.Stat(src)
	if err != nil {
		return Object{}, fmt.Errorf("blob: put %s: %w", key, err)
	}
	if !sfi.Mode().IsRegular() {
		return Object{}, fmt.Errorf("blob: put %s: %s is not a regular file", key, src)
	}
	if dfi, err := os.Stat(dst); err == nil && os.SameFile(sfi, dfi) {
		return l.stat(ctx, key, dst)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return Object{}, fmt.Errorf("blob: put %s: %w", key, err)
	}
	err = rename(src, dst)
	if errors.Is(err, syscall.EXDEV) {
		var sum string
		var n int64
		sum, n, err = copyFile(ctx, src, dst)
		if err == nil {
			if rerr := os.Remove(src); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				return Object{}, fmt.Errorf("blob: put %s: stored, but removing %s: %w", key, src, rerr)
			}
			return Object{Key: key, Size: n, SHA256: sum, URI: dst}, nil
		}
	}
	if err != nil {
		return Object{}, fmt.Errorf("blob: put %s: %w", key, err)
	}
	syncDir(filepath.Dir(dst))
	return l.stat(ctx, key, dst)
}

// copyFile copies src to dst through a temporary file in dst's directory,
// fsyncs it and renames it into place; it returns the SHA-256 and size.
func copyFile(ctx context.Context, src, dst string) (sum string, n int64, err error) {
	in, err := os.Open(src)
	if err != nil {
		return "", 0, err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return "", 0, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err = io.Copy(io.MultiWriter(tmp, h), ctxReader{ctx, in})
	if err != nil {
		return "", 0, err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return "", 0, err
	}
	if err = tmp.Sync(); err != nil {
		return "", 0, err
	}
	if err = tmp.Close(); err != nil {
		return "", 0, err
	}
	if err = os.Rename(tmp.Name(), dst); err != nil {
		return "", 0, err
	}
	syncDir(filepath.Dir(dst))
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// syncDir fsyncs a directory so a rename in it is durable (best effort).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Stat describes key's file, hashing it to fill SHA256.
func (l *Local) Stat(ctx context.Context, key string) (Object, error) {
	p, err := l.Path(key)
	if err != nil {
		return Object{}, err
	}
	return l.stat(ctx, key, p)
}

func (l *Local) stat(ctx context.Context, key, p string) (Object, error) {
	f, err := l.openFile(key, p)
	if err != nil {
		return Object{}, err
	}
	defer f.Close()
	sum, n, err := hashReader(ctx, f)
	if err != nil {
		return Object{}, fmt.Errorf("blob: stat %s: %w", key, err)
	}
	return Object{Key: key, Size: n, SHA256: sum, URI: p}, nil
}

// openFile opens p for reading, mapping absence (or a directory) to
// ErrNotFound.
func (l *Local) openFile(key, p string) (*os.File, error) {
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
		}
		return nil, fmt.Errorf("blob: open %s: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blob: open %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %s (not a regular file)", ErrNotFound, key)
	}
	return f, nil
}

// Open opens key's file.
func (l *Local) Open(ctx context.Context, key string) (Reader, error) {
	p, err := l.Path(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := l.openFile(key, p)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blob: open %s: %w", key, err)
	}
	return &localReader{File: f, size: fi.Size(), mod: fi.ModTime(), ctype: ContentTypeFor(key)}, nil
}

type localReader struct {
	*os.File
	size  int64
	mod   time.Time
	ctype string
}

func (r *localReader) Size() int64         { return r.size }
func (r *localReader) ModTime() time.Time  { return r.mod }
func (r *localReader) ContentType() string { return r.ctype }

// Delete removes key's file; ErrNotFound if there is none.
func (l *Local) Delete(ctx context.Context, key string) error {
	p, err := l.Path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("%w: %s", ErrNotFound, key)
		}
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("%w: %s (a directory)", ErrNotFound, key)
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s", ErrNotFound, key)
		}
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	return nil
}
