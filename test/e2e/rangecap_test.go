package e2e

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/server"
)

// checkRangeCap: a request for n one-byte ranges (their total under the
// file size, so without a cap each would be its own multipart part:
// megabytes of response for a few hundred kilobytes of request) is answered
// at once with a small 416; one range still answers 206.
func checkRangeCap(t *testing.T, fileURL string, auth bool, media []byte, n int) {
	t.Helper()
	if n >= len(media) {
		t.Fatalf("%d ranges over a %d-byte file: the total would exceed the size (ServeContent then serves it whole)", n, len(media))
	}
	// A Range header longer than the server's header limit is refused
	// before any handler (431); one within it, by the range cap (416).
	// Either way the answer is small and immediate.
	for _, k := range []int{n, min(n, 1000)} {
		rng := "bytes=" + strings.TrimSuffix(strings.Repeat("0-0,", k), ",")
		want := http.StatusRequestedRangeNotSatisfiable
		if len(rng) > server.MaxHTTPHeaderBytes {
			want = http.StatusRequestHeaderFieldsTooLarge
		}
		start := time.Now()
		code, hdr, body := httpGet(t, fileURL, rng, auth)
		if code != want || len(body) > 1024 || strings.HasPrefix(hdr.Get("Content-Type"), "multipart/") {
			t.Fatalf("%s with %d ranges: %d %s, %d bytes in %v; want a small %d", fileURL, k, code, hdr.Get("Content-Type"), len(body), time.Since(start), want)
		}
	}
	if code, _, b := httpGet(t, fileURL, "bytes=8-15", auth); code != 206 || !bytes.Equal(b, media[8:16]) {
		t.Fatalf("%s one range: %d, %d bytes", fileURL, code, len(b))
	}
}

// TestMediaRangeCap: the 60,000-range request of issue 12 on the public
// Restcomm media link (no credentials) and on ARI's stored file.
func TestMediaRangeCap(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	acc := defaultAccount(t, n)
	recordCall(t, n, events, "351", "ranges/long", 4*time.Second) // 64 KB of 8 kHz 16-bit
	l := rcListOf(t, n, acc, "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Recordings.json")
	if len(l.Recordings) != 1 {
		t.Fatalf("list %+v", l)
	}
	pub := l.Recordings[0]["file_uri"] // absolute
	code, _, media := httpGet(t, pub, "", false)
	if code != 200 || len(media) < 60_001 {
		t.Fatalf("public download: %d, %d bytes", code, len(media))
	}
	checkRangeCap(t, pub, false, media, 60_000)
	checkRangeCap(t, n.baseURL()+"/ari/recordings/stored/"+url.PathEscape("ranges/long")+"/file", true, media, 60_000)
}
