package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// newStoreFunc returns a fresh, empty store for one subtest. Put must
// remove (or move away) the local source file on success.
type newStoreFunc func(t *testing.T) Store

// testConformance runs the behaviour every Store must share.
func testConformance(t *testing.T, newStore newStoreFunc) {
	ctx := context.Background()

	t.Run("PutOpenReadAll", func(t *testing.T) {
		s := newStore(t)
		src, data := writeFile(t, t.TempDir(), 64<<10+7)
		const key = "AC0123/RE0456.wav"
		start := time.Now().Add(-time.Minute)
		obj, err := s.Put(ctx, key, src, "audio/wav")
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		checkObject(t, obj, key, data)
		if _, err := os.Stat(src); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("local file after successful Put: stat err = %v, want not exist", err)
		}
		r, err := s.Open(ctx, key)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer r.Close()
		if r.Size() != int64(len(data)) {
			t.Errorf("Size() = %d, want %d", r.Size(), len(data))
		}
		if mt := r.ModTime(); mt.Before(start) || mt.After(time.Now().Add(time.Minute)) {
			t.Errorf("ModTime() = %v, want about now", mt)
		}
		if ct := r.ContentType(); ct != "audio/wav" {
			t.Errorf("ContentType() = %q, want audio/wav", ct)
		}
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("ReadAll: %v", err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes that differ from the %d put", len(got), len(data))
		}
		if n, err := r.Read(make([]byte, 10)); n != 0 || err != io.EOF {
			t.Errorf("Read at end = %d, %v; want 0, EOF", n, err)
		}
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})

	t.Run("Seek", func(t *testing.T) {
		s := newStore(t)
		src, data := writeFile(t, t.TempDir(), 10000)
		const key = "seek/RE1.wav"
		if _, err := s.Put(ctx, key, src, "audio/wav"); err != nil {
			t.Fatalf("Put: %v", err)
		}
		r, err := s.Open(ctx, key)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer r.Close()
		n := int64(len(data))
		readAt := func(whence int, off, wantPos int64, count int) {
			t.Helper()
			pos, err := r.Seek(off, whence)
			if err != nil || pos != wantPos {
				t.Fatalf("Seek(%d, %d) = %d, %v; want %d", off, whence, pos, err, wantPos)
			}
			buf := make([]byte, count)
			if _, err := io.ReadFull(r, buf); err != nil {
				t.Fatalf("read %d at %d: %v", count, wantPos, err)
			}
			if want := data[wantPos : wantPos+int64(count)]; !bytes.Equal(buf, want) {
				t.Fatalf("bytes %d-%d differ from the file's", wantPos, wantPos+int64(count)-1)
			}
		}
		readAt(io.SeekStart, 100, 100, 100) // bytes 100-199
		readAt(io.SeekCurrent, 0, 200, 50)  // continue where we were
		readAt(io.SeekCurrent, -150, 100, 10)
		readAt(io.SeekEnd, -10, n-10, 10)
		readAt(io.SeekStart, 0, 0, 10)
		readAt(io.SeekStart, 9000, 9000, 1000)
		// Seeking without reading, then only the last seek counts.
		r.Seek(5, io.SeekStart)
		r.Seek(7000, io.SeekStart)
		readAt(io.SeekCurrent, 0, 7000, 3)
		// The rest after a seek.
		if _, err := r.Seek(n-300, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(rest, data[n-300:]) {
			t.Fatalf("ReadAll after seek: %d bytes, %v", len(rest), err)
		}
		// Past the end reads EOF; a negative position is an error.
		if pos, err := r.Seek(n+100, io.SeekStart); err != nil || pos != n+100 {
			t.Fatalf("Seek past end = %d, %v", pos, err)
		}
		if k, err := r.Read(make([]byte, 4)); k != 0 || err != io.EOF {
			t.Errorf("Read past end = %d, %v; want 0, EOF", k, err)
		}
		if _, err := r.Seek(-1, io.SeekStart); err == nil {
			t.Error("Seek(-1, SeekStart) succeeded")
		}
	})

	t.Run("ServeContentRange", func(t *testing.T) {
		s := newStore(t)
		src, data := writeFile(t, t.TempDir(), 5000)
		const key = "http/RE2.wav"
		if _, err := s.Put(ctx, key, src, "audio/wav"); err != nil {
			t.Fatalf("Put: %v", err)
		}
		serve := func(rangeHdr string) *httptest.ResponseRecorder {
			r, err := s.Open(ctx, key)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer r.Close()
			req := httptest.NewRequest("GET", "/rec", nil)
			if rangeHdr != "" {
				req.Header.Set("Range", rangeHdr)
			}
			w := httptest.NewRecorder()
			w.Header().Set("Content-Type", r.ContentType())
			http.ServeContent(w, req, key, r.ModTime(), r)
			return w
		}
		w := serve("bytes=100-199")
		if w.Code != http.StatusPartialContent {
			t.Fatalf("status %d, want 206", w.Code)
		}
		if got, want := w.Header().Get("Content-Range"), "bytes 100-199/5000"; got != want {
			t.Errorf("Content-Range %q, want %q", got, want)
		}
		if !bytes.Equal(w.Body.Bytes(), data[100:200]) {
			t.Errorf("ranged body differs from file bytes 100-199")
		}
		w = serve("bytes=-20")
		if w.Code != http.StatusPartialContent || !bytes.Equal(w.Body.Bytes(), data[len(data)-20:]) {
			t.Errorf("suffix range: status %d, body %d bytes", w.Code, w.Body.Len())
		}
		w = serve("")
		if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), data) {
			t.Errorf("full GET: status %d, body %d bytes", w.Code, w.Body.Len())
		}
	})

	t.Run("StatAndSHA256", func(t *testing.T) {
		s := newStore(t)
		src, data := writeFile(t, t.TempDir(), 12345)
		const key = "stat/RE3.wav"
		put, err := s.Put(ctx, key, src, "audio/wav")
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		st, err := s.Stat(ctx, key)
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		checkObject(t, st, key, data)
		if st != put {
			t.Errorf("Stat = %+v, Put returned %+v", st, put)
		}
	})

	t.Run("EmptyFile", func(t *testing.T) {
		s := newStore(t)
		src, data := writeFile(t, t.TempDir(), 0)
		obj, err := s.Put(ctx, "empty.wav", src, "audio/wav")
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		checkObject(t, obj, "empty.wav", data)
		r, err := s.Open(ctx, "empty.wav")
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer r.Close()
		if got, err := io.ReadAll(r); err != nil || len(got) != 0 || r.Size() != 0 {
			t.Errorf("read %d bytes, err %v, Size %d; want empty", len(got), err, r.Size())
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		s := newStore(t)
		const key = "over/RE4.wav"
		src1, _ := writeFile(t, t.TempDir(), 3000)
		if _, err := s.Put(ctx, key, src1, "audio/wav"); err != nil {
			t.Fatalf("Put 1: %v", err)
		}
		src2, data2 := writeFile(t, t.TempDir(), 2000)
		obj, err := s.Put(ctx, key, src2, "audio/wav")
		if err != nil {
			t.Fatalf("Put 2: %v", err)
		}
		checkObject(t, obj, key, data2)
		if got := readAll(t, s, key); !bytes.Equal(got, data2) {
			t.Errorf("after overwrite read %d bytes, not the second file", len(got))
		}
	})

	t.Run("DeleteThenNotFound", func(t *testing.T) {
		s := newStore(t)
		src, _ := writeFile(t, t.TempDir(), 999)
		const key = "del/RE5.wav"
		if _, err := s.Put(ctx, key, src, "audio/wav"); err != nil {
			t.Fatalf("Put: %v", err)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if r, err := s.Open(ctx, key); !errors.Is(err, ErrNotFound) {
			if r != nil {
				r.Close()
			}
			t.Errorf("Open after Delete: err = %v, want ErrNotFound", err)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, ErrNotFound) {
			t.Errorf("Stat after Delete: err = %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, ErrNotFound) {
			t.Errorf("second Delete: err = %v, want ErrNotFound", err)
		}
		// A "directory" above other keys is not an object.
		src2, _ := writeFile(t, t.TempDir(), 10)
		if _, err := s.Put(ctx, "dir/sub/RE6.wav", src2, "audio/wav"); err != nil {
			t.Fatalf("Put: %v", err)
		}
		for _, k := range []string{"dir", "dir/sub", "never/written.wav"} {
			if _, err := s.Stat(ctx, k); !errors.Is(err, ErrNotFound) {
				t.Errorf("Stat(%q): err = %v, want ErrNotFound", k, err)
			}
			if r, err := s.Open(ctx, k); !errors.Is(err, ErrNotFound) {
				if r != nil {
					r.Close()
				}
				t.Errorf("Open(%q): err = %v, want ErrNotFound", k, err)
			}
			if err := s.Delete(ctx, k); !errors.Is(err, ErrNotFound) {
				t.Errorf("Delete(%q): err = %v, want ErrNotFound", k, err)
			}
		}
	})

	t.Run("InvalidKeys", func(t *testing.T) {
		s := newStore(t)
		src, _ := writeFile(t, t.TempDir(), 100)
		for _, key := range invalidKeys {
			if _, err := s.Put(ctx, key, src, "audio/wav"); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Put(%q): err = %v, want ErrInvalidKey", key, err)
			}
			if r, err := s.Open(ctx, key); !errors.Is(err, ErrInvalidKey) {
				if r != nil {
					r.Close()
				}
				t.Errorf("Open(%q): err = %v, want ErrInvalidKey", key, err)
			}
			if _, err := s.Stat(ctx, key); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Stat(%q): err = %v, want ErrInvalidKey", key, err)
			}
			if err := s.Delete(ctx, key); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Delete(%q): err = %v, want ErrInvalidKey", key, err)
			}
		}
		if _, err := os.Stat(src); err != nil {
			t.Errorf("local file after rejected Puts: %v", err)
		}
	})

	t.Run("MissingSourceFile", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Put(ctx, "x/RE7.wav", filepath.Join(t.TempDir(), "nope.wav"), "audio/wav")
		if err == nil || errors.Is(err, ErrInvalidKey) {
			t.Errorf("Put of a missing file: err = %v", err)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t)
		dir := t.TempDir()
		var wg sync.WaitGroup
		datas := make([][]byte, 8)
		for i := range datas {
			src, data := writeFile(t, dir, 2000+i)
			datas[i] = data
			wg.Go(func() {
				if _, err := s.Put(ctx, "conc/"+strconv.Itoa(i)+".wav", src, "audio/wav"); err != nil {
					t.Errorf("Put %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		for i, data := range datas {
			wg.Go(func() {
				r, err := s.Open(ctx, "conc/"+strconv.Itoa(i)+".wav")
				if err != nil {
					t.Errorf("Open %d: %v", i, err)
					return
				}
				defer r.Close()
				if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, data) {
					t.Errorf("read %d: %d bytes, %v", i, len(got), err)
				}
			})
		}
		wg.Wait()
	})
}

var invalidKeys = []string{
	"", "/abs/RE.wav", "../RE.wav", "a/../RE.wav", "a/..", "..", ".", "./a", "a/./b",
	"a//b", "a/", "/", "nul\x00.wav", `a\b.wav`, string(bytes.Repeat([]byte("k"), MaxKeyLen+1)),
}

func TestValidateKey(t *testing.T) {
	for _, k := range []string{"a", "AC0123/RE0456.wav", "a/b/c/d.mp3", "...", "a..b/c", ".hidden", "a b/ü.wav"} {
		if err := ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q) = %v, want nil", k, err)
		}
	}
	for _, k := range invalidKeys {
		if err := ValidateKey(k); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
}

// writeFile writes size pseudo-random bytes to a new file in dir.
func writeFile(t testing.TB, dir string, size int) (string, []byte) {
	t.Helper()
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, uint64(size)))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	f, err := os.CreateTemp(dir, "rec-*.wav")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name(), data
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func checkObject(t testing.TB, obj Object, key string, data []byte) {
	t.Helper()
	if obj.Key != key {
		t.Errorf("Key = %q, want %q", obj.Key, key)
	}
	if obj.Size != int64(len(data)) {
		t.Errorf("Size = %d, want %d", obj.Size, len(data))
	}
	if want := sha256Hex(data); obj.SHA256 != want {
		t.Errorf("SHA256 = %q, want %q", obj.SHA256, want)
	}
	if obj.URI == "" {
		t.Error("URI is empty")
	}
}

func readAll(t testing.TB, s Store, key string) []byte {
	t.Helper()
	r, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("ReadAll(%q): %v", key, err)
	}
	return b
}
