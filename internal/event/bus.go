// Package event carries events from the call model to their consumers: ARI
// applications over WebSocket, and in-process observers (webhooks, a web
// page, NATS) that are not applications. Publishing never blocks: each
// subscriber or observer has a bounded queue, and one whose queue overflows
// is dropped with a reason.
//
// Observers see every event their filter accepts, whatever application it
// is for; they are not applications: they are not listed by Apps, are not
// Registered (so a Stasis route to an observer's name finds no application
// and declines the call), and never receive calls.
//
// Lock order: a publisher may hold its own lock (e.g. a channel's) while
// calling Publish; Bus.mu is taken after it, and Subscriber.mu after Bus.mu.
package event

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"sync"
	"time"
)

// ErrOverflow is the reason a slow subscriber is dropped.
var ErrOverflow = errors.New("event queue overflow: client too slow")

// ErrReplaced is the reason a subscriber is dropped when another socket
// registers the same application.
var ErrReplaced = errors.New("application replaced by another connection")

// TimeFormat is ARI's timestamp layout.
const TimeFormat = "2006-01-02T15:04:05.000-0700"

// Time is a timestamp that marshals in ARI's format, in UTC.
type Time time.Time

// MarshalJSON writes YYYY-MM-DDTHH:MM:SS.mmm+0000.
func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 32)
	b = append(b, '"')
	b = time.Time(t).UTC().AppendFormat(b, TimeFormat)
	return append(b, '"'), nil
}

// String formats like MarshalJSON without quotes.
func (t Time) String() string { return time.Time(t).UTC().Format(TimeFormat) }

// Base holds the fields every ARI event has. Application is filled per
// recipient.
type Base struct {
	Type        string `json:"type"`
	Timestamp   Time   `json:"timestamp"`
	AsteriskID  string `json:"asterisk_id,omitempty"`
	Application string `json:"application"`
}

// Event is anything published on the bus: a JSON-marshalable value plus
// the sources it concerns ("channel:<id>", "bridge:<id>", ...), used for
// routing to applications.
type Event struct {
	Type    string
	Sources []string
	// Apps receive the event whether or not they subscribed to a source
	// (e.g. the Stasis application of a channel).
	Apps []string
	// Only: the Apps alone receive it, not the subscribers of its sources
	// nor those subscribed to everything (observers still see it). Asterisk
	// sends StasisStart and StasisEnd to the channel's application only
	// (res_stasis's app_send), not on the channel's topic.
	Only bool
	// Body is the event object; its "application" field is set per
	// recipient. It must marshal to a JSON object.
	Body any
}

// Subscriber is one consumer: an application's WebSocket.
type Subscriber struct {
	App string
	// All subscribes to every source (subscribeAll=true).
	All bool
	// Remote marks a stand-in for an application connected to another
	// node (RegisterRemote): it makes Stasis(app) and source subscriptions
	// work here, and its events reach the other node through the tap.
	Remote bool

	mu     sync.Mutex
	queue  [][]byte
	limit  int
	wake   chan struct{}
	closed bool
	reason error
	// draining: deliver what is queued, take nothing new, then drop.
	draining    bool
	drainReason error
	dropped     chan struct{}
	// sink, when set, takes the messages instead of this subscriber's own
	// queue (ShareQueue).
	sink *Subscriber
}

// ShareQueue makes s deliver into sink's queue (set before Register): the
// applications of one WebSocket share one queue, so that their events keep
// the order they were published in (a channel moved from one application
// to the other: StasisEnd, then StasisStart). s still stops taking events
// when it is closed or replaced; sink's overflow drops them all.
func (s *Subscriber) ShareQueue(sink *Subscriber) { s.sink = sink }

// NewSubscriber makes a subscriber with a queue of limit events.
func NewSubscriber(app string, limit int, all bool) *Subscriber {
	if limit <= 0 {
		limit = 1024
	}
	return &Subscriber{App: app, All: all, limit: limit, wake: make(chan struct{}, 1), dropped: make(chan struct{})}
}

