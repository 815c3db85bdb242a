package server

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// clusterNode is one node's NATS connection (startNATS, as a server makes
// it) and cluster on the test NATS server.
func clusterNode(t *testing.T, prefix, name string) (*natsBridge, *cluster, *event.Bus) {
	t.Helper()
	url := natsURL()
	bus := event.NewBus(name)
	nb, err := startNATS(url, prefix, name, bus, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for !nb.connected() {
		if time.Now().After(deadline) {
			nb.close()
			testutil.SkipOrFail(t, "SKIP NATS test: %s unreachable; start nats-server -js or set TAPEDECK_TEST_NATS_URL", url)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, err := startCluster(nb.nc, prefix, bus, name, name, panickingARI{}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		nb.close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.close(); nb.close() })
	return nb, c, bus
}

// TestNodeGetsNoEchoOfItsOwnMessages: a node's own announcements and its
// local application's events, published on NATS for the other nodes, do
// not come back to it (it read and ignored each one: a read and a
// handler's wake-up a second at least). Another connection sees them all.
func TestNodeGetsNoEchoOfItsOwnMessages(t *testing.T) {
	run := runID()
	prefix := "e" + run + ".ari."
	node := "en" + run
	app := "echoapp" + run
	watch := natsConn(t)
	var announces, events int
	got := make(chan string, 1024)
	for _, subj := range []string{prefix + "announce", prefix + "event.>"} {
		sub, err := watch.Subscribe(subj, func(m *nats.Msg) { got <- m.Subject })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
	}
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}
	nb, c, bus := clusterNode(t, prefix, node)
	sub := event.NewSubscriber(app, 64, false)
	bus.Register(sub, nil)
	for range 3 {
		c.beat()
		bus.Publish(event.Event{Type: "ChannelVarset", Apps: []string{app},
			Body: &benchEvent{Base: event.Base{Type: "ChannelVarset"}, Sent: time.Now().UnixNano()}})
		time.Sleep(100 * time.Millisecond)
	}
	deadline := time.After(5 * time.Second)
	for announces < 3 || events < 3 {
		select {
		case s := <-got:
			if s == prefix+"announce" {
				announces++
			} else {
				events++
			}
		case <-deadline:
			t.Fatalf("the other connection saw %d announcements and %d events in 5 s, want 3 each", announces, events)
		}
	}
	// Anything echoed would have arrived with them.
	if err := nb.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if in := nb.nc.Stats().InMsgs; in != 0 {
		t.Fatalf("the node received %d messages on NATS with no other node up; want none of its own back", in)
	}
}

// TestLostRecordingToldOnThePublishingNode: the node that settles a lost
// node's recording (and publishes the notice) tells its own application
// that followed the recording, though NATS does not echo the notice to it.
func TestLostRecordingToldOnThePublishingNode(t *testing.T) {
	run := runID()
	prefix := "l" + run + ".ari."
	node := "ln" + run
	app := "lostapp" + run
	_, c, bus := clusterNode(t, prefix, node)
	sub := event.NewSubscriber(app, 64, false)
	bus.Register(sub, nil)
	// The application followed the recording on a node now lost.
	c.mu.Lock()
	c.where["recordings:rec"+run] = location{entity: "gone" + run, app: app}
	c.mu.Unlock()
	c.publishLost("gone"+run, meta.Recording{Name: "rec" + run, Format: "wav", Status: meta.StatusFailed, StatusDetail: "node lost"})
	done := make(chan struct{})
	timer := time.AfterFunc(5*time.Second, func() { close(done) })
	defer timer.Stop()
	for {
		msgs := sub.Next(done)
		if msgs == nil {
			t.Fatal("no RecordingFailed for the lost node's recording within 5 s")
		}
		for _, m := range msgs {
			var ev struct {
				Type      string `json:"type"`
				Recording struct {
					Name string `json:"name"`
				} `json:"recording"`
			}
			if json.Unmarshal(m, &ev) == nil && ev.Type == "RecordingFailed" && ev.Recording.Name == "rec"+run {
				return
			}
		}
	}
}
