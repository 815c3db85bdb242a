package testutil

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
)

// FormReceiver is a webhook target on loopback (a FinishedUrl, a status
// callback) that keeps the form of every request it receives, in order.
type FormReceiver struct {
	// URL is the target: http://127.0.0.1:port/path.
	URL   string
	mu    sync.Mutex
	forms []url.Values
}

// NewFormReceiver starts a FormReceiver answering on path; it stops when
// t ends.
func NewFormReceiver(t testing.TB, path string) *FormReceiver {
	t.Helper()
	r := &FormReceiver{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		f, _ := url.ParseQuery(string(b))
		r.mu.Lock()
		r.forms = append(r.forms, f)
		r.mu.Unlock()
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	r.URL = "http://" + l.Addr().String() + path
	return r
}

// Got is a copy of the forms received so far.
func (r *FormReceiver) Got() []url.Values {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]url.Values(nil), r.forms...)
}