// push enqueues without blocking; past the limit the subscriber is dropped.
func (s *Subscriber) push(msg []byte) {
	if s.sink != nil {
		s.mu.Lock()
		gone := s.closed || s.draining
		s.mu.Unlock()
		if !gone {
			s.sink.push(msg)
		}
		return
	}
	s.mu.Lock()
	if s.closed || s.draining {
		s.mu.Unlock()
		return
	}
	if len(s.queue) >= s.limit {
		promSubsDropped.Inc()
		promEventsDropped.Add(float64(len(s.queue) + 1))
		s.closeLocked(ErrOverflow)
		s.mu.Unlock()
		return
	}
	s.queue = append(s.queue, msg)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Subscriber) closeLocked(reason error) {
	if s.closed {
		return
	}
	s.closed = true
	s.reason = reason
	s.queue = nil
	close(s.dropped)
}

func (s *Subscriber) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close drops the subscriber (idempotent).
func (s *Subscriber) Close(reason error) {
	s.mu.Lock()
	s.closeLocked(reason)
	s.mu.Unlock()
}

// Dropped is closed when the subscriber is dropped; Reason says why.
func (s *Subscriber) Dropped() <-chan struct{} { return s.dropped }

// Reason is why the subscriber was dropped (nil while active).
func (s *Subscriber) Reason() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

// Next returns the queued messages, waiting until there is at least one or
// the subscriber is dropped (then it returns nil). The returned slice is the
// caller's.
func (s *Subscriber) Next(done <-chan struct{}) [][]byte {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil
		}
		if len(s.queue) > 0 {
			q := s.queue
			s.queue = make([][]byte, 0, 8)
			s.mu.Unlock()
			return q
		}
		if s.draining {
			s.closeLocked(s.drainReason)
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-s.dropped:
		case <-done:
			return nil
		}
	}
}

// Application is the bus's record of one ARI application.
type Application struct {
	Name       string
	Subscriber *Subscriber
	// Sources the application subscribed to explicitly or implicitly
	// (channel:<id>, bridge:<id>, endpoint:<tech>/<res>, deviceState:<name>).
	Sources map[string]bool
	// Allowed and Disallowed are the event filter (type names).
	Allowed, Disallowed []map[string]any
}

// Bus routes events to applications.
type Bus struct {
	entityID string
	// declared, when set, drops events of undeclared types: ARI clients
	// crash on event types missing from the events.json they loaded.
	declared func(typ string) bool

	mu        sync.Mutex
	apps      map[string]*Application
	observers map[string]*observer
	tap       func(app string, msg []byte)
	// onLocal is called when an application connects to this node or
	// leaves it (SetOnLocalChange).
	onLocal func()
}

// SetOnLocalChange sets a function called, outside the bus lock, after an
// application connects to this node (Register) or its connection leaves
// (Unregister): what Local lists may have changed. The cluster announces on
// it instead of polling Local. It must not block. nil removes it.
func (b *Bus) SetOnLocalChange(f func()) {
	b.mu.Lock()
	b.onLocal = f
	b.mu.Unlock()
}

// SetTap sets a function that is given every event an application
// receives, as that application receives it (with its "application"), and
// the events of a Stasis application (Event.Apps) that has no WebSocket
// here: the NATS bridge publishes them on ari.event.{app}.{node}. It runs
// under the bus lock: it must not block (queue and return) and must not
// call the bus. nil removes it.
func (b *Bus) SetTap(tap func(app string, msg []byte)) {
	b.mu.Lock()
	b.tap = tap
	b.mu.Unlock()
}

// observer is an in-process consumer that is not an application.
type observer struct {
	sub    *Subscriber
	filter func(Event) bool
	// encode, when set, makes the observer's message from the event
	// instead of the event's JSON (ObserveEncoded).
	encode func(Event) []byte
}

// ErrObserverExists is returned by Observe for a name already observing.
var ErrObserverExists = errors.New("an observer of that name exists")

// Observe adds an in-process observer: it receives every published event
// that filter accepts (nil: all), as JSON with an empty "application", in a
// queue of limit events (<= 0: 1024). Like an application's subscriber it
// never slows a publisher: on overflow it is dropped with ErrOverflow and
// removed from the bus. It is not an application (see the package doc).
// filter runs under the bus lock (and a publisher's): it must be quick and
// must not call the bus. Messages may be shared between observers: read
// only. Stop it with Unobserve.
func (b *Bus) Observe(name string, limit int, filter func(Event) bool) (*Subscriber, error) {
	return b.ObserveEncoded(name, limit, filter, nil)
}

