package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"sort"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// benchEvent carries its send time.
type benchEvent struct {
	event.Base
	Sent int64 `json:"sent_ns"`
}

// twoClusterNodes connects two buses to the test NATS server as two nodes
// of a cluster, with app connected to the first (a's subscriber) and a
// stand-in for it on the second (b).
func twoClusterNodes(tb testing.TB) (a, b *event.Bus, sub *event.Subscriber, app string) {
	tb.Helper()
	url := natsURL()
	run := runID()
	app = "bench" + run
	prefix := "bench" + run + ".ari."
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	node := func(name string) *event.Bus {
		bus := event.NewBus(name + run)
		nb, err := startNATS(url, prefix, name+run, bus, log)
		if err != nil {
			tb.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Second)
		for !nb.connected() {
			if time.Now().After(deadline) {
				nb.close()
				testutil.SkipOrFail(tb, "SKIP NATS benchmark: %s unreachable; start nats-server -js or set TAPEDECK_TEST_NATS_URL", url)
			}
			time.Sleep(10 * time.Millisecond)
		}
		c, err := startCluster(nb.nc, prefix, bus, name+run, name+run, nil, nil, log)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { c.close(); nb.close() })
		return bus
	}
	a, b = node("ba"), node("bb")
	sub = event.NewSubscriber(app, 1<<16, false)
	a.Register(sub, nil)
	deadline := time.Now().Add(10 * time.Second)
	for !b.Registered(app) {
		if time.Now().After(deadline) {
			tb.Fatal("the second node never learned the application")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return a, b, sub, app
}

// BenchmarkClusterEventLatency measures an ARI event's trip from the bus of
// the node holding a channel (B) to the WebSocket queue of its application
// on another node (A): B's tap, NATS (ari.event.{app}.{B}), A's delivery.
// Events are paced at 1,000 a second, as a node with a few hundred calls in
// Stasis sends them; it reports p50 and p99 in µs.
func BenchmarkClusterEventLatency(bm *testing.B) {
	_, b, sub, app := twoClusterNodes(bm)
	eventLatency(bm, b, sub, app)
}

// BenchmarkLocalEventLatency is the same trip within one node (the bus to
// the application's queue, no NATS): the baseline that shows how much of
// the cluster's figure is the host's scheduling rather than NATS.
func BenchmarkLocalEventLatency(bm *testing.B) {
	bus := event.NewBus("local")
	sub := event.NewSubscriber("local", 1<<16, false)
	bus.Register(sub, nil)
	eventLatency(bm, bus, sub, "local")
}

func eventLatency(bm *testing.B, b *event.Bus, sub *event.Subscriber, app string) {
	lat := make([]time.Duration, 0, bm.N)
	got := make(chan struct{})
	go func() {
		defer close(got)
		for len(lat) < bm.N {
			msgs := sub.Next(nil)
			if msgs == nil {
				return
			}
			now := time.Now().UnixNano()
			for _, m := range msgs {
				var ev struct {
					Sent int64 `json:"sent_ns"`
				}
				if json.Unmarshal(m, &ev) == nil && ev.Sent > 0 {
					lat = append(lat, time.Duration(now-ev.Sent))
				}
			}
		}
	}()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	bm.ResetTimer()
	for i := 0; i < bm.N; i++ {
		<-tick.C
		b.Publish(event.Event{Type: "ChannelVarset", Apps: []string{app},
			Body: &benchEvent{Base: event.Base{Type: "ChannelVarset"}, Sent: time.Now().UnixNano()}})
	}
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		bm.Fatalf("%d of %d events arrived", len(lat), bm.N)
	}
	bm.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	bm.ReportMetric(pct(0.50), "p50-µs")
	bm.ReportMetric(pct(0.99), "p99-µs")
	bm.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}
