package ozeki

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/netguard"
	"github.com/tapedeck/tapedeck/internal/webhook"
)

// TestOzMLFetchBounded: an OzML application on loopback that redirects to
// itself forever is followed netguard.MaxRedirects times and then given
// up with an error (the caller of fetchOzML fails the script, logs and
// hangs the call up: TestOzekiScriptFailures); one whose answer is larger
// than MaxDocument is refused.
func TestOzMLFetchBounded(t *testing.T) {
	var loops atomic.Int64
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/loop":
			loops.Add(1)
			http.Redirect(w, r, "/loop", http.StatusTemporaryRedirect)
		case "/huge":
			w.Write([]byte("<Response>"))
			chunk := []byte(strings.Repeat("<Hangup/>", 1024))
			for i := 0; i < 4*MaxDocument/len(chunk); i++ {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			w.Write([]byte("</Response>"))
		}
	}))
	defer app.Close()
	allow, err := netguard.Parse([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	sender := webhook.New(webhook.Options{Node: "n1", Allow: allow, Timeout: time.Second, Log: log})
	a := New(Options{Webhook: sender, ScriptTimeout: 5 * time.Second, Log: log})
	ctx := context.Background()
	form := url.Values{"NotificationName": {"IncomingCall"}}

	if doc, err := a.fetchOzML(ctx, app.URL+"/loop", form); err == nil {
		t.Fatalf("a redirect loop answered a document: %+v", doc)
	}
	if n := loops.Load(); n != netguard.MaxRedirects+1 {
		t.Fatalf("the redirect loop was followed %d times, want %d (the first request and %d redirects)", n, netguard.MaxRedirects+1, netguard.MaxRedirects)
	}
	if doc, err := a.fetchOzML(ctx, app.URL+"/huge", form); err == nil {
		t.Fatalf("an answer over MaxDocument (%d bytes) was taken: %d verbs", MaxDocument, len(doc.Verbs))
	}
}
