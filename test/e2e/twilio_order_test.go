package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil/pgtest"
)

// slowFirstHook is a real receiver of status callbacks that is slow for
// the first callback it gets: it answers its first failFirst requests
// with 500 after a pause (a receiver still warming up), and keeps the
// RecordingStatus of each request it accepts, in the order it accepts
// them.
type slowFirstHook struct {
	failFirst int

	mu       sync.Mutex
	seen     int
	accepted []string
}

func (h *slowFirstHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	h.mu.Lock()
	h.seen++
	fail := h.seen <= h.failFirst
	h.mu.Unlock()
	if fail {
		time.Sleep(300 * time.Millisecond)
		w.WriteHeader(500)
		return
	}
	st := r.PostForm.Get("RecordingStatus")
	if r.PostForm.Get("RecordingDegraded") == "true" {
		st = "degraded"
	}
	h.mu.Lock()
	h.accepted = append(h.accepted, st)
	h.mu.Unlock()
	w.WriteHeader(204)
}

func (h *slowFirstHook) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.accepted...)
}

// twilioCall answers a call in the test application and returns its
// channel, the phone's call and its CallSid.
func twilioCall(t *testing.T, n *node, events *ariEvents) (string, *sipua.Call, string) {
	t.Helper()
	phone := newPhone(t, "udp")
	id, call := answeredCall(t, n, events, phone, "350")
	return id, call, callSidOf(t, n, id)
}

// TestTwilioCallbacksInOrder: a recording's status callbacks reach their
// receiver in the order of the recording's life, in-progress, paused,
// resumed (in-progress), completed, even when the receiver fails the first
// one twice (retried after 1 s, then 2 s): each waits for the one before
// it (the outbox's order key), on SQLite and on PostgreSQL. Before, the
// in-progress callback waited for its retry in the outbox while paused,
// resumed and completed went out from memory, so the receiver heard the
// recording paused before it heard it start.
func TestTwilioCallbacksInOrder(t *testing.T) {
	needTwilioLibrary(t)
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			dsn := ""
			if store == "postgres" {
				dsn = pgFreshDatabase(t)
			}
			n := startNode(t, func(c *config.Config) {
				c.Webhook.Allow = []string{"127.0.0.1"}
				c.Webhook.BackoffSeconds = 1
				c.Catalog.Database = dsn
			})
			hook := &slowFirstHook{failFirst: 2}
			hs := httptest.NewServer(hook)
			defer hs.Close()
			events := n.connect("test")
			acc := defaultAccount(t, n)
			id, call, callSid := twilioCall(t, n, events)
			l := twilioLive(t, n, acc, callSid, "", map[string]any{"recordingStatusCallback": hs.URL + "/status", "recordingTrack": "inbound",
				"recordingStatusCallbackEvent": []string{"in-progress", "completed", "paused", "resumed"}})
			sid, _ := l["sid"].(string)
			if !meta.IsRecordingSid(sid) {
				t.Fatalf("create: %v", l)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			must(t, call.SendAudio(ctx, sweep(600*8)))
			waitRx(t, n, id, 30)
			if l := twilioLive(t, n, acc, callSid, sid, map[string]string{"status": "paused"}); l["status"] != "paused" {
				t.Fatalf("pause: %v", l)
			}
			if l := twilioLive(t, n, acc, callSid, sid, map[string]string{"status": "in-progress"}); l["status"] != "in-progress" {
				t.Fatalf("resume: %v", l)
			}
			must(t, call.SendAudio(ctx, sweep(600*8)))
			waitRx(t, n, id, 60)
			if l := twilioLive(t, n, acc, callSid, sid, map[string]string{"status": "stopped"}); l["status"] != "stopped" {
				t.Fatalf("stop: %v", l)
			}
			pollFor(t, 30*time.Second, func() bool { return len(hook.got()) >= 4 }, "four status callbacks accepted")
			want := []string{"in-progress", "paused", "in-progress", "completed"}
			if got := hook.got(); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("callbacks accepted in the order %v, want %v (start, pause, resume, end)", got, want)
			}
			must(t, call.Hangup(ctx))
			events.skipTo("ChannelDestroyed", 5*time.Second)
		})
	}
}

