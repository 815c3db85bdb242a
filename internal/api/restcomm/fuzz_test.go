package restcomm

import (
	"bufio"
	"context"
	"fmt"
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

	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

type fuzzFixture struct {
	servers [3]*Server // public, auth, signed
	acc     meta.Account
	sid     string
}

// newFuzzFixture is the Restcomm API in each media access mode over one
// real catalog (SQLite, a WAV file on disk) holding one recording.
func newFuzzFixture(t testing.TB) *fuzzFixture {
	t.Helper()
	dir := t.TempDir()
	ms, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cat := &catalog.Service{Meta: ms, Root: dir, Log: log}
	ctx := context.Background()
	acc, err := cat.DefaultAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "calls", "one.wav")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, testutil.SilentWAV(8000), 0o644); err != nil {
		t.Fatal(err)
	}
	in := catalog.Info{Name: "calls/one", Path: p, Format: "wav", ContentType: "audio/wav", Source: "ari", CallSid: "CA" + strings.Repeat("0", 32),
		Channels: 1, Duration: time.Second, Started: time.Now()}
	sid, err := cat.Started(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	in.Status = "completed"
	if err := cat.Finished(ctx, in); err != nil {
		t.Fatal(err)
	}
	fx := &fuzzFixture{acc: acc, sid: sid}
	for i, mode := range []string{MediaPublic, MediaAuth, MediaSigned} {
		fx.servers[i] = New(Options{Catalog: cat, Logger: log, MediaAccess: mode, SignKey: []byte("fuzz")})
	}
	return fx
}

// FuzzRestcommRoutes feeds arbitrary methods, request targets and bodies
// through the Restcomm API's path parser and handlers, in each media
// access mode, with or without the account's credentials, over a real
// store. In the target, {AC} stands for the account's Sid, {RE} for the
// recording's and {SIG} for a valid signature query, so that seeds reach
// the handlers. A target net/http would refuse is skipped; anything else
// must be answered within 10 s, without a panic and without a 5xx.
func FuzzRestcommRoutes(f *testing.F) {
	f.Add("GET", "/restcomm/2012-04-24/Accounts/{AC}/Recordings/{RE}.wav", "", byte(0), true)
	fx := newFuzzFixture(f)
	// the fixture works: the media by Sid, without credentials
	rec := httptest.NewRecorder()
	fx.servers[0].ServeHTTP(rec, httptest.NewRequest("GET", "/restcomm/2012-04-24/Accounts/"+fx.acc.Sid+"/Recordings/"+fx.sid+".wav", nil))
	if rec.Code != 200 || rec.Body.Len() != 16044 {
		f.Fatalf("fixture: media %d, %d bytes", rec.Code, rec.Body.Len())
	}
	f.Fuzz(func(t *testing.T, method, target, body string, mode byte, auth bool) {
		s := fx.servers[int(mode)%len(fx.servers)]
		exp := time.Now().Add(time.Hour).Unix()
		target = strings.NewReplacer("{AC}", fx.acc.Sid, "{RE}", fx.sid,
			"{SIG}", fmt.Sprintf("Expires=%d&Signature=%s", exp, s.sign(fx.sid, exp))).Replace(target)
		raw := method + " " + target + " HTTP/1.1\r\nHost: tapedeck.example\r\n"
		if auth {
			raw += "Authorization: Basic " + basic(fx.acc.Sid, fx.acc.AuthToken) + "\r\n"
		}
		raw += "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
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
			t.Fatalf("%s %q: no answer within 10 s", method, target)
		}
		if rec.Code >= 500 {
			t.Fatalf("%s %q (mode %d, auth %v): %d %s", method, target, mode%3, auth, rec.Code, rec.Body.String())
		}
		if strings.Contains(rec.Body.String(), "root:x:0:0") {
			t.Fatalf("%s %q served /etc/passwd", method, target)
		}
	})
}

func basic(user, pass string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}
