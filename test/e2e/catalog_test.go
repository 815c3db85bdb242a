package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

type rcList struct {
	Page            int     `json:"page"`
	NumPages        int     `json:"num_pages"`
	PageSize        int     `json:"page_size"`
	Total           int     `json:"total"`
	Limit           int     `json:"limit"`
	Start           string  `json:"start"`
	End             string  `json:"end"`
	URI             string  `json:"uri"`
	FirstPageURI    string  `json:"first_page_uri"`
	PreviousPageURI string  `json:"previous_page_uri"`
	NextPageURI     string  `json:"next_page_uri"`
	LastPageURI     string  `json:"last_page_uri"`
	Recordings      []rcRec `json:"recordings"`
}

// rcRec is one recording with every value as a string (size is a number).
type rcRec map[string]string

func (r *rcRec) UnmarshalJSON(b []byte) error {
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*r = rcRec{}
	for k, v := range raw {
		(*r)[k] = fmt.Sprint(v)
	}
	return nil
}

// rc calls the Restcomm API with an account's credentials.
func rc(t *testing.T, n *node, acc meta.Account, method, path string) (int, []byte) {
	t.Helper()
	u := path
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		u = n.baseURL() + path // file_uri is absolute; the API's paths are not
	}
	req, _ := http.NewRequest(method, u, nil)
	if acc.Sid != "" {
		req.SetBasicAuth(acc.Sid, acc.AuthToken)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b []byte
	buf := make([]byte, 1<<16)
	for {
		k, err := res.Body.Read(buf)
		b = append(b, buf[:k]...)
		if err != nil {
			break
		}
	}
	return res.StatusCode, b
}

