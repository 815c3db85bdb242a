package call

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestMediaWebSocketRepliesBounded: a far end that floods commands and
// never reads the answers costs a bounded queue, not a goroutine per
// answer (with 100,000 GET_STATUS, one each would exhaust memory, or the
// race detector's goroutine limit).
func TestMediaWebSocketRepliesBounded(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(rw, r, nil)
		if err != nil {
			return
		}
		<-release // never reads
		c.CloseNow()
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	m := &Manager{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	w := &mediaWebSocket{conn: conn, s: &streamMedia{m: m, ch: &Channel{id: "c1"}}}
	w.startReplies()
	defer close(w.stop)
	before := runtime.NumGoroutine()
	for i := 0; i < 100000; i++ {
		w.command("GET_STATUS")
	}
	if after := runtime.NumGoroutine(); after > before+10 {
		t.Fatalf("%d goroutines after the flood, %d before", after, before)
	}
	if w.dropped.Load() == 0 {
		t.Fatal("no answer was dropped: the far end read 100,000 of them?")
	}
}
