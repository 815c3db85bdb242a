package event

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

type testEvent struct {
	Base
	N int `json:"n"`
}

func pub(b *Bus, typ string, n int, sources ...string) {
	b.Publish(Event{Type: typ, Sources: sources, Body: &testEvent{Base: Base{Type: typ, Timestamp: Time(time.Unix(0, 0))}, N: n}})
}

func TestRoutingAndApplicationField(t *testing.T) {
	b := NewBus("id")
	a := NewSubscriber("a", 10, false)
	c := NewSubscriber("c", 10, false)
	all := NewSubscriber("all", 10, true)
	b.Register(a, nil)
	b.Register(c, nil)
	b.Register(all, nil)
	b.Subscribe("a", "channel:1")
	pub(b, "X", 1, "channel:1")
	pub(b, "X", 2, "channel:2")
	got := a.Next(nil)
	if len(got) != 1 || !strings.Contains(string(got[0]), `"application":"a"`) || !strings.Contains(string(got[0]), `"n":1`) {
		t.Fatalf("a got %q", got)
	}
	if q := all.Next(nil); len(q) != 2 || !strings.Contains(string(q[1]), `"application":"all"`) {
		t.Fatalf("subscribeAll got %q", q)
	}
	var m map[string]any
	if err := json.Unmarshal(got[0], &m); err != nil || m["timestamp"] != "1970-01-01T00:00:00.000+0000" {
		t.Fatalf("event %s: %v", got[0], err)
	}
	c.mu.Lock()
	n := len(c.queue)
	c.mu.Unlock()
	if n != 0 {
		t.Fatal("unsubscribed app received an event")
	}
}

func TestOverflowDropsSubscriberWithoutBlocking(t *testing.T) {
	b := NewBus("id")
	s := NewSubscriber("a", 4, true)
	b.Register(s, nil)
	for i := 0; i < 100; i++ {
		pub(b, "X", i) // must never block
	}
	select {
	case <-s.Dropped():
	default:
		t.Fatal("subscriber not dropped")
	}
	if !errors.Is(s.Reason(), ErrOverflow) {
		t.Fatalf("reason %v", s.Reason())
	}
	if s.Next(nil) != nil {
		t.Fatal("dropped subscriber still yields events")
	}
}

func TestReplaceDrainsOldSubscriber(t *testing.T) {
	b := NewBus("id")
	old := NewSubscriber("a", 10, true)
	b.Register(old, nil)
	pub(b, "X", 1)
	b.Register(NewSubscriber("a", 10, true), func(app string) []byte { return []byte(`{"type":"ApplicationReplaced"}`) })
	pub(b, "X", 2) // goes to the new one only
	q := old.Next(nil)
	if len(q) != 2 || !strings.Contains(string(q[1]), "ApplicationReplaced") {
		t.Fatalf("old got %q", q)
	}
	if old.Next(nil) != nil || !errors.Is(old.Reason(), ErrReplaced) {
		t.Fatalf("old not dropped after drain: %v", old.Reason())
	}
}

func TestDeclaredAndFilter(t *testing.T) {
	b := NewBus("id")
	b.SetDeclared(func(typ string) bool { return typ != "Secret" })
	s := NewSubscriber("a", 10, true)
	b.Register(s, nil)
	b.SetFilter("a", nil, []map[string]any{{"type": "Noisy"}})
	pub(b, "Secret", 1)
	pub(b, "Noisy", 2)
	pub(b, "Good", 3)
	q := s.Next(nil)
	if len(q) != 1 || !strings.Contains(string(q[0]), `"Good"`) {
		t.Fatalf("got %q", q)
	}
}

func TestTimeFormat(t *testing.T) {
	ts := Time(time.Date(2024, 5, 1, 12, 0, 0, 123e6, time.FixedZone("x", 3600)))
	b, _ := ts.MarshalJSON()
	if string(b) != `"2024-05-01T11:00:00.123+0000"` {
		t.Fatal(string(b))
	}
}

// TestSharedQueueKeepsOrderAcrossApps: the applications of one socket
// share a queue, so events published to one and then to the other arrive
// in that order (a moved channel: StasisEnd to a, then StasisStart to b);
// a replaced application stops feeding the shared queue after its
// ApplicationReplaced, the others go on.
func TestSharedQueueKeepsOrderAcrossApps(t *testing.T) {
	b := NewBus("id")
	sink := NewSubscriber("", 100, false)
	a := NewSubscriber("a", 100, false)
	c := NewSubscriber("c", 100, false)
	a.ShareQueue(sink)
	c.ShareQueue(sink)
	b.Register(a, nil)
	b.Register(c, nil)
	for i := 0; i < 20; i++ {
		app := "a"
		if i%2 == 1 {
			app = "c"
		}
		b.Publish(Event{Type: "X", Apps: []string{app}, Sources: []string{"channel:" + app},
			Body: &testEvent{Base: Base{Type: "X"}, N: i}})
		b.Subscribe(app, "channel:"+app)
	}
	got := sink.Next(nil)
	if len(got) != 20 {
		t.Fatalf("%d messages, want 20", len(got))
	}
	for i, m := range got {
		want := `"n":` + strconv.Itoa(i) + `}`
		if !strings.HasSuffix(string(m), want) {
			t.Fatalf("message %d: %s", i, m)
		}
	}
	a2 := NewSubscriber("a", 100, false)
	b.Register(a2, func(app string) []byte { return []byte(`{"type":"ApplicationReplaced"}`) })
	pub(b, "X", 100, "channel:a")
	pub(b, "X", 101, "channel:c")
	got = sink.Next(nil)
	if len(got) != 2 || !strings.Contains(string(got[0]), "ApplicationReplaced") || !strings.Contains(string(got[1]), `"n":101`) {
		t.Fatalf("after the replacement the shared queue got %q", got)
	}
}

