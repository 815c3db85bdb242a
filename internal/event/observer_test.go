package event

import (
	"errors"
	"strings"
	"testing"
)

func TestObserverSeesEveryEventAndIsNoApplication(t *testing.T) {
	b := NewBus("id")
	app := NewSubscriber("a", 10, false)
	b.Register(app, nil)
	obs, err := b.Observe("hook", 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub(b, "X", 1, "channel:1") // for no application
	b.Publish(Event{Type: "Y", Apps: []string{"a"}, Body: &testEvent{Base: Base{Type: "Y"}, N: 2}})
	q := obs.Next(nil)
	if len(q) != 2 || !strings.Contains(string(q[0]), `"n":1`) || !strings.Contains(string(q[1]), `"n":2`) {
		t.Fatalf("observer got %q", q)
	}
	if !strings.Contains(string(q[1]), `"application":""`) {
		t.Fatalf("observer event names an application: %s", q[1])
	}
	if got := app.Next(nil); len(got) != 1 || !strings.Contains(string(got[0]), `"application":"a"`) {
		t.Fatalf("the application got %q", got)
	}
	// Not an application: not listed, not registered, not subscribable.
	if b.Registered("hook") {
		t.Fatal("an observer counts as a registered application (it could receive calls)")
	}
	if _, ok := b.App("hook"); ok {
		t.Fatal("an observer is listed as an application")
	}
	for _, a := range b.Apps() {
		if a.Name == "hook" {
			t.Fatal("an observer is listed in Apps")
		}
	}
	if b.Subscribe("hook", "channel:1") {
		t.Fatal("an observer accepted an application subscription")
	}
	if got := b.Observers(); len(got) != 1 || got[0] != "hook" {
		t.Fatalf("Observers = %q", got)
	}
	if _, err := b.Observe("hook", 10, nil); !errors.Is(err, ErrObserverExists) {
		t.Fatalf("second observer of one name: %v", err)
	}
	b.Unobserve(obs)
	pub(b, "X", 3)
	if obs.Next(nil) != nil || !errors.Is(obs.Reason(), ErrUnobserved) {
		t.Fatalf("removed observer still active: %v", obs.Reason())
	}
	if len(b.Observers()) != 0 {
		t.Fatal("removed observer still listed")
	}
}

func TestObserverFilter(t *testing.T) {
	b := NewBus("id")
	obs, _ := b.Observe("page", 10, func(ev Event) bool { return ev.Type == "Good" })
	pub(b, "Noisy", 1)
	pub(b, "Good", 2)
	if q := obs.Next(nil); len(q) != 1 || !strings.Contains(string(q[0]), `"Good"`) {
		t.Fatalf("got %q", q)
	}
}

func TestObserverOverflowDropsItWithoutBlocking(t *testing.T) {
	b := NewBus("id")
	app := NewSubscriber("a", 1000, true)
	b.Register(app, nil)
	slow, _ := b.Observe("slow", 4, nil)
	for i := 0; i < 100; i++ {
		pub(b, "X", i) // must never block
	}
	select {
	case <-slow.Dropped():
	default:
		t.Fatal("slow observer not dropped")
	}
	if !errors.Is(slow.Reason(), ErrOverflow) {
		t.Fatalf("reason %v", slow.Reason())
	}
	if len(b.Observers()) != 0 {
		t.Fatal("dropped observer not removed from the bus")
	}
	if q := app.Next(nil); len(q) != 100 {
		t.Fatalf("the application got %d events, want 100 (an observer's overflow affects no one else)", len(q))
	}
	// The name is free again.
	if _, err := b.Observe("slow", 4, nil); err != nil {
		t.Fatal(err)
	}
}

// countedBody counts its marshalling.
type countedBody struct {
	Base
	n *int
}

func (c *countedBody) MarshalJSON() ([]byte, error) {
	*c.n++
	return []byte(`{"type":"` + c.Type + `","application":""}`), nil
}

// TestEncodedObserverCostsNoMarshalling: an event that only an encoded
// observer takes is never marshalled (the observer gets its own message);
// one that an application or a plain observer takes is marshalled once,
// however many take it.
func TestEncodedObserverCostsNoMarshalling(t *testing.T) {
	b := NewBus("id")
	enc, err := b.ObserveEncoded("page", 10, nil, func(ev Event) []byte {
		if ev.Type == "Quiet" {
			return nil
		}
		return []byte(ev.Type)
	})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	body := func(typ string) *countedBody { return &countedBody{Base: Base{Type: typ}, n: &n} }
	b.Publish(Event{Type: "X", Sources: []string{"channel:1"}, Body: body("X")})
	b.Publish(Event{Type: "Quiet", Body: body("Quiet")})
	if n != 0 {
		t.Fatalf("marshalled %d times for an encoded observer alone, want 0", n)
	}
	if q := enc.Next(nil); len(q) != 2 || string(q[0]) != "X" || q[1] == nil || len(q[1]) != 0 {
		t.Fatalf("encoded observer got %q", q)
	}
	if _, err := b.ObserveEncoded("page", 10, nil, nil); !errors.Is(err, ErrObserverExists) {
		t.Fatalf("second observer of one name: %v", err)
	}

	app := NewSubscriber("a", 10, false)
	b.Register(app, nil)
	b.Subscribe("a", "channel:1")
	plain, _ := b.Observe("hook", 10, nil)
	b.Publish(Event{Type: "X", Sources: []string{"channel:1"}, Body: body("X")})
	if n != 1 {
		t.Fatalf("marshalled %d times for an application and a plain observer, want 1", n)
	}
	if got := app.Next(nil); len(got) != 1 || !strings.Contains(string(got[0]), `"application":"a"`) {
		t.Fatalf("the application got %q", got)
	}
	if got := plain.Next(nil); len(got) != 1 || !strings.Contains(string(got[0]), `"type":"X"`) {
		t.Fatalf("the plain observer got %q", got)
	}
	if got := enc.Next(nil); len(got) != 1 || string(got[0]) != "X" {
		t.Fatalf("the encoded observer got %q", got)
	}
	b.Publish(Event{Type: "Y", Body: body("Y")}) // for no application: the plain observer's
	if n != 2 {
		t.Fatalf("marshalled %d times, want 2", n)
	}
}
