package webhook

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/contain"
	"github.com/tapedeck/tapedeck/internal/netguard"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	tu "github.com/tapedeck/tapedeck/internal/testutil"
)

// A panic in one delivery (here a signer's) fails that attempt only: it is
// logged with its stack, counted, settled as a failed attempt (given up
// after the last), and the sender goes on delivering the others. Without
// containment the panic ends the test process.
func TestPanicInDeliveryFailsOnlyThatAttempt(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "tapedeck.db"))
	defer st.Close()
	h := newHook(t)
	h.start()
	var logs tu.SyncBuffer
	allow, _ := netguard.Parse([]string{"127.0.0.1"})
	s := New(Options{Outbox: st.(meta.Outbox), Node: "n1", Allow: allow, Timeout: time.Second, MaxAttempts: 2,
		Backoff: 20 * time.Millisecond, Workers: 2, Log: slog.New(slog.NewTextHandler(&logs, nil)),
		Signers: map[string]Signer{"Boom": func(context.Context, meta.OutboxItem, *http.Request) error { panic("signer bug") }}})
	s.Start()
	defer s.Close()
	before := contain.Count("webhook")
	boom, err := s.Send(context.Background(), Notification{Kind: "Boom", CallID: "c1", URL: h.url(), Form: form})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(context.Background(), Notification{Kind: "RecordCompleted", CallID: "c2", URL: h.url(), Form: form}); err != nil {
		t.Fatal(err)
	}
	tu.Eventually(t, 10*time.Second, 10*time.Millisecond, func() bool {
		it, err := st.(meta.Outbox).OutboxItem(context.Background(), boom)
		return err == nil && it.Status == meta.OutboxFailed && it.Attempts == 2
	}, "the panicking notification was not failed after its attempts")
	tu.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool { return h.count() == 1 }, "the other notification was not delivered")
	if got := contain.Count("webhook") - before; got != 2 {
		t.Fatalf("%v panics counted, want 2 (one per attempt)", got)
	}
	if out := logs.String(); !strings.Contains(out, "signer bug") || !strings.Contains(out, "goroutine") {
		t.Fatalf("log lacks the panic and its stack:\n%s", out)
	}
}
