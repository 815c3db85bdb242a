package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// MinPartSize is the smallest multipart part S3 accepts (except the last).
const MinPartSize = 5 << 20

// sha256MetaKey is the user metadata (x-amz-meta-sha256) holding the hex
// SHA-256 of the object's content, written by Put.
const sha256MetaKey = "sha256"

// S3Config configures an S3 store.
type S3Config struct {
	Endpoint  string // host:port, no scheme
	AccessKey string
	SecretKey string
	Bucket    string
	Region    string // "" lets the client discover it (us-east-1 for most servers)
	UseSSL    bool
	// Prefix is put before every key ("recordings" → "recordings/AC…/RE….wav").
	// Leading and trailing slashes are ignored.
	Prefix string
	// PartSize is both the multipart threshold and the part size in bytes:
	// files larger than PartSize are uploaded in parts of PartSize. 0 means
	// the client's default (16 MiB); otherwise it must be at least
	// MinPartSize (5 MiB).
	PartSize uint64
	// KeepLocal keeps the local file after a verified upload; by default Put
	// removes it.
	KeepLocal bool
	// CreateBucket makes NewS3 create Bucket when it does not exist.
	CreateBucket bool
}

// S3 stores objects in an S3-compatible bucket through minio-go. Put uploads
// the file, hashing it as it is sent, stores its SHA-256 as user metadata
// (x-amz-meta-sha256, set by a server-side copy of the object onto itself
// once the hash is known) and then verifies the upload by a HEAD: the size
// and the stored hash must match, or the object is deleted again and Put
// fails.
type S3 struct {
	client *minio.Client
	cfg    S3Config
	prefix string // "" or ending in "/"
}

var _ Store = (*S3)(nil)

// NewS3 connects an S3 store. With cfg.CreateBucket it creates the bucket if
// missing (within 30 seconds); otherwise it does no network I/O.
func NewS3(cfg S3Config) (*S3, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return NewS3Context(ctx, cfg)
}

// NewS3Context is NewS3 with a context for the bucket creation.
func NewS3Context(ctx context.Context, cfg S3Config) (*S3, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("blob: s3: no endpoint")
	}
	if strings.Contains(cfg.Endpoint, "://") {
		return nil, fmt.Errorf("blob: s3: endpoint %q must be host:port without a scheme (set UseSSL for https)", cfg.Endpoint)
	}
	if err := s3utils.CheckValidBucketName(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("blob: s3: bucket %q: %w", cfg.Bucket, err)
	}
	if cfg.PartSize != 0 && cfg.PartSize < MinPartSize {
		return nil, fmt.Errorf("blob: s3: part size %d below the minimum %d", cfg.PartSize, MinPartSize)
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		if err := ValidateKey(prefix); err != nil {
			return nil, fmt.Errorf("blob: s3: prefix: %w", err)
		}
		prefix += "/"
	}
	creds := credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	if cfg.AccessKey == "" && cfg.SecretKey == "" {
		// No keys configured: the usual chain, as the AWS tools look:
		// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, MINIO_ACCESS_KEY/...,
		// ~/.aws/credentials (AWS_PROFILE), then the instance's IAM role.
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{}, &credentials.EnvMinio{}, &credentials.FileAWSCredentials{}, &credentials.IAM{},
		})
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  creds,
		Secure: cfg.UseSSL,
		Region: cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("blob: s3: %w", err)
	}
	s := &S3{client: client, cfg: cfg, prefix: prefix}
	if cfg.CreateBucket {
		if err := s.ensureBucket(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *S3) ensureBucket(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.cfg.Bucket)
	if err != nil {
		return fmt.Errorf("blob: s3: bucket %s: %w", s.cfg.Bucket, err)
	}
	if ok {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.cfg.Bucket, minio.MakeBucketOptions{Region: s.cfg.Region})
	if err != nil {
		switch minio.ToErrorResponse(err).Code {
		case "BucketAlreadyOwnedByYou", "BucketAlreadyExists":
			// created concurrently
		default:
			return fmt.Errorf("blob: s3: create bucket %s: %w", s.cfg.Bucket, err)
		}
	}
	return nil
}