// ObserveEncoded is Observe with the observer's own message: encode (nil:
// the event's JSON) makes what is queued for each event the filter accepts.
// An observer that needs a few fields of an event reads them from the body
// here, and an event that no application, tap or plain observer takes is
// never marshalled (Publish marshals only for those). encode runs under the
// bus lock like filter: quick, and not calling the bus. A nil message is
// queued as an empty one.
func (b *Bus) ObserveEncoded(name string, limit int, filter func(Event) bool, encode func(Event) []byte) (*Subscriber, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if o := b.observers[name]; o != nil {
		select {
		case <-o.sub.Dropped():
		default:
			return nil, ErrObserverExists
		}
	}
	sub := NewSubscriber(name, limit, true)
	if b.observers == nil {
		b.observers = map[string]*observer{}
	}
	b.observers[name] = &observer{sub: sub, filter: filter, encode: encode}
	return sub, nil
}

// ErrUnobserved is the reason an observer removed by Unobserve is dropped.
var ErrUnobserved = errors.New("observer removed")

// Unobserve removes an observer and drops it (idempotent).
func (b *Bus) Unobserve(sub *Subscriber) {
	b.mu.Lock()
	if o := b.observers[sub.App]; o != nil && o.sub == sub {
		delete(b.observers, sub.App)
	}
	b.mu.Unlock()
	sub.Close(ErrUnobserved)
}

// Observers lists the active observers' names, sorted.
func (b *Bus) Observers() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.observers))
	for name := range b.observers {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// NewBus makes a bus stamping events with the given asterisk_id.
func NewBus(entityID string) *Bus {
	return &Bus{entityID: entityID, apps: map[string]*Application{}}
}

// SetDeclared installs the check for declared event types (before use).
func (b *Bus) SetDeclared(f func(typ string) bool) { b.declared = f }

// EntityID is the node id stamped on events.
func (b *Bus) EntityID() string { return b.entityID }

// Register connects a subscriber as the application's consumer. A previous
// subscriber of the same application is told ApplicationReplaced and
// dropped. Subscriptions survive the replacement.
func (b *Bus) Register(sub *Subscriber, replacedMsg func(app string) []byte) {
	b.mu.Lock()
	onLocal := b.onLocal
	defer func() {
		b.mu.Unlock()
		if onLocal != nil {
			onLocal()
		}
	}()
	app := b.apps[sub.App]
	if app == nil {
		app = &Application{Name: sub.App, Sources: map[string]bool{}}
		b.apps[sub.App] = app
	}
	if old := app.Subscriber; old != nil && old != sub {
		if replacedMsg != nil {
			old.push(replacedMsg(sub.App))
		}
		// The old socket flushes what it has (ApplicationReplaced last), then
		// is dropped.
		old.mu.Lock()
		old.draining = true
		old.drainReason = ErrReplaced
		old.mu.Unlock()
		select {
		case old.wake <- struct{}{}:
		default:
		}
	}
	app.Subscriber = sub
}

// Unregister removes the subscriber if it is still the application's
// consumer. The application disappears when it has no consumer.
func (b *Bus) Unregister(sub *Subscriber) {
	b.mu.Lock()
	var onLocal func()
	if app := b.apps[sub.App]; app != nil && app.Subscriber == sub {
		app.Subscriber = nil
		delete(b.apps, sub.App)
		if !sub.Remote {
			onLocal = b.onLocal
		}
	}
	b.mu.Unlock()
	if onLocal != nil {
		onLocal()
	}
}

// RegisterRemote registers sub (marked Remote) as the application's
// consumer only if the application has none here: an application connected
// to this node always wins over its stand-in. It reports whether sub was
// registered.
func (b *Bus) RegisterRemote(sub *Subscriber) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	sub.Remote = true
	app := b.apps[sub.App]
	if app != nil && app.Subscriber != nil {
		return false
	}
	if app == nil {
		app = &Application{Name: sub.App, Sources: map[string]bool{}}
		b.apps[sub.App] = app
	}
	app.Subscriber = sub
	return true
}

