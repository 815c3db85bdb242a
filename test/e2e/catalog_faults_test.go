package e2e

// Faults found by attacking a running server (issue 12), catalog and
// recording-lifecycle parts.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// TestRestcommListBadPaging: an AfterSid that names no recording of the
// account, and Page values whose offset (Page*PageSize) does not fit, are
// the client's mistakes: 400 with a message saying which, never 500.
func TestRestcommListBadPaging(t *testing.T) {
	n := startNode(t)
	acc := defaultAccount(t, n)
	list := "/restcomm/2012-04-24/Accounts/" + acc.Sid + "/Recordings"
	for _, tc := range []struct{ query, want string }{
		{"AfterSid=RE00000000000000000000000000000000", "AfterSid"},
		{"AfterSid=nonsense", "AfterSid"},
		{"Page=9999999999999999999", "Page"},
		{"Page=9223372036854775807&PageSize=2", "Page"},
		{"Page=4611686018427387904&PageSize=1000", "Page"},
		{"Page=2147483647&PageSize=1000", "Page"},
		{"PageSize=9223372036854775807", "PageSize"},
		{"Limit=99999999999999999999", "Limit"},
	} {
		for _, ext := range []string{".json", ""} {
			code, body := rc(t, n, acc, "GET", list+ext+"?"+tc.query)
			if code != 400 || !strings.Contains(string(body), tc.want) {
				t.Errorf("%s%s?%s = %d %s, want 400 naming %s", list, ext, tc.query, code, body, tc.want)
			}
		}
	}
	// A page beyond the last is a 400 (Restcomm: Page > total/PageSize);
	// the last page of an empty list, 0, is an empty page.
	if code, body := rc(t, n, acc, "GET", list+".json?Page=2147483647&PageSize=1"); code != 400 || !strings.Contains(string(body), "beyond the last page") {
		t.Errorf("Page=2147483647&PageSize=1: %d %s, want 400", code, body)
	}
	if code, body := rc(t, n, acc, "GET", list+".json?Page=0&PageSize=1"); code != 200 {
		t.Errorf("Page=0&PageSize=1: %d %s", code, body)
	}
}

