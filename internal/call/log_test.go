package call

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// TestChannelLogger: a channel's log lines carry its id, SIP Call-ID and
// CallSid.
func TestChannelLogger(t *testing.T) {
	var buf testutil.SyncBuffer
	ports, err := rtp.NewPorts("127.0.0.1", 41000, 41099)
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(Options{Bus: event.NewBus("test"), Ports: ports, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	cfg, err := ports.ListenConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := m.newChannel(channelSpec{user: "alice", callID: "abc@host", callSid: "CA0123", state: StateDown}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Hangup(CauseNormalClearing); err != nil {
		t.Fatal(err)
	}
	want := "channel=" + ch.ID() + " call_id=abc@host call_sid=CA0123"
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		for _, l := range strings.Split(buf.String(), "\n") {
			if strings.Contains(l, "channel destroyed") {
				if !strings.Contains(l, want) {
					t.Fatalf("log line %q lacks %q", l, want)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 'channel destroyed' line in %q", buf.String())
		}
	}
}
