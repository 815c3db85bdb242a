package call

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	pionrtp "github.com/pion/rtp"

	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/sdp"
)

// Fakes for the seams of seams.go: a SIP dialog, an RTP session and a
// clock, so the state machines run without sockets, peers or waiting.

// fakeDialog records what the channel asked of its SIP dialog.
type fakeDialog struct {
	mu        sync.Mutex
	answers   [][]byte
	progress  []int
	rejects   []int
	hangups   []int // codes of Hangup calls
	answerErr error
	// answerDelay holds Answer up (widens races); a second answer fails,
	// as sip.Dialog's does once a final response was sent.
	answerDelay time.Duration
	acked       chan struct{}
	ackBody     []byte
}

func newFakeDialog() *fakeDialog { return &fakeDialog{acked: make(chan struct{})} }

func (d *fakeDialog) Progress(code int, reason string, body []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.progress = append(d.progress, code)
	return nil
}

func (d *fakeDialog) Answer(body []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.answerErr != nil {
		return d.answerErr
	}
	if len(d.answers) > 0 {
		return errors.New("sip: a final response was already sent")
	}
	time.Sleep(d.answerDelay)
	d.answers = append(d.answers, body)
	return nil
}

func (d *fakeDialog) Reject(code int, reason string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rejects = append(d.rejects, code)
	return nil
}

func (d *fakeDialog) Hangup(ctx context.Context, code int, reason string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hangups = append(d.hangups, code)
	return nil
}

func (d *fakeDialog) Acked() <-chan struct{} { return d.acked }

func (d *fakeDialog) AckBody() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ackBody
}

func (d *fakeDialog) ack(body []byte) {
	d.mu.Lock()
	d.ackBody = body
	d.mu.Unlock()
	close(d.acked)
}

func (d *fakeDialog) snapshot() (answers [][]byte, progress, hangups []int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([][]byte(nil), d.answers...), append([]int(nil), d.progress...), append([]int(nil), d.hangups...)
}

// mediaUpdate is one Update call.
type mediaUpdate struct {
	remote *net.UDPAddr
	pt, dt uint8
}

// fakeMedia records what the channel did with its RTP session; the test
// delivers received packets by calling the channel's OnAudio/OnDTMF (the
// rtp.Handler) after setting the arrival time.
type fakeMedia struct {
	mu      sync.Mutex
	updates []mediaUpdate
	written int // audio frames sent
	// keep, when set, keeps a copy of each frame sent in sent.
	keep    bool
	sent    [][]byte
	digits  chan rune
	flushes int
	owned   bool
	closed  int
	arrival time.Time
	relax   time.Duration // SetRelaxed's last period
}

func newFakeMedia() *fakeMedia { return &fakeMedia{digits: make(chan rune, 64)} }

func (f *fakeMedia) Update(remote *net.UDPAddr, pt, dt uint8) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, mediaUpdate{remote, pt, dt})
}

func (f *fakeMedia) WriteAudio(payload []byte, samples uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.written++
	if f.keep {
		f.sent = append(f.sent, bytes.Clone(payload))
	}
	return nil
}

// keepSent makes the fake keep the frames sent from now on.
func (f *fakeMedia) keepSent() { f.mu.Lock(); f.keep = true; f.mu.Unlock() }

// sentFrames are the frames kept (keepSent).
func (f *fakeMedia) sentFrames() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

func (f *fakeMedia) SendDigit(digit rune, d time.Duration) error {
	f.digits <- digit
	return nil
}

// Arrival is read on the media path, where the test set it (no lock: the
// test's goroutine is the media path).
func (f *fakeMedia) Arrival() time.Time { return f.arrival }

func (f *fakeMedia) Flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushes++
}

func (f *fakeMedia) SetOwned(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.owned = on
}