// TestRecordingNameInvalidUTF8: a name that is not valid UTF-8 could never
// be given back through the JSON APIs, so channel record, bridge record and
// copy refuse it with 400 and create nothing.
func TestRecordingNameInvalidUTF8(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	phone := newPhone(t, "udp")
	id, _ := answeredCall(t, n, events, phone, "331")
	const bad = "bad%FFname"
	if code, body := n.do("POST", "/channels/"+id+"/record?format=wav&name=dir%2F"+bad, nil); code != 400 {
		t.Errorf("channel record: %d %s, want 400", code, body)
	}
	n.mustDo("POST", "/bridges?bridgeId=b1&type=mixing", 200)
	if code, body := n.do("POST", "/bridges/b1/record?format=wav&name="+bad, nil); code != 400 {
		t.Errorf("bridge record: %d %s, want 400", code, body)
	}
	if err := os.WriteFile(filepath.Join(n.recDir(), "src.wav"), testutil.SilentWAV(8000), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := n.do("POST", "/recordings/stored/src/copy?destinationRecordingName="+bad, nil); code != 400 {
		t.Errorf("copy: %d %s, want 400", code, body)
	}
	var names []string
	filepath.WalkDir(n.recDir(), func(p string, d fs.DirEntry, err error) error {
		// The node's journal of recordings in progress lives in the root
		// for the node's lifetime (recorder.JournalPath); it is no recording.
		if journal, _ := filepath.Match(recorder.JournalPath(n.recDir(), "*"), p); err == nil && p != n.recDir() && !journal {
			names = append(names, strings.TrimPrefix(p, n.recDir()))
		}
		return nil
	})
	if len(names) != 1 || names[0] != "/src.wav" {
		t.Errorf("files under the recordings root: %q, want only /src.wav", names)
	}
}

// TestDeleteStoredWhileRecording: DELETE /recordings/stored/NAME while that
// recording is being written answers 409 as Asterisk does and leaves the
// file alone; the recording then finishes with everything in it.
func TestDeleteStoredWhileRecording(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	phone := newPhone(t, "udp")
	id, call := answeredCall(t, n, events, phone, "332")
	n.mustDo("POST", "/channels/"+id+"/record?name=busy&format=wav", 201)
	events.skipTo("RecordingStarted", 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(t, call.SendAudio(ctx, sweep(8000)))
	waitRx(t, n, id, 50)
	if code, body := n.do("DELETE", "/recordings/stored/busy", nil); code != 409 {
		t.Errorf("DELETE of the live recording's stored name: %d %s, want 409", code, body)
	}
	path := filepath.Join(n.recDir(), "busy.wav")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("file after the refused DELETE: %v", err)
	}
	n.mustDo("POST", "/recordings/live/busy/stop", 204)
	events.skipTo("RecordingFinished", 5*time.Second)
	if _, pcm := readWAV(t, path); len(pcm) < 8000*9/10 {
		t.Errorf("recording holds %d samples, want about 8000", len(pcm))
	}
	// Stored now: DELETE works.
	n.mustDo("DELETE", "/recordings/stored/busy", 204)
}

// restartNode closes n and starts a node on the same configuration and
// data directory, as an operator restarting tapedeck would.
func restartNode(t *testing.T, n *node) *node {
	t.Helper()
	n.srv.Close()
	cfg := n.cfg
	return startNode(t, func(c *config.Config) { *c = cfg })
}

// rcRecording fetches one recording of the default account by Sid.
func rcRecording(t *testing.T, n *node, acc meta.Account, sid string) rcRec {
	t.Helper()
	code, body := rc(t, n, acc, "GET", "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Recordings/"+sid+".json")
	var r rcRec
	if code != 200 || json.Unmarshal(body, &r) != nil {
		t.Fatalf("GET recording %s: %d %s", sid, code, body)
	}
	return r
}

// wavSeconds is the duration a WAV file holds, by its (checked) header.
func wavSeconds(t *testing.T, path string) float64 {
	t.Helper()
	_, pcm := readWAV(t, path)
	return float64(len(pcm)) / 8000
}

// checkFromFile: the row's size and duration are the file's.
func checkFromFile(t *testing.T, r rcRec, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if r["size"] != strconv.FormatInt(st.Size(), 10) {
		t.Errorf("%s: size %s, file %d bytes", r["sid"], r["size"], st.Size())
	}
	d, err := strconv.ParseFloat(r["duration"], 64)
	if want := wavSeconds(t, path); err != nil || math.Abs(d-want) > 0.001 {
		t.Errorf("%s: duration %s, file %.3f s", r["sid"], r["duration"], want)
	}
}

// TestCatalogSettledAtStart: rows a previous run left in progress (its
// last catalog writes failed, so they say size 0 and duration 0) are
// settled when the node starts: the file present gives status recovered
// with the file's size and duration, the file gone gives status failed,
// each with a status_detail; another node's row is left alone. On SQLite
// and PostgreSQL.
func TestCatalogSettledAtStart(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			var mutate []func(*config.Config)
			if db == "postgres" {
				dsn := pgFreshDatabase(t)
				mutate = append(mutate, func(c *config.Config) { c.Catalog.Database = dsn })
			}
			catalogSettledAtStart(t, startNode(t, mutate...))
		})
	}
}

