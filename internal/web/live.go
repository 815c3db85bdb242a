package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// observerName is the live page's bus observer.
const observerName = "web-live"

// interval is a paused stretch of a recording, in wall-clock time.
type interval struct {
	From, To time.Time // To zero: still paused
	// From the catalog: skip or silence, and who asked.
	Behavior, By string
}

// catalogIntervals are a recording's paused intervals as the catalog keeps
// them (its quality); ok is false when the catalog has none measured.
func catalogIntervals(rec meta.Recording) (out []interval, ok bool) {
	if rec.Quality == nil {
		return nil, false
	}
	for i, p := range rec.Quality.Paused {
		iv := interval{From: p.Start, To: p.Start.Add(time.Duration(p.LengthMs) * time.Millisecond), Behavior: p.Behavior, By: p.By}
		if rec.Status == meta.StatusPaused && i == len(rec.Quality.Paused)-1 {
			iv.To = time.Time{} // the pause going on
		}
		out = append(out, iv)
	}
	return out, true
}

// liveRec is a recording the observer saw start and not yet finish.
type liveRec struct {
	Name    string    `json:"name"`
	Target  string    `json:"target"` // channel:<id> or bridge:<id>
	Format  string    `json:"format"`
	State   string    `json:"state"`
	Started time.Time `json:"started"`
	Muted   bool      `json:"muted"`
}

// live follows the bus (an in-process observer that never blocks the
// publisher) and wakes the live page's event streams.
type live struct {
	calls call.Calls
	bus   *event.Bus
	log   *slog.Logger
	sub   *event.Subscriber
	done  chan struct{}
	// stop ends the event streams (Close, before the HTTP server's
	// Shutdown, which would otherwise wait for them).
	stop     chan struct{}
	stopOnce sync.Once

	mu       sync.Mutex
	recs     map[string]*liveRec
	paused   map[string][]interval // by recording name, kept after it ends (bounded)
	order    []string              // paused's names, oldest first
	changed  chan struct{}         // closed and replaced on every change
	seq      int
	finished int // recordings that ended since start
}

const maxPausedKept = 10000

func newLive(c call.Calls, b *event.Bus, log *slog.Logger) *live {
	l := &live{calls: c, bus: b, log: log, done: make(chan struct{}), stop: make(chan struct{}), recs: map[string]*liveRec{},
		paused: map[string][]interval{}, changed: make(chan struct{})}
	if b == nil {
		return l
	}
	sub, err := b.ObserveEncoded(observerName, 4096, liveEvent, liveMessage)
	if err != nil {
		log.Warn("web: live calls not updated", "err", err)
		return l
	}
	l.sub = sub
	go l.run()
	return l
}

// liveEvent picks the events that change what the live page shows.
func liveEvent(ev event.Event) bool {
	return strings.HasPrefix(ev.Type, "Channel") || strings.HasPrefix(ev.Type, "Recording") ||
		ev.Type == "StasisStart" || ev.Type == "StasisEnd" || strings.HasPrefix(ev.Type, "Bridge")
}

// liveMessage is what the live page's observer queues for an event: for a
// recording's start and end the fields apply reads, in the event's JSON
// layout; for the other events nothing (they only wake the page's streams).
// So the bus marshals no whole event for the page (it does for an ARI
// application that takes it).
func liveMessage(ev event.Event) []byte {
	switch ev.Type {
	case "RecordingStarted", "RecordingFinished", "RecordingFailed":
	default:
		return nil
	}
	var r call.LiveRecordingJSON
	switch b := ev.Body.(type) {
	case *call.RecordingEvent:
		r = b.Recording
	case call.RecordingEvent:
		r = b.Recording
	default:
		msg, _ := json.Marshal(ev.Body) // another body: apply reads its JSON
		return msg
	}
	msg, _ := json.Marshal(liveRecordingMsg{Type: ev.Type, Recording: liveRecordingFields{
		Name: r.Name, Format: r.Format, TargetURI: r.TargetURI, State: string(r.State)}})
	return msg
}

// liveRecordingMsg is the part of a recording event that apply reads.
type liveRecordingMsg struct {
	Type      string              `json:"type"`
	Recording liveRecordingFields `json:"recording"`
}

type liveRecordingFields struct {
	Name      string `json:"name"`
	Format    string `json:"format"`
	TargetURI string `json:"target_uri"`
	State     string `json:"state"`
}

func (l *live) close() {
	l.stopOnce.Do(func() { close(l.stop) })
	if l.sub != nil {
		l.bus.Unobserve(l.sub)
		<-l.done
	}
}

