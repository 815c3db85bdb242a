package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil/nodeari"
	"github.com/tapedeck/tapedeck/internal/testutil/versitygw"
)

// goAriCluster starts two nodes on PostgreSQL, NATS and one S3 bucket
// (clusterNodes) and test/goari connected to node A only, and waits until
// B takes calls for its application. Recordings are named
// go-{app}-{n}, without a "/": ari/v5 pastes names into request paths
// unescaped, and Asterisk would not route one with a "/" either.
func goAriCluster(t *testing.T, calls, recordMs int) (a, b *node, proc *nodeari.Proc, name string) {
	t.Helper()
	bin := buildGoAri(t)
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	a, b, app, _, _ := clusterNodes(t, func(c *config.Config) {
		c.Catalog.S3 = config.S3{Endpoint: gw.Endpoint(), AccessKey: versitygw.AccessKey,
			SecretKey: versitygw.SecretKey, Bucket: bucket, KeepLocal: false}
	})
	name = "go-" + app
	proc = nodeari.StartProgram(t, bin, map[string]string{
		"ARI_URL": a.baseURL() + "/ari", "ARI_WSURL": "ws://" + a.srv.HTTPAddr() + "/ari/events",
		"ARI_APPLICATION": app, "REC_NAME": name, "CALLS": strconv.Itoa(calls),
		"RECORD_MS": strconv.Itoa(recordMs), "TIMEOUT_MS": "50000",
	})
	ready, err := proc.WaitLine("READY", 20*time.Second)
	if err != nil {
		t.Fatalf("ari/v5 did not connect: %v", err)
	}
	if ready["entity_id"] != a.srv.Bus().EntityID() {
		t.Fatalf("READY %v: want A's entity_id %s", ready, a.srv.Bus().EntityID())
	}
	waitStandIn(t, b, app)
	return a, b, proc, name
}

// goAriRecording is a recording the Go program made: the node whose call
// it recorded, the channel, and the caller's tone.
type goAriRecording struct {
	n       *node
	channel string
	tone    float64
}

// checkGoAriRecordings checks what the program's handles saw of each
// recording (RecordingFinished of over a second, its stored data in wav,
// StasisEnd of its channel), and that each node made its own call's
// recording, which both nodes list and serve with the caller's tone.
func checkGoAriRecordings(t *testing.T, a, b *node, proc *nodeari.Proc, recs map[string]*goAriRecording) {
	t.Helper()
	finished, stored, ended := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, l := range proc.Lines() {
		n, _ := l["name"].(string)
		ch, _ := l["channel"].(string)
		switch l["type"] {
		case "FINISHED":
			w := recs[n]
			if d, _ := l["duration"].(float64); w == nil || ch != w.channel || d < 1 {
				t.Fatalf("FINISHED %v: want one of %v's, over a second", l, recs)
			}
			finished[n] = true
		case "STORED":
			if l["format"] != "wav" {
				t.Fatalf("STORED %v: want wav", l)
			}
			stored[n] = true
		case "ENDED":
			ended[ch] = true
		}
	}
	for rec, w := range recs {
		if !finished[rec] || !stored[rec] || !ended[w.channel] {
			t.Fatalf("%s (channel %s on %s): RecordingFinished %v, stored data %v, StasisEnd %v on its handles",
				rec, w.channel, w.n.cfg.NodeID, finished[rec], stored[rec], ended[w.channel])
		}
	}
	ctx := context.Background()
	for rec, w := range recs {
		row, err := a.srv.Catalog().Meta.RecordingByName(ctx, rec)
		if err != nil || row.Node != w.n.cfg.NodeID {
			t.Fatalf("catalog row of %s: %+v, %v; want made on %s", rec, row, err, w.n.cfg.NodeID)
		}
		other := 600.0
		if w.tone == other {
			other = 1400
		}
		for _, via := range []*node{a, b} {
			if !hasName(storedNames(t, via), rec) {
				t.Fatalf("%s's GET /recordings/stored lacks %s", via.cfg.NodeID, rec)
			}
			wav := via.mustDo("GET", "/recordings/stored/"+urlq(rec)+"/file", 200)
			path := filepath.Join(t.TempDir(), "rec.wav")
			must(t, os.WriteFile(path, wav, 0o600))
			_, pcm := readWAV(t, path)
			if len(pcm) < 8000 || !dominant(pcm, w.tone, other) {
				t.Fatalf("%s through %s: %d samples, want over a second of %v Hz (not %v Hz)", rec, via.cfg.NodeID, len(pcm), w.tone, other)
			}
		}
	}
}

