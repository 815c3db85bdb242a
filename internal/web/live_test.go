package web

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/event"
)

// fakeCalls is one call with one live recording; only what the live page
// uses is implemented (the rest of call.Calls panics).
type fakeCalls struct {
	call.Calls
	mu     sync.Mutex
	state  call.RecordingState
	muted  bool
	pauses []bool
}

func (f *fakeCalls) Channels() []call.ChannelJSON {
	return []call.ChannelJSON{{ID: "ch1", Name: "PJSIP/dave-1", State: "Up", Caller: call.CallerID{Number: "dave"},
		Dialplan: call.DialplanCEP{Exten: "2001"}, Creationtime: event.Time(time.Now())}}
}
func (f *fakeCalls) Bridges() []call.BridgeJSON { return nil }
func (f *fakeCalls) LiveRecording(name call.RecordingName) (call.LiveRecordingJSON, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name != "web/1" {
		return call.LiveRecordingJSON{}, call.ErrNotFound
	}
	return call.LiveRecordingJSON{Name: "web/1", Format: "wav", State: f.state, TargetURI: "channel:ch1"}, nil
}
func (f *fakeCalls) PauseRecordingAs(name call.RecordingName, on bool, behavior, by string) error {
	if name != "web/1" {
		return call.ErrNotFound
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pauses = append(f.pauses, on)
	f.state = "recording"
	if on {
		f.state = "paused"
	}
	return nil
}

// TestLiveCallsFollowTheBusAndActThroughCalls: a RecordingStarted on the
// bus puts the recording under its call; pause from the page goes through
// call.Calls and is kept as an interval; a pause made elsewhere (the
// recording reports paused) is noted too; RecordingFinished removes it
// and bumps the finished count that refreshes the table.
func TestLiveCallsFollowTheBusAndActThroughCalls(t *testing.T) {
	f := newFixture(t)
	bus := event.NewBus("test")
	fc := &fakeCalls{state: "recording"}
	f.h.Close()
	f.h = New(Options{Catalog: f.h.o.Catalog, Calls: fc, Bus: bus, CacheDir: f.cache, Admins: []Admin{{Name: "admin", Password: "secret"}}})
	t.Cleanup(f.h.Close)
	c, tok := f.signIn(t, "admin", "secret")
	snap := func() Snapshot {
		var s Snapshot
		if err := json.Unmarshal(f.do(t, "GET", "/live/calls", nil, c).Body.Bytes(), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	until := func(what string, ok func(Snapshot) bool) Snapshot {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			s := snap()
			if ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v", what, s)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	publish := func(typ string) {
		bus.Publish(event.Event{Type: typ, Sources: []string{"channel:ch1"}, Body: &call.RecordingEvent{Base: event.Base{Type: typ},
			Recording: call.LiveRecordingJSON{Name: "web/1", Format: "wav", State: "recording", TargetURI: "channel:ch1"}}})
	}
	publish("RecordingStarted")
	s := until("recording under its call", func(s Snapshot) bool { return len(s.Calls) == 1 && len(s.Calls[0].Recordings) == 1 })
	if s.Calls[0].From != "dave" || s.Calls[0].To != "2001" || s.Calls[0].Recordings[0].Paused {
		t.Fatalf("%+v", s.Calls[0])
	}
	if w := f.do(t, "POST", "/live/recording", url.Values{"name": {"web/1"}, "action": {"pause"}}, c, "X-CSRF-Token", tok); w.Code != http.StatusNoContent {
		t.Fatalf("pause: %d %s", w.Code, w.Body)
	}
	if !snap().Calls[0].Recordings[0].Paused || len(fc.pauses) != 1 || !fc.pauses[0] {
		t.Fatalf("pause did not reach call.Calls: %v", fc.pauses)
	}
	f.do(t, "POST", "/live/recording", url.Values{"name": {"web/1"}, "action": {"resume"}}, c, "X-CSRF-Token", tok)
	// Paused elsewhere: the recording says so, and the page notes it.
	fc.mu.Lock()
	fc.state = "paused"
	fc.mu.Unlock()
	until("paused elsewhere", func(s Snapshot) bool { return s.Calls[0].Recordings[0].Paused })
	if iv := f.h.live.pausedIntervals("web/1"); len(iv) != 2 || iv[0].To.IsZero() || !iv[1].To.IsZero() {
		t.Fatalf("paused intervals %+v, want one closed and one open", iv)
	}
	if w := f.do(t, "POST", "/live/recording", url.Values{"name": {"nope"}, "action": {"pause"}}, c, "X-CSRF-Token", tok); w.Code != http.StatusNotFound {
		t.Fatalf("unknown recording: %d", w.Code)
	}
	before := snap().Finished
	publish("RecordingFinished")
	s = until("recording gone", func(s Snapshot) bool { return len(s.Calls[0].Recordings) == 0 })
	if s.Finished != before+1 {
		t.Fatalf("finished %d, want %d", s.Finished, before+1)
	}
	if iv := f.h.live.pausedIntervals("web/1"); iv[1].To.IsZero() {
		t.Fatal("the open pause not closed when the recording finished")
	}
	if !strings.Contains(f.do(t, "GET", "/live", nil, c).Body.String(), `id="calls"`) {
		t.Fatal("live page")
	}
}

// marshalCount counts how often the bus marshals an event body.
type marshalCount struct {
	call.RecordingEvent
	n *atomic.Int32
}

func (m *marshalCount) MarshalJSON() ([]byte, error) {
	m.n.Add(1)
	return json.Marshal(m.RecordingEvent)
}

// TestLiveObserverMarshalsNoEvent: the live page follows the bus without the
// bus marshalling any event for it (it reads a recording event's fields from
// the body), and a channel event still wakes its streams.
func TestLiveObserverMarshalsNoEvent(t *testing.T) {
	bus := event.NewBus("test")
	l := newLive(&fakeCalls{state: "recording"}, bus, slog.New(slog.DiscardHandler))
	t.Cleanup(l.close)
	var n atomic.Int32
	l.mu.Lock()
	woken := l.changed
	l.mu.Unlock()
	bus.Publish(event.Event{Type: "ChannelStateChange", Sources: []string{"channel:ch1"}, Body: &marshalCount{n: &n}})
	select {
	case <-woken:
	case <-time.After(5 * time.Second):
		t.Fatal("a channel event did not wake the live streams")
	}
	bus.Publish(event.Event{Type: "RecordingStarted", Sources: []string{"channel:ch1"}, Body: &call.RecordingEvent{Base: event.Base{Type: "RecordingStarted"},
		Recording: call.LiveRecordingJSON{Name: "web/2", Format: "wav", State: "recording", TargetURI: "channel:ch1"}}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.mu.Lock()
		r := l.recs["web/2"]
		l.mu.Unlock()
		if r != nil {
			if r.Target != "channel:ch1" || r.Format != "wav" || r.State != "recording" {
				t.Fatalf("live recording %+v", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("RecordingStarted not applied")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := n.Load(); got != 0 {
		t.Fatalf("the bus marshalled %d events for the live page alone, want 0", got)
	}
}
