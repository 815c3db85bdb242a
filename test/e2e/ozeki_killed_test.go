package e2e

import (
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/baresip"
	"github.com/tapedeck/tapedeck/internal/webhook"
)

// TestOzekiRecordCompletedOfKilledNodeAfterRestart: a tapedeck process
// records a real call (baresip, its 440 Hz microphone) with an Ozeki
// Record command and a FinishedUrl, and is killed (SIGKILL) while
// recording: before, RecordCompleted lived only in its memory until the
// recording ended, and the restart sent none. Started again, it recovers
// the recording from its disk and queues RecordCompleted with the
// recording's final row (one transaction), from the FinishedUrl kept with
// the row since the Record: the receiver gets it exactly once, signed,
// with the call's id, the format, the reason (interrupted) and a RecordURL
// that downloads the call's audio.
func TestOzekiRecordCompletedOfKilledNodeAfterRestart(t *testing.T) {
	recv := startReceiver(t)
	sipPort, httpPort, ozPort := testutil.FreeSIPPort(t), testutil.FreeTCPPort(t), testutil.FreeTCPPort(t)
	rtpLo, _ := testutil.FreeUDPPortRange(t, 200)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "tapedeck.yaml")
	yaml := testutil.NodeYAML("killed-oz", data, sipPort, httpPort, rtpLo, rtpLo+199) + fmt.Sprintf(`catalog:
  reconcile_interval_seconds: 1
ozeki:
  listen: 127.0.0.1:%d
  users:
    - username: HTTP_User_1
      password: qwe123
webhook:
  allow: [127.0.0.1]
  secret: s3cret
  backoff_seconds: 1
dialplan:
  - exten: _5XX
    app: Wait(60)
`, ozPort)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	api := fmt.Sprintf("http://127.0.0.1:%d/api?Username=HTTP_User_1&Password=qwe123&command=", ozPort)
	start := func() *clusterProc { return startReady(t, cfg, base, 60*time.Second) }
	get := func(u string) (int, string) {
		res, err := http.Get(u)
		if err != nil {
			return 0, err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	proc := start()

	phone := baresip.Start(t, baresip.Options{User: "ozkill"})
	if err := phone.Dial(fmt.Sprintf("sip:500@127.0.0.1:%d", sipPort)); err != nil {
		t.Fatal(err)
	}
	var id string
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
		_, body := get(api + "ListActiveCalls")
		r := parseOz(t, body)
		if r.Code != 200 || len(r.ActiveCalls.Calls) != 1 {
			return false
		}
		id = r.ActiveCalls.Calls[0].CallID
		return true
	}, "no active call:\n%s", proc.output())
	finished := recv.url("/record_finished")
	if code, body := get(api + "Record&Format=wav&CallId=" + url.QueryEscape(id) + "&FinishedUrl=" + url.QueryEscape(finished)); code != 200 || parseOz(t, body).Code != 200 {
		t.Fatalf("Record: %d %s", code, body)
	}
	if _, err := phone.WaitEvent("CALL_ESTABLISHED", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// Two seconds of the caller's audio on disk, then the kill.
	testutil.Eventually(t, 20*time.Second, 50*time.Millisecond, func() bool {
		files, _ := filepath.Glob(filepath.Join(data, "recording", "HttpRecordings", "*.wav"))
		if len(files) != 1 {
			return false
		}
		st, err := os.Stat(files[0])
		return err == nil && st.Size() > 44+2*2*8000
	}, "the recording holds no audio yet:\n%s", proc.output())
	if err := proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-proc.done
	if n := recv.count("RecordCompleted"); n != 0 {
		t.Fatalf("%d RecordCompleted before the restart", n)
	}
	_ = phone.Hangup() // the dead process does not answer; the phone lets go

	proc = start()
	p := recv.waitPost("RecordCompleted", 30*time.Second)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "tapedeck.db")+"?_busy_timeout=10000&mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func(q string, args ...any) int {
		var n int
		if err := db.QueryRow(q, args...).Scan(&n); err != nil {
			return -1
		}
		return n
	}
	// Settled: the row is final with its end reason, the outbox has
	// nothing left; the reconcile passes that follow queue nothing more.
	testutil.Eventually(t, 20*time.Second, 50*time.Millisecond, func() bool {
		return count(`SELECT COUNT(*) FROM webhook_outbox WHERE status <> 'delivered'`) == 0 &&
			count(`SELECT COUNT(*) FROM recordings WHERE status = 'recovered' AND end_reason = 'interrupted' AND source = 'command' AND status_callback = ''`) == 1
	}, "the recording not recovered with its end reason, or its RecordCompleted not settled delivered:\n%s", proc.output())
	if n := count(`SELECT COUNT(*) FROM webhook_outbox WHERE kind = 'RecordCompleted'`); n != 1 {
		t.Errorf("%d RecordCompleted queued, want 1", n)
	}
	if n := recv.count("RecordCompleted"); n != 1 {
		t.Errorf("%d RecordCompleted delivered, want exactly one", n)
	}
	f := p.Form
	if p.Path != "/record_finished" || f.Get("CallId") != id || f.Get("Format") != "wav" || f.Get("Reason") != "interrupted" ||
		f.Get("State") != "done" {
		t.Fatalf("RecordCompleted %s %v", p.Path, f)
	}
	if d, err := strconv.Atoi(f.Get("Duration")); err != nil || d < 2 {
		t.Errorf("RecordCompleted Duration %q, want the 2 s or more recorded before the kill", f.Get("Duration"))
	}
	if !webhook.Verify([]byte("s3cret"), p.Header.Get(webhook.SignatureHeader), p.Body, time.Now(), time.Minute) {
		t.Errorf("signature %q does not verify", p.Header.Get(webhook.SignatureHeader))
	}
	if !strings.HasPrefix(f.Get("RecordURL"), fmt.Sprintf("http://127.0.0.1:%d/api/recordings/", ozPort)) {
		t.Fatalf("RecordURL %q is not on the API's listener", f.Get("RecordURL"))
	}
	res, err := http.Get(f.Get("RecordURL"))
	if err != nil {
		t.Fatal(err)
	}
	audio, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("RecordURL: HTTP %d", res.StatusCode)
	}
	pcm := decodeRecording(t, audio, "wav")
	if len(pcm) < 2*8000 {
		t.Fatalf("the recovered recording holds %d samples, want at least 2 s", len(pcm))
	}
	if !dominant(pcm, 440, 1000) || goertzel(pcm, 440) < 1e4 {
		t.Fatalf("the recovered recording lacks baresip's 440 Hz tone (440: %.0f, 1000: %.0f)", goertzel(pcm, 440), goertzel(pcm, 1000))
	}
}