// TestClusterGoAriRecordsCallsOnBothNodes is issue 20's Go proof: a
// CyCoreSystems/ari v5 program (test/goari, client/native, as written for
// one Asterisk), connected to node A only, answers and records two calls,
// one landing on A and one on B (PostgreSQL, NATS, one S3 bucket), stops
// each recording after 1.5 s and hangs up. Its handle subscriptions
// (StasisEnd on the channel handle, RecordingStarted and
// RecordingFinished on the recording handle) see the events of B's call
// too. Each recording is listed and downloaded through either node and
// holds its own call's tone.
func TestClusterGoAriRecordsCallsOnBothNodes(t *testing.T) {
	a, b, proc, name := goAriCluster(t, 2, 1500)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	phone := newPhone(t, "udp")
	recs := map[string]*goAriRecording{}
	var calls []*sipua.Call
	tones := []float64{600, 1400} // A's caller, B's caller
	for i, n := range []*node{a, b} {
		call, err := phone.Dial(ctx, n.target("302"), sipua.CallOptions{})
		if err != nil {
			t.Fatalf("dial %s: %v\n%s", n.cfg.NodeID, err, proc.Output())
		}
		l, err := proc.WaitLine("RECORDING", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ch, _ := l["channel"].(string)
		rec := name + "-" + strconv.Itoa(i+1)
		if l["name"] != rec || !strings.HasPrefix(ch, n.cfg.NodeID+"-") {
			t.Fatalf("RECORDING %v: want %s of a channel of %s", l, rec, n.cfg.NodeID)
		}
		recs[rec] = &goAriRecording{n: n, channel: ch, tone: tones[i]}
		calls = append(calls, call)
		go func(f float64) { _ = call.SendAudio(ctx, sine(f, 8000*5, 8000)) }(tones[i])
	}
	for _, call := range calls {
		wait(t, call.Ended(), 20*time.Second, "BYE from the Go app on A")
	}
	if err := proc.Wait(10 * time.Second); err != nil {
		t.Fatalf("Go app: %v", err)
	}
	checkGoAriRecordings(t, a, b, proc, recs)
}

// TestClusterGoAriCallerHangsUpOnOtherNode: the caller of a call on B
// hangs up while the Go program on A records it (it would stop only after
// a minute): the StasisEnd of B's channel reaches the program's channel
// handle, the RecordingFinished its recording handle, and the recording,
// cut at the hangup, is stored and served by both nodes.
func TestClusterGoAriCallerHangsUpOnOtherNode(t *testing.T) {
	a, b, proc, name := goAriCluster(t, 1, 60000)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	phone := newPhone(t, "udp")
	call, err := phone.Dial(ctx, b.target("302"), sipua.CallOptions{})
	if err != nil {
		t.Fatalf("dial B: %v\n%s", err, proc.Output())
	}
	l, err := proc.WaitLine("RECORDING", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := l["channel"].(string)
	if !strings.HasPrefix(ch, b.cfg.NodeID+"-") {
		t.Fatalf("RECORDING %v: want a channel of B", l)
	}
	// 2 s of tone, then the caller hangs up.
	must(t, call.SendAudio(ctx, sine(1400, 8000*2, 8000)))
	must(t, call.Hangup(ctx))
	if err := proc.Wait(15 * time.Second); err != nil {
		t.Fatalf("Go app: %v", err)
	}
	for _, l := range proc.Lines() {
		if l["type"] == "STOPPED" || l["type"] == "HUNGUP" {
			t.Fatalf("%v: the program should have seen the caller leave first", l)
		}
	}
	checkGoAriRecordings(t, a, b, proc, map[string]*goAriRecording{name + "-1": {n: b, channel: ch, tone: 1400}})
}