// TestRemoteStandIn: a stand-in for an application of another node makes
// it Registered and receives (and taps) its events, never takes the place
// of a connected application, and is replaced by one that connects;
// Deliver reaches connected applications only, through their filter.
func TestRemoteStandIn(t *testing.T) {
	b := NewBus("id")
	var tapped []string
	b.SetTap(func(app string, msg []byte) { tapped = append(tapped, app) })
	stand := NewSubscriber("far", 10, false)
	if !b.RegisterRemote(stand) || !b.Registered("far") || len(b.Local()) != 0 || b.Connected("far") {
		t.Fatalf("stand-in: registered %v, local %v", b.Registered("far"), b.Local())
	}
	b.Subscribe("far", "channel:1")
	pub(b, "X", 1, "channel:1")
	if len(tapped) != 1 || tapped[0] != "far" {
		t.Fatalf("tapped %v, want the stand-in's event", tapped)
	}
	if b.Deliver("far", []byte(`{"type":"X"}`)) {
		t.Fatal("delivered to a stand-in")
	}
	real := NewSubscriber("far", 10, false)
	b.Register(real, nil)
	if b.RegisterRemote(NewSubscriber("far", 10, false)) {
		t.Fatal("a stand-in replaced a connected application")
	}
	if l := b.Local(); len(l) != 1 || l[0] != "far" || !b.Connected("far") {
		t.Fatalf("local %v", l)
	}
	if !b.Deliver("far", []byte(`{"type":"Y","application":"far"}`)) {
		t.Fatal("not delivered to the connected application")
	}
	if q := real.Next(nil); len(q) != 1 || !strings.Contains(string(q[0]), `"Y"`) {
		t.Fatalf("connected application got %q", q)
	}
	b.SetFilter("far", nil, []map[string]any{{"type": "Z"}})
	if b.Deliver("far", []byte(`{"type":"Z"}`)) {
		t.Fatal("delivered a filtered-out type")
	}
	if b.Deliver("nobody", []byte(`{"type":"Y"}`)) {
		t.Fatal("delivered to an absent application")
	}
}

// TestDeliverStampsThisNode: another node's event reaches a WebSocket of
// this node with this node's asterisk_id, as on one Asterisk (the id of
// its /asterisk/info, which CyCoreSystems/ari's handles match events on),
// the rest of the event as it came.
func TestDeliverStampsThisNode(t *testing.T) {
	b := NewBus("aa:aa:aa:aa:aa:aa")
	sub := NewSubscriber("app", 10, false)
	b.Register(sub, nil)
	for _, in := range []string{
		`{"type":"StasisStart","timestamp":"2026-12-06T09:00:00.000+0000","asterisk_id":"bb:bb:bb:bb:bb:bb","application":"app","args":[],"channel":{"id":"b-1.1","name":"PJSIP/x"}}`,
		`{"type":"RecordingFailed","application":"app","recording":{"name":"r","asterisk_id":"nested"}}`,
	} {
		if !b.Deliver("app", []byte(in)) {
			t.Fatalf("not delivered: %s", in)
		}
		q := sub.Next(nil)
		if len(q) != 1 {
			t.Fatalf("got %d events", len(q))
		}
		var got, want map[string]any
		if err := json.Unmarshal(q[0], &got); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal([]byte(in), &want)
		want["asterisk_id"] = "aa:aa:aa:aa:aa:aa"
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("delivered %s\nwant %v", q[0], want)
		}
	}
}

// TestOnlyReachesTheNamedApplications: an event marked Only (StasisStart,
// StasisEnd) goes to its Apps alone, not to the subscribers of its source
// nor to those subscribed to everything; observers still see it.
func TestOnlyReachesTheNamedApplications(t *testing.T) {
	b := NewBus("id")
	owner := NewSubscriber("owner", 10, false)
	watcher := NewSubscriber("watcher", 10, false)
	all := NewSubscriber("all", 10, true)
	for _, s := range []*Subscriber{owner, watcher, all} {
		b.Register(s, nil)
	}
	b.Subscribe("watcher", "channel:1")
	obs, err := b.Observe("obs", 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := func(n int) *testEvent { return &testEvent{Base: Base{Type: "StasisStart"}, N: n} }
	b.Publish(Event{Type: "StasisStart", Sources: []string{"channel:1"}, Apps: []string{"owner"}, Only: true, Body: body(1)})
	b.Publish(Event{Type: "ChannelStateChange", Sources: []string{"channel:1"}, Apps: []string{"owner"}, Body: body(2)})
	count := func(s *Subscriber) int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.queue)
	}
	if got := owner.Next(nil); len(got) != 2 {
		t.Fatalf("owner got %q, want both events", got)
	}
	for _, s := range []*Subscriber{watcher, all} {
		if got := s.Next(nil); len(got) != 1 || !strings.Contains(string(got[0]), `"n":2`) {
			t.Errorf("%s got %q, want the channel event only", s.App, got)
		}
		if n := count(s); n != 0 {
			t.Errorf("%s has %d more", s.App, n)
		}
	}
	if got := obs.Next(nil); len(got) != 2 {
		t.Errorf("observer got %q, want both", got)
	}
}
