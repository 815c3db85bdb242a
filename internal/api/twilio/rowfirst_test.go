package twilio

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil/sqlitetest"
)

// TestStartAnswersWithItsRow: a recording start (POST
// Calls/{CallSid}/Recordings) on a real call, over a real SQLite catalog,
// answers once the recording's first row is written, and only then
// records. While the catalog refuses the row (a trigger on the recordings
// table) it answers 503 and nothing records: no file, no row. Once the
// catalog takes rows again, it answers 201 with the row already there, in
// progress. Before, the start began recording whatever the catalog did
// and polled for the row every 5 ms: a refused row kept the call
// recording with nothing in the catalog, and the start answered 500 after
// five seconds.
func TestStartAnswersWithItsRow(t *testing.T) {
	dir := t.TempDir()
	db := sqlitetest.Open(t, filepath.Join(dir, "tapedeck.db"))
	st := db.Store
	root := filepath.Join(dir, "rec")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cat := &catalog.Service{Meta: st, Root: root, Log: log}
	ctx := context.Background()
	acc, m, _, callSid := recordableCall(t, cat, log, root, "rowfirst")
	s := New(Options{Catalog: cat, Logger: log, Calls: m})
	start := func() (int, []byte) {
		t.Helper()
		req := httptest.NewRequest("POST", "/2010-04-01/Accounts/"+acc.Sid+"/Calls/"+callSid+"/Recordings.json",
			strings.NewReader(""))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(acc.Sid, acc.AuthToken)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		return w.Code, w.Body.Bytes()
	}
	files := func() []string {
		var l []string
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				l = append(l, p)
			}
			return nil
		})
		return l
	}

	db.Refuse(t, "recordings", "INSERT")
	code, body := start()
	if code != 503 {
		t.Fatalf("a start with the catalog refusing its row: %d %s; want 503", code, body)
	}
	if f := files(); len(f) > 0 {
		t.Fatalf("files recorded after the refused row: %v", f)
	}
	if rows, err := st.InProgress(ctx, "", 10); err != nil || len(rows) != 0 {
		t.Fatalf("rows after the refused row: %v %v", rows, err)
	}

	db.Allow(t, "recordings", "INSERT")
	code, body = start()
	if code != 201 {
		t.Fatalf("start: %d %s", code, body)
	}
	var got struct {
		Sid    string `json:"sid"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	row, err := st.RecordingBySid(ctx, got.Sid)
	if err != nil || row.Status != meta.StatusInProgress || got.Status != "in-progress" || row.CallSid != callSid {
		t.Fatalf("the row when the start answered: %+v %v (answer %s)", row, err, body)
	}
}
