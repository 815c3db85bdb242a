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
	ctx := context.Background()
	dir := t.TempDir()
	db := sqlitetest.Open(t, filepath.Join(dir, "tapedeck.db"))
	st := &countedReads{Store: db.Store, StatusCallbacks: db.Store.(meta.StatusCallbacks), FinalRows: db.Store.(meta.FinalRows)}

	recv := testutil.NewFormReceiver(t, "/status")
	received := recv.Got

	var logs testutil.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	allow, err := netguard.Parse([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	sender := webhook.New(webhook.Options{Outbox: db.Store.(meta.Outbox), Node: "n1", Allow: allow, Timeout: time.Second, Log: log})
	sender.Start()
	defer sender.Close()
	root := filepath.Join(dir, "rec")
	cat := &catalog.Service{Meta: st, Root: root, Node: "n1", Log: log, NoticesQueued: sender.Wake}
	acc, m, ch, callSid := recordableCall(t, cat, log, root, "finished")
	s := New(Options{Catalog: cat, Logger: log, Calls: m})
	s.SetWebhook(sender)
	cat.FinalNotices = s.FinalNotices // as the server wires it

	form := url.Values{"RecordingStatusCallback": {recv.URL},
		"RecordingStatusCallbackEvent": {"in-progress completed absent"}}
	req := httptest.NewRequest("POST", "/2010-04-01/Accounts/"+acc.Sid+"/Calls/"+callSid+"/Recordings.json",
		strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(acc.Sid, acc.AuthToken)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != 201 {
		t.Fatalf("start: %d %s", w.Code, w.Body.Bytes())
	}

	// The final row is refused at the hangup: the catalog keeps the write
	// for its retry.
	db.Refuse(t, "recordings", "INSERT")
	db.Refuse(t, "recordings", "UPDATE")
	if err := m.Hangup(ch.ID, call.CauseNormalClearing); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, 5*time.Millisecond, func() bool {
		return strings.Contains(logs.String(), "catalog: recording end not recorded")
	}, "the final row's write never failed; logs:\n%s", &logs)
	testutil.Eventually(t, 20*time.Second, 5*time.Millisecond, func() bool { return st.reads.Load() >= 1 },
		"finished never read the row; logs:\n%s", &logs)
	// Not polling: no read while nothing changes. (A negative check: the
	// window only bounds how many reads a polling finished would show.)
	time.Sleep(200 * time.Millisecond)
	if n := st.reads.Load(); n != 1 {
		t.Fatalf("finished read the row %d times while the final write waited for its retry; want 1 (no polling)", n)
	}
	for _, f := range received() {
		if f.Get("RecordingStatus") != "in-progress" {
			t.Fatalf("a final status before the final row: %v", f)
		}
	}

	db.Allow(t, "recordings", "INSERT")
	db.Allow(t, "recordings", "UPDATE")
	if err := cat.Reconcile(ctx); err != nil {
		t.Fatalf("the retry of the final row: %v", err)
	}
	testutil.Eventually(t, 20*time.Second, 5*time.Millisecond, func() bool { return len(received()) >= 2 },
		"the final status never came once the retry wrote the row; logs:\n%s", &logs)
	testutil.Eventually(t, 20*time.Second, 5*time.Millisecond, func() bool { return st.reads.Load() >= 2 },
		"finished never read the final row; logs:\n%s", &logs)
	if n := st.reads.Load(); n != 2 {
		t.Fatalf("finished read the row %d times; want 2 (once, and once when the catalog was done)", n)
	}
	if strings.Contains(logs.String(), "no final status callback") {
		t.Fatalf("finished gave up; logs:\n%s", &logs)
	}
	f := received()
	if len(f) != 2 || f[0].Get("RecordingStatus") != "in-progress" || f[1].Get("RecordingStatus") != "absent" ||
		f[1].Get("CallSid") != callSid || f[1].Get("RecordingSid") != f[0].Get("RecordingSid") {
		t.Fatalf("callbacks %v; want in-progress, then absent (no audio), once each", f)
	}
}
