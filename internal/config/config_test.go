package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestDefaultsMatchDesign(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.SIP.Listen != "127.0.0.1:5060" || c.HTTP.Listen != "127.0.0.1:8088" || c.DataDir != "./data" {
		t.Fatalf("defaults %+v", c)
	}
	if strings.Join(c.SIP.Transports, ",") != "udp,tcp" {
		t.Fatalf("transports %v", c.SIP.Transports)
	}
	u := c.ARICredentials()
	if len(u) != 1 || u[0].Name != "asterisk" || u[0].Password != "asterisk" {
		t.Fatalf("loopback default credentials %v", u)
	}
}

func TestDefaultUserOnlyOnLoopback(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:8088", "192.0.2.1:8088", "[::]:8088"} {
		c := Default()
		c.HTTP.Listen = listen
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "ari.users") {
			t.Errorf("%s: err = %v", listen, err)
		}
		if len(c.ARICredentials()) != 0 {
			t.Errorf("%s: default credentials offered", listen)
		}
	}
	c := Default()
	c.HTTP.Listen = "[::1]:8088"
	if err := c.Validate(); err != nil || len(c.ARICredentials()) != 1 {
		t.Errorf("::1 is loopback: %v", err)
	}
}

func TestSampleConfig(t *testing.T) {
	c, err := Load("../../config-sample.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"_3XX": "Stasis(vm-record,${EXTEN})", "1000": "Stasis(channel-tones)", "1001": "Stasis(channel-playback-monkeys)", "2001": "Record(calls/${EXTEN}-${UNIQUEID},wav)"}
	for _, r := range c.Dialplan {
		if want[r.Exten] != r.App {
			t.Errorf("route %s -> %s", r.Exten, r.App)
		}
		delete(want, r.Exten)
	}
	if len(want) != 0 {
		t.Errorf("sample lacks routes %v", want)
	}
}

func TestStrictYAML(t *testing.T) {
	c := Default()
	if err := Parse([]byte("sip:\n  listne: x\n"), &c); err == nil {
		t.Fatal("unknown key accepted")
	}
	if err := Parse([]byte(""), &c); err != nil {
		t.Fatalf("empty file: %v", err)
	}
	if err := Parse([]byte("rtp:\n  port_min: 3000\n"), &c); err != nil || c.RTP.PortMin != 3000 || c.RTP.PortMax != 20000 {
		t.Fatalf("partial file must keep other defaults: %v %+v", err, c.RTP)
	}
}

func TestValidateErrors(t *testing.T) {
	c := Default()
	c.SIP.Transports = []string{"sctp"}
	c.RTP.PortMin, c.RTP.PortMax = 20000, 10000
	c.RTP.Codecs = []string{"opus"}
	c.Log.Level = "loud"
	err := c.Validate()
	for _, want := range []string{"sctp", "port range", "opus", "loud"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

func TestEnvOverrides(t *testing.T) {
	c := Default()
	env := map[string]string{"TAPEDECK_SIP_LISTEN": "127.0.0.1:5070", "TAPEDECK_RTP_PORTS": "30000-30100", "TAPEDECK_DATA_DIR": "/tmp/x"}
	if err := ApplyEnv(&c, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.SIP.Listen != "127.0.0.1:5070" || c.RTP.PortMin != 30000 || c.RTP.PortMax != 30100 || c.DataDir != "/tmp/x" {
		t.Fatalf("%+v", c)
	}
	if err := ApplyEnv(&c, func(k string) string {
		if k == "TAPEDECK_RTP_PORTS" {
			return "nope"
		}
		return ""
	}); err == nil {
		t.Fatal("bad env accepted")
	}
	_ = os.Getenv
}

// The batched RTP reader: defaults, 0 for goroutine reads, and the checks
// on the two intervals.
func TestReadIntervals(t *testing.T) {
	c := Default()
	if c.RTP.ReadIntervalMs != 100 || c.RTP.StepMs != 10 {
		t.Fatalf("defaults %d / %d ms", c.RTP.ReadIntervalMs, c.RTP.StepMs)
	}
	if err := Parse([]byte("rtp:\n  read_interval_ms: 0\n"), &c); err != nil || c.RTP.ReadIntervalMs != 0 {
		t.Fatalf("explicit 0: %v %d", err, c.RTP.ReadIntervalMs)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("0 (goroutine reads) must be valid: %v", err)
	}
	for _, tc := range []struct {
		read, step int
		want       string
	}{
		{-1, 10, "rtp.read_interval_ms"},
		{5000, 10, "rtp.read_interval_ms"},
		{100, 0, "rtp.step_ms"},
		{100, 40, "rtp.step_ms"},
		{100, 7, "rtp.step_ms"}, // the bridges' 20 ms would drift
		{5, 10, "not a multiple"},
		{100, 20, ""},
		{0, 20, ""},
		{40, 4, ""},
	} {
		c := Default()
		c.RTP.ReadIntervalMs, c.RTP.StepMs = tc.read, tc.step
		err := c.Validate()
		if tc.want == "" && err != nil {
			t.Errorf("%d/%d ms: %v", tc.read, tc.step, err)
		}
		if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%d/%d ms: error %v, want %q", tc.read, tc.step, err, tc.want)
		}
	}
}

// Every recording has a maximum length: four hours unless configured, never
// unlimited; a Record() route may lower it for its calls.
func TestRecordingMaxDuration(t *testing.T) {
	c := Default()
	if c.Recording.MaxDurationSeconds != 4*60*60 {
		t.Fatalf("default recording.max_duration_seconds %d", c.Recording.MaxDurationSeconds)
	}
	var y Config = Default()
	if err := Parse([]byte("recording:\n  max_duration_seconds: 600\ndialplan:\n  - exten: \"2001\"\n    app: Record(calls/x,wav)\n    max_duration_seconds: 60\n"), &y); err != nil {
		t.Fatal(err)
	}
	if err := y.Validate(); err != nil || y.Recording.MaxDurationSeconds != 600 || y.Dialplan[0].MaxDurationSeconds != 60 {
		t.Fatalf("parsed %+v %+v: %v", y.Recording, y.Dialplan, err)
	}
	for name, tc := range map[string]struct {
		global int
		route  Route
		want   string
	}{
		"unlimited":          {0, Route{Exten: "1", App: "Record(x)"}, "recording.max_duration_seconds"},
		"negative":           {-1, Route{Exten: "1", App: "Record(x)"}, "recording.max_duration_seconds"},
		"route negative":     {60, Route{Exten: "1", App: "Record(x)", MaxDurationSeconds: -5}, "negative"},
		"route above global": {60, Route{Exten: "1", App: "Record(x)", MaxDurationSeconds: 61}, "exceeds"},
		"route not Record":   {60, Route{Exten: "1", App: "Stasis(x)", MaxDurationSeconds: 10}, "only Record()"},
	} {
		c := Default()
		c.Recording.MaxDurationSeconds = tc.global
		c.Dialplan = []Route{tc.route}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
}

func TestSoundsHTTPAllow(t *testing.T) {
	c := Default()
	if err := Parse([]byte("sounds:\n  http_allow: [\"127.0.0.1:8000\", \"10.0.0.0/8\", media.example.com]\n"), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil || len(c.Sounds.HTTPAllow) != 3 {
		t.Fatalf("valid allow-list: %v %v", err, c.Sounds.HTTPAllow)
	}
	c.Sounds.HTTPAllow = []string{"http://127.0.0.1/"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "sounds.http_allow") {
		t.Fatalf("bad entry: err = %v", err)
	}
}

func TestAllowedOrigins(t *testing.T) {
	c := Default()
	c.ARI.AllowedOrigins = []string{"*", "https://app.example.com", "http://localhost:3000/"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"app.example.com", "https://app.example.com/path", "https://u:p@x.example", ""} {
		c.ARI.AllowedOrigins = []string{bad}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "ari.allowed_origins") {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
}

func TestWebSocketClients(t *testing.T) {
	c := Default()
	c.ARI.WebSocketClients = []WebSocketClient{{ID: "bot", URI: "ws://127.0.0.1:9000/media"}, {ID: "tls", URI: "wss://bot.example.com/m"}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]WebSocketClient{
		{{URI: "ws://x/"}},
		{{ID: "a", URI: "http://x/"}},
		{{ID: "a", URI: "ws://"}},
		{{ID: "a", URI: "ws://x/"}, {ID: "a", URI: "ws://y/"}},
	} {
		c := Default()
		c.ARI.WebSocketClients = bad
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "ari.websocket_clients") {
			t.Errorf("%+v: %v, want an ari.websocket_clients error", bad, err)
		}
	}
}

func TestAudioSocketBatch(t *testing.T) {
	for _, ok := range []int{0, 20, 100, 1000} {
		c := Default()
		c.ARI.AudioSocketBatchMs = ok
		if err := c.Validate(); err != nil {
			t.Errorf("audiosocket_batch_ms %d: %v", ok, err)
		}
	}
	for _, bad := range []int{-20, 10, 30, 1020} {
		c := Default()
		c.ARI.AudioSocketBatchMs = bad
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "ari.audiosocket_batch_ms") {
			t.Errorf("audiosocket_batch_ms %d: %v, want an ari.audiosocket_batch_ms error", bad, err)
		}
	}
}

// TestNodeLostSeconds: catalog.node_lost_seconds defaults to 300 s, -1 is
// never, and one shorter than webhook.node_dead_seconds (whose third is
// the heartbeat period) is refused: a live node would be taken for lost.
func TestNodeLostSeconds(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil || c.NodeLostAfter() != 300*time.Second {
		t.Fatalf("default: %v, %v", c.NodeLostAfter(), err)
	}
	c.Catalog.NodeLostSeconds = -1
	if err := c.Validate(); err != nil || c.NodeLostAfter() != 0 {
		t.Fatalf("-1: %v, %v", c.NodeLostAfter(), err)
	}
	for _, tc := range []struct{ lost, dead int }{{-2, 0}, {20, 0}, {5, 10}} {
		c := Default()
		c.Catalog.NodeLostSeconds, c.Webhook.NodeDeadSeconds = tc.lost, tc.dead
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "catalog.node_lost_seconds") {
			t.Errorf("node_lost_seconds %d, node_dead_seconds %d: %v", tc.lost, tc.dead, err)
		}
	}
	c = Default()
	c.Catalog.NodeLostSeconds, c.Webhook.NodeDeadSeconds = 3, 3
	if err := c.Validate(); err != nil || c.NodeLostAfter() != 3*time.Second {
		t.Fatalf("3 s with node_dead_seconds 3: %v, %v", c.NodeLostAfter(), err)
	}
}

// TestTwilioMaxRecordingsPerCall: twilio.max_recordings_per_call defaults
// to one recording of a call at a time, -1 is no bound, below -1 is
// refused; the sample configuration states it.
func TestTwilioMaxRecordingsPerCall(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil || c.Twilio.MaxRecordingsPerCall != 0 {
		t.Fatalf("default: %d, %v", c.Twilio.MaxRecordingsPerCall, err)
	}
	for _, in := range []int{-1, 1, 3} {
		c := Default()
		c.Twilio.MaxRecordingsPerCall = in
		if err := c.Validate(); err != nil {
			t.Errorf("%d: %v", in, err)
		}
	}
	c.Twilio.MaxRecordingsPerCall = -2
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "twilio.max_recordings_per_call") {
		t.Errorf("-2: %v, want a twilio.max_recordings_per_call error", err)
	}
	s, err := Load("../../config-sample.yaml")
	if err != nil || s.Twilio.MaxRecordingsPerCall != 1 {
		t.Errorf("config-sample.yaml: twilio.max_recordings_per_call %d, %v; want it stated as 1", s.Twilio.MaxRecordingsPerCall, err)
	}
}
