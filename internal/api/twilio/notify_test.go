package twilio

import (
	"context"
	"log/slog"
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

// A recording status callback whose outbox insert outlasts its 10 s
// deadline (the catalog's write lock is held by another connection with
// BEGIN IMMEDIATE) is not lost: it is sent, once, after the lock is
// released.
func TestStatusCallbackNotLostWhenCatalogLocked(t *testing.T) {
	if testing.Short() {
		t.Skip("holds the catalog locked past the callback's 10 s deadline")
	}
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
	s := New(Options{Logger: log})
	s.SetWebhook(sender)

	conn, err := db.Raw.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	lr := &liveRec{sid: "RE1", callSid: "CA-locked", accountSid: "AC1", track: "both", channels: 1,
		callback: &callback{url: recv.URL, method: "POST",
			events: map[string]bool{"completed": true}, base: "http://tapedeck"}}
	rec := meta.Recording{Sid: "RE1", AccountSid: "AC1", Status: meta.StatusCompleted, Duration: 3, StartTime: time.Now()}
	done := make(chan struct{})
	go func() { defer close(done); s.notify(lr, "completed", rec) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("notify still blocked after 30 s")
	}
	if strings.Contains(logs.String(), "callback not queued") {
		t.Fatalf("dropped: %s", logs.String())
	}
	if n := count(); n != 0 {
		t.Fatalf("delivered %d while the catalog is locked", n)
	}
	if _, err := conn.ExecContext(context.Background(), "COMMIT"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, 10*time.Millisecond, func() bool { return count() >= 1 },
		"status callback never delivered: %s", logs.String())
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool {
		n, err := st.(meta.Outbox).PendingCount(context.Background(), "n1")
		return err == nil && n == 0
	}, "not settled")
	sender.Close()
	got := recv.Got()
	if len(got) != 1 || got[0].Get("CallSid") != "CA-locked" || got[0].Get("RecordingStatus") != "completed" {
		t.Fatalf("received %v, want the completed callback once", got)
	}
}
