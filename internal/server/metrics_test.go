package server

import (
	"bufio"
	"context"
	"database/sql"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sipua"
)

// scrape reads /metrics into series ("name{labels}") -> value.
func scrape(t *testing.T, srv *Server, user, pass string) map[string]float64 {
	t.Helper()
	code, _, body := get(t, "http://"+srv.HTTPAddr()+"/metrics", user, pass)
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// sumPrefix adds the series whose name (with labels) starts with p.
func sumPrefix(m map[string]float64, p string) float64 {
	var s float64
	for k, v := range m {
		if strings.HasPrefix(k, p) {
			s += v
		}
	}
	return s
}

// TestMetricsMoveWithACall: a real SIP call with RTP audio into the Record()
// route moves the call, setup, recording, RTP and HTTP figures; while it is
// up it is counted active.
func TestMetricsMoveWithACall(t *testing.T) {
	srv := newServer(t)
	before := scrape(t, srv, "", "")
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "tapedeck_recording_uploads_pending", "tapedeck_ari_websocket_clients"} {
		if _, ok := before[name]; !ok {
			t.Errorf("%s missing from /metrics", name)
		}
	}
	if free := sumPrefix(before, "tapedeck_recordings_disk_free_bytes{"); free <= 0 {
		t.Errorf("disk free under the recordings root: %v", free)
	}

	phone := newPhone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call, err := phone.Dial(ctx, sipua.Target("2001", srv.SIPAddr()), sipua.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	audio := make([]int16, 8000) // 1 s: 50 packets of 20 ms
	for i := range audio {
		audio[i] = int16(4000 - 8000*(i/10%2))
	}
	if err := call.SendAudio(ctx, audio); err != nil {
		t.Fatal(err)
	}
	var during map[string]float64
	poll(t, 5*time.Second, "the call's packets counted while it is up", func() bool {
		during = scrape(t, srv, "", "")
		return during["tapedeck_rtp_packets_received_total"]-before["tapedeck_rtp_packets_received_total"] >= 45
	})
	if during["tapedeck_calls_active"] != before["tapedeck_calls_active"]+1 {
		t.Errorf("calls_active during the call: %v, before %v", during["tapedeck_calls_active"], before["tapedeck_calls_active"])
	}
	if during["tapedeck_recordings_active"] < 1 {
		t.Errorf("recordings_active during the call: %v", during["tapedeck_recordings_active"])
	}
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	const answered = `tapedeck_calls_total{result="answered"}`
	var after map[string]float64
	poll(t, 5*time.Second, "the call counted as answered", func() bool {
		after = scrape(t, srv, "", "")
		return after[answered] == before[answered]+1
	})
	checks := []struct {
		series string
		min    float64
	}{
		{"tapedeck_call_setup_seconds_count", 1},
		{"tapedeck_recordings_finished_total", 1},
		{"tapedeck_recording_audio_bytes_total", 2 * 7000},
		{"tapedeck_rtp_packets_received_total", 45},
		{"tapedeck_rtp_call_jitter_seconds_count", 1},
		{`tapedeck_call_hangups_total{cause="Normal Clearing"}`, 1},
		{`tapedeck_http_requests_total{code="200",method="get",route="/metrics"}`, 2},
	}
	for _, c := range checks {
		if d := after[c.series] - before[c.series]; d < c.min {
			t.Errorf("%s moved by %v, want at least %v", c.series, d, c.min)
		}
	}
	if after["tapedeck_calls_active"] != before["tapedeck_calls_active"] {
		t.Errorf("calls_active after the call: %v, before %v", after["tapedeck_calls_active"], before["tapedeck_calls_active"])
	}
	// The RTP total does not fall back when the call's figures move from
	// live to ended.
	if after["tapedeck_rtp_packets_received_total"] < during["tapedeck_rtp_packets_received_total"] {
		t.Errorf("RTP packets fell from %v to %v at hangup", during["tapedeck_rtp_packets_received_total"], after["tapedeck_rtp_packets_received_total"])
	}
}

// TestMetricsAuth: with http.metrics_auth, /metrics needs ARI credentials.
func TestMetricsAuth(t *testing.T) {
	srv := newServer(t, func(c *config.Config) { c.HTTP.MetricsAuth = true })
	if code, _, _ := get(t, "http://"+srv.HTTPAddr()+"/metrics", "", ""); code != 401 {
		t.Errorf("without credentials: %d", code)
	}
	if m := scrape(t, srv, "asterisk", "asterisk"); len(m) == 0 {
		t.Error("empty scrape with credentials")
	}
}

// TestReadyzReasons: /readyz is 503 with the reason when disk space is
// below http.min_free_disk_mb, when the recordings root is not writable
// and when the catalog database does not answer or has lost its tables;
// /healthz stays 200.
func TestReadyzReasons(t *testing.T) {
	srv := newServer(t)
	url := "http://" + srv.HTTPAddr() + "/readyz"
	if code, _, body := get(t, url, "", ""); code != 200 || body != "ready\n" {
		t.Fatalf("fresh server: %d %q", code, body)
	}
	srv.minFreeDiskMB.Store(1 << 40) // an exabyte (the readiness loop reads it too)
	if code, _, body := get(t, url, "", ""); code != 503 || !strings.Contains(body, "http.min_free_disk_mb") {
		t.Errorf("disk below the threshold: %d %q", code, body)
	}
	srv.minFreeDiskMB.Store(0)
	if os.Geteuid() != 0 { // root writes anywhere
		root := srv.cfg.RecordingsDir()
		if err := os.Chmod(root, 0o500); err != nil {
			t.Fatal(err)
		}
		code, _, body := get(t, url, "", "")
		os.Chmod(root, 0o700)
		if code != 503 || !strings.Contains(body, "recordings root") {
			t.Errorf("read-only recordings root: %d %q", code, body)
		}
	}
	// A database that answers without the catalog's tables (renamed by
	// another connection) makes the node unready too, and ready again when
	// they are back.
	db, err := sql.Open("sqlite", "file:"+srv.cfg.DatabasePath()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`ALTER TABLE accounts RENAME TO accounts_gone`); err != nil {
		t.Fatal(err)
	}
	if code, _, body := get(t, url, "", ""); code != 503 || !strings.Contains(body, "catalog database") {
		t.Errorf("catalog without its accounts table: %d %q", code, body)
	}
	if _, err := db.Exec(`ALTER TABLE accounts_gone RENAME TO accounts`); err != nil {
		t.Fatal(err)
	}
	if code, _, body := get(t, url, "", ""); code != 200 {
		t.Errorf("accounts table back: %d %q", code, body)
	}
	srv.meta.Close()
	if code, _, body := get(t, url, "", ""); code != 503 || !strings.Contains(body, "catalog database") {
		t.Errorf("closed database: %d %q", code, body)
	}
	if code, _, _ := get(t, "http://"+srv.HTTPAddr()+"/healthz", "", ""); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
}
