package ozeki

import (
	"context"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/netguard"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/sqlitetest"
	"github.com/tapedeck/tapedeck/internal/webhook"
)

// A RecordCompleted whose outbox insert misses its deadline because the
// catalog's write lock is held (by another connection, BEGIN IMMEDIATE)
// is not lost: it reaches the FinishedUrl once the lock is released,
// exactly once.
func TestRecordCompletedNotLostWhenCatalogLocked(t *testing.T) {
	recv := testutil.NewFormReceiver(t, "/done")
	count := func() int { return len(recv.Got()) }

	db := sqlitetest.Open(t, filepath.Join(t.TempDir(), "tapedeck.db"))
	st := db.Store
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
	conn, err := db.Raw.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	a.notify(ctx, "RecordCompleted", "c-locked", recv.URL,
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
	got := recv.Got()
	if got[0].Get("CallId") != "c-locked" {
		t.Fatalf("form %v", got[0])
	}
}
