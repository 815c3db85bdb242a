package httpx

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// manyRanges is a Range header of n one-byte ranges whose total stays
// under the file size, so http.ServeContent alone would answer them all
// as multipart parts.
func manyRanges(n int) string {
	return "bytes=" + strings.TrimSuffix(strings.Repeat("0-0,", n), ",")
}

func TestServeContentCapsRanges(t *testing.T) {
	file := make([]byte, 100_000)
	for i := range file {
		file[i] = byte(i)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/wav")
		ServeContent(w, r, "x.wav", time.Unix(1e9, 0), bytes.NewReader(file))
	}))
	defer srv.Close()
	get := func(rng string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, b
	}

	// The attack: 60,000 ranges (240 KB of header) answered at once, small.
	for _, n := range []int{60_000, MaxRanges + 1} {
		res, b := get(manyRanges(n))
		if res.StatusCode != http.StatusRequestedRangeNotSatisfiable || len(b) > 200 ||
			res.Header.Get("Content-Range") != "bytes */100000" || strings.HasPrefix(res.Header.Get("Content-Type"), "multipart/") {
			t.Fatalf("%d ranges: %d, %d bytes, Content-Range %q, Content-Type %q", n, res.StatusCode, len(b),
				res.Header.Get("Content-Range"), res.Header.Get("Content-Type"))
		}
	}
	// What stays as it was: no Range, one range, a few ranges.
	if res, b := get(""); res.StatusCode != 200 || !bytes.Equal(b, file) {
		t.Fatalf("full: %d, %d bytes", res.StatusCode, len(b))
	}
	if res, b := get("bytes=100-199"); res.StatusCode != 206 || !bytes.Equal(b, file[100:200]) ||
		res.Header.Get("Content-Range") != "bytes 100-199/100000" || res.Header.Get("Content-Type") != "audio/wav" {
		t.Fatalf("one range: %d, %d bytes, %q", res.StatusCode, len(b), res.Header.Get("Content-Range"))
	}
	res, b := get(manyRanges(MaxRanges))
	mt, params, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if res.StatusCode != 206 || mt != "multipart/byteranges" {
		t.Fatalf("%d ranges: %d %s", MaxRanges, res.StatusCode, res.Header.Get("Content-Type"))
	}
	parts := 0
	mr := multipart.NewReader(bytes.NewReader(b), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		if pb, _ := io.ReadAll(p); !bytes.Equal(pb, file[:1]) {
			t.Fatalf("part %d: %v", parts, pb)
		}
		parts++
	}
	if parts != MaxRanges {
		t.Fatalf("%d parts, want %d", parts, MaxRanges)
	}
}

func TestTooManyRanges(t *testing.T) {
	for h, want := range map[string]bool{
		"":                             false,
		"bytes=0-1":                    false,
		manyRanges(16):                 false,
		manyRanges(17):                 true,
		"items=" + manyRanges(100)[6:]: false, // not bytes: ServeContent ignores it
		"bytes=,,,,,,,,,,,,,,,,,,":     true,
	} {
		if got := TooManyRanges(h); got != want {
			t.Errorf("TooManyRanges(%.30q) = %v, want %v", h, got, want)
		}
	}
}
