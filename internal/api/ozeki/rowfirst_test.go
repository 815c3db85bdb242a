package ozeki

import (
	"context"
	"encoding/xml"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// TestRecordAnswersAfterItsRow: Record answers once the recording's first
// catalog row, with its FinishedUrl, is written, against real SQLite and
// PostgreSQL catalogs. While the catalog refuses the row (a trigger on the
// recordings table) the command answers Ozeki's 303 naming the catalog,
// and nothing records: no live recording, no file, no row, no
// notification, the call goes on. Once the catalog takes rows again, a
// Record answers 200 with its row already there (in progress, the
// FinishedUrl kept with it: a crash from then on cannot lose
// RecordCompleted), and its RecordCompleted arrives when the call ends.
// Before, Record answered 200 before the row was written, and a refused
// row was only logged while the call recorded with nothing in the catalog
// to send RecordCompleted after a crash.
func TestRecordAnswersAfterItsRow(t *testing.T) {
	withFinalStores(t, func(t *testing.T, fs finalStore) {
		ctx := context.Background()
		site, n, recv := oneNode(t, fs)
		m, root := site.m, site.root
		ch := site.call(t, "rowfirst")
		record := func() Response {
			t.Helper()
			b, err := sendRecord(site.srv.URL, string(ch.ID), recv.URL)
			if err != nil {
				t.Fatal(err)
			}
			var r Response
			if err := xml.Unmarshal(b, &r); err != nil {
				t.Fatalf("%v: %s", err, b)
			}
			return r
		}

		fs.refuseOn("recordings")
		r := record()
		if r.Code != 303 || !strings.Contains(r.Message, "catalog") {
			t.Fatalf("Record with the catalog refusing its row: %d %q; want 303 naming the catalog", r.Code, r.Message)
		}
		n.api.Wait(10 * time.Second) // (a recording's notification would be queued by now)
		if files, _ := os.ReadDir(filepath.Join(root, "HttpRecordings")); len(files) > 0 {
			t.Fatalf("files recorded after the refused row: %v", files)
		}
		if rows, err := fs.st.InProgress(ctx, "n1", 10); err != nil || len(rows) != 0 {
			t.Fatalf("rows after the refused row: %v %v", rows, err)
		}
		if pending, err := fs.st.(meta.Outbox).PendingCount(ctx, "n1"); err != nil || pending != 0 || len(recv.Got()) != 0 {
			t.Fatalf("notifications after the refused row: %d queued, %d received (%v)", pending, len(recv.Got()), err)
		}
		if _, err := m.Channel(ch.ID); err != nil {
			t.Fatalf("the call after the refused row: %v", err)
		}

		fs.allowOn("recordings")
		if r := record(); r.Code != 200 {
			t.Fatalf("Record: %d %s", r.Code, r.Message)
		}
		rows, err := fs.st.InProgress(ctx, "n1", 10) // at once: written before the answer
		if err != nil || len(rows) != 1 {
			t.Fatalf("rows when Record answered: %v %v; want its row", rows, err)
		}
		cb, has, err := fs.st.(meta.StatusCallbacks).StatusCallback(ctx, rows[0].Sid)
		if err != nil || !has || cb.URL != recv.URL || cb.Kind != RecordCompleted {
			t.Fatalf("the callback kept with the row when Record answered: %+v %v %v", cb, has, err)
		}
		if err := m.Hangup(ch.ID, call.CauseNormalClearing); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 20*time.Second, 10*time.Millisecond, func() bool { return len(recv.Got()) >= 1 },
			"RecordCompleted never delivered; logs:\n%s", n.logs.String())
		checkRecordCompleted(t, recv.Got()[0], string(ch.ID), call.EndHangup)
	})
}

// oneNode is the set-up of a test with one node, n1, on a new site: the
// site, the node (its sender started) and a FinishedUrl receiver. The
// node and the site are closed when t ends, before the store.
func oneNode(t *testing.T, fs finalStore) (*finalSite, *ozekiNode, *testutil.FormReceiver) {
	t.Helper()
	recv := testutil.NewFormReceiver(t, "/done")
	site := newFinalSite(t)
	t.Cleanup(site.close)
	n := site.node(t, fs.st, "n1", false)
	t.Cleanup(n.close)
	return site, n, recv
}

// hold is a catalog step that waits until the test lets it go on
// (goOn), telling it the recording's name first.
type hold struct {
	names chan string
	goOn  chan struct{}
}

func newHold() hold { return hold{names: make(chan string, 1), goOn: make(chan struct{})} }

func (h hold) wait(name string) {
	h.names <- name
	<-h.goOn
}

// heldStarts is a node's real catalog whose first-row writes (Started)
// are held.
type heldStarts struct {
	*catalog.Service
	hold
}

