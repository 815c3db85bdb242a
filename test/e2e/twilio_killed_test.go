package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/nodeari"
)

// TestTwilioCallbackOfKilledNodeAfterRestart: a tapedeck process records
// a call through the npm twilio library with a RecordingStatusCallback
// (in-progress and completed) and is killed (SIGKILL) while recording:
// the completed callback lived only in its memory. Started again, it
// recovers the recording from its disk and queues the completed callback
// with the recording's final row (one transaction), from the callback
// kept in the catalog: the receiver gets it exactly once, signed so that
// the library's validateRequest accepts it.
func TestTwilioCallbackOfKilledNodeAfterRestart(t *testing.T) {
	needTwilioLibrary(t)
	hook := &statusHook{}
	hs := httptest.NewServer(hook)
	defer hs.Close()
	sipPort, httpPort := testutil.FreeSIPPort(t), testutil.FreeTCPPort(t)
	rtpLo, _ := testutil.FreeUDPPortRange(t, 200)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "tapedeck.yaml")
	yaml := testutil.NodeYAML("killed-tw", data, sipPort, httpPort, rtpLo, rtpLo+199) + `catalog:
  reconcile_interval_seconds: 1
webhook:
  allow: [127.0.0.1]
  backoff_seconds: 1
dialplan:
  - exten: _5XX
    app: Stasis(twkill)
`
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	start := func() *clusterProc { return startReady(t, cfg, base, 30*time.Second) }
	proc := start()

	// The default account and a token of its own.
	out, err := exec.Command(tapedeckBin(t), "accounts", "-config", cfg, "list").CombinedOutput()
	if err != nil {
		t.Fatalf("accounts list: %v %s", err, out)
	}
	accSid := strings.Fields(string(out))[0]
	if out, err = exec.Command(tapedeckBin(t), "accounts", "-config", cfg, "rotate", accSid).CombinedOutput(); err != nil {
		t.Fatalf("accounts rotate: %v %s", err, out)
	}
	token := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), accSid))
	script := func(env map[string]string) nodeari.Line {
		t.Helper()
		return twilioScriptAt(t, base, accSid, token, env)
	}
	ari := func(path string, v any) int {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/ari"+path, nil)
		req.SetBasicAuth("asterisk", "asterisk")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		_ = json.Unmarshal(b, v)
		return res.StatusCode
	}

	// An application that answers the call (and nothing more).
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(base, "http://", "ws://", 1)+"/ari/events?app=twkill&api_key=asterisk:asterisk", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	go func() {
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			var ev struct {
				Type    string
				Channel struct{ ID string }
			}
			if json.Unmarshal(b, &ev) == nil && ev.Type == "StasisStart" {
				req, _ := http.NewRequest("POST", base+"/ari/channels/"+ev.Channel.ID+"/answer", nil)
				req.SetBasicAuth("asterisk", "asterisk")
				if res, err := http.DefaultClient.Do(req); err == nil {
					res.Body.Close()
				}
			}
		}
	}()

	pLo, pHi := testutil.FreeUDPPortRange(t, 100)
	phone, err := sipua.New(sipua.Options{User: "twkill", RTPMin: pLo, RTPMax: pHi})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	call, err := phone.Dial(ctx, fmt.Sprintf("sip:500@127.0.0.1:%d", sipPort), sipua.CallOptions{})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	audioCtx, stopAudio := context.WithCancel(ctx)
	defer stopAudio()
	go func() { _ = call.SendAudio(audioCtx, sine(440, 8000*60, 8000)) }()
	var chans []struct{ ID string }
	testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, func() bool {
		return ari("/channels", &chans) == 200 && len(chans) == 1
	}, "the call's channel: %v", chans)
	var v struct{ Value string }
	if code := ari("/channels/"+chans[0].ID+"/variable?variable=CALLSID", &v); code != 200 || v.Value == "" {
		t.Fatalf("CALLSID: %d %v", code, v)
	}
	callSid := v.Value

	cbURL := hs.URL + "/status?run=killed"
	params, _ := json.Marshal(map[string]any{"recordingStatusCallback": cbURL, "recordingStatusCallbackMethod": "POST",
		"recordingStatusCallbackEvent": []string{"in-progress", "completed"}})
	l := script(map[string]string{"TWILIO_CALL_SID": callSid, "TWILIO_ACTION": "create", "TWILIO_PARAMS": string(params)})
	sid, _ := l["sid"].(string)
	if !meta.IsRecordingSid(sid) || l["status"] != "in-progress" {
		t.Fatalf("create: %v", l)
	}
	byStatus := func(status string) []hookRequest {
		var out []hookRequest
		for _, q := range hook.requests() {
			if q.Params["RecordingSid"] == sid && q.Params["RecordingStatus"] == status {
				out = append(out, q)
			}
		}
		return out
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "tapedeck.db")+"?_busy_timeout=10000&mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func(q string, args ...any) int {
		var n int
		if err := db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
			return -1
		}
		return n
	}
	// in-progress delivered and settled delivered (killed before, it
	// would be sent again after the restart); some audio on disk.
	testutil.Eventually(t, 20*time.Second, 50*time.Millisecond, func() bool {
		return len(byStatus("in-progress")) == 1 && count(`SELECT COUNT(*) FROM webhook_outbox WHERE status <> 'delivered'`) == 0
	}, "the in-progress callback delivered:\n%s", proc.output())
	testutil.Eventually(t, 20*time.Second, 50*time.Millisecond, func() bool {
		files, _ := filepath.Glob(filepath.Join(data, "recording", "twilio", callSid, "*.wav"))
		if len(files) != 1 {
			return false
		}
		st, err := os.Stat(files[0])
		return err == nil && st.Size() > 44+2*8000
	}, "the recording holds no audio yet")

	stopAudio()
	if err := proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-proc.done
	if n := len(byStatus("completed")); n != 0 {
		t.Fatalf("%d completed callbacks before the restart", n)
	}
	hctx, hcancel := context.WithTimeout(ctx, 2*time.Second)
	_ = call.Hangup(hctx) // no answer from the dead process; the phone lets go
	hcancel()

	proc = start()
	testutil.Eventually(t, 30*time.Second, 50*time.Millisecond, func() bool {
		return len(byStatus("completed")) >= 1
	}, "no completed callback after the restart:\n%s", proc.output())
	// Settled: the outbox has nothing left, the row is final; the
	// reconcile passes that follow queue nothing more.
	testutil.Eventually(t, 20*time.Second, 50*time.Millisecond, func() bool {
		return count(`SELECT COUNT(*) FROM webhook_outbox WHERE status <> 'delivered'`) == 0 &&
			count(`SELECT COUNT(*) FROM recordings WHERE sid = ? AND status = 'recovered'`, sid) == 1
	}, "the recording not recovered, or its callback not settled delivered:\n%s", proc.output())
	if n := count(`SELECT COUNT(*) FROM webhook_outbox`); n != 2 {
		t.Errorf("%d callbacks queued in all, want 2 (in-progress, completed)", n)
	}
	if n := len(byStatus("completed")); n != 1 {
		t.Errorf("%d completed callbacks, want exactly one", n)
	}
	done := byStatus("completed")[0]
	p := done.Params
	if done.URL != cbURL || p["AccountSid"] != accSid || p["CallSid"] != callSid || p["RecordingSource"] != "StartCallRecordingAPI" ||
		p["RecordingDuration"] == "" || p["RecordingDuration"] == "0" || done.Signature == "" ||
		!strings.HasSuffix(p["RecordingUrl"], "/2010-04-01/Accounts/"+accSid+"/Recordings/"+sid) {
		t.Errorf("completed callback %s %s %v (signature %q)", done.Method, done.URL, p, done.Signature)
	}
	reqs, _ := json.Marshal([]hookRequest{done})
	vr := script(map[string]string{"TWILIO_ACTION": "validate", "TWILIO_VALIDATE": string(reqs)})
	if valid, _ := vr["valid"].([]any); len(valid) != 1 || valid[0] != true {
		t.Errorf("validateRequest of the completed callback: %v", vr)
	}
}
