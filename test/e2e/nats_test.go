package e2e

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// natsURL is the NATS server of the tests: $TAPEDECK_TEST_NATS_URL, else
// the local one (nats-server -js on 127.0.0.1:4222). Unreachable: skip, or
// fail under CI=true.
func natsURL(t *testing.T) (string, *nats.Conn) {
	t.Helper()
	url := os.Getenv("TAPEDECK_TEST_NATS_URL")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	nc, err := nats.Connect(url, nats.Timeout(3*time.Second))
	if err != nil {
		testutil.SkipOrFail(t, "SKIP NATS test: %s unreachable (%v); start nats-server -js or set TAPEDECK_TEST_NATS_URL", url, err)
	}
	t.Cleanup(nc.Close)
	return url, nc
}

// TestNATSEvents: a node with nats.url publishes its ARI events on
// ari-proxy's subjects, ari.event.{app}.{asterisk_id}, as the ARI event's
// JSON, so that a listener on NATS sees a call's StasisStart and
// ChannelDestroyed without a WebSocket to the node.
func TestNATSEvents(t *testing.T) {
	url, nc := natsURL(t)
	n := startNode(t, func(c *config.Config) { c.NATS.URL = url })
	entity := n.srv.Bus().EntityID()
	msgs := make(chan *nats.Msg, 256)
	sub, err := nc.ChanSubscribe("ari.event.test.>", msgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	must(t, nc.Flush())

	events := n.connect("test")
	phone := newPhone(t, "udp")
	id, call := answeredCall(t, n, events, phone, "350")
	_ = call.Hangup(t.Context())
	seen := map[string]bool{}
	deadline := time.After(10 * time.Second)
	for !seen["StasisStart"] || !seen["ChannelDestroyed"] {
		select {
		case m := <-msgs:
			if m.Subject != "ari.event.test."+entity {
				t.Fatalf("subject %q, want ari.event.test.%s", m.Subject, entity)
			}
			var ev struct {
				Type        string `json:"type"`
				Application string `json:"application"`
				AsteriskID  string `json:"asterisk_id"`
				Channel     struct {
					ID string `json:"id"`
				} `json:"channel"`
			}
			if err := json.Unmarshal(m.Data, &ev); err != nil {
				t.Fatalf("message %s: %v", m.Data, err)
			}
			if ev.Application != "test" || ev.AsteriskID != entity {
				t.Fatalf("event %s", m.Data)
			}
			if ev.Channel.ID == id {
				seen[ev.Type] = true
			}
		case <-deadline:
			t.Fatalf("events on NATS for channel %s: %v", id, seen)
		}
	}
}
