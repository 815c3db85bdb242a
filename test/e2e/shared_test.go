package e2e

// Helpers that several tests share: the npm twilio library's set-up and
// calls, a call's CallSid, and waits on a recording's catalog row.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/nodeari"
	"github.com/tapedeck/tapedeck/internal/testutil/versitygw"
)

// needTwilioLibrary skips (fails, in CI) a test that runs the npm twilio
// library when test/node has not installed it.
func needTwilioLibrary(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(testutil.RepoRoot(t), "test", "node", "node_modules", "twilio")); err != nil {
		testutil.SkipOrFail(t, "test/node/node_modules/twilio missing; run scripts/test-deps.sh (npm ci in test/node)")
	}
}

// callSidOf is the CallSid of n's channel id (its CALLSID variable); the
// test fails unless it is a Twilio one (CA…).
func callSidOf(t testing.TB, n *node, id string) string {
	t.Helper()
	_, body := n.do("GET", "/channels/"+id+"/variable?variable=CALLSID", nil)
	var v struct{ Value string }
	_ = json.Unmarshal(body, &v)
	if !strings.HasPrefix(v.Value, "CA") {
		t.Fatalf("CALLSID %q", v.Value)
	}
	return v.Value
}

// twilioScriptAt runs test/node/twilio-live.js once against the tapedeck
// at base, as the account accSid with its token, and returns its result.
func twilioScriptAt(t testing.TB, base, accSid, token string, env map[string]string) nodeari.Line {
	t.Helper()
	env["TWILIO_BASE"], env["TWILIO_ACCOUNT_SID"], env["TWILIO_AUTH_TOKEN"] = base, accSid, token
	p := nodeari.Start(t, "twilio-live.js", env)
	l, err := p.WaitLine("result", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	return l
}

// twilioSetStatus has the npm twilio library, through n, set recording
// rec of callSid (its Sid, or Twilio.CURRENT) to params["status"]; the
// test fails (what) unless the answer is that status for recording sid.
func twilioSetStatus(t *testing.T, n *node, acc meta.Account, callSid, rec, sid string, params map[string]string, what string) {
	t.Helper()
	if l := twilioLive(t, n, acc, callSid, rec, params); l["status"] != params["status"] || l["sid"] != sid {
		t.Fatalf("%s: %v", what, l)
	}
}

// waitRecordingStatus waits (timeout) until n's catalog has the account's
// recording sid in status st, and returns its row.
func waitRecordingStatus(t testing.TB, ctx context.Context, n *node, acc meta.Account, sid string, st meta.Status,
	timeout time.Duration, what string) meta.Recording {
	t.Helper()
	var row meta.Recording
	pollFor(t, timeout, func() bool {
		var err error
		row, err = n.srv.Catalog().Meta.Recording(ctx, acc.Sid, sid)
		return err == nil && row.Status == st
	}, what)
	return row
}

// onlyRecordingInProgress waits (10 s) until the account's one recording
// in n's catalog is in progress with its call's CallSid, and returns it.
func onlyRecordingInProgress(t testing.TB, ctx context.Context, n *node, acc meta.Account, what string) meta.Recording {
	t.Helper()
	var rec meta.Recording
	pollFor(t, 10*time.Second, func() bool {
		page, err := n.srv.Catalog().Meta.ListRecordings(ctx, meta.Query{AccountSid: acc.Sid, Limit: 10, SortBy: meta.SortDateCreated})
		if err != nil || len(page.Items) != 1 {
			return false
		}
		rec = page.Items[0]
		return rec.CallSid != "" && rec.Status == meta.StatusInProgress
	}, what)
	return rec
}

// twilioRecordAlongside: call already has a recording of its own (its
// script's or its dialplan's, kind). The npm twilio library starts an
// inbound recording of callSid through n, pauses, resumes and stops it
// (Twilio.CURRENT names the API's, the only one it controls) with 600 ms
// of audio before the pause and after the resume; the API's recording
// completes in the catalog, the call's, over a second.
func twilioRecordAlongside(t *testing.T, ctx context.Context, n *node, acc meta.Account, call *sipua.Call, callSid, kind string) {
	t.Helper()
	l := twilioLive(t, n, acc, callSid, "", map[string]string{"recordingTrack": "inbound"})
	sid, _ := l["sid"].(string)
	if !meta.IsRecordingSid(sid) || l["status"] != "in-progress" || l["callSid"] != callSid {
		t.Fatalf("start on a %s call: %v", kind, l)
	}
	must(t, call.SendAudio(ctx, sweep(8*600)))
	twilioSetStatus(t, n, acc, callSid, "Twilio.CURRENT", sid, map[string]string{"status": "paused"}, "pause")
	twilioSetStatus(t, n, acc, callSid, "Twilio.CURRENT", sid, map[string]string{"status": "in-progress"}, "resume")
	must(t, call.SendAudio(ctx, sweep(8*600)))
	twilioSetStatus(t, n, acc, callSid, sid, sid, map[string]string{"status": "stopped"}, "stop")
	rec := waitRecordingStatus(t, ctx, n, acc, sid, meta.StatusCompleted, 10*time.Second, "the API's recording completed in the catalog")
	if rec.CallSid != callSid || rec.Duration < 1 {
		t.Errorf("the API's recording: %+v, want the %s call's, over a second", rec, kind)
	}
}

// pgCounter connects to the PostgreSQL catalog dsn for the test's length
// and returns the connection and a function that runs a COUNT query on it.
func pgCounter(t *testing.T, ctx context.Context, dsn string) (*pgx.Conn, func(q string, args ...any) int) {
	t.Helper()
	pg, err := pgConnect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close(context.Background()) })
	return pg, func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := pg.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// lostPair is a cluster of two nodes for the tests of a lost node: A (in
