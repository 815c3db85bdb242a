package ozeki

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/netguard"
	"github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/pgtest"
	"github.com/tapedeck/tapedeck/internal/testutil/sqlitetest"
	"github.com/tapedeck/tapedeck/internal/webhook"
)

// finalStore is a real catalog database for the RecordCompleted tests,
// with a way to make it refuse webhook outbox inserts (a trigger).
type finalStore struct {
	st            meta.Store
	refuse, allow func() // the outbox's inserts
	// refuseOn and allowOn refuse and allow again a table's inserts.
	refuseOn, allowOn func(table string)
}

// withFinalStores runs f against a real SQLite and a real PostgreSQL
// catalog (skipped when no PostgreSQL answers, as the other PostgreSQL
// tests of the API packages are).
func withFinalStores(t *testing.T, f func(t *testing.T, fs finalStore)) {
	t.Run("sqlite", func(t *testing.T) {
		db := sqlitetest.Open(t, filepath.Join(t.TempDir(), "tapedeck.db"))
		refuseOn := func(table string) { db.Refuse(t, table, "INSERT") }
		allowOn := func(table string) { db.Allow(t, table, "INSERT") }
		f(t, finalStore{st: db.Store, refuseOn: refuseOn, allowOn: allowOn,
			refuse: func() { refuseOn("webhook_outbox") }, allow: func() { allowOn("webhook_outbox") }})
	})
	t.Run("postgres", func(t *testing.T) {
		st, dsn := pgtest.FreshStore(t, "tapedeck_ozfinal")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		db, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close(context.Background())
		exec := func(qs ...string) {
			t.Helper()
			for _, q := range qs {
				if _, err := db.Exec(context.Background(), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
		}
		refuseOn := func(table string) {
			exec(`CREATE FUNCTION `+table+`_refused() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN RAISE EXCEPTION '`+table+` refused by the test'; END $f$`,
				`CREATE TRIGGER `+table+`_refused BEFORE INSERT ON `+table+` FOR EACH ROW EXECUTE FUNCTION `+table+`_refused()`)
		}
		allowOn := func(table string) {
			exec(`DROP TRIGGER `+table+`_refused ON `+table, `DROP FUNCTION `+table+`_refused()`)
		}
		f(t, finalStore{st: st, refuseOn: refuseOn, allowOn: allowOn,
			refuse: func() { refuseOn("webhook_outbox") }, allow: func() { allowOn("webhook_outbox") }})
	})
}

// ozekiNode is one run of a node: its catalog, webhook sender and API over
// the shared store (a restart makes a new one, with nothing in memory).
type ozekiNode struct {
	cat    *catalog.Service
	sender *webhook.Sender
	api    *API
	logs   *testutil.SyncBuffer
}

func startOzekiNode(t *testing.T, st meta.Store, node, root string, calls call.Calls, front *atomic.Pointer[API], base string) *ozekiNode {
	n := newOzekiNode(t, st, node, root, calls, front, base)
	n.sender.Start()
	return n
}

// newOzekiNode is startOzekiNode with its sender not started (no
// heartbeat, nothing sent).
func newOzekiNode(t *testing.T, st meta.Store, node, root string, calls call.Calls, front *atomic.Pointer[API], base string) *ozekiNode {
	t.Helper()
	allow, err := netguard.Parse([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testutil.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	n := &ozekiNode{logs: logs}
	n.cat = &catalog.Service{Meta: st, Root: root, Node: node, Log: log, LostAfter: 2 * time.Second}
	n.sender = webhook.New(webhook.Options{Outbox: st.(meta.Outbox), Node: node, Allow: allow, Timeout: time.Second,
		Backoff: 100 * time.Millisecond, Log: log})
	n.api = New(Options{Calls: calls, Users: []config.OzekiUser{{Username: "u", Password: "p"}}, Webhook: n.sender,
		Catalog: n.cat, SignKey: []byte("k"), BaseURL: func() string { return base }, Log: log})
	n.cat.FinalNotices = n.api.FinalNotices
	n.cat.LostNotices = n.api.FinalNotices
	n.cat.NoticesQueued = n.sender.Wake
	front.Store(n.api)
	return n
}

// recordCall starts a real call (an external media channel with its RTP
// sockets) in a real call manager that catalogues in st.
func newFinalCallManager(t *testing.T, root string) *call.Manager {
	t.Helper()
	lo, hi := testutil.FreeUDPPortRange(t, 40)
	ports, err := rtp.NewPorts("127.0.0.1", lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	bus := event.NewBus("final")
	bus.Register(event.NewSubscriber("final", 1<<10, false), nil)
	return call.NewManager(call.Options{Bus: bus, Ports: ports, Logger: slog.New(slog.DiscardHandler), RecordingsDir: root})
}

// finalSite is one node's place in the RecordCompleted tests: the command
// API on loopback (served by whichever run of the node front holds), a
// recordings root and a real call manager recording under it.
type finalSite struct {
	front atomic.Pointer[API]
	srv   *httptest.Server
	root  string
	m     *call.Manager
}

// newFinalSite makes a site; its close, deferred by the test (so that it
// runs before the store closes), hangs up its calls and stops its server.
func newFinalSite(t *testing.T) *finalSite {
	t.Helper()
	s := &finalSite{root: t.TempDir()}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.front.Load().ServeHTTP(w, r) }))
	s.m = newFinalCallManager(t, s.root)
	return s
}

func (s *finalSite) close() {
	s.m.HangupAll(call.CauseNormalClearing)
	s.srv.Close()
}

// node starts a run of node on the site (its sender started unless
// silent: no heartbeat, nothing sent), the catalog of the site's calls,
// with the default account made.
func (s *finalSite) node(t *testing.T, st meta.Store, node string, silent bool) *ozekiNode {
	t.Helper()
	var n *ozekiNode
	if silent {
		n = newOzekiNode(t, st, node, s.root, s.m, &s.front, s.srv.URL)
	} else {
		n = startOzekiNode(t, st, node, s.root, s.m, &s.front, s.srv.URL)
	}
	s.m.SetCatalog(n.cat)
	if _, err := n.cat.DefaultAccount(context.Background()); err != nil {
		t.Fatal(err)
	}
	return n
}

// call starts a real call on the site: an external media channel with its
// RTP sockets.
func (s *finalSite) call(t *testing.T, id call.ChannelID) call.ChannelJSON {
	t.Helper()
	ch, err := s.m.ExternalMedia(call.ExternalMediaOptions{App: "final", ExternalHost: "127.0.0.1:9", Format: "ulaw",
		ChannelID: id})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// close ends a run of a node: its sender, then its catalog.
func (n *ozekiNode) close() {
	n.sender.Close()
	n.cat.Close()
}

// sendRecord sends a Record of callID (wav, with finishedURL) to the API at
// base and returns its answer.
func sendRecord(base, callID, finishedURL string) ([]byte, error) {
	res, err := http.Get(base + "/api?command=Record&Username=u&Password=p&Format=wav&CallId=" + url.QueryEscape(callID) +
		"&FinishedUrl=" + url.QueryEscape(finishedURL))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	return io.ReadAll(res.Body)
}

func ozekiRecord(t *testing.T, base, callID, finishedURL string) {
	t.Helper()
	b, err := sendRecord(base, callID, finishedURL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "<Code>200</Code>") {
		t.Fatalf("Record: %s", b)
	}
}

// liveRow waits for the one live recording row of node and checks that
// its FinishedUrl is kept with it from its first write.
func liveRow(t *testing.T, st meta.Store, node, callID, finishedURL string) meta.Recording {
	t.Helper()
	ctx := context.Background()
	var row meta.Recording
	testutil.Eventually(t, 10*time.Second, 5*time.Millisecond, func() bool {
		rows, err := st.InProgress(ctx, node, 10)
		if err != nil || len(rows) != 1 {
			return false
		}
		row = rows[0]
		return true
	}, "the recording's row never appeared")
	cb, has, err := st.(meta.StatusCallbacks).StatusCallback(ctx, row.Sid)
	if err != nil || !has || cb.Kind != RecordCompleted || cb.URL != finishedURL || cb.CallID != callID {
		t.Fatalf("the callback kept with the row at its start: %+v %v %v", cb, has, err)
	}
	if row.Source != meta.SourceCommand {
		t.Fatalf("source %q, want %q", row.Source, meta.SourceCommand)
	}
	return row
}

// recording waits until the recording name records (its file open): its
// row is written before it starts (RowFirst), and a call that hangs up
// before then cancels it.
func recording(t *testing.T, m call.Calls, name string) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, 2*time.Millisecond, func() bool {
		lr, err := m.LiveRecording(call.RecordingName(name))
		return err == nil && lr.State == call.RecRecording
	}, "recording %s never started", name)
}

func checkRecordCompleted(t *testing.T, f url.Values, callID, reason string) {
	t.Helper()
	if f.Get("NotificationName") != RecordCompleted || f.Get("CallId") != callID || f.Get("Reason") != reason ||
		f.Get("Format") != "wav" || f.Get("State") != "done" || f.Get("Duration") == "" {
		t.Fatalf("RecordCompleted %v; want call %s, reason %s, wav, done", f, callID, reason)
	}
	res, err := http.Get(f.Get("RecordURL"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || len(b) < 44 || string(b[:4]) != "RIFF" {
		t.Fatalf("RecordURL %s: %d, %d bytes", f.Get("RecordURL"), res.StatusCode, len(b))
	}
}

// TestRecordCompletedQueuedWithTheRow: a Record's FinishedUrl is kept with
// its catalog row from its first write, and its RecordCompleted is queued
// in the transaction that writes the final row, with the row's end reason,
// against real SQLite and PostgreSQL catalogs.
//
// A node whose final write is refused (a trigger on the outbox insert)
// and that then dies (its sender, catalog and API dropped, with whatever
// they held in memory) loses nothing: the restart's Reconcile settles the
// killed run's row from its file and queues RecordCompleted from the row
// (reason interrupted), delivered once, with a RecordURL that downloads.
// Before, RecordCompleted lived only in the node's memory until it was
// queued after the row, and the restart sent none.
//
// A recording that ends normally gets its RecordCompleted queued by the
// catalog with its final row (the kept callback cleared with it), reason
// hangup, delivered once: the node sends nothing more from memory.
func TestRecordCompletedQueuedWithTheRow(t *testing.T) {
	withFinalStores(t, func(t *testing.T, fs finalStore) {
		ctx := context.Background()
		recv := testutil.NewFormReceiver(t, "/done")
		site := newFinalSite(t)
		defer site.close()
		m := site.m

		n1 := site.node(t, fs.st, "n1", false)
		ch := site.call(t, "final-killed")
		ozekiRecord(t, site.srv.URL, string(ch.ID), recv.URL)
		row := liveRow(t, fs.st, "n1", string(ch.ID), recv.URL)
		recording(t, m, row.Name)

		// The final write is refused; the node then dies.
		fs.refuse()
		if err := m.Hangup(ch.ID, call.CauseNormalClearing); err != nil {
			t.Fatal(err)
		}
		n1.api.Wait(10 * time.Second)
		n1.close()
		if got, err := fs.st.RecordingBySid(ctx, row.Sid); err != nil || !got.Status.Live() {
			t.Fatalf("the row after the refused outbox insert: %+v %v; want it live: a row written final without its RecordCompleted queued loses it with the node", got, err)
		}

		// The restart: nothing of n1's memory, the catalog as it was.
		fs.allow()
		n2 := site.node(t, fs.st, "n1", false)
		defer n2.close()
		for range 2 {
			if err := n2.cat.Reconcile(ctx); err != nil {
				t.Fatal(err)
			}
		}
		testutil.Eventually(t, 20*time.Second, 10*time.Millisecond, func() bool { return len(recv.Got()) >= 1 },
			"RecordCompleted of the killed run never delivered; logs:\n%s", n2.logs.String())
		settled, err := fs.st.RecordingBySid(ctx, row.Sid)
		if err != nil || settled.Status != meta.StatusRecovered || settled.EndReason != catalog.EndInterrupted {
			t.Fatalf("the settled row: %+v %v", settled, err)
		}
		checkRecordCompleted(t, recv.Got()[0], string(ch.ID), catalog.EndInterrupted)

		// A recording that ends normally, on the restarted node.
		ch2 := site.call(t, "final-hangup")
		ozekiRecord(t, site.srv.URL, string(ch2.ID), recv.URL)
		row2 := liveRow(t, fs.st, "n1", string(ch2.ID), recv.URL)
		recording(t, m, row2.Name)
		if err := m.Hangup(ch2.ID, call.CauseNormalClearing); err != nil {
			t.Fatal(err)
		}
		n2.api.Wait(10 * time.Second)
		testutil.Eventually(t, 20*time.Second, 10*time.Millisecond, func() bool { return len(recv.Got()) >= 2 },
			"RecordCompleted never delivered; logs:\n%s", n2.logs.String())
		final, err := fs.st.RecordingBySid(ctx, row2.Sid)
		if err != nil || final.Status.Live() || final.EndReason != call.EndHangup {
			t.Fatalf("the final row: %+v %v", final, err)
		}
		if _, has, err := fs.st.(meta.StatusCallbacks).StatusCallback(ctx, row2.Sid); err != nil || has {
			t.Fatalf("the callback is still kept (%v, %v): RecordCompleted was not queued with the row", has, err)
		}
		checkRecordCompleted(t, recv.Got()[1], string(ch2.ID), call.EndHangup)

		// Exactly once each: everything queued is delivered, nothing more
		// arrives.
		testutil.Eventually(t, 10*time.Second, 10*time.Millisecond, func() bool {
			n, err := fs.st.(meta.Outbox).PendingCount(ctx, "n1")
			return err == nil && n == 0
		}, "the outbox never drained")
		if err := n2.cat.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		n2.sender.Close()
		if got := recv.Got(); len(got) != 2 {
			t.Fatalf("%d RecordCompleted delivered, want 2 (one per recording): %v", len(got), got)
		}
	})
}

// TestRecordCompletedOfLostNodeOnce: a node records a call with a
// FinishedUrl and goes silent (no heartbeat: its sender never beats);
// another node of the same catalog finds it lost and settles its
// recording, and queues RecordCompleted in the transaction that settles
// the row (failed, reason interrupted, the cause saying the node was
// lost), from the FinishedUrl kept with the row: delivered once. The lost
// node then comes back and its call ends: its final row replaces the
// settled one (the recording's real end) but it queues and sends nothing
// more. Real SQLite and PostgreSQL catalogs. Before, no node but the
// recording's own could send RecordCompleted: a lost node's was never
// sent.
func TestRecordCompletedOfLostNodeOnce(t *testing.T) {
	withFinalStores(t, func(t *testing.T, fs finalStore) {
		ctx := context.Background()
		recv := testutil.NewFormReceiver(t, "/done")
		var aliveFront atomic.Pointer[API]
		aliveSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { aliveFront.Load().ServeHTTP(w, r) }))
		defer aliveSrv.Close()

		goneSite := newFinalSite(t)
		defer goneSite.close()
		mGone := goneSite.m
		// Silent: its sender does not run (no heartbeat) until it comes
		// back.
		gone := goneSite.node(t, fs.st, "gone", true)
		defer gone.cat.Close()
		ch := goneSite.call(t, "final-lost")
		ozekiRecord(t, goneSite.srv.URL, string(ch.ID), recv.URL)
		row := liveRow(t, fs.st, "gone", string(ch.ID), recv.URL)
		recording(t, mGone, row.Name)
		if err := fs.st.(meta.Outbox).Heartbeat(ctx, "gone", time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}

		alive := startOzekiNode(t, fs.st, "alive", t.TempDir(), call.Calls(nil), &aliveFront, aliveSrv.URL)
		defer alive.close()
		for range 2 {
			if err := alive.cat.Reconcile(ctx); err != nil {
				t.Fatal(err)
			}
		}
		testutil.Eventually(t, 20*time.Second, 10*time.Millisecond, func() bool { return len(recv.Got()) >= 1 },
			"the lost node's RecordCompleted never delivered; logs:\n%s", alive.logs.String())
		f := recv.Got()[0]
		if f.Get("NotificationName") != RecordCompleted || f.Get("CallId") != string(ch.ID) || f.Get("Reason") != catalog.EndInterrupted ||
			f.Get("State") != "failed" || !strings.Contains(f.Get("Cause"), "gone") || f.Get("RecordURL") != "" {
			t.Fatalf("the lost node's RecordCompleted: %v", f)
		}
		if settled, err := fs.st.RecordingBySid(ctx, row.Sid); err != nil || !catalog.IsNodeLost(settled) || settled.EndReason != catalog.EndInterrupted {
			t.Fatalf("the settled row: %+v %v", settled, err)
		}

		// The lost node comes back (its sender runs again); its call ends.
		gone.sender.Start()
		defer gone.sender.Close()
		if err := mGone.Hangup(ch.ID, call.CauseNormalClearing); err != nil {
			t.Fatal(err)
		}
		gone.api.Wait(10 * time.Second)
		testutil.Eventually(t, 10*time.Second, 10*time.Millisecond, func() bool {
			r, err := fs.st.RecordingBySid(ctx, row.Sid)
			return err == nil && !catalog.IsNodeLost(r) && r.EndReason == call.EndHangup && r.Node == "gone"
		}, "the returning node's final row did not replace the settled one")
		testutil.Eventually(t, 10*time.Second, 10*time.Millisecond, func() bool {
			n, err := fs.st.(meta.Outbox).PendingCount(ctx, "alive")
			return err == nil && n == 0
		}, "the outbox never drained")
		for _, node := range []string{"alive", "gone"} {
			if n, err := fs.st.(meta.Outbox).PendingCount(ctx, node); err != nil || n != 0 {
				t.Fatalf("%d notifications pending for %s (%v): a second RecordCompleted", n, node, err)
			}
		}
		alive.sender.Close()
		gone.sender.Close()
		if got := recv.Got(); len(got) != 1 {
			t.Fatalf("%d RecordCompleted delivered, want exactly one: %v", len(got), got)
		}
	})
}
