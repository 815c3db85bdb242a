package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// newServer starts a server on loopback :0 ports with a Record() route
// (2001) and a Stasis route (300), as a deployment would run.
func newServer(t *testing.T, mutate ...func(*config.Config)) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.SIP.Listen = "127.0.0.1:0"
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.RTP.PortMin, cfg.RTP.PortMax = testutil.FreeUDPPortRange(t, 200)
	cfg.Dialplan = []config.Route{
		{Exten: "2001", App: "Record(calls/drain,wav)"},
		{Exten: "300", App: "Stasis(test)"},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func newPhone(t *testing.T) *sipua.Phone {
	t.Helper()
	lo, hi := testutil.FreeUDPPortRange(t, 100)
	p, err := sipua.New(sipua.Options{RTPMin: lo, RTPMax: hi, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func poll(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func get(t *testing.T, url, user, pass string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestHealthz: public liveness, the details only with ARI credentials, 401
// for wrong ones.
func TestHealthz(t *testing.T) {
	srv := newServer(t)
	base := "http://" + srv.HTTPAddr() + "/healthz"
	if code, _, body := get(t, base, "", ""); code != 200 || body != "ok\n" {
		t.Errorf("public: %d %q", code, body)
	}
	if code, _, body := get(t, base+"?format=json", "", ""); code != 200 || strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Errorf("public JSON: %d %q", code, body)
	}
	code, _, body := get(t, base, "asterisk", "asterisk")
	if code != 200 || !strings.HasPrefix(body, "ok 0 channels ") || !strings.HasSuffix(body, " goroutines\n") {
		t.Errorf("details: %d %q", code, body)
	}
	code, _, body = get(t, base+"?format=json", "asterisk", "asterisk")
	var details struct {
		Status   string          `json:"status"`
		Channels *int            `json:"channels"`
		SIP      json.RawMessage `json:"sip"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &details) != nil || details.Status != "ok" || details.Channels == nil || *details.Channels != 0 || len(details.SIP) == 0 {
		t.Errorf("JSON details: %d %q", code, body)
	}
	code, h, _ := get(t, base, "asterisk", "wrong")
	if code != 401 || h.Get("WWW-Authenticate") == "" {
		t.Errorf("wrong credentials: %d, WWW-Authenticate %q", code, h.Get("WWW-Authenticate"))
	}
}

// TestShutdownDrains: Shutdown refuses new calls at once (503) while HTTP
// keeps serving, waits for the call in progress to end, and only then
// stops SIP and HTTP; the call's recording is finished.
func TestShutdownDrains(t *testing.T) {
	srv := newServer(t)
	phone := newPhone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call, err := phone.Dial(ctx, sipua.Target("2001", srv.SIPAddr()), sipua.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, 5*time.Second, "the call's channel", func() bool { return srv.Calls().Count() == 1 })

	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	poll(t, 5*time.Second, "new calls refused with 503", func() bool {
		dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
		defer dcancel()
		c, err := phone.Dial(dctx, sipua.Target("2001", srv.SIPAddr()), sipua.CallOptions{})
		if err == nil {
			c.Hangup(dctx)
			return false
		}
		var rej *sipua.ErrRejected
		return errors.As(err, &rej) && rej.Code == 503
	})
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a call in progress", err)
	default:
	}
	if code, _, _ := get(t, "http://"+srv.HTTPAddr()+"/healthz", "", ""); code != 200 {
		t.Errorf("HTTP while draining: %d", code)
	}
	audio := make([]int16, 1600) // 200 ms of a square wave
	for i := range audio {
		audio[i] = int16(4000 - 8000*(i/10%2))
	}
	if err := call.SendAudio(ctx, audio); err != nil {
		t.Fatal(err)
	}
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown still waiting after the last call ended")
	}
	if n := srv.Calls().Count(); n != 0 {
		t.Errorf("%d channels after Shutdown", n)
	}
	if _, err := net.DialTimeout("tcp", srv.HTTPAddr(), time.Second); err == nil {
		t.Error("HTTP still accepting after Shutdown")
	}
	fi, err := os.Stat(filepath.Join(srv.cfg.RecordingsDir(), "calls", "drain.wav"))
	if err != nil {
		t.Fatalf("the drained call's recording: %v", err)
	}
	if fi.Size() < 44+2*1600 {
		t.Errorf("the drained call's recording has %d bytes", fi.Size())
	}
}

// TestShutdownDeadlineHangsUp: when the drain deadline passes, the calls
// left are hung up (the phone gets a BYE) and Shutdown returns.
func TestShutdownDeadlineHangsUp(t *testing.T) {
	srv := newServer(t)
	phone := newPhone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call, err := phone.Dial(ctx, sipua.Target("2001", srv.SIPAddr()), sipua.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, 5*time.Second, "the call's channel", func() bool { return srv.Calls().Count() == 1 })
	dctx, dcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer dcancel()
	start := time.Now()
	if err := srv.Shutdown(dctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("Shutdown returned after %v, before its deadline", d)
	}
	select {
	case <-call.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("the call left at the deadline was not hung up")
	}
	if n := srv.Calls().Count(); n != 0 {
		t.Errorf("%d channels after Shutdown", n)
	}
}

// TestStartHTTPPortBusy: a failed HTTP bind fails Start and releases the
// SIP port it had bound.
func TestStartHTTPPortBusy(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	// The SIP port is a free one outside the RTP range below: config
	// validation refuses an RTP range that holds the SIP port.
	lo, hi := testutil.FreeUDPPortRange(t, 200)
	var sipAddr string
	for sipAddr == "" {
		sipL, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if p := sipL.LocalAddr().(*net.UDPAddr).Port; p < lo || p > hi {
			sipAddr = sipL.LocalAddr().String()
		}
		sipL.Close()
	}
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.SIP.Listen = sipAddr
	cfg.SIP.Transports = []string{"udp"}
	cfg.HTTP.Listen = busy.Addr().String()
	cfg.RTP.PortMin, cfg.RTP.PortMax = lo, hi
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Start(); err == nil || !strings.Contains(err.Error(), "http listen") {
		t.Fatalf("Start with HTTP's port taken: %v", err)
	}
	l, err := net.ListenPacket("udp", sipAddr)
	if err != nil {
		t.Fatalf("SIP port still held after the failed start: %v", err)
	}
	l.Close()
}

// TestNodeID: the configured node id names the node in ARI's
// asterisk/info, starts channel ids and marks the catalog's rows.
func TestNodeID(t *testing.T) {
	srv := newServer(t, func(c *config.Config) { c.NodeID = "rec-7" })
	if srv.Catalog().Node != "rec-7" {
		t.Errorf("catalog node %q", srv.Catalog().Node)
	}
	code, _, body := get(t, "http://"+srv.HTTPAddr()+"/ari/asterisk/info", "asterisk", "asterisk")
	var info struct {
		Config struct {
			Name string `json:"name"`
		} `json:"config"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &info) != nil || info.Config.Name != "rec-7" {
		t.Errorf("asterisk/info: %d %s", code, body)
	}
}

// TestHTTPHeaderLimit: request headers beyond MaxHTTPHeaderBytes get 431
// (net/http alone would read up to 1 MiB); a normal request on the same
// listener is served.
func TestHTTPHeaderLimit(t *testing.T) {
	srv := newServer(t)
	c, err := net.DialTimeout("tcp", srv.HTTPAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	big := strings.Repeat("a", 2*MaxHTTPHeaderBytes)
	go io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "+big+"\r\n\r\n")
	line, err := bufioReadLine(c)
	if err != nil || !strings.Contains(line, " 431 ") {
		t.Fatalf("oversized headers: %q, %v; want 431", line, err)
	}
	if code, _, _ := get(t, "http://"+srv.HTTPAddr()+"/healthz", "", ""); code != 200 {
		t.Errorf("normal request after: %d", code)
	}
}

func bufioReadLine(c net.Conn) (string, error) {
	var b [1]byte
	var line []byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			return string(line), err
		}
		if b[0] == '\n' {
			return string(line), nil
		}
		line = append(line, b[0])
	}
}
