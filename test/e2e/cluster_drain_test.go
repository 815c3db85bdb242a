package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/versitygw"
)

// TestClusterDrainThroughKamailio: two tapedeck processes on one
// PostgreSQL catalog, one NATS server and one S3 bucket (versitygw),
// behind Kamailio with the repository's dispatcher configuration; every
// call is recorded (Record(calls/${UNIQUEID},wav)). Calls through
// Kamailio land on both. Node A is sent SIGTERM with two calls up on it:
// it answers Kamailio's probes with 503 and every new call lands on B,
// while A's two calls go on; once they end, A's recordings complete,
// their files are uploaded to the bucket (the rows point at the objects),
// and only then does A exit, with status 0.
func TestClusterDrainThroughKamailio(t *testing.T) {
	url, _ := natsURL(t)
	dsn := pgFreshDatabase(t)
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	suffix := make([]byte, 4)
	rand.Read(suffix)
	run := hex.EncodeToString(suffix)
	type proc struct {
		id         string
		p          *clusterProc
		sip, http  int
		base, addr string
	}
	start := func(id string) *proc {
		n := &proc{id: id + run}
		rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 200)
		n.p, n.sip, n.http = startProcReady(t, 30*time.Second, func(sipPort, httpPort int) string {
			return testutil.NodeYAML(n.id, t.TempDir(), sipPort, httpPort, rtpLo, rtpHi) + fmt.Sprintf(`shutdown_timeout_seconds: 60
catalog:
  database: %q
  token_key: drain-test-%s
  s3:
    endpoint: %s
    access_key: %s
    secret_key: %s
    bucket: %s
nats:
  url: %s
  prefix: t%s.ari.
dialplan:
  - exten: "2001"
    app: Record(calls/${UNIQUEID},wav)
`, dsn, run, gw.Endpoint(), versitygw.AccessKey, versitygw.SecretKey, bucket, url, run)
		})
		n.base, n.addr = fmt.Sprintf("http://127.0.0.1:%d", n.http), fmt.Sprintf("127.0.0.1:%d", n.sip)
		return n
	}
	a, b := start("da"), start("db")
	kam := startKamailio(t, a.addr, b.addr)
	// channels is the number of channels n has up, as B lists them (a
	// node lists every node's channels; their ids start with the node's
	// id); -1 when B does not answer.
	channels := func(n *proc) int {
		req, _ := http.NewRequest("GET", b.base+"/ari/channels", nil)
		req.SetBasicAuth("asterisk", "asterisk")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return -1
		}
		defer res.Body.Close()
		var list []struct{ ID string }
		if body, _ := io.ReadAll(res.Body); res.StatusCode != 200 || json.Unmarshal(body, &list) != nil {
			return -1
		}
		c := 0
		for _, ch := range list {
			if strings.HasPrefix(ch.ID, n.id+"-") {
				c++
			}
		}
		return c
	}
	phone := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// place dials 2001 through Kamailio and says which node took the
	// call; the call stays up, sending audio.
	place := func() (*proc, *sipua.Call) {
		t.Helper()
		base := map[*proc]int{a: channels(a), b: channels(b)}
		call, err := phone.Dial(ctx, sipua.Target("2001", kam), sipua.CallOptions{})
		if err != nil {
			t.Fatalf("call through kamailio: %v", err)
		}
		go func() { _ = call.SendAudio(ctx, sine(440, 8000*60, 8000)) }()
		var on *proc
		pollFor(t, 5*time.Second, func() bool {
			for _, n := range []*proc{a, b} {
				if c := channels(n); c > base[n] && base[n] >= 0 {
					on = n
					return true
				}
			}
			return false
		}, "the call's channel on a node")
		return on, call
	}
	end := func(n *proc, call *sipua.Call) {
		t.Helper()
		must(t, call.Hangup(ctx))
		pollFor(t, 5*time.Second, func() bool { return channels(n) == 0 }, "the call's channel gone")
	}
	landed := map[*proc]int{}
	for range 4 {
		n, call := place()
		landed[n]++
		end(n, call)
	}
	if landed[a] == 0 || landed[b] == 0 {
		t.Fatalf("calls through Kamailio: %d on A, %d on B; want both", landed[a], landed[b])
	}

	// Two calls up on A, some of their audio recorded.
	var held []*sipua.Call
	for len(held) < 2 {
		n, call := place()
		if n == a {
			held = append(held, call)
		} else {
			end(n, call)
		}
	}
	pg, count := pgCounter(t, ctx, dsn)
	pollFor(t, 10*time.Second, func() bool {
		return count(`SELECT COUNT(*) FROM recordings WHERE node = $1 AND status = 'in-progress'`, a.id) == 2
	}, "A's two recordings in progress")
	drained := map[string]bool{} // the names of A's recordings in progress
	hr, err := pg.Query(ctx, `SELECT name FROM recordings WHERE node = $1 AND status = 'in-progress'`, a.id)
	if err != nil {
		t.Fatal(err)
	}
	for hr.Next() {
		var name string
		must(t, hr.Scan(&name))
		drained[name] = true
	}
	hr.Close()
	before := count(`SELECT COUNT(*) FROM recordings WHERE node = $1`, a.id)

	must(t, a.p.cmd.Process.Signal(syscall.SIGTERM))
	pollFor(t, 5*time.Second, func() bool { return sipOptions(a.addr) == 503 }, "draining A answering OPTIONS with 503")
	landed = map[*proc]int{}
	for range 4 {
		n, call := place()
		landed[n]++
		end(n, call)
	}
	if landed[a] != 0 || landed[b] != 4 {
		t.Errorf("calls through Kamailio while A drains: %d on A, %d on B; want all on B", landed[a], landed[b])
	}
	for i, c := range held {
		select {
		case <-c.Ended():
			t.Fatalf("A's call %d was ended by the drain", i)
		default:
		}
	}
	select {
	case <-a.p.done:
		t.Fatalf("A exited with its calls up:\n%s", a.p.output())
	default:
	}
	if n := count(`SELECT COUNT(*) FROM recordings WHERE node = $1 AND status = 'in-progress'`, a.id); n != 2 {
		t.Errorf("%d of A's recordings in progress while it drains, want its 2", n)
	}
	for _, c := range held {
		must(t, c.Hangup(ctx))
	}
	select {
	case <-a.p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("A did not exit after its last call:\n%s", a.p.output())
	}
	if code := a.p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("A's exit status %d, want 0:\n%s", code, a.p.output())
	}

	// The recordings A drained are completed and in the bucket, as every
	// recording A completed is, read from the catalog A left behind (A is
	// gone: nothing changes any more). (The calls placed and hung up at
	// once, before the drain, recorded no audio: "absent", their empty
	// files kept on A's disk, as for any absent recording.)
	rows, err := pg.Query(ctx, `SELECT name, status, file_path, s3_uri, size FROM recordings WHERE node = $1 ORDER BY name`, a.id)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		name, status, path, uri string
		size                    int64
	}
	var recs []rec
	for rows.Next() {
		var r rec
		if err := rows.Scan(&r.name, &r.status, &r.path, &r.uri, &r.size); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	rows.Close()
	if len(recs) != before {
		t.Fatalf("%d recordings of A, want the %d it had when it was told to drain", len(recs), before)
	}
	if len(drained) != 2 {
		t.Fatalf("A's recordings in progress at the drain: %v", drained)
	}
	for _, r := range recs {
		if r.status == "absent" && !drained[r.name] {
			continue
		}
		if r.status != "completed" || !strings.HasPrefix(r.path, "blob:") || r.uri == "" || r.size <= 44 {
			t.Errorf("A's recording %s after its drain: %s, file %q, object %q, %d bytes; want completed and uploaded", r.name, r.status, r.path, r.uri, r.size)
			continue
		}
		if ok, err := gw.ObjectExists(ctx, bucket, strings.TrimPrefix(r.path, "blob:")); err != nil || !ok {
			t.Errorf("A's recording %s: object %q in the bucket %v, %v", r.name, r.path, ok, err)
		}
	}
	if t.Failed() {
		t.Logf("A's output:\n%s", a.p.output())
	}
}
