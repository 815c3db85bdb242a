package e2e

import (
	"context"
	"database/sql"
	"net/url"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/metrics"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// counterValue reads a counter of the process-wide registry (0 when
// absent).
func counterValue(t *testing.T, name string) float64 {
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// TestOzekiCallbackKeptWhileCatalogLocked: the catalog's write lock is
// held by another connection (BEGIN IMMEDIATE) when a recorded call
// ends, for longer than the hangup's final catalog write waits. The
// recording's final row is not written, and RecordCompleted, which is
// queued only with it, is neither sent nor lost: the row stays live with
// its FinishedUrl, and once the lock is released the catalog's retry
// writes the row with RecordCompleted queued (reason hangup), which
// reaches the FinishedUrl once.
func TestOzekiCallbackKeptWhileCatalogLocked(t *testing.T) {
	dataDir := t.TempDir()
	recv := startReceiver(t)
	n := ozekiNode(t, "500", "Wait(30)", func(c *config.Config) { c.DataDir = dataDir; c.Catalog.ReconcileInterval = 1 })
	phone := newPhone(t, "udp")
	dialAsync(phone, n.target("500"), sipua.CallOptions{})
	id := n.activeCall()
	q := "/api?command=Record&Username=HTTP_User_1&Password=qwe123&Format=wav&CallId=" + url.QueryEscape(id) +
		"&FinishedUrl=" + url.QueryEscape(recv.url("/done"))
	if r := parseOz(t, n.ozekiGet(q)); r.Code != 200 {
		t.Fatalf("Record: %d %s", r.Code, r.Message)
	}

	db, err := sql.Open("sqlite", "file:"+(&config.Config{DataDir: dataDir}).DatabasePath()+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	live := func() int {
		var c int
		if err := db.QueryRow(`SELECT COUNT(*) FROM recordings WHERE status = 'in-progress' AND status_callback <> ''`).Scan(&c); err != nil {
			return -1
		}
		return c
	}
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool { return live() == 1 },
		"the recording's row with its FinishedUrl never appeared")
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	locked := true
	defer func() {
		if locked {
			conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	before := counterValue(t, "tapedeck_recordings_finished_total")
	if r := parseOz(t, n.ozekiGet("/api?command=Hangup&Username=HTTP_User_1&Password=qwe123&CallId="+url.QueryEscape(id))); r.Code != 200 {
		t.Fatalf("Hangup: %d %s", r.Code, r.Message)
	}
	// The recording has ended once its final catalog write has been
	// tried (and refused by the lock).
	testutil.Eventually(t, 20*time.Second, 20*time.Millisecond, func() bool {
		return counterValue(t, "tapedeck_recordings_finished_total") >= before+1
	}, "the recording did not end")
	if c := recv.count("RecordCompleted"); c != 0 {
		t.Fatalf("%d deliveries while the catalog is locked", c)
	}
	var st string
	if err := conn.QueryRowContext(context.Background(), `SELECT status FROM recordings WHERE status_callback <> ''`).Scan(&st); err != nil || st != "in-progress" {
		t.Fatalf("the row while the catalog is locked: %q %v; want it live with its FinishedUrl", st, err)
	}
	if _, err := conn.ExecContext(context.Background(), "COMMIT"); err != nil {
		t.Fatal(err)
	}
	locked = false
	p := recv.waitPost("RecordCompleted", 30*time.Second)
	if p.Form.Get("CallId") != id || p.Form.Get("Reason") != "hangup" {
		t.Fatalf("RecordCompleted %v", p.Form)
	}
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
		var c int
		err := db.QueryRow(`SELECT COUNT(*) FROM webhook_outbox WHERE status <> 'delivered'`).Scan(&c)
		return err == nil && c == 0 && live() == 0
	}, "the row not final, or its RecordCompleted not settled delivered")
	if c := recv.count("RecordCompleted"); c != 1 {
		t.Fatalf("%d deliveries, want 1", c)
	}
}
