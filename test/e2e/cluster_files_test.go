package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// TestClusterServesLocalRecordingsOfOtherNode: two nodes on one
// PostgreSQL catalog and one NATS server, without object storage: each
// keeps its recordings on its own disk. Recordings made on A are listed,
// downloaded (whole and by Range) and deleted through B with ARI,
// Restcomm and Twilio: B relays the reads chunk by chunk and the delete to
// A over NATS, and A's files go from A's disk. Once A is down, B answers
// 503 for A's files (never another file) and a delete through B leaves the
// recording as it was.
func TestClusterServesLocalRecordingsOfOtherNode(t *testing.T) {
	a, b, app, _, _ := clusterNodes(t)
	evA := a.connect(app)
	acc := defaultAccount(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	names := []string{"lf/ari", "lf/restcomm", "lf/twilio", "lf/down"}
	rows := map[string]meta.Recording{}
	files := map[string][]byte{}
	for _, name := range names {
		recordCall(t, a, evA, "350", name, 600*time.Millisecond)
		row, err := a.srv.Catalog().Meta.RecordingByName(ctx, name)
		if err != nil || row.Node != a.cfg.NodeID || strings.HasPrefix(row.FilePath, "blob:") {
			t.Fatalf("row of %s: %+v, %v; want on A's disk", name, row, err)
		}
		rows[name] = row
		f, err := os.ReadFile(filepath.Join(a.recDir(), name+".wav"))
		if err != nil || len(f) < 8000 {
			t.Fatalf("A's file of %s: %d bytes, %v", name, len(f), err)
		}
		files[name] = f
		if _, err := os.Stat(filepath.Join(b.recDir(), name+".wav")); !os.IsNotExist(err) {
			t.Fatalf("B has a file of %s: %v", name, err)
		}
	}

	// Listed by B, described and served by B: A's bytes, whole and a Range.
	if got := storedNames(t, b); !hasName(got, "lf/ari") || !hasName(got, "lf/twilio") {
		t.Fatalf("B's /recordings/stored: %v", got)
	}
	b.mustDo("GET", "/recordings/stored/"+urlq("lf/ari"), 200)
	if wav := b.mustDo("GET", "/recordings/stored/"+urlq("lf/ari")+"/file", 200); !bytes.Equal(wav, files["lf/ari"]) {
		t.Fatalf("ARI file through B: %d bytes, want A's %d", len(wav), len(files["lf/ari"]))
	}
	code, hdr, part := httpGet(t, b.baseURL()+"/ari/recordings/stored/"+urlq("lf/ari")+"/file", "bytes=1000-5999", true)
	if code != 206 || !bytes.Equal(part, files["lf/ari"][1000:6000]) || !strings.HasSuffix(hdr.Get("Content-Range"), "/"+strconv.Itoa(len(files["lf/ari"]))) {
		t.Fatalf("ARI Range through B: %d %q, %d bytes", code, hdr.Get("Content-Range"), len(part))
	}
	rcRoot := "/restcomm/2012-04-24/Accounts/" + acc.Sid + "/Recordings/"
	if code, media := rc(t, b, acc, "GET", rcRoot+rows["lf/restcomm"].Sid+".wav"); code != 200 || !bytes.Equal(media, files["lf/restcomm"]) {
		t.Fatalf("Restcomm media through B: %d, %d bytes", code, len(media))
	}
	twRoot := "/2010-04-01/Accounts/" + acc.Sid + "/Recordings/"
	if code, media := rc(t, b, acc, "GET", twRoot+rows["lf/twilio"].Sid+".wav"); code != 200 || !bytes.Equal(media, files["lf/twilio"]) {
		t.Fatalf("Twilio media through B: %d, %d bytes", code, len(media))
	}
	code, _, part = httpGet(t, b.baseURL()+twRoot+rows["lf/twilio"].Sid+".wav", "bytes=-500", false)
	if code != 206 || !bytes.Equal(part, files["lf/twilio"][len(files["lf/twilio"])-500:]) {
		t.Fatalf("Twilio Range through B: %d, %d bytes", code, len(part))
	}
	// The MP3 made by B from A's file: its cache key is the checksum,
	// which B computes through A (recording.checksum: on_demand).
	if code, mp3 := rc(t, b, acc, "GET", twRoot+rows["lf/twilio"].Sid+".mp3"); code != 200 || len(mp3) < 100 || mp3[0] != 0xff {
		t.Fatalf("Twilio MP3 through B: %d, %d bytes", code, len(mp3))
	}
	sum := sha256.Sum256(files["lf/twilio"])
	if _, err := os.Stat(filepath.Join(b.cfg.DataDir, "cache", "mp3", rows["lf/twilio"].Sid+"-"+hex.EncodeToString(sum[:])+".mp3")); err != nil {
		t.Fatalf("B's MP3 cache keyed by the checksum of A's file: %v", err)
	}

	// Deleted through B: each file goes from A's disk.
	b.mustDo("DELETE", "/recordings/stored/"+urlq("lf/ari"), 204)
	if code, body := rc(t, b, acc, "DELETE", rcRoot+rows["lf/restcomm"].Sid+".json"); code != 204 {
		t.Fatalf("Restcomm delete through B: %d %s", code, body)
	}
	if code, body := rc(t, b, acc, "DELETE", twRoot+rows["lf/twilio"].Sid+".json"); code != 204 {
		t.Fatalf("Twilio delete through B: %d %s", code, body)
	}
	for _, name := range names[:3] {
		if _, err := os.Stat(filepath.Join(a.recDir(), name+".wav")); !os.IsNotExist(err) {
			t.Errorf("A's file of %s after the delete through B: %v", name, err)
		}
		if _, err := a.srv.Catalog().Meta.RecordingByName(ctx, name); err == nil {
			t.Errorf("%s still catalogued after the delete through B", name)
		}
	}
	a.mustDo("GET", "/recordings/stored/"+urlq("lf/ari"), 404)

	// A goes down: its file is 503 through B, in every API, and a delete
	// through B changes nothing.
	sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
	must(t, a.srv.Shutdown(sctx))
	scancel()
	down := rows["lf/down"]
	pollFor(t, 10*time.Second, func() bool {
		code, _ := b.do("GET", "/recordings/stored/"+urlq("lf/down")+"/file", nil)
		return code == 503
	}, "B's ARI download of A's file once A is down: 503")
	if code, body := b.do("DELETE", "/recordings/stored/"+urlq("lf/down"), nil); code != 503 || !strings.Contains(string(body), "does not answer") {
		t.Errorf("ARI delete through B with A down: %d %s, want 503", code, body)
	}
	if code, body := rc(t, b, acc, "GET", rcRoot+down.Sid+".wav"); code != 503 {
		t.Errorf("Restcomm media through B with A down: %d %s, want 503", code, body)
	}
	if code, body := rc(t, b, acc, "DELETE", rcRoot+down.Sid+".json"); code != 503 {
		t.Errorf("Restcomm delete through B with A down: %d %s, want 503", code, body)
	}
	if code, body := rc(t, b, acc, "GET", twRoot+down.Sid+".wav"); code != 503 || !strings.Contains(string(body), "20503") {
		t.Errorf("Twilio media through B with A down: %d %s, want 503 / 20503", code, body)
	}
	if row, err := b.srv.Catalog().Meta.Recording(ctx, acc.Sid, down.Sid); err != nil || row.Status != meta.StatusCompleted {
		t.Errorf("the row after the failed deletes: %+v, %v", row, err)
	}
	if f, err := os.ReadFile(filepath.Join(a.recDir(), "lf/down.wav")); err != nil || !bytes.Equal(f, files["lf/down"]) {
		t.Errorf("A's file after the failed deletes: %d bytes, %v", len(f), err)
	}
}

// TestClusterTwilioLiveControlOnOtherNode: the npm twilio library, sent to
// node B, starts, pauses, resumes and stops the recording of a call that
// node A carries: B relays each request over NATS to A, which runs it.
// Twilio's own errors (a second recording while one runs, an unknown
// call) come back as A (or any node) gives them.
func TestClusterTwilioLiveControlOnOtherNode(t *testing.T) {
	needTwilioLibrary(t)
	a, b, app, _, _ := clusterNodes(t)
	evA := a.connect(app)
	acc := defaultAccount(t, a)
	phone := newPhone(t, "udp")
	id, call := answeredCall(t, a, evA, phone, "350")
	callSid := callSidOf(t, a, id)
	// B knows A (the relay asks the live nodes).
	waitStandIn(t, b, app)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sent := 0
	send := func(ms int) {
		t.Helper()
		must(t, call.SendAudio(ctx, sweep(ms*8)))
		sent += ms / 20
		waitRx(t, a, id, sent)
	}
	l := twilioLive(t, b, acc, callSid, "", map[string]string{"recordingChannels": "mono"})
	sid, _ := l["sid"].(string)
	if !meta.IsRecordingSid(sid) || l["status"] != "in-progress" || l["callSid"] != callSid {
		t.Fatalf("create through B: %v", l)
	}
	secondRecordingRefused(t, b, acc, callSid, sid)
	if l := twilioLive(t, b, acc, "CA"+strings.Repeat("0", 32), "", nil); l["error"] != true || l["status"] != 404.0 || l["code"] != 20404.0 {
		t.Errorf("an unknown call through B: %v, want 404/20404", l)
	}
	send(600)
	twilioSetStatus(t, b, acc, callSid, "Twilio.CURRENT", sid, map[string]string{"status": "paused"}, "pause through B")
	pollFor(t, 5*time.Second, func() bool {
		row, err := a.srv.Catalog().Meta.Recording(ctx, acc.Sid, sid)
		return err == nil && row.Status == meta.StatusPaused
	}, "the recording paused in the catalog")
	twilioSetStatus(t, b, acc, callSid, "Twilio.CURRENT", sid, map[string]string{"status": "in-progress"}, "resume through B")
	send(600)
	twilioSetStatus(t, b, acc, callSid, sid, sid, map[string]string{"status": "stopped"}, "stop through B")
	var row meta.Recording
	pollFor(t, 10*time.Second, func() bool {
		var err error
		row, err = a.srv.Catalog().Meta.Recording(ctx, acc.Sid, sid)
		return err == nil && row.Status == meta.StatusCompleted
	}, "the recording completed in the catalog")
	if row.Node != a.cfg.NodeID || row.CallSid != callSid || row.Duration < 1 {
		t.Fatalf("row %+v: want made on A, over a second", row)
	}
	must(t, call.Hangup(ctx))
	evA.skipTo("ChannelDestroyed", 5*time.Second)
}

// TestClusterLostNodeFailsItsRecordings: an application connected to node
// A (in this process) records a call that landed on node B (a tapedeck
// process of its own, on the same PostgreSQL and NATS). B is killed
// (SIGKILL) and not restarted. Once B's heartbeat has been gone for
// catalog.node_lost_seconds, A settles B's recording in progress as
// failed, "node lost", and the application hears it on A's WebSocket as
// a RecordingFailed with that cause; the recording is no longer relayed
// to B (A answers 404 for it). A Twilio recording of the same call, started
// by the npm twilio library through A (relayed to B) with a
// RecordingStatusCallback, had its callback kept in the shared catalog:
// A sends its failed status once, signed with the account's token (the
// library's validateRequest accepts it), through its durable webhook
// outbox; further reconcile passes send nothing more.
func TestClusterLostNodeFailsItsRecordings(t *testing.T) {
	needTwilioLibrary(t)
	lp := newLostPair(t, "lost", "la", "lb", false)
	a, b, bID, evA, run := lp.a, lp.b, lp.bID, lp.evA, lp.run
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	id, call := lp.answeredCallOnB(t, newPhone(t, "udp"))
	name := "lost/" + run
	a.mustDo("POST", "/channels/"+id+"/record?name="+urlq(name)+"&format=wav", 201)
	evA.skipTo("RecordingStarted", 5*time.Second)
	// The phone stops sending once B is killed: a peer that goes on
	// sending to a dead node's ports hands its stream to whichever
	// process binds them next.
	audioCtx, stopAudio := context.WithCancel(ctx)
	defer stopAudio()
	go func() { _ = call.SendAudio(audioCtx, sweep(8*20000)) }()
	pollFor(t, 10*time.Second, func() bool {
		row, err := a.srv.Catalog().Meta.RecordingByName(ctx, name)
		return err == nil && row.Status == meta.StatusInProgress && row.Node == bID
	}, "B's recording in progress in the catalog")
	a.mustDo("GET", "/recordings/live/"+urlq(name), 200) // relayed to B

	// A Twilio recording of the call, with a status callback, started
	// through A: B makes it, keeps its callback in the catalog and sends
	// in-progress.
	acc := defaultAccount(t, a)
	_, body := a.do("GET", "/channels/"+id+"/variable?variable=CALLSID", nil)
	var v struct{ Value string }
	_ = json.Unmarshal(body, &v)
	callSid := v.Value
	cbURL := lp.hookURL + "/status?node=lost"
	l := twilioLive(t, a, acc, callSid, "", map[string]any{"recordingStatusCallback": cbURL, "recordingTrack": "inbound",
		"recordingStatusCallbackEvent": []string{"in-progress", "completed", "failed"}, "recordingStatusCallbackMethod": "POST"})
	twSid, _ := l["sid"].(string)
	if !meta.IsRecordingSid(twSid) || l["status"] != "in-progress" {
		t.Fatalf("Twilio recording through A: %v", l)
	}
	if row, err := a.srv.Catalog().Meta.Recording(ctx, acc.Sid, twSid); err != nil || row.Node != bID || row.Status != meta.StatusInProgress {
		t.Fatalf("the Twilio recording's row: %+v %v, want B's, in progress", row, err)
	}
	byStatus := func(status string) []hookRequest {
		var out []hookRequest
		for _, q := range lp.hook.requests() {
			if q.Params["RecordingSid"] == twSid && q.Params["RecordingStatus"] == status {
				out = append(out, q)
			}
		}
		return out
	}
	pollFor(t, 10*time.Second, func() bool { return len(byStatus("in-progress")) == 1 }, "B's in-progress callback")
	pg, err := pgConnect(ctx, lp.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(context.Background())
	undelivered := func() (n int, rows []string) {
		r, err := pg.Query(ctx, `SELECT node, kind, url, status, attempts, last_error || ' next ' || next_at::text || ' body ' || convert_from(body, 'UTF8') FROM webhook_outbox WHERE status <> 'delivered'`)
		if err != nil {
			return -1, []string{err.Error()}
		}
		defer r.Close()
		for r.Next() {
			var node, kind, u, st, le string
			var att int
			if err := r.Scan(&node, &kind, &u, &st, &att, &le); err != nil {
				return -1, []string{err.Error()}
			}
			rows = append(rows, fmt.Sprintf("%s %s %s %s attempts %d: %s", node, kind, u, st, att, le))
		}
		return len(rows), rows
	}
	// B marks its deliveries delivered in batches (every 100 ms): killed
	// before, it would have the in-progress callback sent again by A (at
	// least once). Kill it once the outbox says delivered.
	pollFor(t, 10*time.Second, func() bool { n, _ := undelivered(); return n == 0 }, "B's in-progress callback settled delivered")

	must(t, b.cmd.Process.Signal(syscall.SIGKILL))
	<-b.done
	stopAudio()
	killed := time.Now()
	ev := evA.skipTo("RecordingFailed", 20*time.Second)
	rec, _ := ev["recording"].(map[string]any)
	if cause, _ := rec["cause"].(string); rec["name"] != name || rec["state"] != "failed" || !strings.HasPrefix(cause, "Node lost: node "+bID) {
		t.Fatalf("RecordingFailed on A: %v", ev)
	}
	if d := time.Since(killed); d < 2*time.Second {
		t.Errorf("B's recording failed %v after the kill, before node_lost_seconds (3 s) could pass", d)
	}
	row, err := a.srv.Catalog().Meta.RecordingByName(ctx, name)
	if err != nil || row.Status != meta.StatusFailed || row.Node != bID {
		t.Fatalf("row after B is lost: %+v, %v", row, err)
	}
	if code, body := a.do("GET", "/recordings/live/"+urlq(name), nil); code != 404 {
		t.Errorf("the lost recording through A: %d %s, want 404", code, body)
	}

	// The Twilio recording's failed callback, from A.
	pollFor(t, 20*time.Second, func() bool { return len(byStatus("failed")) >= 1 }, "the failed status callback of B's Twilio recording")
	twRow, err := a.srv.Catalog().Meta.Recording(ctx, acc.Sid, twSid)
	if err != nil || twRow.Status != meta.StatusFailed || !strings.HasPrefix(twRow.StatusDetail, "Node lost: node "+bID) {
		t.Fatalf("the Twilio recording's row after B is lost: %+v, %v", twRow, err)
	}
	failed := byStatus("failed")[0]
	p := failed.Params
	if failed.URL != cbURL || failed.Method != "POST" || p["AccountSid"] != acc.Sid || p["CallSid"] != callSid ||
		p["RecordingChannels"] != "1" || p["RecordingTrack"] != "inbound" || p["RecordingSource"] != "StartCallRecordingAPI" ||
		p["RecordingDuration"] != "0" || p["RecordingStartTime"] == "" || failed.Signature == "" ||
		!strings.HasSuffix(p["RecordingUrl"], "/2010-04-01/Accounts/"+acc.Sid+"/Recordings/"+twSid) {
		t.Errorf("failed callback %s %s %v (signature %q)", failed.Method, failed.URL, p, failed.Signature)
	}
	// Once: more reconcile passes on A (the row is settled) queue nothing
	// more, and A's outbox has nothing left for it.
	for range 2 {
		must(t, a.srv.Catalog().Reconcile(ctx))
	}
	if testutil.Poll(10*time.Second, 50*time.Millisecond, func() bool { n, _ := undelivered(); return n == 0 }) != nil {
		_, rows := undelivered()
		t.Fatalf("queued webhooks left undelivered: %q", rows)
	}
	if n := len(byStatus("failed")); n != 1 {
		t.Errorf("%d failed callbacks for %s, want exactly one", n, twSid)
	}
	if n := len(byStatus("completed")); n != 0 {
		t.Errorf("%d completed callbacks for a recording whose node was lost", n)
	}
	reqs, _ := json.Marshal([]hookRequest{failed})
	vr := twilioScript(t, a, acc, map[string]string{"TWILIO_ACTION": "validate", "TWILIO_VALIDATE": string(reqs)})
	if valid, _ := vr["valid"].([]any); len(valid) != 1 || valid[0] != true {
		t.Errorf("validateRequest of the failed callback: %v", vr)
	}
}
