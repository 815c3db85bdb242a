// Package httpx holds small HTTP helpers shared by the APIs.
package httpx

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRanges is the most byte ranges one request may ask for. A Range header
// with more is answered 416 at once: http.ServeContent would otherwise
// answer every range as its own multipart part, so a request of a few
// hundred kilobytes (60,000 one-byte ranges) costs megabytes of response
// and seconds of work (GO-2026-6609). Real clients (players, download
// managers, ari-client) ask for one range, rarely a few.
const MaxRanges = 16

// ServeContent is http.ServeContent (conditional requests, Range) with the
// number of ranges per request capped at MaxRanges. Every handler that
// serves a file (local or streamed from S3) goes through it.
func ServeContent(w http.ResponseWriter, r *http.Request, name string, modtime time.Time, content io.ReadSeeker) {
	if TooManyRanges(r.Header.Get("Range")) {
		w.Header().Del("Content-Type")
		if size, err := content.Seek(0, io.SeekEnd); err == nil {
			w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		}
		http.Error(w, "too many ranges (at most "+strconv.Itoa(MaxRanges)+")", http.StatusRequestedRangeNotSatisfiable)
		return
	}
	http.ServeContent(w, r, name, modtime, content)
}

// TooManyRanges reports whether a Range header asks for more than
// MaxRanges byte ranges. It counts without allocating, so a huge header is
// cheap to refuse.
func TooManyRanges(h string) bool {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return false // not a byte range: ServeContent ignores it
	}
	return strings.Count(spec, ",")+1 > MaxRanges
}