func (f *fakeMedia) Stats() rtp.Stats { return rtp.Stats{} }
func (f *fakeMedia) LocalAddr() *net.UDPAddr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (f *fakeMedia) Remote() *net.UDPAddr { return nil }
func (f *fakeMedia) SetRelaxed(period time.Duration) {
	f.mu.Lock()
	f.relax = period
	f.mu.Unlock()
}
func (f *fakeMedia) relaxed() time.Duration { f.mu.Lock(); defer f.mu.Unlock(); return f.relax }
func (f *fakeMedia) isOwned() bool          { f.mu.Lock(); defer f.mu.Unlock(); return f.owned }
func (f *fakeMedia) lastUpdate() mediaUpdate {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.updates[len(f.updates)-1]
}
func (f *fakeMedia) updateCount() int        { f.mu.Lock(); defer f.mu.Unlock(); return len(f.updates) }
func (f *fakeMedia) closeCount() int         { f.mu.Lock(); defer f.mu.Unlock(); return f.closed }
func (f *fakeMedia) setArrival(at time.Time) { f.arrival = at }
func (f *fakeMedia) sentDigits() <-chan rune { return f.digits }
func (f *fakeMedia) Close() error            { f.mu.Lock(); defer f.mu.Unlock(); f.closed++; return nil }

// fakeClock is a Clock whose time moves only by Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       chan time.Time
	at      time.Time
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: make(chan time.Time, 1), at: c.now.Add(d)}
	c.timers = append(c.timers, t)
	return &fakeTimerHandle{c: c, t: t}
}

type fakeTimerHandle struct {
	c *fakeClock
	t *fakeTimer
}

func (h *fakeTimerHandle) C() <-chan time.Time { return h.t.c }

func (h *fakeTimerHandle) Stop() bool {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	was := !h.t.stopped
	h.t.stopped = true
	return was
}

// waiting is the number of timers that have neither fired nor stopped.
func (c *fakeClock) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped {
			n++
		}
	}
	return n
}

// Advance moves time on and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if !t.stopped && !t.at.After(c.now) {
			t.stopped = true
			t.c <- c.now
		}
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// events is an observer of the bus with helpers to wait for events.
type events struct {
	t    *testing.T
	sub  *event.Subscriber
	seen []map[string]any
}

func observe(t *testing.T, bus *event.Bus) *events {
	sub, err := bus.Observe("test-observer", 4096, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Unobserve(sub) })
	return &events{t: t, sub: sub}
}

// next returns the next event, or nil if none comes within d.
func (e *events) next(d time.Duration) map[string]any {
	if len(e.seen) == 0 {
		done := make(chan struct{})
		timer := time.AfterFunc(d, func() { close(done) })
		defer timer.Stop()
		for _, raw := range e.sub.Next(done) {
			var ev map[string]any
			if err := json.Unmarshal(raw, &ev); err != nil {
				e.t.Fatal(err)
			}
			e.seen = append(e.seen, ev)
		}
		if len(e.seen) == 0 {
			return nil
		}
	}
	ev := e.seen[0]
	e.seen = e.seen[1:]
	return ev
}

// expect skips to the next event of a type (failing after 5 s).
func (e *events) expect(typ string) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		ev := e.next(time.Until(deadline))
		if ev != nil && ev["type"] == typ {
			return ev
		}
	}
	e.t.Fatalf("no %s event", typ)
	return nil
}

// none checks that no event of the type is pending (after the others
// already published have been read).
func (e *events) none(typ string) {
	e.t.Helper()
	for ev := e.next(50 * time.Millisecond); ev != nil; ev = e.next(50 * time.Millisecond) {
		if ev["type"] == typ {
			e.t.Fatalf("unexpected %s: %v", typ, ev)
		}
	}
}

// testRig is a Manager whose channels have fake dialogs and media.
type testRig struct {
	t     *testing.T
	m     *Manager
	bus   *event.Bus
	clock *fakeClock
	ev    *events
	media map[string]*fakeMedia
	mu    sync.Mutex
	next  *fakeMedia
}

func newRig(t *testing.T, mut ...func(*Options)) *testRig {
	t.Helper()
	ports, err := rtp.NewPorts("127.0.0.1", 47000, 47999)
	if err != nil {
		t.Fatal(err)
	}
	r := &testRig{t: t, bus: event.NewBus("test"), clock: newFakeClock(), media: map[string]*fakeMedia{}}
	o := Options{
		Bus:           r.bus,
		Ports:         ports,
		Clock:         r.clock,
		RecordingsDir: t.TempDir(),
		NewMedia: func(cfg rtp.Config) (Media, error) {
			cfg.CloseSockets() // the fake needs no sockets
			r.mu.Lock()
			defer r.mu.Unlock()
			f := r.next
			r.next = nil
			if f == nil {
				f = newFakeMedia()
			}
			return f, nil
		},
	}
	for _, f := range mut {
		f(&o)
	}
	r.m = NewManager(o)
	r.ev = observe(t, r.bus)
	t.Cleanup(func() { r.m.HangupAll(CauseNormalClearing) })
	return r
}

