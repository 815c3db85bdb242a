package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// A handler behind the access log that flushes (a streamed MP3, server-sent
// events) reaches the client's connection, not a buffer.
func TestStatusRecorderFlushes(t *testing.T) {
	under := httptest.NewRecorder()
	var w http.ResponseWriter = &statusRecorder{ResponseWriter: under}
	fl, ok := w.(http.Flusher)
	if !ok {
		t.Fatal("the access log's writer is not an http.Flusher")
	}
	w.Write([]byte("first bytes"))
	fl.Flush()
	if !under.Flushed {
		t.Fatal("Flush did not reach the underlying writer")
	}
}
