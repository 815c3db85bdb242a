package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/server"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// node is an in-process tapedeck on random loopback ports.
type node struct {
	t   testing.TB
	srv *server.Server
	cfg config.Config
}

func startNode(t testing.TB, mutate ...func(*config.Config)) *node {
	t.Helper()
	return startNodeWith(t, nil, mutate...)
}

// startNodeWith is startNode with setup run on the server before it
// starts (e.g. SetDirectory).
func startNodeWith(t testing.TB, setup func(*server.Server), mutate ...func(*config.Config)) *node {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.SIP.Listen = "127.0.0.1:0"
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.RTP.PortMin, cfg.RTP.PortMax = testutil.FreeUDPPortRange(t, 200)
	cfg.Dialplan = []config.Route{
		{Exten: "_3XX", App: "Stasis(test, ${EXTEN})"},
		{Exten: "_4XX", App: "Stasis(other,${EXTEN},x)"},
		{Exten: "999", App: "Stasis(nobody)"},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	if cfg.Catalog.Database != "" && cfg.Catalog.TokenKey == "" {
		// Nodes sharing a PostgreSQL catalog need one token key, as in
		// production (each data dir's token.key would differ).
		cfg.Catalog.TokenKey = "one key for the nodes of a catalog"
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	level := slog.LevelWarn
	if os.Getenv("TAPEDECK_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	srv, err := server.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(srv)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &node{t: t, srv: srv, cfg: cfg}
}

func (n *node) baseURL() string { return "http://" + n.srv.HTTPAddr() }

func (n *node) target(exten string) string { return sipua.Target(exten, n.srv.SIPAddr()) }

// do calls the ARI REST API with the default credentials.
func (n *node) do(method, path string, body any) (int, []byte) {
	n.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.baseURL()+"/ari"+path, rd)
	req.SetBasicAuth("asterisk", "asterisk")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, data
}

func (n *node) mustDo(method, path string, want int) []byte {
	n.t.Helper()
	code, body := n.do(method, path, nil)
	if code != want {
		n.t.Fatalf("%s %s = %d %s, want %d", method, path, code, body, want)
	}
	return body
}

// ariEvents is a raw WebSocket ARI client collecting events.
type ariEvents struct {
	t    testing.TB
	conn *websocket.Conn
	mu   sync.Mutex
	all  []map[string]any
	next int
	wake chan struct{}
	done chan struct{}
	err  error
}

func (n *node) connect(app string) *ariEvents {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := fmt.Sprintf("ws://%s/ari/events?app=%s&api_key=asterisk:asterisk", n.srv.HTTPAddr(), app)
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		n.t.Fatalf("connect %s: %v", app, err)
	}
	e := &ariEvents{t: n.t, conn: conn, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go e.read()
	n.t.Cleanup(func() { conn.Close(websocket.StatusNormalClosure, "") })
	return e
}

func (e *ariEvents) read() {
	defer close(e.done)
	for {
		_, data, err := e.conn.Read(context.Background())
		if err != nil {
			e.mu.Lock()
			e.err = err
			e.mu.Unlock()
			return
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			e.t.Errorf("event is not JSON: %s", data)
			continue
		}
		e.mu.Lock()
		e.all = append(e.all, m)
		e.mu.Unlock()
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
}

// expect returns the next event, which must have the given type.
func (e *ariEvents) expect(typ string, timeout time.Duration) map[string]any {
	e.t.Helper()
	ev := e.nextEvent(timeout)
	if ev == nil {
		e.t.Fatalf("no event within %v, want %s", timeout, typ)
	}
	if ev["type"] != typ {
		e.t.Fatalf("got event %v, want %s", ev, typ)
	}
	return ev
}

// skipTo returns the next event of a type, skipping others.
func (e *ariEvents) skipTo(typ string, timeout time.Duration) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ev := e.nextEvent(time.Until(deadline))
		if ev == nil {
			e.t.Fatalf("no %s event within %v", typ, timeout)
		}
		if ev["type"] == typ {
			return ev
		}
	}
}

func (e *ariEvents) nextEvent(timeout time.Duration) map[string]any {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		e.mu.Lock()
		if e.next < len(e.all) {
			ev := e.all[e.next]
			e.next++
			e.mu.Unlock()
			return ev
		}
		e.mu.Unlock()
		select {
		case <-e.wake:
		case <-e.done:
			e.mu.Lock()
			more := e.next < len(e.all)
			e.mu.Unlock()
			if !more {
				return nil
			}
		case <-deadline.C:
			return nil
		}
	}
}

func channelID(ev map[string]any) string {
	ch, _ := ev["channel"].(map[string]any)
	id, _ := ch["id"].(string)
	return id
}

func newPhone(t testing.TB, transport string) *sipua.Phone {
	t.Helper()
	lo, hi := testutil.FreeUDPPortRange(t, 100)
	p, err := sipua.New(sipua.Options{User: "alice", Transport: transport, RTPMin: lo, RTPMax: hi})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// dialAsync dials and delivers the result on a channel.
type dialResult struct {
	call *sipua.Call
	err  error
}

func dialAsync(p *sipua.Phone, target string, o sipua.CallOptions) <-chan dialResult {
	ch := make(chan dialResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		c, err := p.Dial(ctx, target, o)
		ch <- dialResult{c, err}
	}()
	return ch
}

func wait[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// withRoute replaces the dialplan with one route.
func withRoute(exten, app string) func(*config.Config) {
	return func(c *config.Config) { c.Dialplan = []config.Route{{Exten: exten, App: app}} }
}

type httpRequest = http.Request

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func urlq(s string) string { return url.QueryEscape(s) }

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
