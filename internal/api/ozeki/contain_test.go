package ozeki

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// hangups is a call.Calls that only records hangups (other methods are
// not used by the code under test).
type hangups struct {
	call.Calls
	mu  sync.Mutex
	ids []call.ChannelID
}

func (h *hangups) Hangup(id call.ChannelID, _ call.Cause) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ids = append(h.ids, id)
	return nil
}

// A panic in one call's script goroutine fails that call (logged with its
// stack, hung up) and leaves the process running.
func TestScriptPanicFailsOnlyItsCall(t *testing.T) {
	var logs testutil.SyncBuffer
	calls := &hangups{}
	a := New(Options{Calls: calls, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	a.track("vm-1.7", func() { panic("boom") })
	a.Wait(5 * time.Second)
	calls.mu.Lock()
	got := append([]call.ChannelID(nil), calls.ids...)
	calls.mu.Unlock()
	if len(got) != 1 || got[0] != "vm-1.7" {
		t.Fatalf("hung up %v, want the panicking script's call only", got)
	}
	if out := logs.String(); !strings.Contains(out, "ozml script panicked") || !strings.Contains(out, "boom") || !strings.Contains(out, "goroutine") {
		t.Fatalf("log lacks the panic and its stack:\n%s", out)
	}
}
