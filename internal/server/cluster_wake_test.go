package server

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tapedeck/tapedeck/internal/event"
)

// TestClusterRoundsFollowBeatsAndBus: an idle cluster node runs one
// announcement round per beat (the readiness loop's tick) and otherwise
// none, not one every 250 ms to look for new local applications; an
// application connecting or leaving is announced at once, told by the bus.
// Every round is a wake-up of the whole process, which is what a node pays
// per second with nothing to do.
func TestClusterRoundsFollowBeatsAndBus(t *testing.T) {
	nc := natsConn(t)
	run := runID()
	prefix := "w" + run + ".ari."
	node := "wn" + run
	announced := make(chan announcement, 256)
	sub, err := nc.Subscribe(prefix+"announce", func(m *nats.Msg) {
		var a announcement
		if json.Unmarshal(m.Data, &a) == nil {
			announced <- a
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	bus := event.NewBus(node)
	c, err := startCluster(nc, prefix, bus, node, node, panickingARI{}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()

	// Beats every 400 ms for 2 s: 5 rounds (the fallback timer, 1.5 s,
	// never fires while they come). Polling four times a second ran 8.
	start := c.rounds.Load()
	for range 5 {
		c.beat()
		time.Sleep(400 * time.Millisecond)
	}
	if n := c.rounds.Load() - start; n > 6 {
		t.Fatalf("%d announcement rounds in 2 s with 5 beats and nothing changing; want at most 6", n)
	}
	// Without beats the node still announces itself (the readiness loop can
	// be stuck on the database): within the fallback interval.
	waitAnnounce := func(what string, ok func(announcement) bool) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case a := <-announced:
				if ok(a) {
					return
				}
			case <-deadline:
				t.Fatalf("no announcement %s within 5 s", what)
			}
		}
	}
	for len(announced) > 0 {
		<-announced
	}
	waitAnnounce("of the node without beats", func(a announcement) bool { return a.Node == node && a.Application == "" })

	app := event.NewSubscriber("wakeapp", 16, false)
	before := c.changes.Load()
	bus.Register(app, nil)
	waitAnnounce("of an application connecting", func(a announcement) bool {
		return a.Node == node && a.Application == "wakeapp" && !a.Gone
	})
	bus.Unregister(app)
	waitAnnounce("of an application leaving", func(a announcement) bool {
		return a.Node == node && a.Application == "wakeapp" && a.Gone
	})
	if n := c.changes.Load() - before; n < 2 {
		t.Fatalf("%d rounds run by the bus for an application connecting and leaving; want one each", n)
	}
}
