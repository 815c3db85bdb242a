package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCatalogFileRemovedByHand: a stored recording whose file is deleted
// behind the server's back is listed as missing, with the reason, once the
// catalog reconciles (at start-up and every reconcile interval) — not as
// completed; a recording whose file is there stays completed.
func TestCatalogFileRemovedByHand(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	acc := defaultAccount(t, n)
	recordCall(t, n, events, "351", "hand/gone", 600*time.Millisecond)
	recordCall(t, n, events, "352", "hand/kept", 600*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gone, err := n.srv.Catalog().Meta.RecordingByName(ctx, "hand/gone")
	must(t, err)
	kept, err := n.srv.Catalog().Meta.RecordingByName(ctx, "hand/kept")
	must(t, err)
	if r := rcRecording(t, n, acc, gone.Sid); r["status"] != "completed" {
		t.Fatalf("before the removal: %v", r)
	}
	must(t, os.Remove(filepath.Join(n.recDir(), "hand", "gone.wav")))
	must(t, n.srv.Catalog().Reconcile(ctx)) // what the periodic reconcile does

	r := rcRecording(t, n, acc, gone.Sid)
	if r["status"] != "missing" || r["status_detail"] != "The recording's file was removed outside tapedeck" {
		t.Fatalf("removed file's row: %v, want missing with the reason", r)
	}
	if r := rcRecording(t, n, acc, kept.Sid); r["status"] != "completed" {
		t.Fatalf("the other row: %v, want completed", r)
	}
	n.mustDo("GET", "/recordings/stored/hand%2Fgone", 404)
	n.mustDo("GET", "/recordings/stored/hand%2Fkept", 200)
}
