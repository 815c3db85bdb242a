package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// jsonServer is newServer logging JSON into buf.
func jsonServer(t *testing.T, buf *testutil.SyncBuffer, mutate ...func(*config.Config)) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.SIP.Listen = "127.0.0.1:0"
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.RTP.PortMin, cfg.RTP.PortMax = testutil.FreeUDPPortRange(t, 200)
	cfg.Dialplan = []config.Route{{Exten: "2001", App: "Record(calls/${CALLERID(num)},wav)"}}
	for _, m := range mutate {
		m(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, slog.New(slog.NewJSONHandler(buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// logLines parses the JSON log lines whose msg is one of msgs.
func logLines(t *testing.T, buf *testutil.SyncBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(buf.String(), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

func findLine(lines []map[string]any, msg string) map[string]any {
	for _, l := range lines {
		if l["msg"] == msg {
			return l
		}
	}
	return nil
}

// TestCallLogFollowsTheCall: a recorded call leaves JSON lines when it
// arrives, is answered, starts and finishes its recording and ends, each
// with the same SIP Call-ID, channel id and CallSid and the numbers; the
// last one has the duration, cause and RTP figures.
func TestCallLogFollowsTheCall(t *testing.T) {
	var buf testutil.SyncBuffer
	srv := jsonServer(t, &buf)
	lo, hi := testutil.FreeUDPPortRange(t, 100)
	phone, err := sipua.New(sipua.Options{User: "4155550100", RTPMin: lo, RTPMax: hi, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call, err := phone.Dial(ctx, sipua.Target("2001", srv.SIPAddr()), sipua.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := call.SendAudio(ctx, squareWave(1600)); err != nil {
		t.Fatal(err)
	}
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	poll(t, 5*time.Second, "the end of the call logged", func() bool { return strings.Contains(buf.String(), `"msg":"channel destroyed"`) })
	lines := logLines(t, &buf)
	var ids map[string]any
	for _, msg := range []string{"call arrived", "call answered", "recording started", "recording finished", "channel destroyed"} {
		l := findLine(lines, msg)
		if l == nil {
			t.Errorf("no %q line in\n%s", msg, buf.String())
			continue
		}
		if ids == nil {
			ids = l
			if l["call_id"] == "" || l["channel"] == "" || !strings.HasPrefix(l["call_sid"].(string), "CA") {
				t.Errorf("ids of %q: %v", msg, l)
			}
		}
		for _, k := range []string{"call_id", "channel", "call_sid"} {
			if l[k] != ids[k] {
				t.Errorf("%q: %s %v, first line had %v", msg, k, l[k], ids[k])
			}
		}
		if l["from"] != "4155550100" || l["to"] != "2001" {
			t.Errorf("%q: from %v to %v", msg, l["from"], l["to"])
		}
	}
	if l := findLine(lines, "recording finished"); l != nil && !strings.HasSuffix(l["path"].(string), "calls/4155550100.wav") {
		t.Errorf("recording path: %v", l["path"])
	}
	end := findLine(lines, "channel destroyed")
	if end != nil {
		if end["cause_txt"] != "Normal Clearing" || end["duration_s"].(float64) <= 0 || end["rtp_received"].(float64) < 5 {
			t.Errorf("end of call: %v", end)
		}
	}
}

// TestRecordingWithoutAudioLogged: a recorded call whose caller sends no
// RTP says so in the log.
func TestRecordingWithoutAudioLogged(t *testing.T) {
	var buf testutil.SyncBuffer
	srv := jsonServer(t, &buf)
	phone := newPhone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call, err := phone.Dial(ctx, sipua.Target("2001", srv.SIPAddr()), sipua.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, 5*time.Second, "recording started", func() bool { return strings.Contains(buf.String(), `"msg":"recording started"`) })
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	poll(t, 5*time.Second, "the no-audio warning", func() bool {
		return strings.Contains(buf.String(), `"msg":"recording finished without audio: no RTP reached it"`)
	})
}

// TestFailedLoginLogged: a wrong ARI or Restcomm password is logged with
// the source address.
func TestFailedLoginLogged(t *testing.T) {
	var buf testutil.SyncBuffer
	srv := jsonServer(t, &buf)
	base := "http://" + srv.HTTPAddr()
	if code, _, _ := get(t, base+"/ari/channels", "asterisk", "wrong"); code != 401 {
		t.Fatalf("ARI wrong password: %d", code)
	}
	if code, _, _ := get(t, base+"/restcomm/2012-04-24/Accounts/ACx/Recordings.json", "ACx", "wrong"); code != 401 {
		t.Fatalf("Restcomm wrong token: %d", code)
	}
	var apis []string
	for _, l := range logLines(t, &buf) {
		if l["msg"] == "authentication failed" {
			if !strings.HasPrefix(l["remote"].(string), "127.0.0.1:") {
				t.Errorf("source: %v", l)
			}
			apis = append(apis, l["api"].(string))
		}
	}
	if strings.Join(apis, ",") != "ari,restcomm" {
		t.Errorf("failed logins logged for %v, want ari and restcomm", apis)
	}
}

// TestCDRListedByCallsResource: a call leaves a CDR in the catalog,
// listed by Restcomm's Calls resource with its ids, numbers, status, cause
// and RTP figures.
func TestCDRListedByCallsResource(t *testing.T) {
	var buf testutil.SyncBuffer
	srv := jsonServer(t, &buf)
	lo, hi := testutil.FreeUDPPortRange(t, 100)
	phone, err := sipua.New(sipua.Options{User: "4155550111", RTPMin: lo, RTPMax: hi, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call, err := phone.Dial(ctx, sipua.Target("2001", srv.SIPAddr()), sipua.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := call.SendAudio(ctx, squareWave(1600)); err != nil {
		t.Fatal(err)
	}
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	poll(t, 5*time.Second, "the end of the call logged", func() bool { return strings.Contains(buf.String(), `"msg":"channel destroyed"`) })
	end := findLine(logLines(t, &buf), "channel destroyed")
	acc, err := srv.Catalog().DefaultAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	code, _, body := get(t, "http://"+srv.HTTPAddr()+"/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Calls.json", acc.Sid, acc.AuthToken)
	var list struct {
		Total int `json:"total"`
		Calls []struct {
			Sid, To, From, Status, Direction, Duration string
			SIPCallID                                  string `json:"sip_call_id"`
			ChannelID                                  string `json:"channel_id"`
			AccountSid                                 string `json:"account_sid"`
			Cause                                      int    `json:"hangup_cause"`
			RTPReceived                                int64  `json:"rtp_received"`
		} `json:"calls"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || list.Total != 1 || len(list.Calls) != 1 {
		t.Fatalf("Calls.json: %d %s", code, body)
	}
	c := list.Calls[0]
	if c.Sid != end["call_sid"] || c.SIPCallID != end["call_id"] || c.ChannelID != end["channel"] || c.AccountSid != acc.Sid {
		t.Errorf("ids: %+v, log %v", c, end)
	}
	if c.From != "4155550111" || c.To != "2001" || c.Status != "completed" || c.Direction != "inbound" || c.Cause != 16 || c.RTPReceived < 5 {
		t.Errorf("call: %+v", c)
	}
	if code, _, _ := get(t, "http://"+srv.HTTPAddr()+"/restcomm/2012-04-24/Accounts/"+acc.Sid+"/Calls.json", acc.Sid, "wrong"); code != 401 {
		t.Errorf("wrong token: %d", code)
	}
}

// TestAccessLog: with http.access_log, each request leaves a line with the
// route pattern, status and source; without it, none.
func TestAccessLog(t *testing.T) {
	var buf testutil.SyncBuffer
	srv := jsonServer(t, &buf, func(c *config.Config) { c.HTTP.AccessLog = true })
	get(t, "http://"+srv.HTTPAddr()+"/ari/channels?x=1", "asterisk", "asterisk")
	var found bool
	for _, l := range logLines(t, &buf) {
		if l["msg"] == "http request" && l["route"] == "/ari/" && l["path"] == "/ari/channels" && l["status"] == float64(200) {
			found = strings.HasPrefix(l["remote"].(string), "127.0.0.1:")
		}
	}
	if !found {
		t.Errorf("no access log line for GET /ari/channels:\n%s", buf.String())
	}
	var quiet testutil.SyncBuffer
	srv2 := jsonServer(t, &quiet)
	get(t, "http://"+srv2.HTTPAddr()+"/ari/channels", "asterisk", "asterisk")
	if strings.Contains(quiet.String(), `"msg":"http request"`) {
		t.Error("access log written while off")
	}
}