func defaultAccount(t *testing.T, n *node) meta.Account {
	t.Helper()
	acc, err := n.srv.Catalog().Meta.EnsureDefaultAccount(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return acc
}

// recordCall places a call, records name for d of audio and hangs up.
func recordCall(t *testing.T, n *node, events *ariEvents, exten, name string, d time.Duration) (callSid string) {
	t.Helper()
	phone := newPhone(t, "udp")
	id, call := recordingCall(t, n, events, phone, exten, "name="+urlq(name)+"&format=wav")
	_, body := n.do("GET", "/channels/"+id+"/variable?variable=CALLSID", nil)
	var v struct{ Value string }
	_ = json.Unmarshal(body, &v)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(t, call.SendAudio(ctx, sweep(int(d/time.Millisecond)*8)))
	waitRx(t, n, id, int(d/(20*time.Millisecond)))
	n.mustDo("POST", "/recordings/live/"+urlq(name)+"/stop", 204)
	events.skipTo("RecordingFinished", 5*time.Second)
	must(t, call.Hangup(ctx))
	events.skipTo("ChannelDestroyed", 5*time.Second)
	if !strings.HasPrefix(v.Value, "CA") || len(v.Value) != 34 {
		t.Fatalf("CALLSID %q", v.Value)
	}
	return v.Value
}

// askChecksum computes a local recording's checksum as the media caches do
// (recording.checksum: on_demand).
func askChecksum(t *testing.T, n *node, sid string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	row, err := n.srv.Catalog().Meta.RecordingBySid(ctx, sid)
	must(t, err)
	row, err = n.srv.Catalog().Checksum(ctx, row)
	must(t, err)
	if len(row.SHA256) != 64 {
		t.Fatalf("Checksum: %q", row.SHA256)
	}
}

// TestCatalogFromARIRecording: a real recorded call is catalogued with its
// CallSid, duration (within 20 ms of the file's), size and (once asked)
// checksum, and
// downloads by Sid without credentials, with Range.
func TestCatalogFromARIRecording(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	acc := defaultAccount(t, n)
	callSid := recordCall(t, n, events, "350", "cat/one", 1500*time.Millisecond)

	code, body := rc(t, n, acc, "GET", "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Recordings.json")
	if code != 200 {
		t.Fatalf("list: %d %s", code, body)
	}
	var l rcList
	must(t, json.Unmarshal(body, &l))
	if l.Total != 1 || len(l.Recordings) != 1 {
		t.Fatalf("list %+v", l)
	}
	r := l.Recordings[0]
	if r["sha256"] != "" {
		t.Fatalf("sha256 before anything asked (recording.checksum: on_demand): %q", r["sha256"])
	}
	askChecksum(t, n, r["sid"])
	code, body = rc(t, n, acc, "GET", "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Recordings.json")
	if code != 200 {
		t.Fatalf("list: %d %s", code, body)
	}
	l = rcList{}
	must(t, json.Unmarshal(body, &l))
	r = l.Recordings[0]
	path := filepath.Join(n.recDir(), "cat", "one.wav")
	file := mustRead(t, path)
	sum := sha256.Sum256(file)
	_, pcm := readWAV(t, path)
	fileDur := float64(len(pcm)) / 8000
	dur, _ := strconv.ParseFloat(r["duration"], 64)
	if r["call_sid"] != callSid || math.Abs(dur-fileDur) > 0.020 || r["sha256"] != hex.EncodeToString(sum[:]) ||
		r["account_sid"] != acc.Sid || !strings.HasPrefix(r["sid"], "RE") || len(r["sid"]) != 34 || r["api_version"] != "2012-04-24" {
		t.Fatalf("recording %v (file %.3f s)", r, fileDur)
	}
	if r["uri"] != "/2012-04-24/Accounts/"+acc.Sid+"/Recordings/"+r["sid"]+".json" {
		t.Fatalf("uri %q", r["uri"])
	}
	// The media file by Sid, without credentials.
	code, media := rc(t, n, meta.Account{}, "GET", r["file_uri"])
	if code != 200 || string(media) != string(file) {
		t.Fatalf("download %s: %d, %d bytes (file %d)", r["file_uri"], code, len(media), len(file))
	}
	req, _ := http.NewRequest("GET", r["file_uri"], nil)
	req.Header.Set("Range", "bytes=0-3")
	res, err := http.DefaultClient.Do(req)
	must(t, err)
	res.Body.Close()
	if res.StatusCode != 206 || res.Header.Get("Content-Type") != "audio/wav" {
		t.Fatalf("range: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	// Single recording, JSON and XML; the path without /restcomm works too.
	code, body = rc(t, n, acc, "GET", "/2012-04-24/Accounts/"+acc.Sid+"/Recordings/"+r["sid"]+".json")
	if code != 200 || !strings.Contains(string(body), `"sid":"`+r["sid"]+`"`) {
		t.Fatalf("get: %d %s", code, body)
	}
	code, body = rc(t, n, acc, "GET", "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Recordings/"+r["sid"])
	if code != 200 || !strings.Contains(string(body), "<Sid>"+r["sid"]+"</Sid>") {
		t.Fatalf("get XML: %d %s", code, body)
	}
	code, body = rc(t, n, acc, "GET", "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Recordings")
	if code != 200 || !strings.Contains(string(body), "<RestcommResponse>") || !strings.Contains(string(body), `total="1"`) {
		t.Fatalf("list XML: %d %s", code, body)
	}
	// Deprecated per-call path.
	code, body = rc(t, n, acc, "GET", "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Calls/"+callSid+"/Recordings.json")
	if code != 200 || !strings.Contains(string(body), r["sid"]) {
		t.Fatalf("calls path: %d %s", code, body)
	}
	// ARI and the catalog are the same data: an ARI copy is catalogued, an
	// ARI delete removes the row, a catalog delete removes the file.
	n.mustDo("POST", "/recordings/stored/cat%2Fone/copy?destinationRecordingName=cat%2Ftwo", 200)
	_, body = rc(t, n, acc, "GET", "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Recordings.json")
	must(t, json.Unmarshal(body, &l))
	if l.Total != 2 {
		t.Fatalf("after ARI copy: total %d", l.Total)
	}
	n.mustDo("DELETE", "/recordings/stored/cat%2Ftwo", 204)
	_, body = rc(t, n, acc, "GET", "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Recordings.json")
	must(t, json.Unmarshal(body, &l))
	if l.Total != 1 {
		t.Fatalf("after ARI delete: total %d", l.Total)
	}
	if code, _ := rc(t, n, acc, "DELETE", "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Recordings/"+r["sid"]); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	n.mustDo("GET", "/recordings/stored/cat%2Fone", 404)
	if code, _ := rc(t, n, meta.Account{}, "GET", r["file_uri"]); code != 404 {
		t.Fatalf("download after delete: %d", code)
	}
}

// TestRestcommSeedCommands: the seed's requests (list, CallSid filter,
// PageSize=1, Limit=500, SortBy=DateCreated:asc, DELETE) with the seed's
// response shape; bad input gets 400; another account sees nothing.
func TestRestcommSeedCommands(t *testing.T) {
	n := startNode(t)
	acc := defaultAccount(t, n)
	st := n.srv.Catalog().Meta
	ctx := context.Background()
	base := time.Date(2016, 3, 25, 14, 0, 0, 0, time.UTC)
	var sids []string
	for i := 0; i < 7; i++ {
		sid := meta.NewRecordingSid()
		sids = append(sids, sid)
		must(t, st.PutRecording(ctx, meta.Recording{Sid: sid, AccountSid: acc.Sid, CallSid: fmt.Sprintf("CA%032d", i%3),
			DateCreated: base.Add(time.Duration(i) * time.Hour), DateUpdated: base, StartTime: base,
			Duration: float64(10 - i), Format: "wav", Source: "ari", Status: "completed", Name: fmt.Sprintf("seed/%d", i), ApiVersion: "2012-04-24"}))
	}
	root := "/restcomm/2012-04-24/Accounts/" + acc.Sid + "/Recordings.json"
	list := func(q string) rcList {
		t.Helper()
		code, body := rc(t, n, acc, "GET", root+q)
		if code != 200 {
			t.Fatalf("list%s: %d %s", q, code, body)
		}
		var raw map[string]any
		must(t, json.Unmarshal(body, &raw))
		for _, k := range []string{"page", "num_pages", "page_size", "total", "start", "end", "uri", "first_page_uri", "previous_page_uri", "next_page_uri", "last_page_uri", "recordings"} {
			if _, ok := raw[k]; !ok {
				t.Fatalf("list%s lacks %q: %s", q, k, body)
			}
		}
		var l rcList
		must(t, json.Unmarshal(body, &l))
		for _, r := range l.Recordings {
			for _, k := range []string{"sid", "date_created", "date_updated", "account_sid", "call_sid", "duration", "api_version", "uri", "file_uri"} {
				if r[k] == "" {
					t.Fatalf("recording lacks %q: %v", k, r)
				}
			}
			if _, err := time.Parse("Mon, 2 Jan 2006 15:04:05 -0700", r["date_created"]); err != nil {
				t.Fatalf("date_created %q: %v", r["date_created"], err)
			}
		}
		return l
	}
	l := list("")
	if l.Total != 7 || l.PageSize != 50 || l.NumPages != 0 || l.Start != "0" || l.End != "7" || l.PreviousPageURI != "null" || l.NextPageURI != "null" || len(l.Recordings) != 7 {
		t.Fatalf("plain list %+v", l)
	}
	if l.FirstPageURI != "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Recordings.json?Page=0&PageSize=50" {
		t.Fatalf("first_page_uri %q", l.FirstPageURI)
	}
	if l := list("?CallSid=CA" + fmt.Sprintf("%032d", 1)); l.Total != 2 {
		t.Fatalf("CallSid filter: %d", l.Total)
	}
	l = list("?PageSize=1")
	if l.Total != 7 || len(l.Recordings) != 1 || l.Start != "0" || l.End != "0" || l.NumPages != 7 || !strings.Contains(l.NextPageURI, "Page=1&PageSize=1") || !strings.Contains(l.NextPageURI, "AfterSid=") {
		t.Fatalf("PageSize=1 %+v", l)
	}
	// Following next_page_uri (AfterSid) walks every recording once.
	seen := map[string]bool{}
	next := root + "?PageSize=2"
	for i := 0; next != "null" && i < 10; i++ {
		code, body := rc(t, n, acc, "GET", next)
		if code != 200 {
			t.Fatalf("page %s: %d", next, code)
		}
		var p rcList
		must(t, json.Unmarshal(body, &p))
		for _, r := range p.Recordings {
			if seen[r["sid"]] {
				t.Fatalf("%s seen twice", r["sid"])
			}
			seen[r["sid"]] = true
		}
		next = p.NextPageURI
	}
	if len(seen) != 7 {
		t.Fatalf("paging saw %d of 7", len(seen))
	}
	if l := list("?PageSize=1&Limit=500"); l.Limit != 500 || !strings.Contains(l.FirstPageURI, "Limit=500") {
		t.Fatalf("Limit %+v", l)
	}
	if l := list("?Limit=3"); l.Total != 3 || len(l.Recordings) != 3 {
		t.Fatalf("Limit=3: %+v", l)
	}
	l = list("?SortBy=DateCreated:asc")
	if l.Recordings[0]["sid"] != sids[0] || l.Recordings[6]["sid"] != sids[6] {
		t.Fatalf("DateCreated:asc order")
	}
	l = list("?SortBy=Duration")
	var durs []float64
	for _, r := range l.Recordings {
		d, _ := strconv.ParseFloat(r["duration"], 64)
		durs = append(durs, d)
	}
	if !sort.Float64sAreSorted(durs) {
		t.Fatalf("Duration order %v", durs)
	}
	if l := list("?SortBy=CallSid:desc"); l.Recordings[0]["call_sid"] != "CA"+fmt.Sprintf("%032d", 2) {
		t.Fatalf("CallSid:desc first %v", l.Recordings[0])
	}
	if l := list("?StartTime=2016-03-25T16:00:00&EndTime=2016-03-25T18:00:00"); l.Total != 3 {
		t.Fatalf("time window (inclusive): %d", l.Total)
	}
	if l := list("?StartTime=2016-03-26"); l.Total != 0 {
		t.Fatalf("date-only StartTime: %d", l.Total)
	}
	if l := list("?CallSid=" + urlq("x' OR '1'='1")); l.Total != 0 {
		t.Fatalf("SQL-looking CallSid matched %d", l.Total)
	}
	for _, q := range []string{"?StartTime=yesterday", "?EndTime=2016-13-45", "?SortBy=Size", "?SortBy=Duration:sideways", "?Page=x", "?PageSize=0", "?Limit=-1",
		"?PageSize=5000", "?PageSize=1001", "?Page=1"} { // above the maximum PageSize, beyond the last page
		if code, body := rc(t, n, acc, "GET", root+q); code != 400 || !strings.Contains(string(body), "message") {
			t.Errorf("%s: %d %s, want 400 with a message", q, code, body)
		}
	}
	// Auth and isolation.
	if code, _ := rc(t, n, meta.Account{}, "GET", root); code != 401 {
		t.Errorf("no credentials: %d", code)
	}
	if code, _ := rc(t, n, meta.Account{Sid: acc.Sid, AuthToken: "wrong"}, "GET", root); code != 401 {
		t.Errorf("wrong token: %d", code)
	}
	other, err := st.CreateAccount(ctx, "other")
	must(t, err)
	if code, _ := rc(t, n, other, "GET", "/restcomm/2012-04-24/Accounts/"+other.Sid+"/Recordings/"+sids[0]+".json"); code != 403 {
		t.Errorf("foreign Sid: %d, want 403 (Restcomm's secure())", code)
	}
	if code, _ := rc(t, n, other, "DELETE", "/restcomm/2012-04-24/Accounts/"+other.Sid+"/Recordings/"+sids[0]); code != 403 {
		t.Errorf("foreign delete: %d, want 403", code)
	}
	if code, _ := rc(t, n, other, "GET", root); code != 403 {
		t.Errorf("another account's list path: %d, want 403", code)
	}
	code, body := rc(t, n, other, "GET", "/restcomm/2012-04-24/Accounts/"+other.Sid+"/Recordings.json")
	if code != 200 || !strings.Contains(string(body), `"total":0`) {
		t.Errorf("other account's own list: %d %s", code, body)
	}
	// DELETE as the seed does it.
	if code, _ := rc(t, n, acc, "DELETE", "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Recordings/"+sids[3]); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := rc(t, n, acc, "GET", "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Recordings/"+sids[3]+".json"); code != 404 {
		t.Fatalf("deleted Sid: %d", code)
	}
	if code, _ := rc(t, n, acc, "GET", "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Recordings/RE00000000000000000000000000000000.json"); code != 404 {
		t.Fatalf("unknown Sid: %d", code)
	}
}

// TestMediaAccessModes: auth mode needs the owner's credentials; signed mode
// needs an unexpired signature, which the listing's file_uri carries.
func TestMediaAccessModes(t *testing.T) {
	for _, mode := range []string{"auth", "signed"} {
		t.Run(mode, func(t *testing.T) {
			n := startNode(t, func(c *config.Config) { c.Catalog.MediaAccess = mode })
			events := n.connect("test")
			acc := defaultAccount(t, n)
			recordCall(t, n, events, "351", "m/"+mode, 400*time.Millisecond)
			_, body := rc(t, n, acc, "GET", "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Recordings.json")
			var l rcList
			must(t, json.Unmarshal(body, &l))
			uri := l.Recordings[0]["file_uri"]
			bare, _, _ := strings.Cut(uri, "?")
			switch mode {
			case "auth":
				if code, _ := rc(t, n, meta.Account{}, "GET", uri); code != 401 {
					t.Fatalf("anonymous download: %d", code)
				}
				if code, _ := rc(t, n, acc, "GET", uri); code != 200 {
					t.Fatalf("owner download: %d", code)
				}
			case "signed":
				if !strings.Contains(uri, "Signature=") {
					t.Fatalf("file_uri not signed: %s", uri)
				}
				if code, _ := rc(t, n, meta.Account{}, "GET", uri); code != 200 {
					t.Fatalf("signed download: %d", code)
				}
				if code, _ := rc(t, n, meta.Account{}, "GET", bare); code != 403 {
					t.Fatalf("unsigned download: %d", code)
				}
				if code, _ := rc(t, n, meta.Account{}, "GET", strings.Replace(uri, "Signature=", "Signature=00", 1)); code != 403 {
					t.Fatalf("bad signature: %d", code)
				}
			}
		})
	}
}
