package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/versitygw"
)

// clusterProc is a tapedeck process of a cluster test.
type clusterProc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  strings.Builder
	done chan struct{}
}

func (p *clusterProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func startProc(t *testing.T, cfgPath string) *clusterProc {
	t.Helper()
	cmd := exec.Command(tapedeckBin(t), "-config", cfgPath)
	stderr, _ := cmd.StderrPipe()
	cmd.Stdout = io.Discard
	p := &clusterProc{cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s output:\n%s", cfgPath, p.output())
		}
	})
	return p
}

// startProcReady starts a tapedeck process with the configuration that
// yaml writes for its SIP and HTTP ports, and waits up to timeout for its
// /readyz. The ports are free when picked, not reserved: a process that
// exits because another took one meanwhile ("address already in use") is
// started again on other ports; one that exits for another reason fails
// the test at once, with its output.
func startProcReady(t *testing.T, timeout time.Duration, yaml func(sipPort, httpPort int) string) (p *clusterProc, sipPort, httpPort int) {
	t.Helper()
	for try := 1; ; try++ {
		sipPort, httpPort = testutil.FreeSIPPort(t), testutil.FreeTCPPort(t)
		cfg := filepath.Join(t.TempDir(), "tapedeck.yaml")
		if err := os.WriteFile(cfg, []byte(yaml(sipPort, httpPort)), 0o600); err != nil {
			t.Fatal(err)
		}
		p = startProc(t, cfg)
		exited, err := awaitReady(p, fmt.Sprintf("http://127.0.0.1:%d", httpPort), timeout)
		switch {
		case err != nil:
			t.Fatalf("tapedeck (%s) not ready after %v:\n%s", cfg, timeout, p.output())
		case !exited:
			return p, sipPort, httpPort
		case try < 3 && strings.Contains(p.output(), "address already in use"):
			t.Logf("tapedeck could not bind a port picked free; again on others:\n%s", p.output())
		default:
			t.Fatalf("tapedeck (%s) exited before it was ready:\n%s", cfg, p.output())
		}
	}
}