func (h heldStarts) Started(ctx context.Context, in catalog.Info) (string, error) {
	h.wait(in.Name)
	return h.Service.Started(ctx, in)
}

// heldClaims is heldStarts for the name claim that comes before the
// first row.
type heldClaims struct {
	*catalog.Service
	hold
}

func (h heldClaims) ClaimName(ctx context.Context, name string, failIfStored bool) error {
	h.wait(name)
	return h.Service.ClaimName(ctx, name, failIfStored)
}

// hangUpWhileHeld sets up one node on a new site (oneNode) whose
// catalog is n.cat with one step held (held: heldStarts or heldClaims),
// and sends a Record of a new call id; once the step has the recording's
// name it hangs the call up, waits until the recording has left the live
// set, and lets the step go on. It returns the site, the node, the
// FinishedUrl receiver, the recording's name and the Record's answer.
// never says what failed when the step never gets the name.
func hangUpWhileHeld(t *testing.T, fs finalStore, held func(*catalog.Service, hold) call.Catalog, id call.ChannelID,
	never string) (site *finalSite, n *ozekiNode, recv *testutil.FormReceiver, name, answer string) {
	t.Helper()
	site, n, recv = oneNode(t, fs)
	h := newHold()
	site.m.SetCatalog(held(n.cat, h))
	ch := site.call(t, id)
	answered := make(chan string, 1)
	go func() {
		b, err := sendRecord(site.srv.URL, string(ch.ID), recv.URL)
		if err != nil {
			answered <- err.Error()
			return
		}
		answered <- string(b)
	}()
	select {
	case name = <-h.names:
	case <-time.After(10 * time.Second):
		t.Fatal(never)
	}
	if err := site.m.Hangup(ch.ID, call.CauseNormalClearing); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, 2*time.Millisecond, func() bool {
		_, err := site.m.LiveRecording(call.RecordingName(name))
		return errors.Is(err, call.ErrNotFound)
	}, "the hangup never ended the queued recording")
	close(h.goOn)
	return site, n, recv, name, <-answered
}

// deliveredOnce waits until node n has delivered a RecordCompleted to recv
// and its outbox is empty, closes n's sender and returns the one
// delivered (failing unless exactly one was).
func deliveredOnce(t *testing.T, fs finalStore, n *ozekiNode, recv *testutil.FormReceiver) url.Values {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, 10*time.Millisecond, func() bool { return len(recv.Got()) >= 1 },
		"RecordCompleted never delivered; logs:\n%s", n.logs.String())
	testutil.Eventually(t, 10*time.Second, 10*time.Millisecond, func() bool {
		n, err := fs.st.(meta.Outbox).PendingCount(context.Background(), "n1")
		return err == nil && n == 0
	}, "the outbox never drained")
	n.sender.Close()
	got := recv.Got()
	if len(got) != 1 {
		t.Fatalf("%d RecordCompleted delivered, want 1: %v", len(got), got)
	}
	return got[0]
}

// TestRecordEndedBeforeItsRow: a Record whose call hangs up before its
// first row is written (while its name is claimed) answers 601, as for a
// call that is gone: it wrote no row and owes no RecordCompleted, and
// none is sent, and its name is not left claimed. Before, it answered 200
// with no row behind it; and the claim, made after the hangup's end of
// the recording had released nothing, stayed in a shared (PostgreSQL)
// catalog, its flag written and read by both without a lock.
func TestRecordEndedBeforeItsRow(t *testing.T) {
	withFinalStores(t, func(t *testing.T, fs finalStore) {
		ctx := context.Background()
		_, n, recv, name, b := hangUpWhileHeld(t, fs, func(c *catalog.Service, h hold) call.Catalog { return heldClaims{c, h} },
			"rowfirst-gone", "the Record's name was never claimed")
		if !strings.Contains(b, "<Code>601</Code>") {
			t.Fatalf("Record: %s; want 601 (the call ended before its row)", b)
		}
		n.api.Wait(10 * time.Second)
		if row, err := fs.st.RecordingByName(ctx, name); !errors.Is(err, meta.ErrNotFound) {
			t.Fatalf("a row for the Record that answered 601: %+v %v", row, err)
		}
		if pending, err := fs.st.(meta.Outbox).PendingCount(ctx, "n1"); err != nil || pending != 0 || len(recv.Got()) != 0 {
			t.Fatalf("notifications for the Record that answered 601: %d queued, %d received (%v)", pending, len(recv.Got()), err)
		}
		// Its name is not left claimed (a shared catalog's claim made as
		// the recording ended is dropped): another node can take it.
		claims := fs.st.(interface {
			ClaimRecordingName(ctx context.Context, name, node string) (string, error)
		})
		if holder, err := claims.ClaimRecordingName(ctx, name, "n2"); err != nil {
			t.Fatalf("the name of the Record that answered 601 is still claimed by %s: %v", holder, err)
		}
	})
}