func catalogSettledAtStart(t *testing.T, n *node) {
	events := n.connect("test")
	acc := defaultAccount(t, n)
	recordCall(t, n, events, "340", "keep", 1500*time.Millisecond)
	recordCall(t, n, events, "341", "gone", 1000*time.Millisecond)

	// What the failed writes leave: rows in progress, size and duration 0.
	st := n.srv.Catalog().Meta
	ctx := context.Background()
	sids := map[string]string{}
	for _, name := range []string{"keep", "gone"} {
		row, err := st.RecordingByName(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		row.Status, row.Size, row.Duration, row.SHA256 = meta.StatusInProgress, 0, 0, ""
		must(t, st.PutRecording(ctx, row))
		sids[name] = row.Sid
	}
	other := meta.Recording{Sid: meta.NewRecordingSid(), AccountSid: acc.Sid, Status: meta.StatusInProgress,
		Name: "elsewhere", FilePath: "elsewhere.wav", Format: "wav", Node: "another-node"}
	must(t, st.PutRecording(ctx, other))
	must(t, os.Remove(filepath.Join(n.recDir(), "gone.wav")))

	n = restartNode(t, n)
	keep := rcRecording(t, n, acc, sids["keep"])
	if keep["status"] != "recovered" || keep["status_detail"] == "" {
		t.Errorf("keep: %v, want recovered with a status_detail", keep)
	}
	checkFromFile(t, keep, filepath.Join(n.recDir(), "keep.wav"))
	if d, _ := strconv.ParseFloat(keep["duration"], 64); d < 1.4 {
		t.Errorf("keep: duration %s, want about 1.5", keep["duration"])
	}
	gone := rcRecording(t, n, acc, sids["gone"])
	if gone["status"] != "failed" || !strings.Contains(gone["status_detail"], "missing") || gone["size"] != "" && gone["size"] != "0" {
		t.Errorf("gone: %v, want failed, its file missing", gone)
	}
	if r := rcRecording(t, n, acc, other.Sid); r["status"] != "in-progress" {
		t.Errorf("another node's row: %v, want it left in progress", r)
	}
	// ARI shows what it can: the stored recording was recovered.
	if body := n.mustDo("GET", "/recordings/stored/keep", 200); !strings.Contains(string(body), `"recovered":true`) {
		t.Errorf("ARI stored keep: %s", body)
	}
}

// fillDisk writes a file under dir until the filesystem is full.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			return p
		}
	}
}