// this process) and B (a tapedeck process of its own, which a test may
// stop or kill) share one fresh PostgreSQL catalog, one NATS server and,
// where asked, one S3 bucket (versitygw). Both reconcile every second,
// count a node lost after 3 s without its heartbeat, send webhooks to
// 127.0.0.1 (hook, an httptest server) backing off 1 s, and give the calls
// to _3XX to the application app, which is connected to A (evA).
type lostPair struct {
	a          *node
	evA        *ariEvents
	b          *clusterProc
	bID, bBase string
	bSIP       int
	app, run   string
	dsn        string
	gw         *versitygw.Server // with S3 only
	bucket     string
	hook       *statusHook
	hookURL    string
}

// newLostPair starts a lostPair; its names start with name (the run's
// random suffix after it), its node ids with idA and idB.
func newLostPair(t *testing.T, name, idA, idB string, s3 bool) *lostPair {
	t.Helper()
	p := &lostPair{hook: &statusHook{}}
	hs := httptest.NewServer(p.hook)
	t.Cleanup(hs.Close)
	p.hookURL = hs.URL
	url, _ := natsURL(t)
	p.dsn = pgFreshDatabase(t)
	var s3YAML string
	if s3 {
		p.gw = versitygw.Shared(t)
		p.bucket = p.gw.NewBucket(t)
		s3YAML = fmt.Sprintf(`  s3:
    endpoint: %s
    access_key: %s
    secret_key: %s
    bucket: %s
`, p.gw.Endpoint(), versitygw.AccessKey, versitygw.SecretKey, p.bucket)
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	p.run = hex.EncodeToString(suffix)
	prefix, key := "t"+p.run+".ari.", name+"-test-"+p.run
	p.app = name + p.run
	p.a = startNode(t, func(c *config.Config) {
		c.NodeID = idA + p.run
		c.NATS.URL, c.NATS.Prefix = url, prefix
		c.Catalog.Database, c.Catalog.TokenKey = p.dsn, key
		if s3 {
			c.Catalog.S3 = config.S3{Endpoint: p.gw.Endpoint(), AccessKey: versitygw.AccessKey, SecretKey: versitygw.SecretKey, Bucket: p.bucket}
		}
		c.Catalog.ReconcileInterval, c.Catalog.NodeLostSeconds, c.Webhook.NodeDeadSeconds = 1, 3, 3
		c.Webhook.Allow, c.Webhook.BackoffSeconds = []string{"127.0.0.1"}, 1
		c.Dialplan = []config.Route{{Exten: "_3XX", App: "Stasis(" + p.app + ", ${EXTEN})"}}
	})
	p.bID = idB + p.run
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 200)
	var httpPort int
	p.b, p.bSIP, httpPort = startProcReady(t, 30*time.Second, func(sipPort, httpPort int) string {
		return testutil.NodeYAML(p.bID, t.TempDir(), sipPort, httpPort, rtpLo, rtpHi) + fmt.Sprintf(`catalog:
  database: %q
  token_key: %s
  reconcile_interval_seconds: 1
  node_lost_seconds: 3
%swebhook:
  node_dead_seconds: 3
  backoff_seconds: 1
  allow: ["127.0.0.1"]
nats:
  url: %s
  prefix: %s
dialplan:
  - exten: _3XX
    app: Stasis(%s,${EXTEN})
`, p.dsn, key, s3YAML, url, prefix, p.app)
	})
	p.bBase = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	p.evA = p.a.connect(p.app)
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
		code, _, _ := rawRequest(t, "GET", p.bBase+"/ari/applications/"+p.app, "", "", func(r *http.Request) { r.SetBasicAuth("asterisk", "asterisk") })
		return code == 200
	}, "B knows the application connected to A")
	return p
}

// answeredCallOnB: phone calls B's 301; the call reaches the application
// on A (StasisStart for a channel of B), which answers it.
func (p *lostPair) answeredCallOnB(t *testing.T, phone *sipua.Phone) (id string, call *sipua.Call) {
	t.Helper()
	res := dialAsync(phone, sipua.Target("301", fmt.Sprintf("127.0.0.1:%d", p.bSIP)), sipua.CallOptions{})
	id = channelID(p.evA.skipTo("StasisStart", 10*time.Second))
	if !strings.HasPrefix(id, p.bID+"-") {
		t.Fatalf("StasisStart on A for %q, want a channel of B", id)
	}
	p.a.mustDo("POST", "/channels/"+id+"/answer", 204)
	r := wait(t, res, 10*time.Second, "answer")
	must(t, r.err)
	return id, r.call
}