// Reachable asks the server whether the bucket exists, which proves the
// endpoint answers and accepts the credentials; a missing bucket is fine
// (a store opened with CreateBucket makes it). Nothing is changed.
func (s *S3) Reachable(ctx context.Context) error {
	if _, err := s.client.BucketExists(ctx, s.cfg.Bucket); err != nil {
		if r := minio.ToErrorResponse(err); r.Code != "" {
			return fmt.Errorf("bucket %s: %s (%s)", s.cfg.Bucket, r.Message, r.Code)
		}
		return fmt.Errorf("not reachable: %w", err)
	}
	return nil
}

// objectName maps a key to the object name in the bucket.
func (s *S3) objectName(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	name := s.prefix + key
	if len(name) > MaxKeyLen {
		return "", fmt.Errorf("%w %q: too long with prefix %q", ErrInvalidKey, key, s.prefix)
	}
	return name, nil
}

func (s *S3) uri(name string) string { return "s3://" + s.cfg.Bucket + "/" + name }

// Put uploads the file at src (multipart above PartSize), reading it once:
// the SHA-256 is computed from the upload's own reads and then stored as
// the object's x-amz-meta-sha256. It verifies the object (size and stored
// hash, by a HEAD) and, unless KeepLocal, removes src. On any failure src is kept. If the upload
// succeeded but removing src failed, Put returns the Object and an error.
func (s *S3) Put(ctx context.Context, key, src, contentType string) (Object, error) {
	return s.put(ctx, key, src, contentType, !s.cfg.KeepLocal)
}

// PutKeepingLocal is Put leaving src in place whatever KeepLocal says: the
// caller removes it (RemovesLocal) once nothing reads it there any more,
// e.g. once the catalog row points at the object.
func (s *S3) PutKeepingLocal(ctx context.Context, key, src, contentType string) (Object, error) {
	return s.put(ctx, key, src, contentType, false)
}

// RemovesLocal says whether Put removes the local file (KeepLocal unset).
func (s *S3) RemovesLocal() bool { return !s.cfg.KeepLocal }

func (s *S3) put(ctx context.Context, key, src, contentType string, remove bool) (Object, error) {
	name, err := s.objectName(key)
	if err != nil {
		return Object{}, err
	}
	f, err := openUpload(src)
	if err != nil {
		return Object{}, fmt.Errorf("blob: put %s: %w", key, err)
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return Object{}, fmt.Errorf("blob: put %s: %w", key, err)
	}
	if !before.Mode().IsRegular() {
		return Object{}, fmt.Errorf("blob: put %s: %s is not a regular file", key, src)
	}
	size := before.Size()
	if contentType == "" {
		contentType = ContentTypeFor(key)
	}
	// One read of the file: the upload's own reads feed the SHA-256
	// (hashingFile), so the hash is known only once the bytes are sent.
	// It goes onto the object afterwards, by a metadata-only copy of the
	// object onto itself (done by the server; nothing is read here again).
	hf := &hashingFile{f: f, h: sha256.New()}
	// hashingFile is an io.ReaderAt, so minio-go reads parts with ReadAt
	// and never needs to buffer the whole file; one part at a time, in
	// order, so that the hash sees the bytes in order (re-reads of a part
	// that minio-go retries are not hashed twice).
	up, err := s.client.PutObject(ctx, s.cfg.Bucket, name, hf, size, minio.PutObjectOptions{
		ContentType: contentType,
		PartSize:    s.cfg.PartSize,
		NumThreads:  1,
	})
	if err != nil {
		return Object{}, fmt.Errorf("blob: put %s to %s: %w", key, s.uri(name), err)
	}
	// The file must not have changed under the upload, or the hash would
	// not describe the stored bytes.
	if after, err := f.Stat(); err != nil || after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		s.removeQuietly(name)
		return Object{}, fmt.Errorf("blob: put %s: %s changed during the upload; object removed", key, src)
	}
	sum, err := hf.sum(ctx)
	if err != nil {
		s.removeQuietly(name)
		return Object{}, fmt.Errorf("blob: put %s: hashing %s: %w", key, src, err)
	}
	_, err = s.client.CopyObject(ctx, minio.CopyDestOptions{
		Bucket: s.cfg.Bucket, Object: name, ReplaceMetadata: true, ContentType: contentType,
		UserMetadata: map[string]string{sha256MetaKey: sum},
	}, minio.CopySrcOptions{Bucket: s.cfg.Bucket, Object: name, MatchETag: up.ETag})
	if err != nil {
		s.removeQuietly(name)
		return Object{}, fmt.Errorf("blob: put %s: storing the checksum on %s: %w", key, s.uri(name), err)
	}
	if err := s.verify(ctx, name, size, sum); err != nil {
		s.removeQuietly(name)
		return Object{}, fmt.Errorf("blob: put %s: upload verification failed, object removed: %w", key, err)
	}
	obj := Object{Key: key, Size: size, SHA256: sum, URI: s.uri(name)}
	if remove {
		f.Close()
		if err := os.Remove(src); err != nil && !errors.Is(err, os.ErrNotExist) {
			return obj, fmt.Errorf("blob: put %s: uploaded, but removing local %s: %w", key, src, err)
		}
	}
	return obj, nil
}