// awaitReady polls the /readyz of p (serving at base) until it answers 200
// or p exits (exited), for timeout at most (err).
func awaitReady(p *clusterProc, base string, timeout time.Duration) (exited bool, err error) {
	err = testutil.Poll(timeout, 50*time.Millisecond, func() bool {
		select {
		case <-p.done:
			exited = true
			return true
		default:
		}
		res, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
	return exited, err
}

// startReady starts tapedeck with the configuration cfg, serving HTTP at
// base, and waits (timeout) until it is ready; one that exits first, or is
// not ready in time, fails the test with its output.
func startReady(t *testing.T, cfg, base string, timeout time.Duration) *clusterProc {
	t.Helper()
	p := startProc(t, cfg)
	if exited, err := awaitReady(p, base, timeout); err != nil || exited {
		t.Fatalf("tapedeck (%s) did not start (exited: %v):\n%s", cfg, exited, p.output())
	}
	return p
}

// clusterNode is one node's configuration and addresses.
type clusterNode struct {
	id                   string
	cfg                  string
	sip, http, oz, rtpLo int
	proc                 *clusterProc
}

func (n *clusterNode) ozeki(t *testing.T, query string) ozResponse {
	t.Helper()
	res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api?Username=HTTP_User_1&Password=qwe123&%s", n.oz, query))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return parseOz(t, string(b))
}

// TestKilledNodeWebhooksAndRecordings: two tapedeck processes on one
// PostgreSQL catalog and one S3 bucket. Calls on both are recorded with
// Ozeki's Record and a FinishedUrl whose receiver is down, so both nodes
// have RecordCompleted queued; node B also has a recording in progress.
// B is killed (SIGKILL). Then the receiver comes up: A delivers its own
// notification and, once B has been silent for webhook.node_dead_seconds,
// B's too: each exactly once. A settles B's recording in progress as lost
// and queues its RecordCompleted (failed, reason interrupted) from the
// FinishedUrl kept with its row, delivered once. B is started again: its
// recording is recovered from its disk and uploaded to S3, and nothing is
// delivered a second time.
func TestKilledNodeWebhooksAndRecordings(t *testing.T) {
	dsn := pgFreshDatabase(t)
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hookAddr := hl.Addr().String()
	hl.Close() // the receiver is down

	mk := func(id string) *clusterNode {
		rtpLo, _ := testutil.FreeUDPPortRange(t, 200)
		n := &clusterNode{id: id, sip: testutil.FreeSIPPort(t), http: testutil.FreeTCPPort(t), oz: testutil.FreeTCPPort(t), rtpLo: rtpLo}
		dir := t.TempDir()
		n.cfg = filepath.Join(dir, "tapedeck.yaml")
		cfg := testutil.NodeYAML(id, filepath.Join(dir, "data"), n.sip, n.http, rtpLo, rtpLo+199) + fmt.Sprintf(`catalog:
  database: %q
  reconcile_interval_seconds: 1
  node_lost_seconds: 3
  token_key: cluster-test-key
  s3:
    endpoint: %s
    access_key: %s
    secret_key: %s
    bucket: %s
ozeki:
  listen: 127.0.0.1:%d
  users:
    - username: HTTP_User_1
      password: qwe123
webhook:
  allow: [127.0.0.1]
  backoff_seconds: 1
  max_attempts: 100
  node_dead_seconds: 3
dialplan:
  - exten: _5XX
    app: Wait(120)
`, dsn, gw.Endpoint(), versitygw.AccessKey, versitygw.SecretKey, bucket, n.oz)
		if err := os.WriteFile(n.cfg, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return n
	}
	a, b := mk("node-a"), mk("node-b")
	waitUp := func(n *clusterNode) {
		if exited, err := awaitReady(n.proc, fmt.Sprintf("http://127.0.0.1:%d", n.http), 30*time.Second); err != nil || exited {
			t.Fatalf("%s did not start (exited: %v):\n%s", n.id, exited, n.proc.output())
		}
	}
	a.proc, b.proc = startProc(t, a.cfg), startProc(t, b.cfg)
	waitUp(a)
	waitUp(b)

	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	phone, err := sipua.New(sipua.Options{User: "kill", RTPMin: rtpLo, RTPMax: rtpHi})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls []*sipua.Call
	var mu sync.Mutex
	dial := func(n *clusterNode) {
		go func() {
			dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
			defer dcancel()
			if c, err := phone.Dial(dctx, fmt.Sprintf("sip:500@127.0.0.1:%d", n.sip), sipua.CallOptions{}); err == nil {
				mu.Lock()
				calls = append(calls, c)
				mu.Unlock()
				go c.SendAudio(ctx, sine(440, 8000*60, 8000))
			}
		}()
	}
	// callIDs waits for want calls on n and returns their ids.
	callIDs := func(n *clusterNode, want int) []string {
		var ids []string
		testutil.Eventually(t, 20*time.Second, 50*time.Millisecond, func() bool {
			r := n.ozeki(t, "command=ListActiveCalls")
			if r.Code != 200 || len(r.ActiveCalls.Calls) != want {
				return false
			}
			ids = ids[:0]
			for _, c := range r.ActiveCalls.Calls {
				ids = append(ids, c.CallID)
			}
			return true
		}, "%s: not %d calls up", n.id, want)
		return ids
	}
	finished := "http://" + hookAddr + "/finished"
	record := func(n *clusterNode, id, more string) {
		r := n.ozeki(t, "command=Record&Format=wav&CallId="+url.QueryEscape(id)+"&FinishedUrl="+url.QueryEscape(finished)+more)
		if r.Code != 200 {
			t.Fatalf("%s Record: %d %s", n.id, r.Code, r.Message)
		}
	}
	dial(a)
	aCall := callIDs(a, 1)[0]
	dial(b)
	dial(b)
	bCalls := callIDs(b, 2)
	record(a, aCall, "&Duration=1")
	record(b, bCalls[0], "&Duration=1")
	record(b, bCalls[1], "") // still recording when B is killed

	pg, count := pgCounter(t, ctx, dsn)
	// Both nodes have tried their notification (the receiver is down), and
	// B's long recording is in progress in the catalog.
	testutil.Eventually(t, 20*time.Second, 100*time.Millisecond, func() bool {
		return count(`SELECT COUNT(*) FROM webhook_outbox WHERE status = 'pending' AND attempts >= 1 AND node = 'node-a'`) == 1 &&
			count(`SELECT COUNT(*) FROM webhook_outbox WHERE status = 'pending' AND attempts >= 1 AND node = 'node-b'`) == 1 &&
			count(`SELECT COUNT(*) FROM recordings WHERE status = 'in-progress' AND node = 'node-b'`) == 1
	}, "notifications not queued and tried on both nodes, or B's recording not in progress")
	var inProgress string
	if err := pg.QueryRow(ctx, `SELECT name FROM recordings WHERE status = 'in-progress' AND node = 'node-b'`).Scan(&inProgress); err != nil {
		t.Fatal(err)
	}
	// Some of its audio has reached B's disk (the writer's second).
	local := filepath.Join(filepath.Dir(b.cfg), "data", "recording", inProgress+".wav")
	testutil.Eventually(t, 20*time.Second, 50*time.Millisecond, func() bool {
		st, err := os.Stat(local)
		return err == nil && st.Size() > 44+2*8000
	}, "B's recording %s holds no audio yet", local)

	if err := b.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-b.proc.done

	// The receiver comes up.
	var rmu sync.Mutex
	got := map[string]int{} // CallId -> deliveries
	forms := map[string]url.Values{}
	ids := map[string]int{} // X-Tapedeck-Delivery -> deliveries
	rl, err := net.Listen("tcp", hookAddr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f, _ := url.ParseQuery(string(body))
		rmu.Lock()
		got[f.Get("CallId")]++
		forms[f.Get("CallId")] = f
		ids[r.Header.Get("X-Tapedeck-Delivery")]++
		rmu.Unlock()
	})}
	go srv.Serve(rl)
	defer srv.Close()
	snapshot := func() (map[string]int, map[string]int) {
		rmu.Lock()
		defer rmu.Unlock()
		g, d := map[string]int{}, map[string]int{}
		for k, v := range got {
			g[k] = v
		}
		for k, v := range ids {
			d[k] = v
		}
		return g, d
	}
	testutil.Eventually(t, 30*time.Second, 50*time.Millisecond, func() bool {
		g, _ := snapshot()
		return g[aCall] >= 1 && g[bCalls[0]] >= 1
	}, "RecordCompleted of A's call and of the killed B's call not both delivered")
	// Both settled as delivered in the shared outbox.
	testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, func() bool {
		return count(`SELECT COUNT(*) FROM webhook_outbox WHERE status = 'delivered'`) >= 2
	}, "deliveries not settled")

	// B, not restarted, is lost: once its heartbeat has been gone for
	// catalog.node_lost_seconds, A settles its recording in progress as
	// failed, "node lost", as the APIs show it through A.
	testutil.Eventually(t, 20*time.Second, 100*time.Millisecond, func() bool {
		return count(`SELECT COUNT(*) FROM recordings WHERE name = $1 AND status = 'failed' AND status_detail LIKE 'Node lost: node node-b %'`, inProgress) == 1
	}, "B's recording %q not settled as lost by A:\n%s", inProgress, a.proc.output())
	// Its RecordCompleted, queued by A with the settled row: failed,
	// interrupted, the cause naming the lost node.
	testutil.Eventually(t, 20*time.Second, 100*time.Millisecond, func() bool {
		g, _ := snapshot()
		return g[bCalls[1]] >= 1
	}, "RecordCompleted of B's recording in progress not sent by A once it settled it:\n%s", a.proc.output())
	rmu.Lock()
	lostForm := forms[bCalls[1]]
	rmu.Unlock()
	if lostForm.Get("Reason") != "interrupted" || lostForm.Get("State") != "failed" || !strings.Contains(lostForm.Get("Cause"), "node-b") {
		t.Errorf("RecordCompleted of B's lost recording: %v", lostForm)
	}
	var accSid, recSid string
	if err := pg.QueryRow(ctx, `SELECT account_sid, sid FROM recordings WHERE name = $1`, inProgress).Scan(&accSid, &recSid); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tapedeckBin(t), "accounts", "-config", a.cfg, "rotate", accSid).CombinedOutput()
	if err != nil {
		t.Fatalf("accounts rotate: %v %s", err, out)
	}
	token := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), accSid))
	apiJSON := func(path string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s", a.http, path), nil)
		req.SetBasicAuth(accSid, token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(res.Body).Decode(&m); err != nil || res.StatusCode != 200 {
			t.Fatalf("GET %s: %d %v", path, res.StatusCode, err)
		}
		return m
	}
	if tw := apiJSON("/2010-04-01/Accounts/" + accSid + "/Recordings/" + recSid + ".json"); tw["status"] != "failed" || tw["error_code"] != 20500.0 {
		t.Errorf("Twilio's view through A of B's lost recording: status %v, error_code %v; want failed, 20500", tw["status"], tw["error_code"])
	}
	rcv := apiJSON("/restcomm/2012-04-24/Accounts/" + accSid + "/Recordings/" + recSid + ".json")
	if detail, _ := rcv["status_detail"].(string); rcv["status"] != "failed" || !strings.HasPrefix(detail, "Node lost: node node-b") || rcv["error_code"] != 20500.0 {
		t.Errorf("Restcomm's view through A of B's lost recording: %v", rcv)
	}

	// B comes back: its unfinished recording is recovered from its disk
	// (its recovery wins over the "node lost" A wrote) and uploaded to the
	// shared bucket; nothing is delivered again.
	b.proc = startProc(t, b.cfg)
	waitUp(b)
	testutil.Eventually(t, 30*time.Second, 100*time.Millisecond, func() bool {
		return count(`SELECT COUNT(*) FROM recordings WHERE name = $1 AND status = 'recovered' AND s3_uri <> '' AND size > 44`, inProgress) == 1
	}, "B's recording %q not recovered with its audio and uploaded after its restart:\n%s", inProgress, b.proc.output())
	var key string
	if err := pg.QueryRow(ctx, `SELECT file_path FROM recordings WHERE name = $1`, inProgress).Scan(&key); err != nil {
		t.Fatal(err)
	}
	key = strings.TrimPrefix(key, "blob:")
	if ok, err := gw.ObjectExists(ctx, bucket, key); err != nil || !ok {
		t.Fatalf("recovered recording's object %q in the bucket: %v %v", key, ok, err)
	}
	// Two more heartbeat periods of both nodes running: still once each.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		g, d := snapshot()
		for call, n := range g {
			if n != 1 {
				t.Fatalf("RecordCompleted of %s delivered %d times (all: %v)", call, n, g)
			}
		}
		for id, n := range d {
			if id == "" || n != 1 {
				t.Fatalf("delivery %q seen %d times (all: %v)", id, n, d)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if g, _ := snapshot(); len(g) != 3 {
		t.Fatalf("deliveries %v, want A's call and B's two calls once each", g)
	}
	if !strings.Contains(a.proc.output(), "taking over a notification") {
		t.Fatalf("A did not log its takeover of B's notification:\n%s", a.proc.output())
	}
	res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", a.http))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(m), "tapedeck_webhook_taken_over_total 1\n") {
		t.Fatalf("A's metrics do not count one takeover:\n%s", grepLines(string(m), "tapedeck_webhook"))
	}
}

// grepLines keeps the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
