package twilio

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/netguard"
	"github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/sqlitetest"
	"github.com/tapedeck/tapedeck/internal/webhook"
)

// countedReads is a real catalog store that counts its reads of a
// recording by Sid (Recording: what finished reads the final row with).
type countedReads struct {
	meta.Store
	meta.StatusCallbacks
	meta.FinalRows
	reads atomic.Int64
}

func (c *countedReads) Recording(ctx context.Context, accountSid, sid string) (meta.Recording, error) {
	c.reads.Add(1)
	return c.Store.Recording(ctx, accountSid, sid)
}

// recordableCall is a real call (an external media channel, id) on a new
// call manager that records under root into the catalog cat, with the
// catalog's default account; its calls are hung up when t ends.
func recordableCall(t *testing.T, cat *catalog.Service, log *slog.Logger, root, id string) (meta.Account, *call.Manager, call.ChannelJSON, string) {
	t.Helper()
	acc, err := cat.DefaultAccount(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := testutil.FreeUDPPortRange(t, 20)
	ports, err := rtp.NewPorts("127.0.0.1", lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	bus := event.NewBus(id)
	bus.Register(event.NewSubscriber(id, 1<<10, false), nil)
	m := call.NewManager(call.Options{Bus: bus, Ports: ports, Logger: log, RecordingsDir: root})
	t.Cleanup(func() { m.HangupAll(call.CauseNormalClearing) })
	m.SetCatalog(cat)
	ch, err := m.ExternalMedia(call.ExternalMediaOptions{App: id, ExternalHost: "127.0.0.1:9", Format: "ulaw",
		ChannelID: call.ChannelID(id)})
	if err != nil {
		t.Fatal(err)
	}
	callSid, err := m.Var(ch.ID, "CALLSID")
	if err != nil || callSid == "" {
		t.Fatalf("the call's CallSid: %q %v", callSid, err)
	}
	return acc, m, ch, callSid
}

// finishedRig is a recording started through the API with a status
// callback to a loopback receiver (in-progress, completed, absent), on a
// real call, over a real SQLite catalog whose row reads by Sid are counted
// and a real webhook sender.
type finishedRig struct {
	db      *sqlitetest.DB
	st      *countedReads
	recv    *testutil.FormReceiver
	logs    *testutil.SyncBuffer
	cat     *catalog.Service
	m       *call.Manager
	ch      call.ChannelJSON
	callSid string
}

// newFinishedRig makes the call (id) and its catalog; before, when not
// nil, runs before the recording starts.
func newFinishedRig(t *testing.T, id string, before func(*sqlitetest.DB)) *finishedRig {
	t.Helper()
	dir := t.TempDir()
	r := &finishedRig{db: sqlitetest.Open(t, filepath.Join(dir, "tapedeck.db")), logs: &testutil.SyncBuffer{}}
	db := r.db
	r.st = &countedReads{Store: db.Store, StatusCallbacks: db.Store.(meta.StatusCallbacks), FinalRows: db.Store.(meta.FinalRows)}
	r.recv = testutil.NewFormReceiver(t, "/status")
	log := slog.New(slog.NewTextHandler(r.logs, nil))
	allow, err := netguard.Parse([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	sender := webhook.New(webhook.Options{Outbox: db.Store.(meta.Outbox), Node: "n1", Allow: allow, Timeout: time.Second, Log: log})
	sender.Start()
	t.Cleanup(sender.Close)
	root := filepath.Join(dir, "rec")
	r.cat = &catalog.Service{Meta: r.st, Root: root, Node: "n1", Log: log, NoticesQueued: sender.Wake}
	var acc meta.Account
	acc, r.m, r.ch, r.callSid = recordableCall(t, r.cat, log, root, id)
	s := New(Options{Catalog: r.cat, Logger: log, Calls: r.m})
	s.SetWebhook(sender)
	r.cat.FinalNotices = s.FinalNotices // as the server wires it
	if before != nil {
		before(db)
	}

	form := url.Values{"RecordingStatusCallback": {r.recv.URL},
		"RecordingStatusCallbackEvent": {"in-progress completed absent"}}
	req := httptest.NewRequest("POST", "/2010-04-01/Accounts/"+acc.Sid+"/Calls/"+r.callSid+"/Recordings.json",
		strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(acc.Sid, acc.AuthToken)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != 201 {
		t.Fatalf("start: %d %s", w.Code, w.Body.Bytes())
	}
	return r
}

// hangUpUnwritten hangs the call up with its final row refused (the
// catalog keeps the write for its retry), and waits until the write
// failed.
func (r *finishedRig) hangUpUnwritten(t *testing.T) {
	t.Helper()
	r.db.Refuse(t, "recordings", "INSERT")
	r.db.Refuse(t, "recordings", "UPDATE")
	if err := r.m.Hangup(r.ch.ID, call.CauseNormalClearing); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, 5*time.Millisecond, func() bool {
		return strings.Contains(r.logs.String(), "catalog: recording end not recorded")
	}, "the final row's write never failed; logs:\n%s", r.logs)
}

// retry lets the final row be written, by the catalog's retry.
func (r *finishedRig) retry(t *testing.T) {
	t.Helper()
	r.db.Allow(t, "recordings", "INSERT")
	r.db.Allow(t, "recordings", "UPDATE")
	if err := r.cat.Reconcile(context.Background()); err != nil {
		t.Fatalf("the retry of the final row: %v", err)
	}
}

// finalAfterInProgress checks the callbacks: in-progress, then absent (no
// audio), once each, for the call.
func (r *finishedRig) finalAfterInProgress(t *testing.T) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, 5*time.Millisecond, func() bool { return len(r.recv.Got()) >= 2 },
		"the final status never came once the retry wrote the row; logs:\n%s", r.logs)
	if strings.Contains(r.logs.String(), "no final status callback") {
		t.Fatalf("finished gave up; logs:\n%s", r.logs)
	}
	f := r.recv.Got()
	if len(f) != 2 || f[0].Get("RecordingStatus") != "in-progress" || f[1].Get("RecordingStatus") != "absent" ||
		f[1].Get("CallSid") != r.callSid || f[1].Get("RecordingSid") != f[0].Get("RecordingSid") {
		t.Fatalf("callbacks %v; want in-progress, then absent (no audio), once each", f)
	}
}

// TestFinishedWaitsForTheFinalRow: a recording started through the API
// whose final row cannot be written at the hangup (a trigger refuses the
// catalog's writes to the recordings table) has its final status sent once
// the catalog's retry (Reconcile) writes the row, and finished waits for
// that without polling: it reads the row once, and again only when the
// catalog is done with the recording's end. Over a real SQLite catalog,
// a real call and a real webhook sender to a loopback receiver. Before,
// finished read the row every 10 ms while it waited (about 20 reads in
// the 200 ms the test watches).
func TestFinishedWaitsForTheFinalRow(t *testing.T) {
	r := newFinishedRig(t, "finished", nil)
	st, logs := r.st, r.logs

	// The final row is refused at the hangup: the catalog keeps the write
	// for its retry.
	r.hangUpUnwritten(t)
	testutil.Eventually(t, 20*time.Second, 5*time.Millisecond, func() bool { return st.reads.Load() >= 1 },
		"finished never read the row; logs:\n%s", logs)
	// Not polling: no read while nothing changes. (A negative check: the
	// window only bounds how many reads a polling finished would show.)
	time.Sleep(200 * time.Millisecond)
	if n := st.reads.Load(); n != 1 {
		t.Fatalf("finished read the row %d times while the final write waited for its retry; want 1 (no polling)", n)
	}
	for _, f := range r.recv.Got() {
		if f.Get("RecordingStatus") != "in-progress" {
			t.Fatalf("a final status before the final row: %v", f)
		}
	}

	r.retry(t)
	testutil.Eventually(t, 20*time.Second, 5*time.Millisecond, func() bool { return len(r.recv.Got()) >= 2 },
		"the final status never came once the retry wrote the row; logs:\n%s", logs)
	testutil.Eventually(t, 20*time.Second, 5*time.Millisecond, func() bool { return st.reads.Load() >= 2 },
		"finished never read the final row; logs:\n%s", logs)
	if n := st.reads.Load(); n != 2 {
		t.Fatalf("finished read the row %d times; want 2 (once, and once when the catalog was done)", n)
	}
	r.finalAfterInProgress(t)
}

// TestFinishedOutwaitsTheCatalogsRetry: a recording whose callback the
// catalog would not keep with its row (a trigger refuses the update of
// status_callback), so that this node sends its statuses from memory,
// and whose final row is refused at the hangup, gets its final status
// when the catalog's retry writes the row more than 30 s later (the
// default reconcile interval is 30 s, and a retry may fail again before
// one succeeds). Before, finished gave up 30 s after the hangup ("never
// completed in the catalog; no final status callback") while the catalog
// went on retrying, and the final status written by the retry was sent to
// nobody.
func TestFinishedOutwaitsTheCatalogsRetry(t *testing.T) {
	r := newFinishedRig(t, "outwaits", func(db *sqlitetest.DB) {
		db.Exec(t, `CREATE TRIGGER refuse_kept_callback BEFORE UPDATE OF status_callback ON recordings
BEGIN SELECT RAISE(ABORT, 'status_callback refused by the test'); END`)
	})
	testutil.Eventually(t, 20*time.Second, 5*time.Millisecond, func() bool {
		return strings.Contains(r.logs.String(), "status callback not kept in the catalog")
	}, "the callback was kept with the row; logs:\n%s", r.logs)
	r.hangUpUnwritten(t)
	hungUp := time.Now()
	r.db.Exec(t, `DROP TRIGGER refuse_kept_callback`)
	// Longer than finished used to wait (a wait for time itself to pass,
	// not for a condition).
	time.Sleep(time.Until(hungUp.Add(32 * time.Second)))
	r.retry(t)
	r.finalAfterInProgress(t)
}
