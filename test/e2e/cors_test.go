package e2e

import (
	"net/http"
	"testing"

	"github.com/tapedeck/tapedeck/internal/config"
)

// TestARICORSAllowList: CORS is an explicit allow-list, as Asterisk's
// allowed_origins. Unauthenticated OPTIONS used to reflect any Origin with
// credentials allowed; now only listed origins are reflected, "*" must be
// configured explicitly, and by default no origin is.
func TestARICORSAllowList(t *testing.T) {
	corsOf := func(n *node, method, path, origin string, auth bool) (int, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, n.baseURL()+path, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		if auth {
			req.SetBasicAuth("asterisk", "asterisk")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode, res.Header
	}
	const app, evil = "https://app.example.com", "https://evil.example.net"

	def := startNode(t)
	for _, o := range []string{evil, app, "null"} {
		if code, h := corsOf(def, "OPTIONS", "/ari/channels", o, false); code != 204 || h.Get("Access-Control-Allow-Origin") != "" || h.Get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("default config, Origin %s: %d, ACAO %q ACAC %q; want none", o, code, h.Get("Access-Control-Allow-Origin"), h.Get("Access-Control-Allow-Credentials"))
		}
	}

	n := startNode(t, func(c *config.Config) { c.ARI.AllowedOrigins = []string{app, "http://localhost:3000"} })
	if code, h := corsOf(n, "OPTIONS", "/ari/channels", evil, false); code != 204 || h.Get("Access-Control-Allow-Origin") != "" || h.Get("Access-Control-Allow-Methods") != "" {
		t.Fatalf("unlisted origin: %d %v", code, h)
	}
	code, h := corsOf(n, "OPTIONS", "/ari/channels", app, false)
	if code != 204 || h.Get("Access-Control-Allow-Origin") != app || h.Get("Access-Control-Allow-Credentials") != "true" ||
		h.Get("Access-Control-Allow-Methods") == "" || h.Get("Vary") != "Origin" {
		t.Fatalf("listed origin preflight: %d %v", code, h)
	}
	if code, h := corsOf(n, "GET", "/ari/asterisk/ping", "http://LOCALHOST:3000", true); code != 200 || h.Get("Access-Control-Allow-Origin") != "http://LOCALHOST:3000" {
		t.Fatalf("listed origin, GET: %d ACAO %q", code, h.Get("Access-Control-Allow-Origin"))
	}
	if code, h := corsOf(n, "GET", "/ari/asterisk/ping", evil, true); code != 200 || h.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("unlisted origin, GET: %d ACAO %q", code, h.Get("Access-Control-Allow-Origin"))
	}

	star := startNode(t, func(c *config.Config) { c.ARI.AllowedOrigins = []string{"*"} })
	if code, h := corsOf(star, "OPTIONS", "/ari/channels", evil, false); code != 204 || h.Get("Access-Control-Allow-Origin") != evil {
		t.Fatalf(`"*" configured: %d ACAO %q`, code, h.Get("Access-Control-Allow-Origin"))
	}
}
