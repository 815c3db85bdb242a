package e2e

// The recording catalog end to end over every store combination:
// {SQLite, PostgreSQL} metadata × {local disk, S3} files.
//
// PostgreSQL is found at $TAPEDECK_TEST_PG_DSN, else at the role
// scripts/pg-test.sh creates, else as the postgres superuser without a
// password; each test gets a fresh database, dropped when it ends. S3 is a
// real versitygw (internal/testutil/versitygw), one bucket per test. When
// either is missing its combinations skip, or fail under CI=true.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/store/blob"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil/versitygw"
)

const defaultE2EPGDSN = "postgres://tapedeck:tapedeck@127.0.0.1:5432/postgres?sslmode=disable"

// pgServer is the PostgreSQL server the tests use, probed once.
var pgServer struct {
	once sync.Once
	dsn  string // an admin DSN that can CREATE DATABASE
	err  error
}

func pgRedact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}

// pgWithDatabase returns dsn naming database db.
func pgWithDatabase(dsn, db string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", err
		}
		u.Path = "/" + db
		return u.String(), nil
	}
	return dsn + " dbname=" + db, nil
}

func pgConnect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = 5 * time.Second
	return pgx.ConnectConfig(ctx, cfg)
}

func pgProbe() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	candidates := []string{defaultE2EPGDSN, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"}
	if env := os.Getenv("TAPEDECK_TEST_PG_DSN"); env != "" {
		candidates = []string{env}
	}
	var errs []string
	for _, dsn := range candidates {
		c, err := pgConnect(ctx, dsn)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", pgRedact(dsn), err))
			continue
		}
		c.Close(ctx)
		return dsn, nil
	}
	return "", errors.New(strings.Join(errs, "; "))
}

