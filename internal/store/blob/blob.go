// Package blob stores finished recording files: on local disk (Local) or in
// S3-compatible object storage (S3). Both implement Store.
//
// Keys are slash-separated relative paths such as "AC123/RE456.wav". A key is
// rejected with ErrInvalidKey when it is empty, longer than 1024 bytes,
// absolute (leading "/"), contains a NUL byte or a backslash, or has an empty
// ("a//b", trailing "/"), "." or ".." segment. The same key names the same
// object in every implementation.
//
// Missing objects are reported as ErrNotFound (test with errors.Is) by Open,
// Stat and Delete. Delete is therefore not silently idempotent: deleting a
// key that does not exist returns ErrNotFound, which callers that only want
// "make sure it is gone" treat as success.
package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"strings"
	"time"
)

var (
	// ErrNotFound reports that no object exists under the key.
	ErrNotFound = errors.New("blob: object not found")
	// ErrInvalidKey reports a key that is not a clean relative slash path.
	ErrInvalidKey = errors.New("blob: invalid key")
)

// MaxKeyLen is the longest key accepted (S3's limit on object names; for S3
// the configured prefix counts too).
const MaxKeyLen = 1024

// Store keeps finished recording files under keys.
type Store interface {
	// Put stores the finished local file at path under key, replacing any
	// object already there, and returns its description (SHA256 is computed
	// from the file). Local moves the file; S3 uploads it and, unless
	// configured KeepLocal, removes the local file once the upload is
	// verified. When Put fails, the local file is left where it was.
	Put(ctx context.Context, key, path, contentType string) (Object, error)
	// Open opens the object for reading. The Reader supports Seek, so it can
	// be handed to http.ServeContent for Range requests. The caller closes it.
	// For S3, reads are lazy ranged GETs made with ctx, so ctx must stay live
	// while the Reader is used (pass the HTTP request's context).
	Open(ctx context.Context, key string) (Reader, error)
	// Delete removes the object. A missing object yields ErrNotFound.
	Delete(ctx context.Context, key string) error
	// Stat describes the object without reading it (Local hashes the file
	// to fill SHA256; S3 reads the hash stored as metadata by Put).
	Stat(ctx context.Context, key string) (Object, error)
}

// Reader reads one stored object.
type Reader interface {
	io.ReadSeekCloser
	// Size is the object's length in bytes.
	Size() int64
	// ModTime is when the object was last written.
	ModTime() time.Time
	// ContentType is the object's MIME type ("" when unknown).
	ContentType() string
}

// Object describes a stored object.
type Object struct {
	Key    string
	Size   int64
	SHA256 string // lowercase hex; "" if the object carries no hash (S3 objects not written by Put)
	// URI locates the object: "s3://bucket/prefix/key" for S3, the absolute
	// file path for Local.
	URI string
}

// ValidateKey returns nil if key is acceptable to every Store, or an error
// wrapping ErrInvalidKey.
func ValidateKey(key string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, why)
	}
	switch {
	case key == "":
		return bad("empty")
	case len(key) > MaxKeyLen:
		return bad("too long")
	case strings.HasPrefix(key, "/"):
		return bad("absolute")
	case strings.IndexByte(key, 0) >= 0:
		return bad("contains NUL")
	case strings.IndexByte(key, '\\') >= 0:
		return bad("contains a backslash")
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return bad("empty path segment")
		case ".", "..":
			return bad("contains a " + seg + " segment")
		}
	}
	return nil
}

// ContentTypeFor guesses a MIME type from key's extension, knowing the
// recording formats even where the system MIME tables do not.
func ContentTypeFor(key string) string {
	ext := strings.ToLower(path.Ext(key))
	switch ext {
	case ".wav":
		return "audio/wav"
	case ".mp3":
		return "audio/mpeg"
	case ".ogg", ".opus":
		return "audio/ogg"
	case ".flac":
		return "audio/flac"
	case "":
		return ""
	}
	return mime.TypeByExtension(ext)
}

// hashReader returns the hex SHA-256 of r's remaining bytes and their count.
func hashReader(ctx context.Context, r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx, r})
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// ctxReader fails reads once ctx is done, so long copies can be cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
