package ozeki

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/netguard"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/webhook"
)

// A RecordCompleted whose outbox insert misses its deadline because the
// catalog's write lock is held (by another connection, BEGIN IMMEDIATE)
// is not lost: it reaches the FinishedUrl once the lock is released,
// exactly once.
func TestRecordCompletedNotLostWhenCatalogLocked(t *testing.T) {
	var mu sync.Mutex
	var got []url.Values
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f, _ := url.ParseQuery(string(b))
		mu.Lock()
		got = append(got, f)
		mu.Unlock()
	})}
	go srv.Serve(l)
	defer srv.Close()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }

	path := filepath.Join(t.TempDir(), "tapedeck.db")
	st, err := meta.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	allow, err := netguard.Parse([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	var logs testutil.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	sender := webhook.New(webhook.Options{Outbox: st.(meta.Outbox), Node: "n1", Allow: allow, Timeout: time.Second, Log: log})
	sender.Start()
	defer sender.Close()
	a := New(Options{Webhook: sender, Log: log})

	// Another connection holds the write lock.
	db, err := sql.Open("sqlite", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	a.notify(ctx, "RecordCompleted", "c-locked", "http://"+l.Addr().String()+"/done",
		url.Values{"NotificationName": {"RecordCompleted"}, "CallId": {"c-locked"}})
	if strings.Contains(logs.String(), "ozeki: notification not queued") {
		t.Fatalf("dropped: %s", logs.String())
	}
	if n := count(); n != 0 {
		t.Fatalf("delivered %d while the catalog is locked", n)
	}
	if _, err := conn.ExecContext(context.Background(), "COMMIT"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, 10*time.Millisecond, func() bool { return count() >= 1 },
		"RecordCompleted never delivered: %s", logs.String())
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool {
		n, err := st.(meta.Outbox).PendingCount(context.Background(), "n1")
		return err == nil && n == 0
	}, "not settled")
	sender.Close()
	if n := count(); n != 1 {
		t.Fatalf("delivered %d times, want once", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if got[0].Get("CallId") != "c-locked" {
		t.Fatalf("form %v", got[0])
	}
}
