package server

import (
	"net"
	"testing"

	"github.com/tapedeck/tapedeck/internal/config"
)

// TestOzekiBaseURL: RecordURLs use ozeki.public_url, else http.public_url
// when the command API is on the HTTP listener (so an operator who set the
// server's public address once gets working links), else the address of
// the listener serving the API.
func TestOzekiBaseURL(t *testing.T) {
	own, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	httpL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer httpL.Close()
	cfg := func(ozekiURL, httpURL string) config.Config {
		c := config.Default()
		c.Ozeki.PublicURL, c.HTTP.PublicURL = ozekiURL, httpURL
		return c
	}
	withListen := func(c config.Config, ozeki, http string) config.Config {
		c.Ozeki.Listen, c.HTTP.Listen = ozeki, http
		return c
	}
	for _, tc := range []struct {
		name      string
		cfg       config.Config
		own, http net.Listener
		want      string
	}{
		{"ozeki public_url", cfg("https://rec.example.com/", "https://td.example.com"), own, httpL, "https://rec.example.com"},
		{"http public_url on the HTTP listener", cfg("", "https://td.example.com/"), nil, httpL, "https://td.example.com"},
		{"own listener ignores http public_url", cfg("", "https://td.example.com"), own, httpL, "http://" + own.Addr().String()},
		{"HTTP listener address", cfg("", ""), nil, httpL, "http://" + httpL.Addr().String()},
		// Before Start (a restart settling a killed run's recordings):
		// the configured listen address.
		{"HTTP listen address, not bound yet", withListen(cfg("", ""), "", "127.0.0.1:18088"), nil, nil, "http://127.0.0.1:18088"},
		{"own listen address, not bound yet", withListen(cfg("", "https://td.example.com"), "127.0.0.1:19509", "127.0.0.1:18088"), nil, nil, "http://127.0.0.1:19509"},
		{"a port chosen when bound", withListen(cfg("", ""), "", "127.0.0.1:0"), nil, nil, ""},
	} {
		if got := ozekiBaseURL(tc.cfg, tc.own, tc.http); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
