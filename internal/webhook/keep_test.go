package webhook

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tapedeck/tapedeck/internal/store/meta"
	tu "github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/pgtest"
)

// sqliteWriteLock holds the write lock of the SQLite database at path
// from another connection (BEGIN IMMEDIATE), as another process or a
// long write would, until the returned function releases it.
func sqliteWriteLock(t *testing.T, path string) (release func()) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	done := false
	release = func() {
		if done {
			return
		}
		done = true
		if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
			t.Error(err)
		}
		conn.Close()
		db.Close()
	}
	t.Cleanup(release)
	return release
}

// keptOnce: the catalog's write lock is held by another connection for
// longer than the caller's deadline; Notify keeps the notification, the
// insert is retried while the lock is held, and once it is released the
// notification is stored and the receiver gets it exactly once.
func keptOnce(t *testing.T, st meta.Store, lock func() (release func())) {
	h := newHook(t)
	h.start()
	var logs tu.SyncBuffer
	s := newSender(t, st, slog.New(slog.NewTextHandler(&logs, nil)), 5)
	s.keepAttempt = 200 * time.Millisecond
	s.keepBackoff = 20 * time.Millisecond
	s.keepMaxBackoff = 100 * time.Millisecond
	defer s.Close()
	unqueued, retries := value(mUnqueued), value(mQueueRetries)

	release := lock()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	// What Send does: the caller's deadline ends the insert.
	if _, err := s.Send(ctx, Notification{Kind: "RecordCompleted", CallID: "lost-by-send", URL: h.url(), Form: form}); err == nil || !meta.Transient(err) {
		t.Fatalf("Send while the catalog is locked: %v, want a transient error", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if err := s.Notify(ctx2, Notification{Kind: "RecordCompleted", CallID: "kept1", URL: h.url(), Form: form}); err != nil {
		t.Fatalf("Notify while the catalog is locked: %v", err)
	}
	// A later one waits behind it (stored after it).
	if err := s.Notify(context.Background(), Notification{Kind: "RecordCompleted", CallID: "kept2", URL: h.url(), Form: url.Values{"CallId": {"kept2"}}}); err != nil {
		t.Fatal(err)
	}
	if got := value(mUnqueued) - unqueued; got != 2 {
		t.Fatalf("unqueued gauge +%v, want +2", got)
	}
	tu.Eventually(t, 10*time.Second, 5*time.Millisecond, func() bool { return value(mQueueRetries)-retries >= 2 },
		"the insert is not retried while the catalog is locked")
	if n := h.count(); n != 0 {
		t.Fatalf("delivered %d while the catalog is locked", n)
	}
	if !strings.Contains(logs.String(), "kept in memory") || !strings.Contains(logs.String(), "call=kept1") {
		t.Fatalf("no log line with the call id: %s", logs.String())
	}
	release()

	tu.Eventually(t, 10*time.Second, 5*time.Millisecond, func() bool { return h.count() == 2 }, "kept notifications not delivered (%d)", h.count())
	tu.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool {
		n, err := st.(meta.Outbox).PendingCount(context.Background(), "n1")
		return err == nil && n == 0
	}, "not settled")
	if got := value(mUnqueued) - unqueued; got != 0 {
		t.Fatalf("unqueued gauge +%v after the insert, want 0", got)
	}
	if !strings.Contains(logs.String(), "kept notification queued") {
		t.Fatalf("no log of the late insert: %s", logs.String())
	}
	// Exactly once: a restart of the sender sends nothing again.
	s.Close()
	s2 := newSender(t, st, slog.New(slog.DiscardHandler), 5)
	s2.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	// Stored in order; the workers deliver in parallel, in any order.
	ids := map[string]int{}
	for _, f := range h.got {
		ids[f.Get("CallId")]++
	}
	if len(h.got) != 2 || ids["c1"] != 1 || ids["kept2"] != 1 {
		t.Fatalf("received %v, want the two kept notifications once each", h.got)
	}
}

func TestNotifyKeptWhileSQLiteLocked(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tapedeck.db")
	st := openStore(t, db)
	defer st.Close()
	keptOnce(t, st, func() func() { return sqliteWriteLock(t, db) })
}

func TestNotifyKeptWhilePostgresLocked(t *testing.T) {
	st, dsn := pgtest.FreshStore(t, "tapedeck_whkeep")
	ctx := context.Background()
	keptOnce(t, st, func() func() {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Inserts wait; reads (the loop's) go on.
		if _, err := tx.Exec(ctx, "LOCK TABLE webhook_outbox IN EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		done := false
		release := func() {
			if !done {
				done = true
				tx.Rollback(ctx)
				c.Close(ctx)
			}
		}
		t.Cleanup(release)
		return release
	})
}

// TestNotifyLostAtShutdownIsLoud: a notification the catalog never takes
// is tried once more at Close, within its budget, and logged as lost
// with its call id and counted.
func TestNotifyLostAtShutdownIsLoud(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tapedeck.db")
	st := openStore(t, db)
	defer st.Close()
	h := newHook(t)
	h.start()
	var logs tu.SyncBuffer
	s := newSender(t, st, slog.New(slog.NewTextHandler(&logs, nil)), 5)
	s.keepAttempt = 100 * time.Millisecond
	s.keepBackoff = 20 * time.Millisecond
	s.keepFinal = 300 * time.Millisecond
	lost, unqueued := value(mLost), value(mUnqueued)
	release := sqliteWriteLock(t, db)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Notify(ctx, Notification{Kind: "RecordCompleted", CallID: "doomed", URL: h.url(), Form: form}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if got := value(mLost) - lost; got != 1 {
		t.Fatalf("lost counter +%v, want +1", got)
	}
	if got := value(mUnqueued) - unqueued; got != 0 {
		t.Fatalf("unqueued gauge +%v after Close, want 0", got)
	}
	if !strings.Contains(logs.String(), "NOTIFICATION LOST at shutdown") || !strings.Contains(logs.String(), "call=doomed") {
		t.Fatalf("no loud log with the call id: %s", logs.String())
	}
	// After Close nothing is kept: a failure is reported to the caller.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if err := s.Notify(ctx2, Notification{Kind: "RecordCompleted", CallID: "late", URL: h.url(), Form: form}); !errors.Is(err, ErrNotKept) {
		t.Fatalf("Notify after Close with the catalog locked: %v, want ErrNotKept", err)
	}
	release() // before the store closes (it would wait for the lock)
}

// TestNotifyRefusesAtOnce: a refused target or method is not kept.
func TestNotifyRefusesAtOnce(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "tapedeck.db"))
	defer st.Close()
	s := newSender(t, st, slog.New(slog.DiscardHandler), 5)
	defer s.Close()
	unqueued := value(mUnqueued)
	if err := s.Notify(context.Background(), Notification{URL: "http://10.1.2.3/x", Form: form}); !errors.Is(err, ErrTarget) {
		t.Fatalf("forbidden target: %v", err)
	}
	if err := s.Notify(context.Background(), Notification{URL: "http://127.0.0.1:9/x", Form: form, Method: "PUT"}); err == nil {
		t.Fatal("PUT accepted")
	}
	if got := value(mUnqueued) - unqueued; got != 0 {
		t.Fatalf("unqueued gauge +%v", got)
	}
}