// TestRecordEndedBeforeItBegan: a Record whose call hangs up while its
// first row is being written, before its file is opened, against real
// SQLite and PostgreSQL catalogs. Record answers 200, as it promised the
// row, and the row is kept: final, absent (nothing recorded, the detail
// saying the call ended before the recording began), reason hangup,
// length zero, no file. Its RecordCompleted is queued with that final
// row (the kept callback cleared in the same transaction) and delivered
// once: duration 0, state canceled, the detail as its Cause, no RecordURL
// (there is no file). Before, the first row was deleted as a canceled
// recording's and RecordCompleted was sent from memory only, with a
// RecordURL to no file.
func TestRecordEndedBeforeItBegan(t *testing.T) {
	withFinalStores(t, func(t *testing.T, fs finalStore) {
		ctx := context.Background()
		// The call hangs up while the row is being written: the
		// recording ends (it leaves the live set) before it began.
		const id = "rowfirst-early"
		site, n, recv, name, b := hangUpWhileHeld(t, fs, func(c *catalog.Service, h hold) call.Catalog { return heldStarts{c, h} },
			id, "the Record's first row was never written")
		if !strings.Contains(b, "<Code>200</Code>") {
			t.Fatalf("Record: %s; want 200 (its row was written)", b)
		}
		n.api.Wait(10 * time.Second)

		row, err := fs.st.RecordingByName(ctx, name)
		if err != nil {
			t.Fatalf("the row of the recording that ended before it began: %v; want it kept", err)
		}
		if row.Status != meta.StatusAbsent || row.StatusDetail != catalog.DetailEndedBeforeStart ||
			row.EndReason != call.EndHangup || row.Duration != 0 || row.Size != 0 {
			t.Fatalf("the row: %+v; want absent (%q), reason hangup, nothing recorded", row, catalog.DetailEndedBeforeStart)
		}
		if _, err := os.Stat(filepath.Join(site.root, name+".wav")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the file of a recording that never began: %v", err)
		}
		if _, has, err := fs.st.(meta.StatusCallbacks).StatusCallback(ctx, row.Sid); err != nil || has {
			t.Fatalf("the callback is still kept (%v, %v): RecordCompleted was not queued with the row", has, err)
		}
		f := deliveredOnce(t, fs, n, recv)
		if f.Get("NotificationName") != RecordCompleted || f.Get("CallId") != id || f.Get("Duration") != "0" ||
			f.Get("Format") != "wav" || f.Get("Reason") != call.EndHangup || f.Get("State") != "canceled" ||
			f.Get("Cause") != catalog.DetailEndedBeforeStart || f.Has("RecordURL") {
			t.Fatalf("RecordCompleted %v; want duration 0, reason hangup, state canceled, the cause, no RecordURL", f)
		}
	})
}

// TestRecordCanceledOnceBegunCompletes: a Record canceled once it records
// (through ARI's DELETE of the live recording) has no final row (its row
// and file are deleted, as any canceled recording's), and its
// RecordCompleted (state canceled) is still sent, once, from this node:
// the catalog has no row to queue it with. It has the cause and no
// RecordURL: the file it would download is gone. Before, it carried a
// RecordURL to the deleted file. Against real SQLite and PostgreSQL
// catalogs.
func TestRecordCanceledOnceBegunCompletes(t *testing.T) {
	withFinalStores(t, func(t *testing.T, fs finalStore) {
		ctx := context.Background()
		site, n, recv := oneNode(t, fs)
		ch := site.call(t, "rowfirst-canceled")
		ozekiRecord(t, site.srv.URL, string(ch.ID), recv.URL)
		row := liveRow(t, fs.st, "n1", string(ch.ID), recv.URL)
		recording(t, site.m, row.Name)
		file := filepath.Join(site.root, row.Name+".wav")
		if _, err := os.Stat(file); err != nil {
			t.Fatalf("the recording's file while it records: %v", err)
		}
		if err := site.m.CancelRecording(call.RecordingName(row.Name)); err != nil {
			t.Fatal(err)
		}
		n.api.Wait(10 * time.Second)
		if got, err := fs.st.RecordingByName(ctx, row.Name); !errors.Is(err, meta.ErrNotFound) {
			t.Fatalf("the canceled recording's row: %+v %v; want it deleted", got, err)
		}
		if f := deliveredOnce(t, fs, n, recv); f.Get("NotificationName") != RecordCompleted || f.Get("CallId") != string(ch.ID) ||
			f.Get("State") != string(call.RecCanceled) || f.Get("Format") != "wav" ||
			f.Get("Cause") != CauseCanceled || f.Has("RecordURL") {
			t.Fatalf("RecordCompleted %v; want the call's, state canceled, the cause, no RecordURL", f)
		}
		if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the canceled recording's file: %v; want it deleted", err)
		}
	})
}
