package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/nodeari"
)

// ariGet is GET /ari/path on base with the default credentials.
func ariGet(t *testing.T, base, path string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/ari"+path, nil)
	req.SetBasicAuth("asterisk", "asterisk")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, body
}

// TestClusterProcesses: two tapedeck processes on one PostgreSQL database
// and one NATS server (a subject prefix and names unique to the run). An
// unmodified npm ari-client application connected to node A only answers
// and records a call that lands on node B: Stasis(app) on B finds the
// application on A, the events and requests travel over NATS, and the
// recording is B's.
func TestClusterProcesses(t *testing.T) {
	url := os.Getenv("TAPEDECK_TEST_NATS_URL")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	nc, err := nats.Connect(url, nats.Timeout(3*time.Second))
	if err != nil {
		testutil.SkipOrFail(t, "SKIP NATS test: %s unreachable (%v); start nats-server -js or set TAPEDECK_TEST_NATS_URL", url, err)
	}
	nc.Close()
	dsn := freshPGDatabase(t)
	r := make([]byte, 4)
	rand.Read(r)
	run := hex.EncodeToString(r)
	app := "proc" + run
	type node struct{ id, base, sip, cfg, data string }
	var nodes [2]node
	for i, id := range []string{"pa" + run, "pb" + run} {
		sipPort, httpPort := testutil.FreeSIPPort(t), testutil.FreeTCPPort(t)
		rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 200)
		cfg, data := filepath.Join(t.TempDir(), "tapedeck.yaml"), t.TempDir()
		yaml := testutil.NodeYAML(id, data, sipPort, httpPort, rtpLo, rtpHi) + fmt.Sprintf(`catalog:
  database: %q
  token_key: %s
nats:
  url: %s
  prefix: %s
dialplan:
  - exten: _3XX
    app: Stasis(%s,${EXTEN})
`, dsn, "cluster-test-"+run, url, "p"+run+".ari.", app)
		if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		nodes[i] = node{id: id, base: fmt.Sprintf("http://127.0.0.1:%d", httpPort), sip: fmt.Sprintf("127.0.0.1:%d", sipPort), cfg: cfg, data: data}
		startBinary(t, "-config", cfg)
		waitHTTP(t, nodes[i].base)
	}
	a, b := nodes[0], nodes[1]
	name := "cluster/proc-" + run
	proc := nodeari.Start(t, "cluster-record.js", map[string]string{
		"ARI_URL": a.base, "ARI_APP": app, "REC_NAME": name, "RECORD_MS": "1500", "TIMEOUT_MS": "40000",
	})
	if _, err := proc.WaitLine("READY", 20*time.Second); err != nil {
		t.Fatalf("ari-client did not connect to A: %v\n%s", err, proc.Output())
	}
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
		code, _ := ariGet(t, b.base, "/applications/"+app)
		return code == 200
	}, "B knows the application connected to A")

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	phone, err := sipua.New(sipua.Options{User: "cluster", RTPMin: rtpLo, RTPMax: rtpHi})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { phone.Close() })
	call, err := phone.Dial(ctx, sipua.Target("301", b.sip), sipua.CallOptions{})
	if err != nil {
		t.Fatalf("dial B: %v\n%s", err, proc.Output())
	}
	if _, err := proc.WaitLine("RECORDING", 10*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, proc.Output())
	}
	go func() { _ = call.SendAudio(ctx, clusterTone(8*3000, 440)) }()
	select {
	case <-call.Ended():
	case <-time.After(20 * time.Second):
		t.Fatalf("no BYE from the app on A:\n%s", proc.Output())
	}
	if err := proc.Wait(10 * time.Second); err != nil {
		t.Fatalf("app: %v\n%s", err, proc.Output())
	}
	var started bool
	for _, l := range proc.Lines() {
		if l["type"] == "StasisStart" {
			ch, _ := l["channel"].(string)
			if !strings.HasPrefix(ch, b.id+"-") {
				t.Fatalf("StasisStart %v: want a channel of B (%s-...)", l, b.id)
			}
			started = true
		}
	}
	if !started {
		t.Fatalf("no StasisStart:\n%s", proc.Output())
	}
	// B made and stored it (without S3 the file stays on B's disk).
	code, body := ariGet(t, b.base, "/recordings/stored/"+strings.ReplaceAll(name, "/", "%2F"))
	var rec struct{ Name, Format string }
	_ = json.Unmarshal(body, &rec)
	if code != 200 || rec.Name != name || rec.Format != "wav" {
		t.Fatalf("B's stored recording %s: %d %s", name, code, body)
	}
	code, wav := ariGet(t, b.base, "/recordings/stored/"+strings.ReplaceAll(name, "/", "%2F")+"/file")
	if code != 200 || len(wav) < 16000 {
		t.Fatalf("B's file: %d, %d bytes; want over a second of audio", code, len(wav))
	}

	// Listed, downloaded and deleted through A, though the file is on B's
	// disk: A relays to B over NATS (ARI, Restcomm and Twilio media).
	onB := filepath.Join(b.data, "recording", name+".wav")
	if f, err := os.ReadFile(onB); err != nil || !bytes.Equal(f, wav) {
		t.Fatalf("B's file %s on its disk: %d bytes, %v", onB, len(f), err)
	}
	if code, body := ariGet(t, a.base, "/recordings/stored"); code != 200 || !strings.Contains(string(body), `"name":"`+name+`"`) {
		t.Fatalf("A's /recordings/stored: %d %s", code, body)
	}
	if code, fromA := ariGet(t, a.base, "/recordings/stored/"+strings.ReplaceAll(name, "/", "%2F")+"/file"); code != 200 || !bytes.Equal(fromA, wav) {
		t.Fatalf("B's file through A: %d, %d bytes; want B's %d", code, len(fromA), len(wav))
	}
	sid, _, _ := strings.Cut(mustCLI(t, "accounts", "-config", a.cfg, "list"), " ")
	rotated := strings.Fields(mustCLI(t, "accounts", "-config", a.cfg, "rotate", sid))
	if len(rotated) != 2 {
		t.Fatalf("accounts rotate: %q", rotated)
	}
	var recSid string
	for _, api := range []string{"/restcomm/2012-04-24", "/2010-04-01"} {
		get := func(path string) (int, []byte) {
			req, _ := http.NewRequest("GET", a.base+api+"/Accounts/"+sid+path, nil)
			req.SetBasicAuth(sid, rotated[1])
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			return res.StatusCode, body
		}
		if recSid == "" {
			code, body := get("/Recordings.json")
			var list struct {
				Recordings []struct{ Sid string } `json:"recordings"`
			}
			if err := json.Unmarshal(body, &list); code != 200 || err != nil || len(list.Recordings) != 1 {
				t.Fatalf("Restcomm list through A: %d %s", code, body)
			}
			recSid = list.Recordings[0].Sid
		}
		if code, media := get("/Recordings/" + recSid + ".wav"); code != 200 || !bytes.Equal(media, wav) {
			t.Fatalf("%s media of B's recording through A: %d, %d bytes", api, code, len(media))
		}
	}
	req, _ := http.NewRequest("DELETE", a.base+"/ari/recordings/stored/"+strings.ReplaceAll(name, "/", "%2F"), nil)
	req.SetBasicAuth("asterisk", "asterisk")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 204 {
		t.Fatalf("ARI delete of B's recording through A: %d", res.StatusCode)
	}
	if _, err := os.Stat(onB); !os.IsNotExist(err) {
		t.Fatalf("B's file after the delete through A: %v", err)
	}
	if code, _ := ariGet(t, b.base, "/recordings/stored/"+strings.ReplaceAll(name, "/", "%2F")); code != 404 {
		t.Fatalf("B's stored recording after the delete through A: %d", code)
	}
}

// clusterTone is n samples of f Hz at 8 kHz.
func clusterTone(n int, f float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(8000 * math.Sin(2*math.Pi*f*float64(i)/8000))
	}
	return out
}
