package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// TestClusterLostNodeComesBack: node A (in this process) and node B (a
// tapedeck process of its own) share one PostgreSQL catalog, one NATS
// server and one S3 bucket (versitygw). A call lands on B and the npm
// twilio library, sent to B, records it with a RecordingStatusCallback
// (in-progress, completed, failed). B is frozen (SIGSTOP) until A,
// having heard no heartbeat from it for catalog.node_lost_seconds,
// declares it lost: A settles the recording failed, "node lost", and
// sends its failed callback (queued with the settled row). B is then let
// go (SIGCONT): it was never dead, so it finishes the recording when the
// call ends. Its real final row replaces the settled one (completed, its
// duration, its file uploaded to the bucket and served through A), and
// the receiver still gets exactly one terminal callback: A's failed,
// accepted by the library's validateRequest; B sends no completed after
// it.
func TestClusterLostNodeComesBack(t *testing.T) {
	needTwilioLibrary(t)
	p := newLostPair(t, "back", "ra", "rb", true)
	a, b, bID, bBase := p.a, p.b, p.bID, p.bBase
	// Whatever happens, B is not left frozen (its cleanup kills it, and a
	// stopped process takes its SIGKILL too; this only keeps the order
	// plain).
	t.Cleanup(func() { _ = b.cmd.Process.Signal(syscall.SIGCONT) })
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	id, call := p.answeredCallOnB(t, newPhone(t, "udp"))
	// The phone sends all along, through B's freeze: B reads the
	// freeze's audio from its socket's buffer at once when it is let go,
	// and its recording takes the burst (its writer is fine).
	audioCtx, stopAudio := context.WithCancel(ctx)
	defer stopAudio()
	audioDone := make(chan struct{})
	go func() {
		defer close(audioDone)
		_ = call.SendAudio(audioCtx, sweep(8*90000))
	}()

	// The Twilio recording, made by the library through B itself.
	acc := defaultAccount(t, a)
	callSid := callSidOf(t, a, id)
	cbURL := p.hookURL + "/status?node=back"
	params, _ := json.Marshal(map[string]any{"recordingStatusCallback": cbURL, "recordingStatusCallbackMethod": "POST",
		"recordingStatusCallbackEvent": []string{"in-progress", "completed", "failed"}})
	l := twilioScriptAt(t, bBase, acc.Sid, acc.AuthToken, map[string]string{"TWILIO_CALL_SID": callSid, "TWILIO_ACTION": "create", "TWILIO_PARAMS": string(params)})
	sid, _ := l["sid"].(string)
	if !meta.IsRecordingSid(sid) || l["status"] != "in-progress" {
		t.Fatalf("Twilio recording through B: %v", l)
	}
	if row, err := a.srv.Catalog().Meta.Recording(ctx, acc.Sid, sid); err != nil || row.Node != bID || row.Status != meta.StatusInProgress {
		t.Fatalf("the Twilio recording's row: %+v %v, want B's, in progress", row, err)
	}
	byStatus := func(status string) []hookRequest {
		var out []hookRequest
		for _, q := range p.hook.requests() {
			if q.Params["RecordingSid"] == sid && q.Params["RecordingStatus"] == status {
				out = append(out, q)
			}
		}
		return out
	}
	terminal := func() (n int) {
		for _, q := range p.hook.requests() {
			if q.Params["RecordingSid"] == sid && q.Params["RecordingStatus"] != "in-progress" {
				n++
			}
		}
		return n
	}
	_, count := pgCounter(t, ctx, p.dsn)
	// in-progress delivered and settled delivered (B frozen before it
	// marks it would have it sent again by A); some audio on B's disk.
	pollFor(t, 10*time.Second, func() bool {
		return len(byStatus("in-progress")) == 1 && count(`SELECT COUNT(*) FROM webhook_outbox WHERE status <> 'delivered'`) == 0
	}, "B's in-progress callback delivered and settled")
	pollFor(t, 20*time.Second, func() bool {
		row, err := a.srv.Catalog().Meta.Recording(ctx, acc.Sid, sid)
		return err == nil && row.Status == meta.StatusInProgress && count(`SELECT COUNT(*) FROM webhook_nodes WHERE node = $1`, bID) == 1
	}, "B's heartbeat and its recording in progress in the catalog")

	// B freezes, while the phone goes on sending.
	must(t, b.cmd.Process.Signal(syscall.SIGSTOP))
	frozen := time.Now()
	var settled meta.Recording
	pollFor(t, 30*time.Second, func() bool {
		var err error
		settled, err = a.srv.Catalog().Meta.Recording(ctx, acc.Sid, sid)
		return err == nil && settled.Status == meta.StatusFailed
	}, "A settles the frozen B's recording")
	if d := time.Since(frozen); d < 2*time.Second {
		t.Errorf("B's recording settled %v after the freeze, before node_lost_seconds (3 s) could pass", d)
	}
	if settled.Node != bID || !strings.HasPrefix(settled.StatusDetail, "Node lost: node "+bID) || settled.Duration != 0 {
		t.Fatalf("the settled row: %+v", settled)
	}
	pollFor(t, 20*time.Second, func() bool {
		return len(byStatus("failed")) == 1 && count(`SELECT COUNT(*) FROM webhook_outbox WHERE status <> 'delivered'`) == 0
	}, "A's failed callback of the lost B's recording delivered and settled")
	failed := byStatus("failed")[0]
	if p := failed.Params; failed.URL != cbURL || p["CallSid"] != callSid || p["AccountSid"] != acc.Sid || p["RecordingDuration"] != "0" {
		t.Errorf("the failed callback: %s %v", failed.URL, p)
	}
	if n := count(`SELECT COUNT(*) FROM recordings WHERE sid = $1 AND status_callback = ''`, sid); n != 1 {
		t.Errorf("the settled row still keeps its status callback")
	}

	// B comes back: the call goes on for 1.5 s, then ends; B finishes
	// the recording.
	must(t, b.cmd.Process.Signal(syscall.SIGCONT))
	resumed := time.Now()
	pollFor(t, 20*time.Second, func() bool {
		return count(`SELECT COUNT(*) FROM webhook_nodes WHERE node = $1 AND seen > $2`, bID, resumed) == 1
	}, "B's heartbeat after its return")
	stopAudio()
	<-audioDone
	code, lb, _ := rawRequest(t, "GET", bBase+"/ari/channels/"+id, "", "", func(r *http.Request) { r.SetBasicAuth("asterisk", "asterisk") })
	if code != 200 {
		t.Fatalf("B's channel after its return: %d %s", code, lb)
	}
	must(t, call.SendAudio(ctx, sweep(8*1500)))
	hctx, hcancel := context.WithTimeout(ctx, 10*time.Second)
	must(t, call.Hangup(hctx))
	hcancel()

	// Its real final row replaces the settled one, and its file reaches
	// the p.bucket.
	var final meta.Recording
	pollFor(t, 30*time.Second, func() bool {
		var err error
		final, err = a.srv.Catalog().Meta.Recording(ctx, acc.Sid, sid)
		return err == nil && final.Status == meta.StatusCompleted && strings.HasPrefix(final.FilePath, "blob:")
	}, "B's final row, uploaded, in place of the settled one")
	if final.Node != bID || final.Duration < 1.5 || final.Size <= 44 || final.S3URI == "" || final.StatusDetail != "" {
		t.Errorf("the final row: %+v; want B's, completed, over 1.5 s, its size and object", final)
	}
	if ok, err := p.gw.ObjectExists(ctx, p.bucket, strings.TrimPrefix(final.FilePath, "blob:")); err != nil || !ok {
		t.Errorf("the recording's object %q in the p.bucket: %v %v", final.FilePath, ok, err)
	}
	twRoot := "/2010-04-01/Accounts/" + acc.Sid + "/Recordings/" + sid
	if code, media := rc(t, a, acc, "GET", twRoot+".wav"); code != 200 || int64(len(media)) != final.Size {
		t.Errorf("the recording's media through A: %d, %d bytes; want the final row's %d", code, len(media), final.Size)
	}
	var tw struct {
		Status   string
		Duration string
	}
	if code, body := rc(t, a, acc, "GET", twRoot+".json"); code != 200 || json.Unmarshal(body, &tw) != nil ||
		tw.Status != "completed" || tw.Duration == "" || tw.Duration == "0" {
		t.Errorf("Twilio's view through A: %d %s", code, body)
	}

	// Exactly one terminal callback: A's failed. B's end queued nothing
	// (the settle cleared the kept callback) and its API sends nothing
	// from memory; B checks that within a few 10 ms ticks of its final
	// row, so a completed would have been queued by now: the outbox is
	// watched for 3 s more (two of B's heartbeats, several reconcile
	// passes of both nodes) to see that nothing is.
	watch := time.Now().Add(3 * time.Second)
	for time.Now().Before(watch) {
		if n := count(`SELECT COUNT(*) FROM webhook_outbox`); n != 2 || terminal() != 1 {
			t.Fatalf("%d callbacks queued in all (want 2: in-progress, failed); terminal callbacks received: completed %d, failed %d",
				n, len(byStatus("completed")), len(byStatus("failed")))
		}
		time.Sleep(100 * time.Millisecond)
	}
	reqs, _ := json.Marshal([]hookRequest{failed})
	vr := twilioScriptAt(t, bBase, acc.Sid, acc.AuthToken, map[string]string{"TWILIO_ACTION": "validate", "TWILIO_VALIDATE": string(reqs)})
	if valid, _ := vr["valid"].([]any); len(valid) != 1 || valid[0] != true {
		t.Errorf("validateRequest of the failed callback: %v", vr)
	}
	if strings.Contains(b.output(), "level=ERROR") {
		t.Logf("B's errors:\n%s", grepLines(b.output(), "level=ERROR"))
	}
}
