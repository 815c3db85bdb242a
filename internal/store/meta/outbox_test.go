package meta

import (
	"bytes"
	"testing"
	"time"
)

// The Outbox conformance test, run on SQLite and PostgreSQL.

func TestSQLiteOutbox(t *testing.T)   { testOutbox(t, openSQLiteTest(t).(Outbox)) }
func TestPostgresOutbox(t *testing.T) { testOutbox(t, openPostgresTest(t).(Outbox)) }

func testOutbox(t *testing.T, ob Outbox) {
	ctx := tctx(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	body := []byte("NotificationName=RecordCompleted&x=\x00\xff")
	a, err := ob.Enqueue(ctx, OutboxItem{Node: "n1", Kind: "RecordCompleted", CallID: "c1", URL: "http://h/a", ContentType: "application/x-www-form-urlencoded", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	b, err := ob.Enqueue(ctx, OutboxItem{Node: "n1", Kind: "K", URL: "http://h/b", ContentType: "c", Body: []byte("b"), NextAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ob.Enqueue(ctx, OutboxItem{Node: "n2", URL: "http://h/c", ContentType: "c", Body: []byte("c")}); err != nil {
		t.Fatal(err)
	}
	due, err := ob.Due(ctx, "n1", now.Add(time.Second), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].ID != a || !bytes.Equal(due[0].Body, body) || due[0].CallID != "c1" || due[0].Status != OutboxPending || due[0].Attempts != 0 {
		t.Fatalf("due %+v", due)
	}
	if n, _ := ob.PendingCount(ctx, "n1"); n != 2 {
		t.Fatalf("pending %d, want 2 (n2's is not n1's)", n)
	}
	next, ok, err := ob.NextDue(ctx, "n1")
	if err != nil || !ok || next.After(now.Add(time.Second)) {
		t.Fatalf("next due %v %v %v", next, ok, err)
	}
	// A retry later, then a delivery in a batch.
	if err := ob.Settle(ctx, a, OutboxPending, 1, now.Add(2*time.Hour), "boom"); err != nil {
		t.Fatal(err)
	}
	if due, _ := ob.Due(ctx, "n1", now.Add(time.Second), 10); len(due) != 0 {
		t.Fatalf("retried item due at once: %+v", due)
	}
	next, _, _ = ob.NextDue(ctx, "n1")
	if !next.Equal(now.Add(time.Hour)) {
		t.Fatalf("next due %v, want %v", next, now.Add(time.Hour))
	}
	if err := ob.SettleDelivered(ctx, []int64{a, b}, now); err != nil {
		t.Fatal(err)
	}
	it, err := ob.OutboxItem(ctx, a)
	if err != nil || it.Status != OutboxDelivered || it.Attempts != 2 || it.LastError != "" {
		t.Fatalf("item %+v %v", it, err)
	}
	if err := ob.Settle(ctx, b, OutboxFailed, 8, now, "given up"); err != nil {
		t.Fatal(err)
	}
	if n, _ := ob.PendingCount(ctx, "n1"); n != 0 {
		t.Fatalf("pending %d", n)
	}
	if _, ok, _ := ob.NextDue(ctx, "n1"); ok {
		t.Fatal("next due with nothing pending")
	}
	if _, err := ob.OutboxItem(ctx, 999999); err != ErrNotFound {
		t.Fatalf("missing item: %v", err)
	}
	if err := ob.Settle(ctx, b, "bogus", 1, now, ""); err == nil {
		t.Fatal("a bogus status was stored")
	}
}