// Deliver pushes msg, an event of another node already in ARI form, to the
// application's subscriber if it is connected to this node (not a Remote
// stand-in). It does not tap: the message came from NATS.
//
// The event goes out with this node's asterisk_id, as every event on a
// WebSocket of one Asterisk carries that Asterisk's id, the entity_id of
// its GET /asterisk/info: CyCoreSystems/ari's native client keys its
// handles' subscriptions on it, and a channel or recording handle would
// never see the events of another node's resource. Which node has the
// resource stays in its id (channels and bridges begin with the node id)
// and in the NATS subject the event came on.
func (b *Bus) Deliver(name string, msg []byte) bool {
	msg = withAsteriskID(msg, b.entityID)
	b.mu.Lock()
	defer b.mu.Unlock()
	app := b.apps[name]
	if app == nil || app.Subscriber == nil || app.Subscriber.Remote || !allowedRaw(app, msg) {
		return false
	}
	app.Subscriber.push(msg)
	return true
}

// withAsteriskID sets the "asterisk_id" member of a marshalled event to id
// (msg unchanged when id is empty, it already is id, or msg is not a JSON
// object).
func withAsteriskID(msg []byte, id string) []byte {
	if id == "" {
		return msg
	}
	var ev map[string]json.RawMessage
	if json.Unmarshal(msg, &ev) != nil || ev == nil {
		return msg
	}
	want, _ := json.Marshal(id)
	if string(ev["asterisk_id"]) == string(want) {
		return msg
	}
	ev["asterisk_id"] = want
	out, err := json.Marshal(ev)
	if err != nil {
		return msg
	}
	return out
}

// Connected reports whether the application is connected to this node
// (not a Remote stand-in).
func (b *Bus) Connected(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	app := b.apps[name]
	return app != nil && app.Subscriber != nil && !app.Subscriber.Remote
}