// verify HEADs the object and checks its size and stored SHA-256.
func (s *S3) verify(ctx context.Context, name string, size int64, sum string) error {
	info, err := s.client.StatObject(ctx, s.cfg.Bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if info.Size != size {
		return fmt.Errorf("stored size %d, local size %d", info.Size, size)
	}
	if got := metaSHA256(info); got != sum {
		return fmt.Errorf("stored sha256 %q, local sha256 %q", got, sum)
	}
	return nil
}

// removeQuietly deletes a just-uploaded object that failed verification,
// with its own context so a cancelled Put still cleans up.
func (s *S3) removeQuietly(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = s.client.RemoveObject(ctx, s.cfg.Bucket, name, minio.RemoveObjectOptions{})
}

func metaSHA256(info minio.ObjectInfo) string {
	for k, v := range info.UserMetadata {
		if strings.EqualFold(k, sha256MetaKey) {
			return strings.ToLower(strings.TrimSpace(v))
		}
	}
	return ""
}

// isNotFound reports whether err is S3's "no such object".
func isNotFound(err error) bool {
	r := minio.ToErrorResponse(err)
	switch r.Code {
	case minio.NoSuchKey, "NotFound":
		return true
	case minio.NoSuchBucket:
		return false
	}
	return r.StatusCode == http.StatusNotFound
}

func (s *S3) statName(ctx context.Context, key, name string) (minio.ObjectInfo, error) {
	info, err := s.client.StatObject(ctx, s.cfg.Bucket, name, minio.StatObjectOptions{})
	if err != nil {
		if isNotFound(err) {
			return info, fmt.Errorf("%w: %s", ErrNotFound, key)
		}
		return info, fmt.Errorf("blob: stat %s: %w", s.uri(name), err)
	}
	return info, nil
}

// Stat HEADs the object; SHA256 is the x-amz-meta-sha256 stored by Put.
func (s *S3) Stat(ctx context.Context, key string) (Object, error) {
	name, err := s.objectName(key)
	if err != nil {
		return Object{}, err
	}
	info, err := s.statName(ctx, key, name)
	if err != nil {
		return Object{}, err
	}
	return Object{Key: key, Size: info.Size, SHA256: metaSHA256(info), URI: s.uri(name)}, nil
}

// Delete removes the object; ErrNotFound when it does not exist (checked
// with a HEAD first, since S3's DELETE succeeds on missing objects).
func (s *S3) Delete(ctx context.Context, key string) error {
	name, err := s.objectName(key)
	if err != nil {
		return err
	}
	if _, err := s.statName(ctx, key, name); err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.cfg.Bucket, name, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("blob: delete %s: %w", s.uri(name), err)
	}
	return nil
}

// Open HEADs the object and returns a Reader that fetches data lazily: the
// first Read after an Open or a Seek to a new offset issues one ranged GET
// from that offset to the end (If-Match the ETag seen by Open, so a replaced
// object fails rather than mixing contents). Seek itself makes no request.
func (s *S3) Open(ctx context.Context, key string) (Reader, error) {
	name, err := s.objectName(key)
	if err != nil {
		return nil, err
	}
	info, err := s.statName(ctx, key, name)
	if err != nil {
		return nil, err
	}
	return &s3Reader{
		ctx:    ctx,
		core:   minio.Core{Client: s.client},
		bucket: s.cfg.Bucket,
		name:   name,
		size:   info.Size,
		mod:    info.LastModified,
		ctype:  info.ContentType,
		etag:   info.ETag,
	}, nil
}

type s3Reader struct {
	ctx    context.Context
	core   minio.Core
	bucket string
	name   string
	size   int64
	mod    time.Time
	ctype  string
	etag   string

	off    int64         // position of the next Read
	body   io.ReadCloser // open ranged GET positioned at off, or nil
	closed bool
}