// offer is a caller's SDP offer (PCMU and telephone-event), with a
// direction attribute.
func offer(t *testing.T, port int, dir string) []byte {
	t.Helper()
	b, err := sdp.Offer(sdp.Local{IP: net.IPv4(127, 0, 0, 1), Port: port, SessionID: 7, Version: 1}, []string{"PCMU"}, 101)
	if err != nil {
		t.Fatal(err)
	}
	if dir != "" {
		b = []byte(replaceDirection(string(b), dir))
	}
	return b
}

func replaceDirection(s, dir string) string {
	for _, d := range []string{"a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"} {
		if i := indexString(s, d); i >= 0 {
			return s[:i] + "a=" + dir + s[i+len(d):]
		}
	}
	return s + "a=" + dir + "\r\n"
}

func indexString(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// inbound makes a ringing inbound channel with a fake dialog and media,
// optionally in a Stasis application (StasisStart read).
func (r *testRig) inbound(app string, body []byte) (*Channel, *fakeDialog, *fakeMedia) {
	r.t.Helper()
	var remote *sdp.Media
	var choice sdp.Choice
	if body != nil {
		var err error
		if remote, err = sdp.Parse(body); err != nil {
			r.t.Fatal(err)
		}
		if choice, err = sdp.Negotiate(remote, r.m.opts.Codecs); err != nil {
			r.t.Fatal(err)
		}
	}
	cfg, err := r.m.opts.Ports.ListenConfig(nil)
	if err != nil {
		r.t.Fatal(err)
	}
	d, fm := newFakeDialog(), newFakeMedia()
	r.mu.Lock()
	r.next = fm
	r.mu.Unlock()
	ch, err := r.m.newChannel(channelSpec{user: "alice", callID: "c1", caller: CallerID{Number: "alice"},
		dialplan: DialplanCEP{Context: "default", Exten: "300"}, state: StateRing, choice: choice, remote: remote, dialog: d}, cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	if app != "" {
		ch.enterStasis(app, nil)
		r.ev.expect("StasisStart")
	}
	return ch, d, fm
}

// feed delivers n 20 ms µ-law frames of a constant value to the channel as
// its RTP session would, starting at RTP timestamp ts.
func feed(ch *Channel, fm *fakeMedia, ssrc uint32, ts uint32, n int, value byte) uint32 {
	payload := make([]byte, 160)
	for i := range payload {
		payload[i] = value
	}
	base := time.Unix(1000, 0)
	for i := 0; i < n; i++ {
		pkt := &pionrtp.Packet{Header: pionrtp.Header{PayloadType: 0, SSRC: ssrc, Timestamp: ts, SequenceNumber: uint16(ts / 160)}, Payload: payload}
		fm.setArrival(base.Add(time.Duration(ts/8) * time.Millisecond))
		ch.OnAudio(pkt, uint64(ts/160))
		ts += 160
	}
	return ts
}

var benchPayload = make([]byte, 160)

// feedOne delivers one frame without allocating (benchmarks).
func feedOne(ch *Channel, ts uint32) uint32 {
	pkt := &benchPkt
	pkt.Timestamp = ts
	pkt.Payload = benchPayload
	ch.OnAudio(pkt, 0)
	return ts + 160
}

var benchPkt pionrtp.Packet

// The Manager's API as these tests use it, in one place.

func (r *testRig) newBridge(id string) *Bridge {
	r.t.Helper()
	b, err := r.m.createBridge(id, "mixing", "")
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

func (r *testRig) bridgeExists(id string) bool {
	_, err := r.m.bridge(id)
	return err == nil
}

func (r *testRig) channelExists(id string) bool {
	_, err := r.m.channel(id)
	return err == nil
}

func (r *testRig) originate(o OriginateOptions) (*Channel, error) {
	ch, _, err := r.m.originate(o)
	return ch, err
}

func isNotInApplication(err error) bool { return errors.Is(err, ErrNotInApplication) }

func (d *fakeDialog) TargetURI(target string) (string, error) { return "sip:" + target + "@fake", nil }

func (d *fakeDialog) Redirect(uri string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rejects = append(d.rejects, 302)
	return nil
}

func (d *fakeDialog) Refer(ctx context.Context, uri string) (<-chan int, error) {
	return nil, errors.New("fake dialog: no REFER")
}