// TestTwilioPausedQueuedBeforeTheAnswer: a pause's status callback is in
// the catalog when the API answers the pause, queued in the transaction
// that lists the recording paused. With the outbox refusing inserts for a
// reason that passes (a PostgreSQL trigger raising lock_not_available, as a
// busy catalog does), the npm twilio library's pause waits while the API
// tries again, instead of being answered with the callback held only in the
// node's memory (lost if the node died then); once the catalog takes
// inserts again, it is answered with the callback queued, and the receiver
// gets it, once.
func TestTwilioPausedQueuedBeforeTheAnswer(t *testing.T) {
	needTwilioLibrary(t)
	dsn := pgFreshDatabase(t)
	n := startNode(t, func(c *config.Config) {
		c.Webhook.Allow = []string{"127.0.0.1"}
		c.Webhook.BackoffSeconds = 1
		c.Catalog.Database = dsn
	})
	hook := &slowFirstHook{}
	hs := httptest.NewServer(hook)
	defer hs.Close()
	events := n.connect("test")
	acc := defaultAccount(t, n)
	_, call, callSid := twilioCall(t, n, events)
	l := twilioLive(t, n, acc, callSid, "", map[string]any{"recordingStatusCallback": hs.URL + "/status", "recordingTrack": "inbound",
		"recordingStatusCallbackEvent": []string{"in-progress", "paused"}})
	sid, _ := l["sid"].(string)
	if !meta.IsRecordingSid(sid) {
		t.Fatalf("create: %v", l)
	}
	pollFor(t, 20*time.Second, func() bool { return len(hook.got()) == 1 }, "the in-progress callback")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	db, err := pgConnect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	refusals := pgtest.BusyOutbox(t, ctx, db)
	queued := func() int {
		t.Helper()
		var c int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM webhook_outbox WHERE body LIKE '%RecordingStatus=paused%'`).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}

	type answer struct {
		l  map[string]any
		at time.Time
	}
	answered := make(chan answer, 1)
	go func() {
		l := twilioLive(t, n, acc, callSid, sid, map[string]string{"status": "paused"})
		answered <- answer{l, time.Now()}
	}()
	pollFor(t, 30*time.Second, func() bool { return refusals() >= 1 }, "the pause's callback refused by the outbox")
	// The API tries again for up to 5 s: for 2 s after the first refusal
	// the pause must still be unanswered.
	hold := time.NewTimer(2 * time.Second)
	select {
	case a := <-answered:
		t.Fatalf("the pause was answered (%v) while the catalog refused its callback (%d refusals, %d queued): "+
			"the callback was held only in memory", a.l, refusals(), queued())
	case <-hold.C:
	}
	if r := refusals(); r < 2 {
		t.Fatalf("%d refusals in 2 s: the API did not try again", r)
	}
	if _, err := db.Exec(ctx, `DELETE FROM outbox_block`); err != nil {
		t.Fatal(err)
	}
	var a answer
	select {
	case a = <-answered:
	case <-time.After(40 * time.Second):
		t.Fatal("the pause still unanswered once the catalog takes inserts again")
	}
	if a.l["status"] != "paused" || a.l["sid"] != sid {
		t.Fatalf("pause: %v", a.l)
	}
	if c := queued(); c != 1 {
		t.Fatalf("paused callbacks in the outbox once the pause was answered: %d, want 1", c)
	}
	pollFor(t, 20*time.Second, func() bool { return len(hook.got()) >= 2 }, "the paused callback delivered")
	if got := hook.got(); strings.Join(got, ",") != "in-progress,paused" {
		t.Errorf("callbacks %v, want in-progress then paused, once each", got)
	}
	must(t, call.Hangup(ctx))
	events.skipTo("ChannelDestroyed", 5*time.Second)
}

// TestTwilioLiveControlOfDialplanCall: the Twilio API records a call that
// no ARI application holds, one the dialplan's Record() answers and
// records: the npm twilio library starts a recording by the call's CallSid
// (the dialplan's own recording running does not count against
// twilio.max_recordings_per_call: the API cannot control it), pauses,
// resumes and stops it, and the catalog keeps both recordings of the call.
func TestTwilioLiveControlOfDialplanCall(t *testing.T) {
	needTwilioLibrary(t)
	n := startNode(t, withRoute("2001", "Record(calls/${EXTEN}-${UNIQUEID},wav)"))
	acc := defaultAccount(t, n)
	phone := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	call, err := phone.Dial(ctx, n.target("2001"), sipua.CallOptions{})
	must(t, err)
	must(t, call.SendAudio(ctx, sweep(8*200)))
	dialplanRec := onlyRecordingInProgress(t, ctx, n, acc, "the dialplan's recording in progress in the catalog")
	callSid := dialplanRec.CallSid
	twilioRecordAlongside(t, ctx, n, acc, call, callSid, "dialplan")
	must(t, call.Hangup(ctx))
	waitRecordingStatus(t, ctx, n, acc, dialplanRec.Sid, meta.StatusCompleted, 10*time.Second, "the dialplan's recording completed at the hangup")
	if c := callRows(t, n, acc, callSid); c != 2 {
		t.Errorf("the call's recordings: %d, want the dialplan's and the API's", c)
	}
}
