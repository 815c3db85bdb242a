package twilio

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

type fixture struct {
	srv   *Server
	cat   *catalog.Service
	acc   meta.Account
	other meta.Account
	sids  []string // oldest first
	base  time.Time
}

// wavFile is an 8 kHz mono 16-bit WAV of n samples of a 440 Hz-ish ramp.
func wavFile(n int) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(36+2*n))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(8000), uint32(16000), uint16(2), uint16(16)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(2*n))
	for i := range n {
		binary.Write(&b, binary.LittleEndian, int16((i%18)*1000-9000))
	}
	return b.Bytes()
}

// newFixture: the API over a real SQLite catalog with n completed WAV
// recordings of the default account, one a minute apart from 2026-03-01
// 12:00, and one of another account.
func newFixture(t testing.TB, n int) *fixture {
	t.Helper()
	dir := t.TempDir()
	ms, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cat := &catalog.Service{Meta: ms, Root: filepath.Join(dir, "rec"), Log: log}
	ctx := context.Background()
	acc, err := cat.DefaultAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ms.CreateAccount(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{srv: New(Options{Catalog: cat, Logger: log, CacheDir: filepath.Join(dir, "cache")}), cat: cat, acc: acc, other: other,
		base: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	if err := os.MkdirAll(cat.Root, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		fx.sids = append(fx.sids, fx.put(t, acc.Sid, i, meta.StatusCompleted))
	}
	fx.put(t, other.Sid, 99, meta.StatusCompleted)
	return fx
}

func (fx *fixture) put(t testing.TB, accSid string, i int, st meta.Status) string {
	t.Helper()
	sid := meta.NewRecordingSid()
	name := fmt.Sprintf("r%d-%s", i, sid[2:8])
	if err := os.WriteFile(filepath.Join(fx.cat.Root, name+".wav"), wavFile(8000*(i+1)), 0o644); err != nil {
		t.Fatal(err)
	}
	at := fx.base.Add(time.Duration(i) * time.Minute)
	if err := fx.cat.Meta.PutRecording(context.Background(), meta.Recording{Sid: sid, AccountSid: accSid, CallSid: fmt.Sprintf("CA%032d", i%2),
		Name: name, FilePath: name + ".wav", Format: "wav", Status: st, Duration: float64(i + 1), Channels: 1, Source: "ari",
		DateCreated: at, DateUpdated: at, StartTime: at}); err != nil {
		t.Fatal(err)
	}
	return sid
}

func (fx *fixture) do(t *testing.T, method, path string, auth bool) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if auth {
		req.SetBasicAuth(fx.acc.Sid, fx.acc.AuthToken)
	}
	w := httptest.NewRecorder()
	fx.srv.ServeHTTP(w, req)
	return w.Code, w.Body.Bytes()
}

func (fx *fixture) list(t *testing.T, query string) listJSON {
	t.Helper()
	code, body := fx.do(t, "GET", "/2010-04-01/Accounts/"+fx.acc.Sid+"/Recordings.json?"+query, true)
	if code != 200 {
		t.Fatalf("%s: %d %s", query, code, body)
	}
	var l listJSON
	if err := json.Unmarshal(body, &l); err != nil {
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

// TestListPaging: newest first, PageToken paging forwards (next_page_uri)
// and back (previous_page_uri), Twilio's envelope.
func TestListPaging(t *testing.T) {
	fx := newFixture(t, 5)
	l := fx.list(t, "PageSize=2")
	want := []string{fx.sids[4], fx.sids[3]}
	if fmt.Sprint(sidsOf(l)) != fmt.Sprint(want) || l.Page != 0 || l.PageSize != 2 || l.Start != 0 || l.End != 1 ||
		l.PreviousPageURI != nil || l.NextPageURI == nil || !strings.HasPrefix(l.FirstPageURI, "/2010-04-01/Accounts/"+fx.acc.Sid+"/Recordings.json?") {
		t.Fatalf("first page: %+v", l)
	}
	var all []string
	var pages []listJSON
	next := "PageSize=2"
	for i := 0; next != ""; i++ {
		if i > 4 {
			t.Fatal("next_page_uri never ends")
		}
		l := fx.list(t, next)
		pages = append(pages, l)
		all = append(all, sidsOf(l)...)
		next = ""
		if l.NextPageURI != nil {
			u, _ := url.Parse(*l.NextPageURI)
			next = u.RawQuery
		}
	}
	if fmt.Sprint(all) != fmt.Sprint([]string{fx.sids[4], fx.sids[3], fx.sids[2], fx.sids[1], fx.sids[0]}) || len(pages) != 3 {
		t.Errorf("following next_page_uri: %v in %d pages", all, len(pages))
	}
	last := pages[2]
	if last.Page != 2 || last.Start != 4 || last.End != 4 || last.PreviousPageURI == nil {
		t.Fatalf("last page: %+v", last)
	}
	u, _ := url.Parse(*last.PreviousPageURI)
	prev := fx.list(t, u.RawQuery)
	if fmt.Sprint(sidsOf(prev)) != fmt.Sprint([]string{fx.sids[2], fx.sids[1]}) || prev.Page != 1 {
		t.Errorf("previous page: %v page %d", sidsOf(prev), prev.Page)
	}
}

// TestListFilters: DateCreated (the day), DateCreated< and > (date-only:
// whole days; date-times: exact), CallSid, ConferenceSid (no conference
// recordings), and soft-deleted ones with IncludeSoftDeleted.
func TestListFilters(t *testing.T) {
	fx := newFixture(t, 4)
	count := func(q string) int { return len(fx.list(t, q).Recordings) }
	cases := []struct {
		q    string
		want int
	}{
		{"DateCreated=2026-03-01", 4},
		{"DateCreated=2026-03-02", 0},
		{"DateCreated=2026-03-01T23:59:00Z", 4},
		{url.Values{"DateCreated<": {"2026-02-28"}}.Encode(), 0},
		{url.Values{"DateCreated<": {"2026-03-01"}}.Encode(), 4},
		{url.Values{"DateCreated<": {"2026-03-01T12:01:00Z"}}.Encode(), 2},
		{url.Values{"DateCreated>": {"2026-03-01T12:02:00Z"}}.Encode(), 2},
		{url.Values{"DateCreated>": {"2026-03-02"}}.Encode(), 0},
		{url.Values{"DateCreated>": {"2026-03-01T12:01:00Z"}, "DateCreated<": {"2026-03-01T12:02:00Z"}}.Encode(), 2},
		{"CallSid=CA" + fmt.Sprintf("%032d", 1), 2},
		{"ConferenceSid=CF" + strings.Repeat("a", 32), 0},
	}
	for _, c := range cases {
		if got := count(c.q); got != c.want {
			t.Errorf("%s: %d recordings, want %d", c.q, got, c.want)
		}
	}
	code, _ := fx.do(t, "DELETE", "/2010-04-01/Accounts/"+fx.acc.Sid+"/Recordings/"+fx.sids[1]+".json", true)
	if code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if n := count(""); n != 3 {
		t.Errorf("after a delete: %d", n)
	}
	l := fx.list(t, "IncludeSoftDeleted=true")
	if len(l.Recordings) != 4 || l.Recordings[2].Sid != fx.sids[1] || l.Recordings[2].Status != "deleted" {
		t.Errorf("IncludeSoftDeleted: %+v", l.Recordings)
	}
	code, body := fx.do(t, "GET", "/2010-04-01/Accounts/"+fx.acc.Sid+"/Recordings/"+fx.sids[1]+".json?IncludeSoftDeleted=true", true)
	if code != 200 || !strings.Contains(string(body), `"status":"deleted"`) {
		t.Errorf("fetch with IncludeSoftDeleted: %d %s", code, body)
	}
}

// TestRecordingFields: Twilio's fields, and the lifecycle statuses.
func TestRecordingFields(t *testing.T) {
	fx := newFixture(t, 1)
	live := fx.put(t, fx.acc.Sid, 7, meta.StatusInProgress)
	absent := fx.put(t, fx.acc.Sid, 8, meta.StatusAbsent)
	get := func(sid string) map[string]any {
		code, body := fx.do(t, "GET", "/2010-04-01/Accounts/"+fx.acc.Sid+"/Recordings/"+sid+".json", true)
		var m map[string]any
		if code != 200 || json.Unmarshal(body, &m) != nil {
			t.Fatalf("fetch %s: %d %s", sid, code, body)
		}
		return m
	}
	m := get(fx.sids[0])
	for k, v := range map[string]any{"status": "completed", "duration": "1", "channels": 1.0, "source": "StartCallRecordingAPI",
		"api_version": "2010-04-01", "date_created": "Sun, 01 Mar 2026 12:00:00 +0000", "start_time": "Sun, 01 Mar 2026 12:00:00 +0000",
		"error_code": nil, "conference_sid": nil, "price_unit": "USD",
		"uri":       "/2010-04-01/Accounts/" + fx.acc.Sid + "/Recordings/" + fx.sids[0] + ".json",
		"media_url": "http://example.com/2010-04-01/Accounts/" + fx.acc.Sid + "/Recordings/" + fx.sids[0]} {
		if fmt.Sprint(m[k]) != fmt.Sprint(v) {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if m := get(live); m["status"] != "in-progress" || m["duration"] != "-1" {
		t.Errorf("in progress: %v", m)
	}
	if m := get(absent); m["status"] != "absent" || m["error_code"] != float64(CodeRecordingAbsent) {
		t.Errorf("absent: %v", m)
	}
}

// TestMedia: .wav and no extension serve the file; .mp3 is transcoded
// (a real MP3 stream), then served from the cache; RequestedChannels.
func TestMedia(t *testing.T) {
	fx := newFixture(t, 2)
	p := "/2010-04-01/Accounts/" + fx.acc.Sid + "/Recordings/" + fx.sids[1]
	want, err := os.ReadFile(filepath.Join(fx.cat.Root, "r1-"+fx.sids[1][2:8]+".wav"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{p, p + ".wav", p + ".wav?RequestedChannels=1"} {
		if code, body := fx.do(t, "GET", path, false); code != 200 || !bytes.Equal(body, want) {
			t.Errorf("%s: %d, %d bytes", path, code, len(body))
		}
	}
	if code, body := fx.do(t, "GET", p+".wav?RequestedChannels=2", false); code != 400 || !strings.Contains(string(body), `"code":20001`) {
		t.Errorf("RequestedChannels=2 of a mono recording: %d %s", code, body)
	}
	code, mp3 := fx.do(t, "GET", p+".mp3", false)
	if code != 200 || len(mp3) < 1000 {
		t.Fatalf(".mp3: %d, %d bytes", code, len(mp3))
	}
	// An MPEG audio frame sync at the start.
	if mp3[0] != 0xff || mp3[1]&0xe0 != 0xe0 {
		t.Errorf(".mp3 starts % x, not an MPEG frame", mp3[:4])
	}
	cached, _ := filepath.Glob(filepath.Join(fx.srv.o.CacheDir, fx.sids[1]+"-*.mp3"))
	if len(cached) != 1 {
		t.Fatalf("cache: %v", cached)
	}
	if _, err := exec.LookPath("lame"); err == nil {
		// Decoded by another MP3 decoder: about the 2 s of the WAV.
		dir := t.TempDir()
		f := filepath.Join(dir, "x.mp3")
		if err := os.WriteFile(f, mp3, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("lame", "--quiet", "--decode", f, filepath.Join(dir, "x.wav")).CombinedOutput(); err != nil {
			t.Fatalf("lame --decode: %v %s", err, out)
		}
		fi, err := os.Stat(filepath.Join(dir, "x.wav"))
		if secs := float64(fi.Size()-44) / 16000; err != nil || secs < 1.95 || secs > 2.2 {
			t.Errorf("decoded MP3: %.3f s (%v), want about 2 s", secs, err)
		}
	}
	// From the cache: the same bytes.
	if err := os.WriteFile(cached[0], append([]byte(nil), mp3...), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, again := fx.do(t, "GET", p+".mp3", false); code != 200 || !bytes.Equal(again, mp3) {
		t.Errorf("second .mp3: %d, %d bytes", code, len(again))
	}
}

// TestStatusCodes: every status the API answers, with Twilio's error JSON.
func TestStatusCodes(t *testing.T) {
	fx := newFixture(t, 2)
	live := fx.put(t, fx.acc.Sid, 5, meta.StatusInProgress)
	res, err := fx.cat.Meta.ListRecordings(context.Background(), meta.Query{AccountSid: fx.other.Sid, Limit: 1})
	if err != nil || len(res.Items) != 1 {
		t.Fatal(res, err)
	}
	otherSid := res.Items[0].Sid
	acc := "/2010-04-01/Accounts/" + fx.acc.Sid
	unknown := "RE" + strings.Repeat("e", 32)
	cases := []struct {
		method, path string
		auth         bool
		want, code   int
	}{
		{"GET", acc + "/Recordings.json", true, 200, 0},
		{"GET", acc + "/Recordings/" + fx.sids[0] + ".json", true, 200, 0},
		{"GET", acc + "/Calls/CA" + fmt.Sprintf("%032d", 0) + "/Recordings.json", true, 200, 0},
		{"GET", acc + "/Calls/CA" + fmt.Sprintf("%032d", 0) + "/Recordings/" + fx.sids[0] + ".json", true, 200, 0},
		{"GET", acc + "/Calls/CA" + fmt.Sprintf("%032d", 1) + "/Recordings/" + fx.sids[0] + ".json", true, 404, 20404},
		{"GET", acc + "/Recordings.json", false, 401, 20003},
		{"GET", acc + "/Recordings/" + otherSid + ".json", true, 404, 20404},
		// Another account's Sid is not found, whatever the route (Twilio).
		{"DELETE", acc + "/Recordings/" + otherSid + ".json", true, 404, 20404},
		{"GET", acc + "/Recordings/" + otherSid + ".wav", false, 404, 20404},
		{"GET", acc + "/Recordings/" + otherSid + ".mp3", false, 404, 20404},
		{"GET", acc + "/Calls/CA" + fmt.Sprintf("%032d", 0) + "/Recordings/" + otherSid + ".json", true, 404, 20404},
		{"GET", "/2010-04-01/Accounts/" + fx.other.Sid + "/Recordings/" + otherSid + ".json", true, 404, 20404},
		{"DELETE", "/2010-04-01/Accounts/" + fx.other.Sid + "/Recordings/" + otherSid + ".json", true, 404, 20404},
		{"GET", "/2010-04-01/Accounts/AC" + strings.Repeat("f", 32) + "/Recordings.json", true, 404, 20404},
		{"GET", "/2010-04-01/Accounts/" + fx.other.Sid + "/Recordings.json", true, 404, 20404},
		{"GET", acc + "/Recordings/" + unknown + ".json", true, 404, 20404},
		{"DELETE", acc + "/Recordings/" + unknown + ".json", true, 404, 20404},
		{"GET", acc + "/Recordings/" + unknown + ".wav", false, 404, 20404},
		{"GET", acc + "/Recordings/" + live + ".wav", false, 404, 20404},
		{"GET", acc + "/Recordings/" + fx.sids[0] + ".flac", false, 404, 20404},
		{"GET", acc + "/Things.json", true, 404, 20404},
		{"POST", acc + "/Recordings.json", true, 405, 20004},
		{"PUT", acc + "/Recordings/" + fx.sids[0] + ".wav", false, 405, 20004},
		{"GET", acc + "/Recordings.json?Colour=red", true, 400, 20001},
		{"GET", acc + "/Recordings.json?DateCreated=yesterday", true, 400, 20001},
		{"GET", acc + "/Recordings.json?" + url.Values{"DateCreated<": {"2026-02-30"}}.Encode(), true, 400, 20001},
		{"GET", acc + "/Recordings.json?IncludeSoftDeleted=maybe", true, 400, 20001},
		{"GET", acc + "/Recordings.json?PageSize=1001", true, 400, 20001},
		{"GET", acc + "/Recordings.json?PageSize=0", true, 400, 20001},
		{"GET", acc + "/Recordings.json?PageToken=nonsense", true, 400, 20001},
		{"GET", acc + "/Recordings.json?PageToken=PA" + unknown, true, 400, 20001},
		{"GET", acc + "/Recordings.json?ConferenceSid=conf", true, 400, 20001},
		{"GET", acc + "/Recordings/" + fx.sids[0] + ".json?Foo=1", true, 400, 20001},
		{"GET", acc + "/Recordings/" + fx.sids[0] + ".wav?RequestedChannels=3", false, 400, 20001},
		{"DELETE", acc + "/Recordings/" + fx.sids[0] + ".json", true, 204, 0},
		{"GET", acc + "/Recordings/" + fx.sids[0] + ".json", true, 404, 20404},
		{"GET", acc + "/Recordings/" + fx.sids[0] + ".wav", false, 404, 20404},
		{"DELETE", acc + "/Recordings/" + fx.sids[0] + ".json", true, 404, 20404},
	}
	for _, c := range cases {
		code, body := fx.do(t, c.method, c.path, c.auth)
		if code != c.want {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.path, code, body, c.want)
			continue
		}
		if c.code != 0 {
			var e struct {
				Code     int    `json:"code"`
				Message  string `json:"message"`
				MoreInfo string `json:"more_info"`
				Status   int    `json:"status"`
			}
			if json.Unmarshal(body, &e) != nil || e.Code != c.code || e.Status != c.want || e.Message == "" ||
				e.MoreInfo != fmt.Sprintf("https://www.twilio.com/docs/errors/%d", c.code) {
				t.Errorf("%s %s: error %s, want code %d", c.method, c.path, body, c.code)
			}
		}
	}
	trail, err := fx.cat.Meta.AuditTrail(context.Background(), fx.acc.Sid, fx.sids[0])
	if err != nil || len(trail) != 1 || trail[0].API != "twilio" {
		t.Errorf("audit: %+v %v", trail, err)
	}
}

// stereoWAV is an 8 kHz 16-bit stereo WAV: left l, right r, n frames.
func stereoWAV(n int, l, r int16) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(36+4*n))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(2), uint32(8000), uint32(32000), uint16(4), uint16(16)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(4*n))
	for range n {
		binary.Write(&b, binary.LittleEndian, l)
		binary.Write(&b, binary.LittleEndian, r)
	}
	return b.Bytes()
}

// TestDualChannelMedia: a dual-channel recording downloads mixed to mono
// by default, and with both channels with RequestedChannels=2 (Twilio's).
func TestDualChannelMedia(t *testing.T) {
	fx := newFixture(t, 0)
	sid := meta.NewRecordingSid()
	stereo := stereoWAV(8000, 1000, 3000)
	if err := os.WriteFile(filepath.Join(fx.cat.Root, "dual.wav"), stereo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fx.cat.Meta.PutRecording(context.Background(), meta.Recording{Sid: sid, AccountSid: fx.acc.Sid, Name: "dual",
		FilePath: "dual.wav", Format: "wav", Status: meta.StatusCompleted, Duration: 1, Channels: 2}); err != nil {
		t.Fatal(err)
	}
	p := "/2010-04-01/Accounts/" + fx.acc.Sid + "/Recordings/" + sid
	if code, body := fx.do(t, "GET", p+".wav?RequestedChannels=2", false); code != 200 || !bytes.Equal(body, stereo) {
		t.Errorf("RequestedChannels=2: %d, %d bytes, want the %d of the file", code, len(body), len(stereo))
	}
	for _, path := range []string{p + ".wav", p, p + ".wav?RequestedChannels=1"} {
		code, mono := fx.do(t, "GET", path, false)
		if code != 200 || len(mono) < 44+2*8000 || binary.LittleEndian.Uint16(mono[22:]) != 1 {
			t.Fatalf("%s: %d, %d bytes", path, code, len(mono))
		}
		pcm := mono[len(mono)-2*8000:]
		for i := 0; i < len(pcm); i += 2 {
			if v := int16(binary.LittleEndian.Uint16(pcm[i:])); v != 2000 {
				t.Fatalf("%s: sample %d is %d, want the mix 2000", path, i/2, v)
			}
		}
	}
	if code, mp3 := fx.do(t, "GET", p+".mp3", false); code != 200 || len(mp3) < 1000 || mp3[0] != 0xff {
		t.Errorf("the MP3 of a dual-channel recording: %d, %d bytes", code, len(mp3))
	}
}

// TestMP3Streams: the MP3 of a long recording is streamed while it is
// being made: its first bytes come before the transcode is done (no
// Content-Length yet, no cache file yet), and all of it is one MP3 stream
// equal to what the cache then serves.
func TestMP3Streams(t *testing.T) {
	fx := newFixture(t, 0)
	sid := meta.NewRecordingSid()
	const minutes = 30
	if err := os.WriteFile(filepath.Join(fx.cat.Root, "long.wav"), wavFile(minutes*60*8000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fx.cat.Meta.PutRecording(context.Background(), meta.Recording{Sid: sid, AccountSid: fx.acc.Sid, Name: "long",
		FilePath: "long.wav", Format: "wav", Status: meta.StatusCompleted, Duration: minutes * 60, Channels: 1}); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(fx.srv)
	defer hs.Close()
	start := time.Now()
	res, err := hs.Client().Get(hs.URL + "/2010-04-01/Accounts/" + fx.acc.Sid + "/Recordings/" + sid + ".mp3")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	first := make([]byte, 4)
	if _, err := io.ReadFull(res.Body, first); err != nil {
		t.Fatal(err)
	}
	ttfb := time.Since(start)
	cached, _ := filepath.Glob(filepath.Join(fx.srv.o.CacheDir, sid+"-*.mp3"))
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "audio/mpeg" || res.ContentLength != -1 || len(cached) != 0 {
		t.Errorf("not streamed: %d %q length %d, cache %v", res.StatusCode, res.Header.Get("Content-Type"), res.ContentLength, cached)
	}
	t.Logf("first byte of the MP3 of a %d-minute recording after %v", minutes, ttfb)
	rest, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	all := append(first, rest...)
	if all[0] != 0xff || all[1]&0xe0 != 0xe0 || len(all) < minutes*60*32000/8*9/10 {
		t.Errorf("MP3: % x..., %d bytes, want about %d", all[:4], len(all), minutes*60*32000/8)
	}
	code, again := fx.do(t, "GET", "/2010-04-01/Accounts/"+fx.acc.Sid+"/Recordings/"+sid+".mp3", false)
	if code != 200 || !bytes.Equal(again, all) {
		t.Errorf("from the cache: %d, %d bytes, want the streamed %d", code, len(again), len(all))
	}
}

// TestMediaCacheKeyFollowsTheFile: a local recording has no checksum
// until something needs it (recording.checksum: on_demand); the MP3
// cache's key is the file's SHA-256, computed at the first request and
// stored, so a recording made again under the same name (same Sid, same
// size, other audio) gets a new MP3, not the cached one.
func TestMediaCacheKeyFollowsTheFile(t *testing.T) {
	fx := newFixture(t, 0)
	ctx := context.Background()
	path := filepath.Join(fx.cat.Root, "again.wav")
	record := func(audio []byte) string {
		t.Helper()
		if err := os.WriteFile(path, audio, 0o644); err != nil {
			t.Fatal(err)
		}
		in := catalog.Info{Name: "again", Path: path, Format: "wav", ContentType: "audio/wav", Started: time.Now(), Channels: 1}
		sid, err := fx.cat.Started(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		in.Status, in.Duration = "completed", 2*time.Second
		if err := fx.cat.Finished(ctx, in); err != nil {
			t.Fatal(err)
		}
		return sid
	}
	first := wavFile(16000)
	sid := record(first)
	if row, _ := fx.cat.Meta.RecordingBySid(ctx, sid); row.SHA256 != "" {
		t.Fatalf("checksum before anything needed it: %q", row.SHA256)
	}
	p := "/2010-04-01/Accounts/" + fx.acc.Sid + "/Recordings/" + sid + ".mp3"
	code, mp3a := fx.do(t, "GET", p, false)
	if code != 200 || len(mp3a) < 1000 {
		t.Fatalf(".mp3: %d, %d bytes", code, len(mp3a))
	}
	sumA := sha256.Sum256(first)
	if _, err := os.Stat(filepath.Join(fx.srv.o.CacheDir, sid+"-"+hex.EncodeToString(sumA[:])+".mp3")); err != nil {
		t.Fatalf("cache file named by the checksum: %v", err)
	}
	if row, _ := fx.cat.Meta.RecordingBySid(ctx, sid); row.SHA256 != hex.EncodeToString(sumA[:]) {
		t.Fatalf("stored checksum %q, want the file's", row.SHA256)
	}

	second := wavFile(16000)
	for i := 44; i < len(second); i += 2 {
		second[i], second[i+1] = 0, 0 // silence: same size, other audio
	}
	if again := record(second); again != sid {
		t.Fatalf("recorded again under a new Sid %s", again)
	}
	code, mp3b := fx.do(t, "GET", p, false)
	if code != 200 || len(mp3b) < 1000 {
		t.Fatalf(".mp3 after recording again: %d, %d bytes", code, len(mp3b))
	}
	if bytes.Equal(mp3a, mp3b) {
		t.Fatal("the MP3 of the first recording was served for the second")
	}
	sumB := sha256.Sum256(second)
	if _, err := os.Stat(filepath.Join(fx.srv.o.CacheDir, sid+"-"+hex.EncodeToString(sumB[:])+".mp3")); err != nil {
		t.Fatalf("cache file of the new recording: %v", err)
	}
}

// toneWAV is a 16-bit WAV at rate Hz of secs seconds, one channel per
// frequency (a sine each).
func toneWAV(rate int, secs float64, freqs ...float64) []byte {
	n := int(float64(rate) * secs)
	ch := len(freqs)
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(36+2*ch*n))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(ch), uint32(rate), uint32(2 * ch * rate), uint16(2 * ch), uint16(16)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(2*ch*n))
	for i := range n {
		for _, f := range freqs {
			binary.Write(&b, binary.LittleEndian, int16(8000*math.Sin(2*math.Pi*f*float64(i)/float64(rate))))
		}
	}
	return b.Bytes()
}

// mp3Header is the sample rate and channel count of an MPEG layer III
// stream's first frame.
func mp3Header(t *testing.T, b []byte) (rate, chans int) {
	t.Helper()
	if len(b) < 4 || b[0] != 0xff || b[1]&0xe0 != 0xe0 || (b[1]>>1)&3 != 1 {
		t.Fatalf("not an MP3 layer III frame: % x", b[:min(4, len(b))])
	}
	rates := map[byte][3]int{0: {11025, 12000, 8000}, 2: {22050, 24000, 16000}, 3: {44100, 48000, 32000}}
	rate = rates[(b[1]>>3)&3][(b[2]>>2)&3]
	chans = 2
	if b[3]>>6 == 3 {
		chans = 1
	}
	return rate, chans
}

// decodeMP3 decodes an MP3 with lame into 16-bit PCM: rate, channels,
// interleaved samples.
func decodeMP3(t *testing.T, mp3 []byte) (int, int, []int16) {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "x.mp3"), filepath.Join(dir, "x.wav")
	if err := os.WriteFile(in, mp3, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("lame", "--quiet", "--decode", in, out).CombinedOutput(); err != nil {
		t.Fatalf("lame --decode: %v %s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pcm, chans, rate, err := wavPCM(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(pcm)
	s := make([]int16, len(raw)/2)
	for i := range s {
		s[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
	}
	return rate, chans, s
}

// power is the power of x at f Hz (a Goertzel filter) at rate.
func power(x []int16, f float64, rate int) float64 {
	k := 2 * math.Cos(2*math.Pi*f/float64(rate))
	var s1, s2 float64
	for _, v := range x {
		s0 := float64(v) + k*s1 - s2
		s2, s1 = s1, s0
	}
	return (s1*s1 + s2*s2 - k*s1*s2) / float64(len(x)+1)
}

// TestMP3OtherRatesAndStereo: .mp3 is made for WAV recordings of other
// sample rates than 8 kHz — a wav16 recording made by the recorder (16
// kHz), a 44.1 kHz and a 22.05 kHz WAV — at their own rate, and for a
// dual-channel one with RequestedChannels=2 as a stereo MP3 holding each
// channel's tone on its side; each decodes (lame) to the recording's
// length, and is cached.
func TestMP3OtherRatesAndStereo(t *testing.T) {
	if _, err := exec.LookPath("lame"); err != nil {
		testutil.SkipOrFail(t, "the lame program is not installed (scripts/test-deps.sh)")
	}
	fx := newFixture(t, 0)
	// A wav16 recording made by the recorder: 2 s of 440 Hz at 8 kHz in,
	// 16 kHz in the file.
	f16, err := recorder.Lookup("wav16")
	if err != nil {
		t.Fatal(err)
	}
	w, err := recorder.Create(filepath.Join(fx.cat.Root, "w16.wav16"), f16, recorder.Fail)
	if err != nil {
		t.Fatal(err)
	}
	tone := make([]int16, 16000)
	for i := range tone {
		tone[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/8000))
	}
	if err := w.Write(tone); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"w44.wav": toneWAV(44100, 2, 440), "w22.wav": toneWAV(22050, 2, 440), "dual.wav": toneWAV(8000, 2, 440, 1000)}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(fx.cat.Root, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		file, format, query string
		channels            int
		rate, outChans      int
	}{
		{"w16.wav16", "wav16", "", 1, 16000, 1},
		{"w44.wav", "wav", "", 1, 44100, 1},
		{"w22.wav", "wav", "", 1, 22050, 1},
		{"dual.wav", "wav", "?RequestedChannels=2", 2, 8000, 2},
		{"dual.wav", "wav", "", 2, 8000, 1},
	} {
		sid := meta.NewRecordingSid()
		if err := fx.cat.Meta.PutRecording(context.Background(), meta.Recording{Sid: sid, AccountSid: fx.acc.Sid, Name: strings.TrimSuffix(c.file, filepath.Ext(c.file)) + sid[2:8],
			FilePath: c.file, Format: c.format, Status: meta.StatusCompleted, Duration: 2, Channels: c.channels}); err != nil {
			t.Fatal(err)
		}
		p := "/2010-04-01/Accounts/" + fx.acc.Sid + "/Recordings/" + sid + ".mp3" + c.query
		code, mp3 := fx.do(t, "GET", p, false)
		if code != 200 || len(mp3) < 1000 {
			t.Fatalf("%s%s: %d %s", c.file, c.query, code, mp3[:min(200, len(mp3))])
		}
		if rate, ch := mp3Header(t, mp3); rate != c.rate || ch != c.outChans {
			t.Errorf("%s%s: MP3 frames of %d Hz, %d channel(s); want %d, %d", c.file, c.query, rate, ch, c.rate, c.outChans)
		}
		rate, ch, pcm := decodeMP3(t, mp3)
		if secs := float64(len(pcm)/ch) / float64(rate); rate != c.rate || ch != c.outChans || secs < 1.95 || secs > 2.2 {
			t.Errorf("%s%s: decodes to %.3f s at %d Hz, %d channel(s)", c.file, c.query, secs, rate, ch)
		}
		if ch == 2 {
			var l, r []int16
			for i := 0; i+1 < len(pcm); i += 2 {
				l, r = append(l, pcm[i]), append(r, pcm[i+1])
			}
			if power(l, 440, rate) < 20*power(l, 1000, rate) || power(r, 1000, rate) < 20*power(r, 440, rate) {
				t.Errorf("%s: stereo MP3 channels do not hold their own tones", c.file)
			}
		}
		if code, again := fx.do(t, "GET", p, false); code != 200 || !bytes.Equal(again, mp3) {
			t.Errorf("%s%s: second request %d, %d bytes, want the cached MP3", c.file, c.query, code, len(again))
		}
	}
}
