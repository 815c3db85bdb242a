package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
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

// TestCatalogChecksumAfterHangup: a recording ended by the hangup gets its
// row at once (completed, with its size) and never a checksum on the
// recording's path: by default (recording.checksum: on_demand) none until
// something needs it, and no background job reads the file back; with
// recording.checksum: background, its SHA-256 from the background job,
// without the hangup waiting for the hashing.
func TestCatalogChecksumAfterHangup(t *testing.T) {
	for _, mode := range []string{config.ChecksumOnDemand, config.ChecksumBackground} {
		t.Run(mode, func(t *testing.T) {
			n := startNode(t, func(c *config.Config) { c.Recording.Checksum = mode })
			events := n.connect("test")
			hangupRecorded(t, n, events, "355", "hang/sum")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			row, err := n.srv.Catalog().Meta.RecordingByName(ctx, "hang/sum")
			must(t, err)
			if row.Status != "completed" || row.Size == 0 {
				t.Fatalf("row right after the hangup: %s size %d", row.Status, row.Size)
			}
			file := mustRead(t, filepath.Join(n.recDir(), "hang", "sum.wav"))
			sum := sha256.Sum256(file)
			if mode == config.ChecksumOnDemand {
				if n := n.srv.Catalog().Uploading(); row.SHA256 != "" || n != 0 {
					t.Fatalf("on_demand: checksum %q and %d background jobs after the hangup; want none", row.SHA256, n)
				}
				row, err = n.srv.Catalog().Checksum(ctx, row) // what the media caches ask
				must(t, err)
			} else {
				pollFor(t, 5*time.Second, func() bool {
					row, err = n.srv.Catalog().Meta.RecordingByName(ctx, "hang/sum")
					return err == nil && row.SHA256 != ""
				}, "the checksum")
			}
			if row.SHA256 != hex.EncodeToString(sum[:]) || row.Size != int64(len(file)) {
				t.Fatalf("row sha256 %s size %d; file %x, %d bytes", row.SHA256, row.Size, sum, len(file))
			}
		})
	}
}