// TestCatalogConvergesAfterDataDiskFull: with the whole data directory
// (recordings and the SQLite catalog) on a disk that fills up, the
// recordings fail and their catalog writes may fail too. Once space
// returns, the periodic reconcile makes every row true without a restart:
// failed, with the cause in status_detail (JSON and XML) and in ARI's
// stored recording, and size and duration taken from the file, which
// plays what it holds. A restart keeps it so.
func TestCatalogConvergesAfterDataDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		testutil.SkipOrFail(t, "the data-disk-full test mounts a tmpfs and needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
		testutil.SkipOrFail(t, "cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	n := startNode(t, func(c *config.Config) {
		c.DataDir = dir
		c.Catalog.ReconcileInterval = 1
	})
	events := n.connect("test")
	acc := defaultAccount(t, n)
	phone := newPhone(t, "udp")
	id, call := answeredCall(t, n, events, phone, "342")
	names := []string{"full/a", "full/b", "full/c"}
	for _, name := range names {
		n.mustDo("POST", "/channels/"+id+"/record?format=wav&name="+urlq(name), 201)
		events.skipTo("RecordingStarted", 5*time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(t, call.SendAudio(ctx, sweep(8000*2)))
	waitRx(t, n, id, 100)
	// The writer keeps up to a second of audio before it writes (README:
	// what a failure loses; its writes end on 4 KiB pages), so of the 2 s
	// sent at least the first second is on disk: wait for it, and note
	// what each file holds, so that the test checks that a full disk
	// loses nothing already written.
	written := map[string]float64{}
	for _, name := range names {
		path := filepath.Join(n.recDir(), filepath.FromSlash(name)+".wav")
		testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
			fi, err := os.Stat(path)
			if err != nil || fi.Size() < 44+8000*2 {
				return false
			}
			written[name] = float64(fi.Size()-44) / (8000 * 2)
			return true
		}, "%s: the first of the 2 s sent is not in the file", name)
	}
	filler := fillDisk(t, dir)
	go call.SendAudio(ctx, sweep(8000*3))
	for range names {
		ev := events.skipTo("RecordingFailed", 10*time.Second)
		if r := ev["recording"].(map[string]any); !strings.Contains(strings.ToLower(fmt.Sprint(r["cause"])), "disk full") {
			t.Fatalf("RecordingFailed %v", r)
		}
	}
	must(t, os.Remove(filler)) // space returns

	list := "/restcomm/2012-04-24/Accounts/" + acc.Sid + "/Recordings.json"
	var rows []rcRec
	deadline := time.Now().Add(15 * time.Second)
	for {
		var l rcList
		code, body := rc(t, n, acc, "GET", list)
		if code != 200 || json.Unmarshal(body, &l) != nil {
			t.Fatalf("list: %d %s", code, body)
		}
		settled := 0
		for _, r := range l.Recordings {
			if r["status"] == "failed" && strings.Contains(strings.ToLower(r["status_detail"]), "disk full") && r["size"] != "" {
				settled++
			}
		}
		if settled == len(names) && len(l.Recordings) == len(names) {
			rows = l.Recordings
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the catalog did not converge after space returned: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	byName := map[string]rcRec{}
	st := n.srv.Catalog().Meta
	for _, name := range names {
		row, err := st.RecordingByName(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r["sid"] == row.Sid {
				byName[name] = r
			}
		}
	}
	verify := func(n *node) {
		t.Helper()
		for _, name := range names {
			r := rcRecording(t, n, acc, byName[name]["sid"])
			if r["status"] != "failed" || !strings.Contains(strings.ToLower(r["status_detail"]), "disk full") {
				t.Errorf("%s: %v, want failed with the cause", name, r)
			}
			path := filepath.Join(n.recDir(), filepath.FromSlash(name)+".wav")
			checkFromFile(t, r, path)
			if d := wavSeconds(t, path); d < written[name] {
				t.Errorf("%s: the file holds %.3f s, want the %.3f s written before the disk filled", name, d, written[name])
			}
			code, body := rc(t, n, acc, "GET", "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Recordings/"+r["sid"])
			if code != 200 || !strings.Contains(strings.ToLower(string(body)), "<statusdetail>disk full") || !strings.Contains(string(body), "<Status>failed</Status>") {
				t.Errorf("%s XML: %d %s", name, code, body)
			}
			if body := n.mustDo("GET", "/recordings/stored/"+urlq(name), 200); !strings.Contains(strings.ToLower(string(body)), `"cause":"disk full`) {
				t.Errorf("ARI stored %s: %s, want the cause", name, body)
			}
		}
	}
	verify(n)
	n = restartNode(t, n)
	verify(n)
}

// TestStopRightAfterStart: a stop that arrives while the recording is
// still queued (here during its beep) cancels it, as Asterisk does: the
// recording ends canceled, and there is neither a catalog row (it used to
// be "failed") nor a stored recording; the name can be recorded afresh.
func TestStopRightAfterStart(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	acc := defaultAccount(t, n)
	phone := newPhone(t, "udp")
	id, call := answeredCall(t, n, events, phone, "343")
	n.mustDo("POST", "/channels/"+id+"/record?format=wav&beep=true&name=quick", 201)
	n.mustDo("POST", "/recordings/live/quick/stop", 204)
	fin := events.skipTo("RecordingFinished", 5*time.Second)
	if r := fin["recording"].(map[string]any); r["name"] != "quick" || r["state"] != "canceled" {
		t.Errorf("RecordingFinished %v, want quick canceled", r)
	}
	if l := rcListOf(t, n, acc, "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Recordings.json"); l.Total != 0 {
		t.Errorf("catalog rows after a stop while queued: %v, want none", l.Recordings)
	}
	if code, body := n.do("GET", "/recordings/stored/quick", nil); code != 404 {
		t.Errorf("stored recording after a stop while queued: %d %s, want 404", code, body)
	}
	// Recording the name afresh (ifExists=fail) works and keeps its audio.
	n.mustDo("POST", "/channels/"+id+"/record?format=wav&name=quick", 201)
	events.skipTo("RecordingStarted", 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(t, call.SendAudio(ctx, sweep(4000)))
	waitRx(t, n, id, 25)
	n.mustDo("POST", "/recordings/live/quick/stop", 204)
	if r := events.skipTo("RecordingFinished", 5*time.Second)["recording"].(map[string]any); r["state"] != "done" {
		t.Errorf("second take: %v", r)
	}
	l := rcListOf(t, n, acc, "/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Recordings.json")
	if l.Total != 1 || l.Recordings[0]["status"] != "completed" {
		t.Errorf("catalog after the second take: %v, want one completed row", l.Recordings)
	}
}
