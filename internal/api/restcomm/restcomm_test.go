package restcomm

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

type apiFixture struct {
	srv   *Server
	acc   meta.Account
	other meta.Account
	sids  []string // oldest first
}

// newAPIFixture is the API over a real SQLite catalog holding n completed
// recordings of the default account, one a second apart, and one of
// another account.
func newAPIFixture(t *testing.T, n int) *apiFixture {
	t.Helper()
	dir := t.TempDir()
	ms, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cat := &catalog.Service{Meta: ms, Root: dir, Log: log}
	ctx := context.Background()
	acc, err := cat.DefaultAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ms.CreateAccount(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	fx := &apiFixture{srv: New(Options{Catalog: cat, Logger: log}), acc: acc, other: other}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	put := func(accSid string, i int) string {
		sid := meta.NewRecordingSid()
		rec := meta.Recording{Sid: sid, AccountSid: accSid, CallSid: fmt.Sprintf("CA%032d", i), Name: fmt.Sprintf("r%d", i),
			FilePath: fmt.Sprintf("r%d.wav", i), Format: "wav", Status: meta.StatusCompleted, Duration: float64(i),
			DateCreated: base.Add(time.Duration(i) * time.Second), DateUpdated: base.Add(time.Duration(i) * time.Second)}
		if err := ms.PutRecording(ctx, rec); err != nil {
			t.Fatal(err)
		}
		return sid
	}
	for i := range n {
		fx.sids = append(fx.sids, put(acc.Sid, i))
	}
	put(other.Sid, 99)
	return fx
}

func (fx *apiFixture) get(t *testing.T, path string) (int, string) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.SetBasicAuth(fx.acc.Sid, fx.acc.AuthToken)
	w := httptest.NewRecorder()
	fx.srv.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

func (fx *apiFixture) list(t *testing.T, query string) listJSON {
	t.Helper()
	code, body := fx.get(t, "/restcomm/"+APIVersion+"/Accounts/"+fx.acc.Sid+"/Recordings.json?"+query)
	if code != 200 {
		t.Fatalf("%s: %d %s", query, code, body)
	}
	var l listJSON
	if err := json.Unmarshal([]byte(body), &l); err != nil {
		t.Fatal(err)
	}
	return l
}

func sidsOf(l listJSON) []string {
	var out []string
	for _, r := range l.Recordings {
		out = append(out, r.Sid)
	}
	return out
}

// TestPaging: pages, their bounds and links, Limit, and following
// next_page_uri (which carries AfterSid) through the whole listing.
func TestPaging(t *testing.T) {
	fx := newAPIFixture(t, 7)
	l := fx.list(t, "PageSize=3")
	if l.Page != 0 || l.NumPages != 2 || l.PageSize != 3 || l.Total != 7 || l.Start != "0" || l.End != "2" || len(l.Recordings) != 3 {
		t.Errorf("first page: %+v", l)
	}
	if l.PreviousPageURI != "null" || !strings.Contains(l.LastPageURI, "Page=2&PageSize=3") || !strings.Contains(l.NextPageURI, "AfterSid="+l.Recordings[2].Sid) {
		t.Errorf("first page links: prev %q next %q last %q", l.PreviousPageURI, l.NextPageURI, l.LastPageURI)
	}
	var all []string
	for next, pages := "PageSize=3", 0; next != ""; pages++ {
		if pages > 3 {
			t.Fatal("next_page_uri never ends")
		}
		l := fx.list(t, next)
		all = append(all, sidsOf(l)...)
		next = ""
		if l.NextPageURI != "null" {
			u, err := url.Parse(l.NextPageURI)
			if err != nil {
				t.Fatal(err)
			}
			next = u.RawQuery
		}
	}
	if len(all) != 7 {
		t.Errorf("following next_page_uri: %d recordings, want 7", len(all))
	}
	seen := map[string]bool{}
	for _, s := range all {
		if seen[s] {
			t.Errorf("%s listed twice", s)
		}
		seen[s] = true
	}
	last := fx.list(t, "PageSize=3&Page=2")
	// Restcomm's last page ends at its start plus its count.
	if last.Start != "6" || last.End != "7" || len(last.Recordings) != 1 || last.NextPageURI != "null" || !strings.Contains(last.PreviousPageURI, "Page=1") {
		t.Errorf("last page: %+v", last)
	}
	lim := fx.list(t, "PageSize=3&Limit=5&Page=1")
	if lim.Total != 5 || lim.NumPages != 1 || len(lim.Recordings) != 2 || lim.NextPageURI != "null" {
		t.Errorf("Limit=5, page 1: %+v", lim)
	}
	asc := fx.list(t, "SortBy=Duration:desc&PageSize=2")
	if got := sidsOf(asc); len(got) != 2 || got[0] != fx.sids[6] || got[1] != fx.sids[5] {
		t.Errorf("SortBy=Duration:desc: %v", got)
	}
	for _, bad := range []string{"Page=-1", "PageSize=0", "Limit=0", "Page=x", "Page=2147483648", "AfterSid=RE00000000000000000000000000000000", "StartTime=yesterday",
		"PageSize=3&Page=3", "PageSize=3&Page=9", "PageSize=1001", "PageSize=5000"} {
		code, body := fx.get(t, "/restcomm/"+APIVersion+"/Accounts/"+fx.acc.Sid+"/Recordings.json?"+bad)
		if code != 400 || !strings.Contains(body, `"status":400`) {
			t.Errorf("%s: %d %s, want 400", bad, code, body)
		}
	}
}

// TestDateFilter: StartTime and EndTime are inclusive, dates or
// date-times in UTC.
func TestDateFilter(t *testing.T) {
	fx := newAPIFixture(t, 5) // created 12:00:00 ... 12:00:04 on 2026-03-01
	for q, want := range map[string]int{
		"StartTime=2026-03-01": 5,
		"StartTime=2026-03-02": 0,
		"EndTime=2026-02-28":   0,
		"StartTime=2026-03-01T12:00:01&EndTime=2026-03-01T12:00:03": 3,
		"StartTime=2026-03-01T13:00:01%2B01:00":                     4,
		"StartTime=2026-03-01%2012:00:04":                           1,
	} {
		if got := fx.list(t, q).Total; got != want {
			t.Errorf("%s: %d recordings, want %d", q, got, want)
		}
	}
}

// TestErrorTable: the one table from error kinds to statuses, and both
// renderings of an error.
func TestErrorTable(t *testing.T) {
	for _, c := range []struct {
		err  error
		code int
		msg  string
	}{
		{fmt.Errorf("row: %w", meta.ErrNotFound), 404, "The requested resource was not found"},
		{catalog.ErrNotFound, 404, "The requested resource was not found"},
		{call.ErrRecordingNotFound, 404, "The requested resource was not found"},
		{meta.ErrUnauthorized, 401, "Invalid credentials"},
		{fmt.Errorf("%w: bad sort", meta.ErrInvalid), 400, "meta: invalid argument: bad sort"},
		{meta.ErrConflict, 409, "meta: conflict"},
		{call.ErrUnavailable, 503, "Service unavailable"},
		{fail(416, "range"), 416, "range"},
		{errors.New("disk on fire: /secret/path"), 500, "internal error"},
	} {
		code, msg, _ := status(c.err)
		if code != c.code || msg != c.msg {
			t.Errorf("%v: %d %q, want %d %q", c.err, code, msg, c.code, c.msg)
		}
	}
	fx := newAPIFixture(t, 0)
	w := httptest.NewRecorder()
	fx.srv.writeError(w, "xml", meta.ErrNotFound)
	var x struct {
		XMLName   xml.Name `xml:"RestcommResponse"`
		Exception struct {
			Status  int
			Message string
		} `xml:"RestException"`
	}
	if w.Code != 404 || w.Header().Get("Content-Type") != "application/xml" || xml.Unmarshal(w.Body.Bytes(), &x) != nil || x.Exception.Status != 404 || x.Exception.Message == "" {
		t.Errorf("XML error: %d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	fx.srv.writeError(w, "json", fail(401, "Authentication required"))
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") == "" || strings.TrimSpace(w.Body.String()) != `{"message":"Authentication required","status":401}` {
		t.Errorf("JSON error: %d %s %q", w.Code, w.Header(), w.Body)
	}
}

// TestRecordingRendering: one recording as JSON and as XML, another
// account's recording and an unknown Sid as 404.
func TestRecordingRendering(t *testing.T) {
	fx := newAPIFixture(t, 3)
	sid := fx.sids[2]
	prefix := "/restcomm/" + APIVersion + "/Accounts/" + fx.acc.Sid + "/Recordings/"
	code, body := fx.get(t, prefix+sid+".json")
	var j recordingJSON
	if code != 200 || json.Unmarshal([]byte(body), &j) != nil {
		t.Fatalf("JSON: %d %s", code, body)
	}
	if j.Sid != sid || j.AccountSid != fx.acc.Sid || j.Status != meta.StatusCompleted || j.Duration != "2.0" ||
		j.DateCreated != "Sun, 1 Mar 2026 12:00:02 +0000" || j.URI != "/"+APIVersion+"/Accounts/"+fx.acc.Sid+"/Recordings/"+sid+".json" ||
		j.FileURI != "http://example.com"+prefix+sid+".wav" {
		t.Errorf("JSON: %+v", j)
	}
	code, body = fx.get(t, prefix+sid)
	var x struct {
		XMLName   xml.Name `xml:"RestcommResponse"`
		Recording xmlRecording
	}
	if code != 200 || xml.Unmarshal([]byte(body), &x) != nil || !strings.HasPrefix(body, xml.Header) {
		t.Fatalf("XML: %d %s", code, body)
	}
	if x.Recording.Sid != sid || x.Recording.Status != meta.StatusCompleted || x.Recording.Duration != "2.0" || x.Recording.Uri != strings.TrimSuffix(j.URI, ".json") {
		t.Errorf("XML: %+v", x.Recording)
	}
	code, body = fx.get(t, "/restcomm/"+APIVersion+"/Accounts/"+fx.acc.Sid+"/Recordings")
	var xl struct {
		Recordings struct {
			Total int            `xml:"total,attr"`
			Items []xmlRecording `xml:"Recording"`
		}
	}
	if code != 200 || xml.Unmarshal([]byte(body), &xl) != nil || xl.Recordings.Total != 3 || len(xl.Recordings.Items) != 3 {
		t.Errorf("XML list: %d %s", code, body)
	}
	otherSid := ""
	res, err := fx.srv.o.Catalog.Meta.ListRecordings(context.Background(), meta.Query{AccountSid: fx.other.Sid, Limit: 1, SortBy: "DateCreated"})
	if err != nil || len(res.Items) != 1 {
		t.Fatal(res, err)
	}
	otherSid = res.Items[0].Sid
	// Restcomm finds the recording, then refuses another account's: 403.
	for _, p := range []string{prefix + otherSid + ".json", "/restcomm/" + APIVersion + "/Accounts/" + fx.other.Sid + "/Recordings.json"} {
		if code, body := fx.get(t, p); code != 403 || !strings.Contains(body, "Forbidden") {
			t.Errorf("%s: %d %s, want 403", p, code, body)
		}
	}
	for _, p := range []string{prefix + "RE" + strings.Repeat("f", 32) + ".json", "/restcomm/" + APIVersion + "/Accounts/AC" + strings.Repeat("0", 32) + "/Recordings.json"} {
		if code, body := fx.get(t, p); code != 404 || !strings.Contains(body, "The requested resource was not found") {
			t.Errorf("%s: %d %s, want 404", p, code, body)
		}
	}
}
