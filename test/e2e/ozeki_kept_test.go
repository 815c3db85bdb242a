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

// gaugeValue reads a gauge of the process-wide registry (0 when absent).
func gaugeValue(t *testing.T, name string) float64 {
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}

// TestOzekiCallbackKeptWhileCatalogLocked: the catalog's write lock is
// held by another connection (BEGIN IMMEDIATE) when a recorded call
// ends, for longer than RecordCompleted's 10 s deadline to be queued. The
// notification is kept in memory (tapedeck_webhook_unqueued) and, once
// the lock is released, reaches the FinishedUrl, once.
func TestOzekiCallbackKeptWhileCatalogLocked(t *testing.T) {
	if testing.Short() {
		t.Skip("holds the catalog locked past a 10 s deadline")
	}
	dataDir := t.TempDir()
	recv := startReceiver(t)
	n := ozekiNode(t, "500", "Wait(30)", func(c *config.Config) { c.DataDir = dataDir })
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
	before := gaugeValue(t, "tapedeck_webhook_unqueued")
	if r := parseOz(t, n.ozekiGet("/api?command=Hangup&Username=HTTP_User_1&Password=qwe123&CallId="+url.QueryEscape(id))); r.Code != 200 {
		t.Fatalf("Hangup: %d %s", r.Code, r.Message)
	}
	testutil.Eventually(t, 40*time.Second, 20*time.Millisecond, func() bool {
		return gaugeValue(t, "tapedeck_webhook_unqueued") >= before+1
	}, "RecordCompleted not kept while the catalog is locked")
	if c := recv.count("RecordCompleted"); c != 0 {
		t.Fatalf("%d deliveries while the catalog is locked", c)
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
		return gaugeValue(t, "tapedeck_webhook_unqueued") == before
	}, "still kept after the lock was released")
	if c := recv.count("RecordCompleted"); c != 1 {
		t.Fatalf("%d deliveries, want 1", c)
	}
}
