package ari

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/sounds"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// writeWAV writes a short 8 kHz 16-bit mono WAV file.
func writeWAV(t testing.TB, path string, samples int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, testutil.SilentWAV(samples), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fuzzServer is an in-process ARI over a real catalog (SQLite, recordings
// on disk) holding two stored recordings, "seed" and "dir/seed".
func fuzzServer(t testing.TB) *Server {
	t.Helper()
	dir := t.TempDir()
	recDir := filepath.Join(dir, "recording")
	ms, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cat := &catalog.Service{Meta: ms, Root: recDir, Log: log}
	ctx := context.Background()
	if _, err := cat.DefaultAccount(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"seed", "dir/seed"} {
		p := filepath.Join(recDir, filepath.FromSlash(name)+".wav")
		writeWAV(t, p, 8000)
		in := catalog.Info{Name: name, Path: p, Format: "wav", ContentType: "audio/wav", Source: "ari", Channels: 1, Duration: time.Second, Started: time.Now()}
		if _, err := cat.Started(ctx, in); err != nil {
			t.Fatal(err)
		}
		in.Status = "completed"
		if err := cat.Finished(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	bus := event.NewBus("00:11:22:33:44:55")
	m := call.NewManager(call.Options{Bus: bus, RecordingsDir: recDir, Logger: log})
	m.SetCatalog(cat)
	s := New(Options{
		Users:  []config.ARIUser{{Name: "u", Password: "p"}},
		Bus:    bus,
		Calls:  m,
		Logger: log,
		Sounds: sounds.NewIndex([]string{filepath.Join(dir, "sounds")}),
	})
	t.Cleanup(s.Close)
	return s
}

// FuzzARIRoutes feeds arbitrary methods, request targets (path and query)
// and bodies through the ARI router and handlers, authenticated, over a
// real store. A target the HTTP server itself would refuse is skipped;
// anything else must be answered without a panic and without a 500.
func FuzzARIRoutes(f *testing.F) {
	f.Add("GET", "/ari/recordings/stored/seed/file", "", "")
	s := fuzzServer(f)
	// the fixture works: authenticated, the seed recording is served
	req := httptest.NewRequest("GET", "/ari/recordings/stored/dir%2Fseed/file", nil)
	req.SetBasicAuth("u", "p")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Body.Len() != 16044 {
		f.Fatalf("fixture: stored file %d, %d bytes", rec.Code, rec.Body.Len())
	}
	f.Fuzz(func(t *testing.T, method, target, body, contentType string) {
		raw := method + " " + target + " HTTP/1.1\r\nHost: tapedeck.example\r\nAuthorization: Basic dTpw\r\n"
		if contentType != "" {
			raw += "Content-Type: " + contentType + "\r\n"
		}
		raw += "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil || req.Header.Get("Upgrade") != "" {
			return // net/http answers 400 before any handler
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req = req.WithContext(ctx)
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.ServeHTTP(rec, req)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s %q (body %q): no answer within 10 s", method, target, body)
		}
		if rec.Code >= 500 {
			t.Fatalf("%s %q (body %q): %d %s", method, target, body, rec.Code, rec.Body.String())
		}
		if strings.Contains(rec.Body.String(), "root:x:0:0") {
			t.Fatalf("%s %q served /etc/passwd", method, target)
		}
	})
}