func (l *live) run() {
	defer close(l.done)
	for {
		msgs := l.sub.Next(nil)
		if msgs == nil {
			if err := l.sub.Reason(); err != nil && !errors.Is(err, event.ErrUnobserved) {
				// Dropped on overflow: observe again from a clean slate.
				l.log.Warn("web: live observer dropped; re-observing", "err", err)
				if sub, err2 := l.bus.ObserveEncoded(observerName, 4096, liveEvent, liveMessage); err2 == nil {
					l.sub = sub
					continue
				}
			}
			return
		}
		for _, m := range msgs {
			l.apply(m)
		}
		l.wake()
	}
}

func (l *live) apply(msg []byte) {
	if len(msg) == 0 {
		return // an event that only wakes the streams (liveMessage)
	}
	var ev struct {
		Type      string                 `json:"type"`
		Recording call.LiveRecordingJSON `json:"recording"`
	}
	if json.Unmarshal(msg, &ev) != nil {
		return
	}
	r := ev.Recording
	l.mu.Lock()
	defer l.mu.Unlock()
	switch ev.Type {
	case "RecordingStarted":
		l.recs[r.Name] = &liveRec{Name: r.Name, Target: r.TargetURI, Format: r.Format, State: string(r.State), Started: time.Now()}
	case "RecordingFinished", "RecordingFailed":
		delete(l.recs, r.Name)
		l.finished++
		l.endPause(r.Name, time.Now())
	}
}

func (l *live) wake() {
	l.mu.Lock()
	close(l.changed)
	l.changed = make(chan struct{})
	l.seq++
	l.mu.Unlock()
}

func (l *live) endPause(name string, t time.Time) {
	iv := l.paused[name]
	if n := len(iv); n > 0 && iv[n-1].To.IsZero() {
		iv[n-1].To = t
	}
}

// setPaused notes a pause or resume made from the page.
func (l *live) setPaused(name string, on bool) {
	l.notePaused(name, on)
	l.wake()
}

func (l *live) notePaused(name string, on bool) {
	now := time.Now()
	l.mu.Lock()
	if on {
		if _, ok := l.paused[name]; !ok {
			l.order = append(l.order, name)
			if len(l.order) > maxPausedKept {
				delete(l.paused, l.order[0])
				l.order = l.order[1:]
			}
		}
		iv := l.paused[name]
		if n := len(iv); n == 0 || !iv[n-1].To.IsZero() {
			l.paused[name] = append(iv, interval{From: now})
		}
	} else {
		l.endPause(name, now)
	}
	l.mu.Unlock()
}

func (l *live) setMuted(name string, on bool) {
	l.mu.Lock()
	if r := l.recs[name]; r != nil {
		r.Muted = on
	}
	l.mu.Unlock()
	l.wake()
}

func (l *live) pausedIntervals(name string) []interval {
	if name == "" {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]interval(nil), l.paused[name]...)
}

// Snapshot is what the live page shows.
type Snapshot struct {
	Seq   int        `json:"seq"`
	Calls []liveCall `json:"calls"`
	// Finished counts recordings that ended since the observer started:
	// the recordings table reloads its rows when it changes.
	Finished int `json:"finished"`
}

type liveCall struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	State      string         `json:"state"`
	From       string         `json:"from"`
	FromName   string         `json:"from_name"`
	To         string         `json:"to"`
	Since      string         `json:"since"`
	Recordings []liveRecState `json:"recordings"`
}

type liveRecState struct {
	liveRec
	Paused   bool `json:"paused"`
	Duration *int `json:"duration,omitempty"`
}

