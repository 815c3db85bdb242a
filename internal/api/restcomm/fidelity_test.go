package restcomm

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// wavBytes is a valid 8 kHz mono 16-bit WAV file of n samples.
func wavBytes(n int) []byte {
	b := make([]byte, 44+2*n)
	copy(b, "RIFF")
	le32(b[4:], uint32(36+2*n))
	copy(b[8:], "WAVEfmt ")
	le32(b[16:], 16)
	b[20], b[22] = 1, 1
	le32(b[24:], 8000)
	le32(b[28:], 16000)
	b[32], b[34] = 2, 16
	copy(b[36:], "data")
	le32(b[40:], uint32(2*n))
	return b
}

func le32(b []byte, v uint32) { b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24) }

// TestUriWavRecipe: the seed's recipe, take the XML <Uri> and add .wav,
// downloads the recording (Restcomm's XML Uri has no extension).
func TestUriWavRecipe(t *testing.T) {
	fx := newAPIFixture(t, 3)
	want := wavBytes(800)
	if err := os.WriteFile(filepath.Join(fx.srv.o.Catalog.Root, "r1.wav"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	code, body := fx.get(t, "/restcomm/"+APIVersion+"/Accounts/"+fx.acc.Sid+"/Recordings")
	var xl struct {
		Recordings struct {
			Items []xmlRecording `xml:"Recording"`
		}
	}
	if code != 200 || xml.Unmarshal([]byte(body), &xl) != nil {
		t.Fatalf("XML list: %d %s", code, body)
	}
	var uri string
	for _, r := range xl.Recordings.Items {
		if r.Sid == fx.sids[1] {
			uri = r.Uri
		}
	}
	if strings.HasSuffix(uri, ".json") || !strings.HasSuffix(uri, fx.sids[1]) {
		t.Fatalf("XML Uri %q: want it without extension", uri)
	}
	for _, p := range []string{uri + ".wav", "/restcomm" + uri + ".wav"} {
		code, got := fx.get(t, p)
		if code != 200 || got != string(want) {
			t.Errorf("%s: %d, %d bytes, want 200 and the file's %d", p, code, len(got), len(want))
		}
	}
}

// TestFileURIAbsolute: file_uri is absolute, from the configured public
// URL, else from the request's Host.
func TestFileURIAbsolute(t *testing.T) {
	fx := newAPIFixture(t, 1)
	path := "/restcomm/" + APIVersion + "/Accounts/" + fx.acc.Sid + "/Recordings/" + fx.sids[0]
	req := httptest.NewRequest("GET", path+".json", nil)
	req.Host = "rec.example.org:8088"
	req.SetBasicAuth(fx.acc.Sid, fx.acc.AuthToken)
	w := httptest.NewRecorder()
	fx.srv.ServeHTTP(w, req)
	var j recordingJSON
	if err := json.Unmarshal(w.Body.Bytes(), &j); err != nil || j.FileURI != "http://rec.example.org:8088"+path+".wav" {
		t.Errorf("from the Host: %q (%v)", j.FileURI, err)
	}
	fx.srv.o.PublicURL = "https://recordings.example.com/tapedeck/"
	w = httptest.NewRecorder()
	fx.srv.ServeHTTP(w, req)
	if err := json.Unmarshal(w.Body.Bytes(), &j); err != nil || j.FileURI != "https://recordings.example.com/tapedeck"+path+".wav" {
		t.Errorf("from the public URL: %q (%v)", j.FileURI, err)
	}
}

// TestPagingExactMultiple: Restcomm's arithmetic when the total is a
// multiple of the page size: num_pages = total/PageSize, so the last page
// is empty, its end is its start, and the page after it is a 400.
func TestPagingExactMultiple(t *testing.T) {
	fx := newAPIFixture(t, 6)
	cases := []struct {
		query      string
		numPages   int
		start, end string
		items      int
		next       bool
	}{
		{"PageSize=3", 2, "0", "2", 3, true},
		{"PageSize=3&Page=1", 2, "3", "5", 3, true},
		{"PageSize=3&Page=2", 2, "6", "6", 0, false},
		{"PageSize=6", 1, "0", "5", 6, true},
		{"PageSize=50", 0, "0", "6", 6, false}, // the seed's example: 34 of 50 end at "34"
	}
	for _, c := range cases {
		l := fx.list(t, c.query)
		if l.NumPages != c.numPages || l.Start != c.start || l.End != c.end || len(l.Recordings) != c.items ||
			(l.NextPageURI != "null") != c.next || l.Total != 6 {
			t.Errorf("%s: num_pages %d start %s end %s items %d next %q", c.query, l.NumPages, l.Start, l.End, len(l.Recordings), l.NextPageURI)
		}
	}
	if code, body := fx.get(t, "/restcomm/"+APIVersion+"/Accounts/"+fx.acc.Sid+"/Recordings.json?PageSize=3&Page=3"); code != 400 {
		t.Errorf("Page 3 of 6 by 3: %d %s, want 400", code, body)
	}
}

// TestDeprecatedCallRecordings: Calls/{CallSid}/Recordings.json is a bare
// array of that call's recordings, as Restcomm answers it.
func TestDeprecatedCallRecordings(t *testing.T) {
	fx := newAPIFixture(t, 3)
	call := fmt.Sprintf("CA%032d", 1)
	code, body := fx.get(t, "/restcomm/"+APIVersion+"/Accounts/"+fx.acc.Sid+"/Calls/"+call+"/Recordings.json")
	var arr []recordingJSON
	if code != 200 || !strings.HasPrefix(body, "[") || json.Unmarshal([]byte(body), &arr) != nil {
		t.Fatalf("%d %s: want a bare JSON array", code, body)
	}
	if len(arr) != 1 || arr[0].Sid != fx.sids[1] || arr[0].CallSid != call {
		t.Errorf("call's recordings: %+v", arr)
	}
	// Unpaged: all of the call's recordings whatever PageSize says.
	call0 := fmt.Sprintf("CA%032d", 0)
	for i := range 3 {
		if err := fx.srv.o.Catalog.Meta.PutRecording(context.Background(), meta.Recording{Sid: meta.NewRecordingSid(), AccountSid: fx.acc.Sid,
			CallSid: call0, Status: meta.StatusCompleted, Format: "wav", DateCreated: time.Now().Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	code, body = fx.get(t, "/restcomm/"+APIVersion+"/Accounts/"+fx.acc.Sid+"/Calls/"+call0+"/Recordings.json?PageSize=1")
	if code != 200 || json.Unmarshal([]byte(body), &arr) != nil || len(arr) != 4 {
		t.Errorf("a call of 4 recordings, PageSize=1: %d, %d recordings: %s", code, len(arr), body)
	}
	code, body = fx.get(t, "/restcomm/"+APIVersion+"/Accounts/"+fx.acc.Sid+"/Calls/CA"+strings.Repeat("7", 32)+"/Recordings.json")
	if code != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("a call without recordings: %d %s, want []", code, body)
	}
}

// TestLifecycleStatuses: an in-progress row says so (duration -1.0) and its
// media is not served; one that got no audio is absent with Twilio's
// error code, and its media is not served either.
func TestLifecycleStatuses(t *testing.T) {
	fx := newAPIFixture(t, 0)
	ctx := context.Background()
	root := fx.srv.o.Catalog.Root
	mk := func(name string, st meta.Status, dur float64) string {
		sid := meta.NewRecordingSid()
		if err := os.WriteFile(filepath.Join(root, name+".wav"), wavBytes(int(dur*8000)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := fx.srv.o.Catalog.Meta.PutRecording(ctx, meta.Recording{Sid: sid, AccountSid: fx.acc.Sid, Name: name,
			FilePath: name + ".wav", Format: "wav", Status: st, Duration: dur, DateCreated: time.Now()}); err != nil {
			t.Fatal(err)
		}
		return sid
	}
	live := mk("live", meta.StatusInProgress, 1.5)
	absent := mk("absent", meta.StatusAbsent, 0)
	done := mk("done", meta.StatusCompleted, 30)
	prefix := "/restcomm/" + APIVersion + "/Accounts/" + fx.acc.Sid + "/Recordings/"
	for _, c := range []struct {
		sid, status, duration string
		errorCode, media      int
	}{
		{live, "in-progress", "-1.0", 0, 404},
		{absent, "absent", "0.0", ErrorCodeAbsent, 404},
		{done, "completed", "30.0", 0, 200},
	} {
		code, body := fx.get(t, prefix+c.sid+".json")
		var j recordingJSON
		if code != 200 || json.Unmarshal([]byte(body), &j) != nil {
			t.Fatalf("%s: %d %s", c.status, code, body)
		}
		if string(j.Status) != c.status || j.Duration != c.duration || j.ErrorCode != c.errorCode {
			t.Errorf("%s: status %s duration %s error_code %d", c.status, j.Status, j.Duration, j.ErrorCode)
		}
		for _, p := range []string{prefix + c.sid + ".wav", "/restcomm/recordings/" + c.sid + ".wav"} {
			if code, _ := fx.get(t, p); code != c.media {
				t.Errorf("%s media %s: %d, want %d", c.status, p, code, c.media)
			}
		}
	}
}

// TestFromToFilters: From and To select by caller and callee number.
func TestFromToFilters(t *testing.T) {
	fx := newAPIFixture(t, 0)
	ctx := context.Background()
	var alice []string
	for i := range 4 {
		r := meta.Recording{Sid: meta.NewRecordingSid(), AccountSid: fx.acc.Sid, Status: meta.StatusCompleted, Format: "wav",
			CallerNumber: "1000", CalledNumber: "2000", DateCreated: time.Now().Add(time.Duration(i) * time.Second)}
		if i%2 == 1 {
			r.CallerNumber, r.CalledNumber = "alice", "bob"
			alice = append(alice, r.Sid)
		}
		if err := fx.srv.o.Catalog.Meta.PutRecording(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{"From=alice", "To=bob", "From=alice&To=bob"} {
		l := fx.list(t, q)
		if got := sidsOf(l); l.Total != 2 || len(got) != 2 || got[0] != alice[0] || got[1] != alice[1] {
			t.Errorf("%s: total %d %v, want %v", q, l.Total, got, alice)
		}
	}
	if l := fx.list(t, "From=bob"); l.Total != 0 {
		t.Errorf("From=bob: total %d", l.Total)
	}
}

// TestStatusCodes: every status the API answers, and for what.
func TestStatusCodes(t *testing.T) {
	fx := newAPIFixture(t, 2)
	ctx := context.Background()
	res, err := fx.srv.o.Catalog.Meta.ListRecordings(ctx, meta.Query{AccountSid: fx.other.Sid, Limit: 1})
	if err != nil || len(res.Items) != 1 {
		t.Fatal(res, err)
	}
	otherSid := res.Items[0].Sid
	acc := "/restcomm/" + APIVersion + "/Accounts/" + fx.acc.Sid
	unknown := "RE" + strings.Repeat("e", 32)
	cases := []struct {
		method, path string
		auth         string // "ok", "bad", "none"
		want         int
	}{
		{"GET", acc + "/Recordings.json", "ok", 200},
		{"GET", acc + "/Recordings", "ok", 200},
		{"GET", acc + "/Recordings/" + fx.sids[0] + ".json", "ok", 200},
		{"GET", acc + "/Recordings.json", "none", 401},
		{"GET", acc + "/Recordings.json", "bad", 401},
		{"GET", acc + "/Recordings/" + otherSid + ".json", "ok", 403},
		{"DELETE", acc + "/Recordings/" + otherSid + ".json", "ok", 403},
		{"GET", "/restcomm/" + APIVersion + "/Accounts/" + fx.other.Sid + "/Recordings.json", "ok", 403},
		// Restcomm finds another account's recording, then its secure()
		// refuses the caller (InsufficientPermission: 403); an account
		// that does not exist is OperatedAccountMissing (404).
		{"GET", "/restcomm/" + APIVersion + "/Accounts/" + fx.other.Sid + "/Recordings/" + otherSid + ".json", "ok", 403},
		{"DELETE", "/restcomm/" + APIVersion + "/Accounts/" + fx.other.Sid + "/Recordings/" + otherSid + ".json", "ok", 403},
		{"GET", acc + "/Recordings/" + otherSid, "ok", 403},
		{"GET", "/restcomm/" + APIVersion + "/Accounts/AC" + strings.Repeat("f", 32) + "/Recordings.json", "ok", 404},
		{"GET", acc + "/Recordings/" + unknown + ".json", "ok", 404},
		{"DELETE", acc + "/Recordings/" + unknown + ".json", "ok", 404},
		{"GET", acc + "/Recordings/" + unknown + ".wav", "none", 404},
		{"GET", acc + "/Nothing.json", "ok", 404},
		{"POST", acc + "/Recordings.json", "ok", 405},
		{"PUT", acc + "/Recordings/" + fx.sids[0] + ".wav", "none", 405},
		{"GET", acc + "/Recordings.json?PageSize=1001", "ok", 400},
		{"GET", acc + "/Recordings.json?PageSize=1&Page=3", "ok", 400},
		{"GET", acc + "/Recordings.json?StartTime=2026-13-45", "ok", 400},
		{"GET", acc + "/Recordings.json?SortBy=Size", "ok", 400},
		{"DELETE", acc + "/Recordings/" + fx.sids[0] + ".json", "ok", 204},
		{"GET", acc + "/Recordings/" + fx.sids[0] + ".json", "ok", 404}, // deleted
	}
	for _, c := range cases {
		req := httptest.NewRequest(c.method, c.path, nil)
		switch c.auth {
		case "ok":
			req.SetBasicAuth(fx.acc.Sid, fx.acc.AuthToken)
		case "bad":
			req.SetBasicAuth(fx.acc.Sid, strings.Repeat("0", 32))
		}
		w := httptest.NewRecorder()
		fx.srv.ServeHTTP(w, req)
		if w.Code != c.want {
			t.Errorf("%s %s (%s): %d %s, want %d", c.method, c.path, c.auth, w.Code, w.Body.String(), c.want)
		}
	}
	// The deletion is audited and the row kept as deleted.
	trail, err := fx.srv.o.Catalog.Meta.AuditTrail(ctx, fx.acc.Sid, fx.sids[0])
	if err != nil || len(trail) != 1 || trail[0].API != "restcomm" || trail[0].Actor != fx.acc.Sid {
		t.Errorf("audit: %+v %v", trail, err)
	}
	if r, err := fx.srv.o.Catalog.Meta.DeletedRecording(ctx, fx.acc.Sid, fx.sids[0]); err != nil || r.Status != meta.StatusDeleted {
		t.Errorf("deleted row: %+v %v", r, err)
	}
}
