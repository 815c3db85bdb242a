package server

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// TestCDRKeptWhenTheRecordingRowFails: at the hangup of a recorded call
// the recording's final row and the call's CDR go to the catalog in one
// transaction. When the database refuses the row (a trigger raising on
// its update), the CDR is still stored, alone, with the call's ids; the
// row is written by the next reconcile once the database takes it.
func TestCDRKeptWhenTheRecordingRowFails(t *testing.T) {
	var buf testutil.SyncBuffer
	srv := jsonServer(t, &buf)
	cfg := srv.cfg
	db, err := sql.Open("sqlite", "file:"+cfg.DatabasePath()+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	phone := newPhone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call, err := phone.Dial(ctx, sipua.Target("2001", srv.SIPAddr()), sipua.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := call.SendAudio(ctx, squareWave(1600)); err != nil {
		t.Fatal(err)
	}
	m := srv.Catalog().Meta
	var row meta.Recording
	poll(t, 5*time.Second, "the recording's row", func() bool {
		rows, err := m.InProgress(ctx, cfg.NodeID, 10)
		if err != nil || len(rows) != 1 {
			return false
		}
		row = rows[0]
		return true
	})
	if _, err := db.ExecContext(ctx, `CREATE TRIGGER row_refused BEFORE UPDATE ON recordings WHEN NEW.status <> 'in-progress' BEGIN SELECT RAISE(ABORT, 'row refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	poll(t, 5*time.Second, "the end of the call logged", func() bool { return strings.Contains(buf.String(), `"msg":"channel destroyed"`) })
	end := findLine(logLines(t, &buf), "channel destroyed")
	acc, err := srv.Catalog().DefaultAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cdrs, total, err := m.(meta.CDRs).ListCDRs(ctx, meta.CDRQuery{AccountSid: acc.Sid})
	if err != nil || total != 1 {
		t.Fatalf("CDRs after the hangup whose recording row was refused: %d %+v %v; want the call's", total, cdrs, err)
	}
	if c := cdrs[0]; c.Sid != end["call_sid"] || c.ChannelID != end["channel"] || c.Node != cfg.NodeID || c.Status != "completed" || c.RTPReceived < 5 {
		t.Errorf("the CDR %+v, log %v", c, end)
	}
	if got, _ := m.RecordingBySid(ctx, row.Sid); got.Status != meta.StatusInProgress {
		t.Fatalf("the refused row: %+v", got)
	}
	if _, err := db.ExecContext(ctx, `DROP TRIGGER row_refused`); err != nil {
		t.Fatal(err)
	}
	_ = srv.Catalog().Reconcile(ctx)
	if got, _ := m.RecordingBySid(ctx, row.Sid); got.Status != meta.StatusCompleted {
		t.Fatalf("the row after the reconcile: %+v", got)
	}
	if _, total, _ := m.(meta.CDRs).ListCDRs(ctx, meta.CDRQuery{AccountSid: acc.Sid}); total != 1 {
		t.Errorf("%d CDRs after the reconcile, want 1", total)
	}
}