func (r *s3Reader) Size() int64         { return r.size }
func (r *s3Reader) ModTime() time.Time  { return r.mod }
func (r *s3Reader) ContentType() string { return r.ctype }

func (r *s3Reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, os.ErrClosed
	}
	if r.off >= r.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.body == nil {
		var opts minio.GetObjectOptions
		if err := opts.SetRange(r.off, r.size-1); err != nil {
			return 0, err
		}
		if r.etag != "" {
			if err := opts.SetMatchETag(strings.Trim(r.etag, `"`)); err != nil {
				return 0, err
			}
		}
		body, _, _, err := r.core.GetObject(r.ctx, r.bucket, r.name, opts)
		if err != nil {
			return 0, fmt.Errorf("blob: read s3://%s/%s at %d: %w", r.bucket, r.name, r.off, err)
		}
		r.body = body
	}
	if rest := r.size - r.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := r.body.Read(p)
	r.off += int64(n)
	if err == nil && r.off >= r.size {
		r.body.Close() // all requested bytes read; release the connection
		r.body = nil
	}
	if err == io.EOF {
		r.body.Close()
		r.body = nil
		if r.off < r.size {
			return n, fmt.Errorf("blob: read s3://%s/%s: %w at %d of %d", r.bucket, r.name, io.ErrUnexpectedEOF, r.off, r.size)
		}
		err = nil
		if n == 0 {
			err = io.EOF
		}
	}
	return n, err
}

func (r *s3Reader) Seek(offset int64, whence int) (int64, error) {
	if r.closed {
		return 0, os.ErrClosed
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, errors.New("blob: seek: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("blob: seek: negative position")
	}
	if abs != r.off && r.body != nil {
		r.body.Close()
		r.body = nil
	}
	r.off = abs
	return abs, nil
}

func (r *s3Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.body != nil {
		err := r.body.Close()
		r.body = nil
		return err
	}
	return nil
}

// uploadFile is what Put reads a file through.
type uploadFile interface {
	io.ReaderAt
	io.Closer
	Stat() (os.FileInfo, error)
}

// openUpload opens the file Put uploads (tests count its reads).
var openUpload = func(name string) (uploadFile, error) { return os.Open(name) }

// hashingFile is the file an upload reads: every byte read from it for the
// first time, in order, goes into the hash. Reads behind what is hashed
// (a retried part) are not hashed again; a read past it (parts read out of
// order) leaves a hole, which sum fills with a read of its own.
type hashingFile struct {
	f uploadFile

	mu     sync.Mutex
	h      hash.Hash
	hashed int64 // bytes [0, hashed) are in h
	off    int64 // Read and Seek's offset
}

func (hf *hashingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := hf.f.ReadAt(p, off)
	hf.mu.Lock()
	if off <= hf.hashed && off+int64(n) > hf.hashed {
		hf.h.Write(p[hf.hashed-off : n])
		hf.hashed = off + int64(n)
	}
	hf.mu.Unlock()
	return n, err
}

func (hf *hashingFile) Read(p []byte) (int, error) {
	hf.mu.Lock()
	off := hf.off
	hf.mu.Unlock()
	n, err := hf.ReadAt(p, off)
	hf.mu.Lock()
	hf.off = off + int64(n)
	hf.mu.Unlock()
	if err == nil && n == 0 && len(p) > 0 {
		err = io.EOF
	}
	return n, err
}

func (hf *hashingFile) Seek(offset int64, whence int) (int64, error) {
	hf.mu.Lock()
	defer hf.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += hf.off
	case io.SeekEnd:
		fi, err := hf.f.Stat()
		if err != nil {
			return 0, err
		}
		offset += fi.Size()
	default:
		return 0, errors.New("blob: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("blob: negative position")
	}
	hf.off = offset
	return offset, nil
}

// sum is the hex SHA-256 of the whole file: what the upload read, plus
// (only if the upload left a hole or stopped short) the rest, read here.
func (hf *hashingFile) sum(ctx context.Context) (string, error) {
	hf.mu.Lock()
	defer hf.mu.Unlock()
	if _, err := io.Copy(hf.h, ctxReader{ctx, io.NewSectionReader(hf.f, hf.hashed, 1<<62)}); err != nil {
		return "", err
	}
	return hex.EncodeToString(hf.h.Sum(nil)), nil
}