// Local lists the applications connected to this node (not Remote
// stand-ins), sorted.
func (b *Bus) Local() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for name, app := range b.apps {
		if app.Subscriber != nil && !app.Subscriber.Remote {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Registered reports whether an application has a consumer.
func (b *Bus) Registered(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	app := b.apps[name]
	return app != nil && app.Subscriber != nil
}

// Subscribe adds event sources to an application.
func (b *Bus) Subscribe(name string, sources ...string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	app := b.apps[name]
	if app == nil {
		return false
	}
	for _, s := range sources {
		app.Sources[s] = true
	}
	return true
}

// Unsubscribe removes sources; it reports the ones that were not subscribed.
func (b *Bus) Unsubscribe(name string, sources ...string) (found bool, missing []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	app := b.apps[name]
	if app == nil {
		return false, nil
	}
	for _, s := range sources {
		if !app.Sources[s] {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return true, missing
	}
	for _, s := range sources {
		delete(app.Sources, s)
	}
	return true, nil
}

// ForgetSource removes a source from every application (the resource is gone).
func (b *Bus) ForgetSource(source string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, app := range b.apps {
		delete(app.Sources, source)
	}
}

// SetFilter sets an application's event filter.
func (b *Bus) SetFilter(name string, allowed, disallowed []map[string]any) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	app := b.apps[name]
	if app == nil {
		return false
	}
	app.Allowed, app.Disallowed = allowed, disallowed
	return true
}

// AppInfo is a snapshot of an application.
type AppInfo struct {
	Name                string
	Sources             []string
	Allowed, Disallowed []map[string]any
}

// Apps lists the registered applications, sorted by name.
func (b *Bus) Apps() []AppInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]AppInfo, 0, len(b.apps))
	for _, app := range b.apps {
		out = append(out, snapshot(app))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// App returns one application.
func (b *Bus) App(name string) (AppInfo, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	app := b.apps[name]
	if app == nil {
		return AppInfo{}, false
	}
	return snapshot(app), true
}

func snapshot(app *Application) AppInfo {
	info := AppInfo{Name: app.Name, Allowed: app.Allowed, Disallowed: app.Disallowed}
	for s := range app.Sources {
		info.Sources = append(info.Sources, s)
	}
	sort.Strings(info.Sources)
	return info
}

// Publish delivers an event to every application that should see it. It
// never blocks on a consumer.
func (b *Bus) Publish(ev Event) {
	if b.declared != nil && !b.declared(ev.Type) {
		return
	}
	// The body is marshalled once, when the first recipient that takes JSON
	// is found: an event that only encoded observers (or nobody) take costs
	// no marshalling. A body that does not marshal to an object reaches
	// nobody that takes JSON.
	var raw []byte
	bad := false
	marshal := func() bool {
		if raw == nil && !bad {
			r, err := json.Marshal(ev.Body)
			if err != nil || len(r) < 2 || r[0] != '{' {
				bad = true
			} else {
				raw = r
			}
		}
		return !bad
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var tapped map[string]bool
	for _, app := range b.apps {
		if app.Subscriber == nil || !b.wants(app, ev) || !allowed(app, ev.Type) {
			continue
		}
		if !marshal() {
			return
		}
		msg := withApplication(raw, app.Name)
		app.Subscriber.push(msg)
		if b.tap != nil {
			b.tap(app.Name, msg)
			if tapped == nil {
				tapped = map[string]bool{}
			}
			tapped[app.Name] = true
		}
	}
	if b.tap != nil {
		for _, name := range ev.Apps {
			if name != "" && !tapped[name] {
				if !marshal() {
					return
				}
				b.tap(name, withApplication(raw, name))
			}
		}
	}
	for name, o := range b.observers {
		if o.sub.isClosed() {
			delete(b.observers, name) // dropped (overflow): forget it
			continue
		}
		if o.filter != nil && !o.filter(ev) {
			continue
		}
		if o.encode != nil {
			msg := o.encode(ev)
			if msg == nil {
				msg = []byte{}
			}
			o.sub.push(msg)
			continue
		}
		if !marshal() {
			continue
		}
		o.sub.push(raw)
	}
}

func (b *Bus) wants(app *Application, ev Event) bool {
	for _, a := range ev.Apps {
		if a == app.Name {
			return true
		}
	}
	if ev.Only {
		return false
	}
	if app.Subscriber.All {
		return true
	}
	for _, s := range ev.Sources {
		if app.Sources[s] {
			return true
		}
		// endpoint:PJSIP covers endpoint:PJSIP/alice
		if strings.HasPrefix(s, "endpoint:") {
			if tech, _, ok := strings.Cut(s, "/"); ok && app.Sources[tech] {
				return true
			}
		}
	}
	return false
}

// allowedRaw applies the application's type filter to a marshalled event.
func allowedRaw(app *Application, msg []byte) bool {
	if len(app.Allowed) == 0 && len(app.Disallowed) == 0 {
		return true
	}
	var head struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(msg, &head) != nil {
		return false
	}
	return allowed(app, head.Type)
}

func allowed(app *Application, typ string) bool {
	match := func(list []map[string]any) bool {
		for _, f := range list {
			if t, _ := f["type"].(string); t == typ {
				return true
			}
		}
		return false
	}
	if len(app.Allowed) > 0 && !match(app.Allowed) {
		return false
	}
	return !match(app.Disallowed)
}

// withApplication rewrites the "application" member of a marshalled event.
// Bodies marshal Base first with an empty application placeholder
// `"application":""`, which is replaced; otherwise the member is prepended.
func withApplication(raw []byte, app string) []byte {
	name, _ := json.Marshal(app)
	const placeholder = `"application":""`
	if i := indexOf(raw, placeholder); i >= 0 {
		out := make([]byte, 0, len(raw)+len(name))
		out = append(out, raw[:i]...)
		out = append(out, `"application":`...)
		out = append(out, name...)
		return append(out, raw[i+len(placeholder):]...)
	}
	out := make([]byte, 0, len(raw)+len(name)+16)
	out = append(out, `{"application":`...)
	out = append(out, name...)
	if len(raw) > 2 {
		out = append(out, ',')
	}
	return append(out, raw[1:]...)
}

func indexOf(b []byte, s string) int {
	return strings.Index(string(b), s)
}

// BaseType returns the event type (lets routing read the type of any body
// embedding Base).
func (b *Base) BaseType() string { return b.Type }
