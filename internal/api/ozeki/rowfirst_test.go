package ozeki

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
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
		root := t.TempDir()
		recv := newFinishedURLReceiver(t)
		var front atomic.Pointer[API]
		apiSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { front.Load().ServeHTTP(w, r) }))
		defer apiSrv.Close()
		m := newFinalCallManager(t, root)
		defer m.HangupAll(call.CauseNormalClearing)
		n := startOzekiNode(t, fs.st, "n1", root, m, &front, apiSrv.URL)
		defer n.sender.Close()
		defer n.cat.Close()
		m.SetCatalog(n.cat)
		if _, err := n.cat.DefaultAccount(ctx); err != nil {
			t.Fatal(err)
		}
		ch, err := m.ExternalMedia(call.ExternalMediaOptions{App: "final", ExternalHost: "127.0.0.1:9", Format: "ulaw",
			ChannelID: "rowfirst"})
		if err != nil {
			t.Fatal(err)
		}
		record := func() Response {
			t.Helper()
			res, err := http.Get(apiSrv.URL + "/api?command=Record&Username=u&Password=p&Format=wav&CallId=" +
				url.QueryEscape(string(ch.ID)) + "&FinishedUrl=" + url.QueryEscape(recv.url))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
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
		if pending, err := fs.st.(meta.Outbox).PendingCount(ctx, "n1"); err != nil || pending != 0 || len(recv.got()) != 0 {
			t.Fatalf("notifications after the refused row: %d queued, %d received (%v)", pending, len(recv.got()), err)
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
		if err != nil || !has || cb.URL != recv.url || cb.Kind != RecordCompleted {
			t.Fatalf("the callback kept with the row when Record answered: %+v %v %v", cb, has, err)
		}
		if err := m.Hangup(ch.ID, call.CauseNormalClearing); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 20*time.Second, 10*time.Millisecond, func() bool { return len(recv.got()) >= 1 },
			"RecordCompleted never delivered; logs:\n%s", n.logs.String())
		checkRecordCompleted(t, recv.got()[0], string(ch.ID), call.EndHangup)
	})
}
