package ari

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestEventsOriginCheck: the events WebSocket refuses a browser Origin of
// another site (cross-site WebSocket hijacking with the browser's cached
// credentials) and accepts clients that send no Origin or one no browser
// sends (with a path, as CyCoreSystems/ari's "http://localhost/"), the
// server's own origin and the origins of ari.allowed_origins.
func TestEventsOriginCheck(t *testing.T) {
	s := fuzzServer(t)
	s.opts.AllowedOrigins = []string{"https://app.example.com"}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)

	dial := func(origin string) (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h := http.Header{}
		h.Set("Authorization", "Basic dTpw")
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, resp, err := websocket.Dial(ctx, "ws"+hs.URL[len("http"):]+"/ari/events?app=origin-test", &websocket.DialOptions{HTTPHeader: h, Subprotocols: []string{"ari"}})
		if err == nil {
			c.Close(websocket.StatusNormalClosure, "")
			return resp.StatusCode, nil
		}
		if resp != nil {
			return resp.StatusCode, err
		}
		return 0, err
	}
	for _, tc := range []struct {
		origin string
		want   int
	}{
		{"", http.StatusSwitchingProtocols},
		{hs.URL, http.StatusSwitchingProtocols},
		{"https://app.example.com", http.StatusSwitchingProtocols},
		{"https://evil.example", http.StatusForbidden},
		{"null", http.StatusForbidden},
		{"https://evil.example:8443", http.StatusForbidden},
		// Not a browser's serialized origin (it never has a path): a
		// program's header, CyCoreSystems/ari's native default.
		{"http://localhost/", http.StatusSwitchingProtocols},
		{"https://evil.example/x", http.StatusSwitchingProtocols},
	} {
		code, err := dial(tc.origin)
		if code != tc.want {
			t.Errorf("Origin %q: status %d (%v), want %d", tc.origin, code, err, tc.want)
		}
	}
	// A refused upgrade registers no application (the check comes first).
	h := http.Header{"Origin": {"https://evil.example"}, "Authorization": {"Basic dTpw"}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := websocket.Dial(ctx, "ws"+hs.URL[len("http"):]+"/ari/events?app=refused-app", &websocket.DialOptions{HTTPHeader: h}); err == nil {
		t.Fatal("cross-site upgrade accepted")
	}
	if s.bus.Registered("refused-app") {
		t.Error("a refused upgrade registered its application")
	}
}