// pgFreshDatabase creates an empty database for the test and returns its
// DSN; the database is dropped when the test ends (after the nodes started
// later have closed). PostgreSQL unreachable: skip, or fail when CI=true.
func pgFreshDatabase(t *testing.T) string {
	t.Helper()
	pgServer.once.Do(func() { pgServer.dsn, pgServer.err = pgProbe() })
	if pgServer.err != nil {
		msg := fmt.Sprintf("PostgreSQL unreachable (%v); run scripts/pg-test.sh or set TAPEDECK_TEST_PG_DSN", pgServer.err)
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: " + msg)
		}
		t.Skip("SKIP PostgreSQL test: " + msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgConnect(ctx, pgServer.dsn)
	if err != nil {
		t.Fatalf("PostgreSQL %s: %v", pgRedact(pgServer.dsn), err)
	}
	defer admin.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	name := "tapedeck_e2e_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("CREATE DATABASE %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgConnect(ctx, pgServer.dsn)
		if err != nil {
			t.Errorf("dropping database %s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	dsn, err := pgWithDatabase(pgServer.dsn, name)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// TestCatalogStores runs the catalog conformance end to end for each
// {sqlite, postgres} × {local, s3} combination.
func TestCatalogStores(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		for _, files := range []string{"local", "s3"} {
			t.Run(db+"-"+files, func(t *testing.T) { catalogStoreConformance(t, db, files) })
		}
	}
}

// rcListOf GETs a list with acc's credentials; it must answer 200.
func rcListOf(t *testing.T, n *node, acc meta.Account, path string) rcList {
	t.Helper()
	code, body := rc(t, n, acc, "GET", path)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	var l rcList
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
	return l
}

func sidsOf(l rcList) []string {
	var out []string
	for _, r := range l.Recordings {
		out = append(out, r["sid"])
	}
	return out
}

// httpGet fetches url, with an optional Range, with ARI's credentials when
// auth is set.
func httpGet(t *testing.T, url, rng string, auth bool) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	if auth {
		req.SetBasicAuth("asterisk", "asterisk")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, b
}

// storedFileExists reports whether a recording's file is still there: the
// object key in bucket when gw is set, else the local file.
func storedFileExists(ctx context.Context, gw *versitygw.Server, bucket, key, localPath string) (bool, error) {
	if gw != nil {
		return gw.ObjectExists(ctx, bucket, key)
	}
	_, err := os.Stat(localPath)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func catalogStoreConformance(t *testing.T, db, files string) {
	var mutate []func(*config.Config)
	if db == "postgres" {
		dsn := pgFreshDatabase(t)
		mutate = append(mutate, func(c *config.Config) { c.Catalog.Database = dsn })
	}
	var gw *versitygw.Server
	var bucket string
	if files == "s3" {
		gw = versitygw.Shared(t)
		bucket = gw.NewBucket(t)
		mutate = append(mutate, func(c *config.Config) {
			c.Catalog.S3 = config.S3{Endpoint: gw.Endpoint(), AccessKey: versitygw.AccessKey,
				SecretKey: versitygw.SecretKey, Bucket: bucket, KeepLocal: false}
		})
	}
	n := startNode(t, mutate...)
	events := n.connect("test")
	acc := defaultAccount(t, n)
	st := n.srv.Catalog().Meta
	ctx := context.Background()
	root := "/restcomm/2012-04-24/Accounts/" + acc.Sid + "/Recordings"

	// A real call recorded through ARI.
	const name = "stores/one"
	callSid := recordCall(t, n, events, "350", name, 1200*time.Millisecond)
	localPath := filepath.Join(n.recDir(), "stores", "one.wav")

	// The row, by CallSid.
	l := rcListOf(t, n, acc, root+".json?CallSid="+callSid)
	if l.Total != 1 || len(l.Recordings) != 1 {
		t.Fatalf("CallSid %s: %+v", callSid, l)
	}
	r := l.Recordings[0]
	sid := r["sid"]
	if files == "local" {
		// recording.checksum: on_demand: none until something needs it.
		if r["sha256"] != "" {
			t.Fatalf("a local recording's sha256 before anything asked: %q", r["sha256"])
		}
		askChecksum(t, n, sid)
		r = rcListOf(t, n, acc, root+".json?CallSid="+callSid).Recordings[0]
	}
	if r["call_sid"] != callSid || r["account_sid"] != acc.Sid || !strings.HasPrefix(sid, "RE") || len(sid) != 34 ||
		r["status"] != "completed" || r["format"] != "wav" || len(r["sha256"]) != 64 {
		t.Fatalf("recording %v", r)
	}

	// The media by Sid: its SHA-256 and size are the row's, its length
	// the row's duration.
	code, hdr, media := httpGet(t, r["file_uri"], "", false)
	if code != 200 || hdr.Get("Content-Type") != "audio/wav" {
		t.Fatalf("download %s: %d %s", r["file_uri"], code, hdr.Get("Content-Type"))
	}
	sum := sha256.Sum256(media)
	if r["sha256"] != hex.EncodeToString(sum[:]) || r["size"] != strconv.Itoa(len(media)) {
		t.Fatalf("row sha256 %s size %s; downloaded %d bytes with sha256 %x", r["sha256"], r["size"], len(media), sum)
	}
	dl := filepath.Join(t.TempDir(), "dl.wav")
	must(t, os.WriteFile(dl, media, 0o644))
	_, pcm := readWAV(t, dl)
	fileDur := float64(len(pcm)) / 8000
	dur, _ := strconv.ParseFloat(r["duration"], 64)
	if math.Abs(dur-fileDur) > 0.020 || fileDur < 1.1 {
		t.Fatalf("duration %v, downloaded file %.3f s", r["duration"], fileDur)
	}
	code, _, part := httpGet(t, r["file_uri"], "bytes=40-99", false)
	if code != 206 || !bytes.Equal(part, media[40:100]) {
		t.Fatalf("ranged download: %d, %d bytes", code, len(part))
	}
	checkRangeCap(t, r["file_uri"], false, media, len(media)-1)

	// Where the file lives.
	row, err := st.Recording(ctx, acc.Sid, sid)
	must(t, err)
	key := acc.Sid + "/" + sid + ".wav"
	switch files {
	case "s3":
		if _, err := os.Stat(localPath); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("local file after the upload (keep_local=false): %v", err)
		}
		if r["s3_uri"] != "s3://"+bucket+"/"+key || row.S3URI != r["s3_uri"] || row.FilePath != "blob:"+key {
			t.Fatalf("s3_uri %q, row S3URI %q FilePath %q; want s3://%s/%s", r["s3_uri"], row.S3URI, row.FilePath, bucket, key)
		}
		if ok, err := gw.ObjectExists(ctx, bucket, key); err != nil || !ok {
			t.Fatalf("object %s: exists=%v err=%v", key, ok, err)
		}
		if b, err := os.ReadFile(filepath.Join(gw.DataDir(), bucket, filepath.FromSlash(key))); err != nil || !bytes.Equal(b, media) {
			t.Fatalf("object file in versitygw's data dir: %v (%d bytes, download %d)", err, len(b), len(media))
		}
	case "local":
		if b, err := os.ReadFile(localPath); err != nil || !bytes.Equal(b, media) {
			t.Fatalf("local file: %v (%d bytes, download %d)", err, len(b), len(media))
		}
		if _, ok := r["s3_uri"]; ok || row.S3URI != "" || row.FilePath != "stores/one.wav" {
			t.Fatalf("local recording: s3_uri %q, row S3URI %q FilePath %q", r["s3_uri"], row.S3URI, row.FilePath)
		}
	}

	// A few more rows (no files) for list, filter, sort and paging.
	base := time.Date(2016, 3, 25, 14, 0, 0, 0, time.UTC)
	var extra []string
	for i := 0; i < 4; i++ {
		s := meta.NewRecordingSid()
		extra = append(extra, s)
		must(t, st.PutRecording(ctx, meta.Recording{Sid: s, AccountSid: acc.Sid, CallSid: fmt.Sprintf("CA%032d", i),
			DateCreated: base.Add(time.Duration(i) * time.Hour), DateUpdated: base, StartTime: base,
			Duration: float64(10 + 3*((i+1)%4)), Format: "wav", Source: "ari", Status: "completed",
			Name: fmt.Sprintf("stores/extra-%d", i), ApiVersion: meta.APIVersion}))
	}
	all := rcListOf(t, n, acc, root+".json")
	// The default order is DateCreated ascending, as Restcomm's.
	if want := fmt.Sprint(append(append([]string{}, extra...), sid)); all.Total != 5 || fmt.Sprint(sidsOf(all)) != want {
		t.Fatalf("list: total %d, %v, want %s", all.Total, sidsOf(all), want)
	}
	if l := rcListOf(t, n, acc, root+".json?SortBy=DateCreated:asc"); fmt.Sprint(sidsOf(l)) != fmt.Sprint(sidsOf(all)) {
		t.Fatalf("DateCreated:asc %v, want %v", sidsOf(l), sidsOf(all))
	}
	if l := rcListOf(t, n, acc, root+".json?SortBy=DateCreated:desc"); l.Recordings[0]["sid"] != sid || l.Recordings[4]["sid"] != extra[0] {
		t.Fatalf("DateCreated:desc %v", sidsOf(l))
	}
	for _, dir := range []string{"asc", "desc"} {
		l := rcListOf(t, n, acc, root+".json?SortBy=Duration:"+dir)
		var durs []float64
		for _, r := range l.Recordings {
			d, _ := strconv.ParseFloat(r["duration"], 64)
			durs = append(durs, d)
		}
		sorted := sort.Float64sAreSorted(durs)
		if dir == "desc" {
			sorted = sort.SliceIsSorted(durs, func(i, j int) bool { return durs[i] > durs[j] })
		}
		if len(durs) != 5 || !sorted {
			t.Fatalf("Duration:%s order %v", dir, durs)
		}
	}
	if l := rcListOf(t, n, acc, root+".json?SortBy=CallSid:asc"); l.Recordings[0]["sid"] != extra[0] || l.Recordings[4]["sid"] != sid {
		t.Fatalf("CallSid:asc %v", sidsOf(l))
	}
	if l := rcListOf(t, n, acc, root+".json?CallSid=CA"+fmt.Sprintf("%032d", 2)); l.Total != 1 || l.Recordings[0]["sid"] != extra[2] {
		t.Fatalf("CallSid filter: %+v", l)
	}
	if l := rcListOf(t, n, acc, root+".json?StartTime=2016-03-25T15:00:00&EndTime=2016-03-25T16:00:00"); l.Total != 2 {
		t.Fatalf("time window: total %d %v", l.Total, sidsOf(l))
	}
	// A time window sorted by duration (sorted in the catalog's index, then
	// the page's rows read), and its second page.
	win := root + ".json?StartTime=2016-03-25T14:00:00&EndTime=2016-03-25T16:00:00&SortBy=Duration:desc"
	if l := rcListOf(t, n, acc, win); l.Total != 3 || fmt.Sprint(sidsOf(l)) != fmt.Sprint([]string{extra[2], extra[1], extra[0]}) {
		t.Fatalf("time window by Duration:desc: total %d %v, want %v", l.Total, sidsOf(l), []string{extra[2], extra[1], extra[0]})
	}
	if l := rcListOf(t, n, acc, win+"&PageSize=2&Page=1"); l.Total != 3 || fmt.Sprint(sidsOf(l)) != fmt.Sprint([]string{extra[0]}) {
		t.Fatalf("time window by Duration:desc, second page of 2: total %d %v, want [%s]", l.Total, sidsOf(l), extra[0])
	}
	if l := rcListOf(t, n, acc, root+".json?Limit=3"); l.Total != 3 || len(l.Recordings) != 3 {
		t.Fatalf("Limit=3: %+v", l)
	}
	// Offset paging and keyset paging (next_page_uri) agree with the
	// plain list.
	if l := rcListOf(t, n, acc, root+".json?Page=2&PageSize=2"); l.Total != 5 || len(l.Recordings) != 1 || l.Recordings[0]["sid"] != all.Recordings[4]["sid"] {
		t.Fatalf("Page=2&PageSize=2: %+v", l)
	}
	var walked []string
	next := root + ".json?PageSize=2"
	for pages := 0; next != "null" && next != ""; pages++ {
		if pages > 5 {
			t.Fatalf("paging does not end: %v", walked)
		}
		p := rcListOf(t, n, acc, next)
		walked = append(walked, sidsOf(p)...)
		next = p.NextPageURI
	}
	if fmt.Sprint(walked) != fmt.Sprint(sidsOf(all)) {
		t.Fatalf("next_page_uri walk %v, list %v", walked, sidsOf(all))
	}
	// XML, and the single recording.
	if code, body := rc(t, n, acc, "GET", root); code != 200 || !strings.Contains(string(body), `total="5"`) {
		t.Fatalf("XML list: %d %s", code, body)
	}
	if code, body := rc(t, n, acc, "GET", root+"/"+sid+".json"); code != 200 || !strings.Contains(string(body), `"sha256":"`+r["sha256"]+`"`) {
		t.Fatalf("get: %d %s", code, body)
	}

	// ARI sees the recording (from S3 when the local file is gone).
	arName := "/recordings/stored/" + url.PathEscape(name)
	var sr struct{ Name, Format string }
	must(t, json.Unmarshal(n.mustDo("GET", arName, 200), &sr))
	if sr.Name != name || sr.Format != "wav" {
		t.Fatalf("ARI stored recording %+v", sr)
	}
	code, hdr, arFile := httpGet(t, n.baseURL()+"/ari"+arName+"/file", "", true)
	if code != 200 || !bytes.Equal(arFile, media) || hdr.Get("Content-Type") != "audio/wav" {
		t.Fatalf("ARI file: %d %s, %d bytes (want %d)", code, hdr.Get("Content-Type"), len(arFile), len(media))
	}
	if code, _, b := httpGet(t, n.baseURL()+"/ari"+arName+"/file", "bytes=100-199", true); code != 206 || !bytes.Equal(b, media[100:200]) {
		t.Fatalf("ARI file range: %d, %d bytes", code, len(b))
	}
	checkRangeCap(t, n.baseURL()+"/ari"+arName+"/file", true, media, len(media)-1)
	// It is in ARI's listing, and an ARI copy works from S3 too.
	if list := string(n.mustDo("GET", "/recordings/stored", 200)); !strings.Contains(list, `"name":"`+name+`"`) {
		t.Fatalf("ARI stored list lacks %s: %s", name, list)
	}
	copyName := name + "-copy"
	n.mustDo("POST", arName+"/copy?destinationRecordingName="+url.QueryEscape(copyName), 200)
	if code, _, b := httpGet(t, n.baseURL()+"/ari/recordings/stored/"+url.PathEscape(copyName)+"/file", "", true); code != 200 || !bytes.Equal(b, media) {
		t.Fatalf("ARI copy: %d, %d bytes", code, len(b))
	}
	// The copy is catalogued, its file written into the local store.
	copyPath := filepath.Join(n.recDir(), "stores", "one-copy.wav")
	if crow, err := st.RecordingByName(ctx, copyName); err != nil || crow.FilePath != "stores/one-copy.wav" || crow.Sid == sid {
		t.Fatalf("the copy's row: %+v %v", crow, err)
	}
	if b, err := os.ReadFile(copyPath); err != nil || !bytes.Equal(b, media) {
		t.Fatalf("the copy's file: %v (%d bytes)", err, len(b))
	}
	n.mustDo("DELETE", "/recordings/stored/"+url.PathEscape(copyName), 204)
	if _, err := os.Stat(copyPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the copy's file after ARI DELETE: %v", err)
	}
	if _, err := st.RecordingByName(ctx, copyName); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("the copy's row after ARI DELETE: %v", err)
	}
	ariStoredThroughCatalog(t, n, files, media)

	// recording:NAME plays back to a caller.
	sink := &audioSink{}
	phone := newPhone(t, "udp")
	res := dialAsync(phone, n.target("351"), sipua.CallOptions{Handler: sink})
	id := channelID(events.skipTo("StasisStart", 5*time.Second))
	n.mustDo("POST", "/channels/"+id+"/answer", 204)
	dr := wait(t, res, 10*time.Second, "answer")
	must(t, dr.err)
	n.mustDo("POST", "/channels/"+id+"/play/pb-stores?media="+urlq("recording:"+name), 201)
	f := pbOf(events.skipTo("PlaybackFinished", 15*time.Second))
	if f["state"] != "done" || f["media_uri"] != "recording:"+name {
		t.Fatalf("playback of recording:%s finished %v, want done", name, f)
	}
	if heard := rms(sink.samples()); heard < 1000 {
		t.Fatalf("the caller did not hear the recording (rms %.0f)", heard)
	}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	must(t, dr.call.Hangup(hctx))
	cancel()
	events.skipTo("ChannelDestroyed", 5*time.Second)

	// Tenant isolation: another account sees none of it.
	other, err := st.CreateAccount(ctx, "other")
	must(t, err)
	otherRoot := "/restcomm/2012-04-24/Accounts/" + other.Sid + "/Recordings"
	if code, _ := rc(t, n, other, "GET", otherRoot+"/"+sid+".json"); code != 403 {
		t.Errorf("another account's GET of %s: %d, want 403 (Restcomm's secure())", sid, code)
	}
	if code, _ := rc(t, n, other, "DELETE", otherRoot+"/"+sid); code != 403 {
		t.Errorf("another account's DELETE of %s: %d, want 403", sid, code)
	}
	if code, _ := rc(t, n, other, "GET", root+".json"); code != 403 {
		t.Errorf("another account on the first one's list path: %d, want 403", code)
	}
	if l := rcListOf(t, n, other, otherRoot+".json"); l.Total != 0 {
		t.Errorf("another account's own list: total %d", l.Total)
	}
	if l := rcListOf(t, n, other, otherRoot+".json?CallSid="+callSid); l.Total != 0 {
		t.Errorf("another account filtering by the CallSid: total %d", l.Total)
	}
	if code, _ := rc(t, n, meta.Account{Sid: acc.Sid, AuthToken: other.AuthToken}, "GET", root+".json"); code != 401 {
		t.Errorf("the other account's token on this account: %d, want 401", code)
	}
	if ok, _ := storedFileExists(ctx, gw, bucket, key, localPath); !ok {
		t.Fatalf("the file went away after another account's DELETE")
	}

	// Delete through the Restcomm API removes the row and the file.
	if code, body := rc(t, n, acc, "DELETE", root+"/"+sid); code != 204 {
		t.Fatalf("delete: %d %s", code, body)
	}
	if ok, err := storedFileExists(ctx, gw, bucket, key, localPath); err != nil || ok {
		t.Fatalf("file after delete: exists=%v err=%v", ok, err)
	}
	if files == "s3" {
		if _, err := os.Stat(filepath.Join(gw.DataDir(), bucket, filepath.FromSlash(key))); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("object file in versitygw's data dir after delete: %v", err)
		}
	}
	if code, _ := rc(t, n, acc, "GET", root+"/"+sid+".json"); code != 404 {
		t.Fatalf("deleted recording: %d", code)
	}
	if code, _, _ := httpGet(t, r["file_uri"], "", false); code != 404 {
		t.Fatalf("download after delete: %d", code)
	}
	n.mustDo("GET", arName, 404)
	if l := rcListOf(t, n, acc, root+".json"); l.Total != 4 {
		t.Fatalf("after delete: total %d", l.Total)
	}
}

// ariStoredThroughCatalog: ARI's stored recordings are the catalog's. A
// row whose file is in the blob store (the local one, or S3) is listed,
// served, copied and deleted through that store, the ARI DELETE removing
// the file (or object) and the row; a file on disk that no row names is
// neither listed nor served, copied or deleted.
func ariStoredThroughCatalog(t *testing.T, n *node, files string, media []byte) {
	t.Helper()
	ctx := context.Background()
	cat := n.srv.Catalog()
	acc := defaultAccount(t, n)
	src := filepath.Join(t.TempDir(), "seed.wav")
	must(t, os.WriteFile(src, media, 0o644))
	const name = "stores/seeded"
	sid := meta.NewRecordingSid()
	var store blob.Store
	key, filePath := "stores/seeded.wav", "stores/seeded.wav"
	if files == "s3" {
		store = cat.Blob
		key = acc.Sid + "/" + sid + ".wav"
		filePath = "blob:" + key
	} else {
		l, err := blob.NewLocal(n.recDir())
		must(t, err)
		store = l
	}
	if _, err := store.Put(ctx, key, src, "audio/wav"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	must(t, cat.Meta.PutRecording(ctx, meta.Recording{Sid: sid, AccountSid: acc.Sid, DateCreated: now, DateUpdated: now,
		StartTime: now, Format: "wav", Source: "ari", Status: meta.StatusCompleted, Name: name, FilePath: filePath,
		Channels: 1, Size: int64(len(media)), ApiVersion: meta.APIVersion}))
	ar := "/recordings/stored/" + url.PathEscape(name)
	if list := string(n.mustDo("GET", "/recordings/stored", 200)); !strings.Contains(list, `"name":"`+name+`"`) {
		t.Fatalf("ARI stored list lacks the catalogued %s: %s", name, list)
	}
	var sr struct{ Name, Format string }
	must(t, json.Unmarshal(n.mustDo("GET", ar, 200), &sr))
	if sr.Name != name || sr.Format != "wav" {
		t.Fatalf("ARI stored recording %+v", sr)
	}
	if code, _, b := httpGet(t, n.baseURL()+"/ari"+ar+"/file", "", true); code != 200 || !bytes.Equal(b, media) {
		t.Fatalf("ARI file of the catalogued %s: %d, %d bytes", name, code, len(b))
	}
	n.mustDo("POST", ar+"/copy?destinationRecordingName="+url.QueryEscape(name+"-2"), 200)
	if code, _, b := httpGet(t, n.baseURL()+"/ari/recordings/stored/"+url.PathEscape(name+"-2")+"/file", "", true); code != 200 || !bytes.Equal(b, media) {
		t.Fatalf("ARI copy of the catalogued %s: %d, %d bytes", name, code, len(b))
	}
	// The copy's name is taken now: 409, as Asterisk.
	n.mustDo("POST", ar+"/copy?destinationRecordingName="+url.QueryEscape(name+"-2"), 409)
	n.mustDo("DELETE", "/recordings/stored/"+url.PathEscape(name+"-2"), 204)
	n.mustDo("DELETE", ar, 204)
	if _, err := store.Stat(ctx, key); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("%s's file after ARI DELETE: %v", name, err)
	}
	if _, err := cat.Meta.RecordingByName(ctx, name); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("%s's row after ARI DELETE: %v", name, err)
	}
	n.mustDo("GET", ar, 404)
	n.mustDo("DELETE", ar, 404)

	// A file no row names: the catalog is the only index.
	stray := filepath.Join(n.recDir(), "stores", "stray.wav")
	must(t, os.WriteFile(stray, media, 0o644))
	sar := "/recordings/stored/" + url.PathEscape("stores/stray")
	if list := string(n.mustDo("GET", "/recordings/stored", 200)); strings.Contains(list, "stray") {
		t.Fatalf("ARI lists a file the catalog does not know: %s", list)
	}
	n.mustDo("GET", sar, 404)
	if code, _, _ := httpGet(t, n.baseURL()+"/ari"+sar+"/file", "", true); code != 404 {
		t.Fatalf("ARI file of an uncatalogued file: %d, want 404", code)
	}
	n.mustDo("POST", sar+"/copy?destinationRecordingName=stores%2Fstray-2", 404)
	n.mustDo("DELETE", sar, 404)
	if b, err := os.ReadFile(stray); err != nil || !bytes.Equal(b, media) {
		t.Fatalf("the uncatalogued file after the refused requests: %v", err)
	}
	must(t, os.Remove(stray))
}