func (l *live) snapshot() (Snapshot, <-chan struct{}) {
	l.mu.Lock()
	s := Snapshot{Seq: l.seq}
	ch := l.changed
	recs := make([]liveRec, 0, len(l.recs))
	for _, r := range l.recs {
		recs = append(recs, *r)
	}
	pausedNow := map[string]bool{}
	for _, r := range recs {
		iv := l.paused[r.Name]
		pausedNow[r.Name] = len(iv) > 0 && iv[len(iv)-1].To.IsZero()
	}
	s.Finished = l.finished
	l.mu.Unlock()
	if l.calls == nil {
		return s, ch
	}
	byTarget := map[string][]liveRecState{}
	for _, r := range recs {
		st := liveRecState{liveRec: r, Paused: pausedNow[r.Name]}
		if j, err := l.calls.LiveRecording(call.RecordingName(r.Name)); err == nil {
			st.State = string(j.State)
			st.Duration = j.Duration
			st.Paused = j.State == "paused"
			if st.Paused != pausedNow[r.Name] {
				// Paused or resumed elsewhere (ARI, the command API):
				// noted as seen, to within a snapshot (≤ 1 s while
				// someone watches).
				l.notePaused(r.Name, st.Paused)
			}
		}
		byTarget[r.Target] = append(byTarget[r.Target], st)
	}
	bridged := map[string][]liveRecState{}
	for _, b := range l.calls.Bridges() {
		for _, c := range b.Channels {
			bridged[c] = append(bridged[c], byTarget["bridge:"+string(b.ID)]...)
		}
	}
	for _, c := range l.calls.Channels() {
		lc := liveCall{ID: string(c.ID), Name: c.Name, State: c.State, From: c.Caller.Number, FromName: c.Caller.Name,
			To: c.Dialplan.Exten, Since: time.Time(c.Creationtime).UTC().Format(time.RFC3339)}
		if c.Connected.Number != "" {
			lc.To = c.Connected.Number
		}
		lc.Recordings = append(byTarget["channel:"+string(c.ID)], bridged[string(c.ID)]...)
		if lc.Recordings == nil {
			lc.Recordings = []liveRecState{}
		}
		s.Calls = append(s.Calls, lc)
	}
	sort.Slice(s.Calls, func(i, j int) bool { return s.Calls[i].Since < s.Calls[j].Since })
	if s.Calls == nil {
		s.Calls = []liveCall{}
	}
	return s, ch
}

func (h *Handler) livePage(w http.ResponseWriter, r *http.Request, se *session) {
	v := view{Title: "Live calls", User: se.user, CSRF: se.csrf, Nav: "live"}
	if !se.live {
		v.Error = "Live calls are shown to admins and to the default account, which calls record into."
	}
	h.render(w, http.StatusOK, "live", v)
}

// snapshotFor is the live snapshot a session may see: without live
// rights, only the count of finished recordings (to refresh its table).
func (h *Handler) snapshotFor(se *session) (Snapshot, <-chan struct{}) {
	s, ch := h.live.snapshot()
	if !se.live {
		s.Calls = []liveCall{}
	}
	return s, ch
}

func (h *Handler) liveJSON(w http.ResponseWriter, r *http.Request, se *session) {
	s, _ := h.snapshotFor(se)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(s)
}

// liveEvents is a server-sent event stream: a snapshot now and after every
// change (at most every 200 ms), and a comment every 15 s to keep proxies
// from closing it.
func (h *Handler) liveEvents(w http.ResponseWriter, r *http.Request, se *session) {
	rc := http.NewResponseController(w) // finds Flush through wrappers' Unwrap
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	tick := time.NewTicker(time.Second) // durations and recording states move between events
	defer tick.Stop()
	for {
		s, changed := h.snapshotFor(se)
		b, _ := json.Marshal(s)
		if _, err := fmt.Fprintf(w, "event: snapshot\ndata: %s\n\n", b); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-h.live.stop:
			return
		case <-changed:
		case <-tick.C:
		case <-keep.C:
			fmt.Fprint(w, ": keep-alive\n\n")
		}
	}
}

// liveAction is pause/resume, mute/unmute or stop on a live recording,
// through the Calls interface.
func (h *Handler) liveAction(w http.ResponseWriter, r *http.Request, se *session) {
	if !se.live {
		http.Error(w, "Live calls are controlled by admins and the default account", http.StatusForbidden)
		return
	}
	if h.o.Calls == nil {
		http.Error(w, "No calls on this server", http.StatusNotFound)
		return
	}
	name := call.RecordingName(r.PostFormValue("name"))
	var err error
	switch a := r.PostFormValue("action"); a {
	case "pause", "resume":
		if err = h.o.Calls.PauseRecordingAs(name, a == "pause", call.PauseSkip, "web:"+se.user); err == nil {
			h.live.setPaused(string(name), a == "pause")
		}
	case "mute", "unmute":
		if err = h.o.Calls.MuteRecording(name, a == "mute"); err == nil {
			h.live.setMuted(string(name), a == "mute")
		}
	case "stop":
		err = h.o.Calls.StopRecording(name)
	default:
		http.Error(w, "Unknown action", http.StatusBadRequest)
		return
	}
	if err != nil {
		status := http.StatusConflict
		if errors.Is(err, call.ErrNotFound) {
			status = http.StatusNotFound
		}
		http.Error(w, err.Error(), status)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
