package twilio

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/netguard"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/pgtest"
	"github.com/tapedeck/tapedeck/internal/webhook"
)

// TestInProgressQueuedBeforeTheAnswer: a recording's in-progress status
// callback is in the catalog before the API answers the start (201), in
// the transaction that keeps the recording's callback with its row. With
// the outbox refusing inserts for a reason that passes (a trigger raising
// PostgreSQL's lock_not_available, as a busy catalog does), the start
// waits and tries again instead of answering with the callback held only
// in this node's memory (a crash then lost it); once the catalog takes
// inserts again, it answers with the callback queued, once, and kept.
func TestInProgressQueuedBeforeTheAnswer(t *testing.T) {
	st, dsn := pgtest.FreshStore(t, "tapedeck_started")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())

	acc, err := st.CreateAccount(ctx, "started")
	if err != nil {
		t.Fatal(err)
	}
	rec := meta.Recording{Sid: meta.NewRecordingSid(), AccountSid: acc.Sid, CallSid: "CA" + strings.Repeat("1", 32),
		Name: NamePrefix + "CA" + strings.Repeat("1", 32) + "/1", Status: meta.StatusInProgress, Format: "wav", Channels: 1,
		DateCreated: time.Now(), StartTime: time.Now(), Source: meta.SourceARI, ApiVersion: meta.APIVersion}
	if err := st.PutRecording(ctx, rec); err != nil {
		t.Fatal(err)
	}
	// Refused while outbox_block has a row; each refusal counted by a
	// sequence (not rolled back with the refused insert).
	refusals := pgtest.BusyOutbox(t, ctx, db)

	allow, err := netguard.Parse([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	var logs testutil.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	// Not started: what is queued stays in the outbox to be counted.
	sender := webhook.New(webhook.Options{Outbox: st.(meta.Outbox), Node: "n1", Allow: allow, Timeout: time.Second, Log: log})
	defer sender.Close()
	s := New(Options{Logger: log, Catalog: &catalog.Service{Meta: st}})
	s.SetWebhook(sender)
	lr := &liveRec{name: rec.Name, callSid: rec.CallSid, accountSid: acc.Sid, track: "both", channels: 1,
		callback: &callback{url: "http://127.0.0.1:9/status", method: "POST",
			events: map[string]bool{"in-progress": true, "completed": true}, base: "http://tapedeck"}}

	done := make(chan struct{})
	go func() { defer close(done); s.started(ctx, lr, rec) }()
	// The start must not answer while the catalog refuses: it tries
	// again (a second refusal) instead.
	deadline := time.Now().Add(30 * time.Second)
	for refusals() < 2 {
		select {
		case <-done:
			n, _ := st.(meta.Outbox).PendingCount(ctx, "n1")
			t.Fatalf("the start answered while the catalog refused its in-progress callback (%d queued, %d refusals): "+
				"the callback was only in memory; logs: %s", n, refusals(), logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the start neither answered nor tried again: %d refusals", refusals())
		}
		time.Sleep(2 * time.Millisecond)
	}
	select {
	case <-done:
		// The second refusal comes at least the sender's first back-off
		// (100 ms) after an answer that left the callback in memory.
		t.Fatalf("the start answered while the catalog refused its in-progress callback; logs: %s", logs.String())
	default:
	}
	if _, err := db.Exec(ctx, `DELETE FROM outbox_block`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the start still waits once the catalog takes inserts again")
	}
	due, err := st.(meta.Outbox).Due(ctx, "n1", time.Now().Add(time.Hour), 10)
	if err != nil || len(due) != 1 || !strings.Contains(string(due[0].Body), "RecordingStatus=in-progress") {
		t.Fatalf("queued when the start answered: %+v %v; want its in-progress callback, once; logs: %s", due, err, logs.String())
	}
	if _, has, err := st.(meta.StatusCallbacks).StatusCallback(ctx, rec.Sid); err != nil || !has {
		t.Fatalf("the recording's callback: kept %v, err %v", has, err)
	}
	s.mu.Lock()
	kept := lr.kept
	s.mu.Unlock()
	if !kept {
		t.Fatal("the live recording does not know its callback is kept")
	}
}
