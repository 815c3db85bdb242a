package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil/nodeari"
)

// clusterNodes starts two nodes on one PostgreSQL database and one NATS
// server, their dialplan sending 3XX to Stasis(app), each configuration
// then changed by mutate. The node ids, the application's name and the
// subjects' prefix (nats.prefix, ari-proxy's "ari." by default) are
// unique to the run: NATS is shared with other tests.
func clusterNodes(t *testing.T, mutate ...func(*config.Config)) (a, b *node, app, prefix string, nc *nats.Conn) {
	t.Helper()
	url, nc := natsURL(t)
	dsn := pgFreshDatabase(t)
	suffix := make([]byte, 4)
	rand.Read(suffix)
	run := hex.EncodeToString(suffix)
	app = "clu" + run
	prefix = "t" + run + ".ari."
	start := func(id string) *node {
		return startNode(t, func(c *config.Config) {
			c.NodeID = id + run
			c.NATS.URL = url
			c.NATS.Prefix = prefix
			c.Catalog.Database = dsn
			c.Dialplan = []config.Route{{Exten: "_3XX", App: "Stasis(" + app + ", ${EXTEN})"}}
			for _, m := range mutate {
				m(c)
			}
		})
	}
	return start("ca"), start("cb"), app, prefix, nc
}

// waitStandIn waits until n takes calls for app (connected to another node).
func waitStandIn(t *testing.T, n *node, app string) {
	t.Helper()
	pollFor(t, 10*time.Second, func() bool {
		code, _ := n.do("GET", "/applications/"+app, nil)
		return code == 200
	}, "application "+app+" known on "+n.cfg.NodeID)
}

// TestClusterARIAcrossNodes: an application connected to node A only
// answers and records a call that lands on node B. Stasis(app) on B finds
// the application on A; StasisStart and the recording's events reach A's
// WebSocket over NATS (ari.event.{app}.{B}), with A's asterisk_id there; A's requests on B's channel
// and recording travel to B (ari.command/get.{app}.{B}); A's channel list
// holds B's channel; the recording is B's file, catalogued for both.
func TestClusterARIAcrossNodes(t *testing.T) {
	a, b, app, prefix, nc := clusterNodes(t)
	// ari-proxy-style tooling listening in sees the requests on B's subjects.
	seen := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(prefix+"command."+app+".>", seen)
	must(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	must(t, nc.Flush())

	evA := a.connect(app)
	waitStandIn(t, b, app)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	phone := newPhone(t, "udp")
	res := dialAsync(phone, b.target("301"), sipua.CallOptions{})
	start := evA.skipTo("StasisStart", 10*time.Second)
	id := channelID(start)
	if !strings.HasPrefix(id, b.cfg.NodeID+"-") {
		t.Fatalf("StasisStart on A for channel %q, want one of B (%s-...)", id, b.cfg.NodeID)
	}
	// On A's WebSocket with A's asterisk_id, as on one Asterisk (B's is on
	// the NATS subject).
	if start["asterisk_id"] != a.srv.Bus().EntityID() || start["application"] != app {
		t.Fatalf("StasisStart %v: want asterisk_id %s (A's), application %s", start, a.srv.Bus().EntityID(), app)
	}
	// Not there on A, so answered through B.
	a.mustDo("POST", "/channels/"+id+"/answer", 204)
	r := wait(t, res, 10*time.Second, "answer")
	must(t, r.err)
	call := r.call

	// A lists B's channel (merged), and reads it.
	var list []struct{ ID string }
	must(t, json.Unmarshal(a.mustDo("GET", "/channels", 200), &list))
	found := false
	for _, c := range list {
		found = found || c.ID == id
	}
	if !found {
		t.Fatalf("A's GET /channels %v lacks B's channel %s", list, id)
	}
	var ch struct{ ID, State string }
	must(t, json.Unmarshal(a.mustDo("GET", "/channels/"+id, 200), &ch))
	if ch.ID != id || ch.State != "Up" {
		t.Fatalf("A's GET /channels/%s: %+v", id, ch)
	}
	// A resource B does not have is B's 404, through A.
	if code, body := a.do("POST", "/channels/"+b.cfg.NodeID+"-1.999/answer", nil); code != 404 {
		t.Errorf("answer of a missing B channel through A: %d %s, want 404", code, body)
	}

	// Recorded on B at A's request.
	name := "cluster/" + app
	if code, body := a.do("POST", "/channels/"+id+"/record?name="+urlq(name)+"&format=wav", nil); code != 201 {
		t.Fatalf("record through A: %d %s", code, body)
	}
	rec := evA.skipTo("RecordingStarted", 5*time.Second)["recording"].(map[string]any)
	if rec["name"] != name || rec["target_uri"] != "channel:"+id {
		t.Fatalf("RecordingStarted %v", rec)
	}
	must(t, call.SendAudio(ctx, sweep(8000)))
	waitRx(t, a, id, 40) // rtp_statistics, relayed to B
	a.mustDo("POST", "/recordings/live/"+urlq(name)+"/stop", 204)
	fin := evA.skipTo("RecordingFinished", 5*time.Second)["recording"].(map[string]any)
	if d, _ := fin["duration"].(float64); d < 0.8 {
		t.Fatalf("RecordingFinished %v: want about a second", fin)
	}
	row, err := b.srv.Catalog().Meta.RecordingByName(ctx, name)
	if err != nil || row.Node != b.cfg.NodeID {
		t.Fatalf("catalog row of %s: %+v, %v; want made on B", name, row, err)
	}
	if wav := b.mustDo("GET", "/recordings/stored/"+urlq(name)+"/file", 200); len(wav) < 14000 {
		t.Fatalf("B's file: %d bytes, want about a second of 8 kHz 16-bit audio", len(wav))
	}

	// Another application on A subscribes to B's channel through A: B's
	// stand-in of it subscribes, and the channel's events reach it on A.
	other := "oth" + app
	evO := a.connect(other)
	waitStandIn(t, b, other)
	var appInfo struct {
		ChannelIDs []string `json:"channel_ids"`
	}
	must(t, json.Unmarshal(a.mustDo("POST", "/applications/"+other+"/subscription?eventSource=channel:"+id, 200), &appInfo))
	if len(appInfo.ChannelIDs) != 1 || appInfo.ChannelIDs[0] != id {
		t.Fatalf("subscription through A: %+v", appInfo)
	}
	a.mustDo("POST", "/channels/"+id+"/variable?variable=CLUSTER&value=yes", 204)
	if ev := evO.skipTo("ChannelVarset", 5*time.Second); ev["variable"] != "CLUSTER" || channelID(ev) != id {
		t.Fatalf("ChannelVarset to the subscribed application on A: %v", ev)
	}

	// ari-proxy tooling's own request, key only (no "http"), answered in
	// ari-proxy's Response shape.
	msg, err := nc.Request(prefix+"get."+app+"."+b.srv.Bus().EntityID(),
		[]byte(`{"kind":"ChannelData","key":{"kind":"channel","id":"`+id+`","node":"`+b.srv.Bus().EntityID()+`","app":"`+app+`"}}`), 5*time.Second)
	must(t, err)
	var pres struct {
		Error string `json:"error"`
		Data  struct {
			Channel struct{ ID, State string } `json:"channel"`
		} `json:"data"`
	}
	must(t, json.Unmarshal(msg.Data, &pres))
	if pres.Error != "" || pres.Data.Channel.ID != id || pres.Data.Channel.State != "Up" {
		t.Fatalf("ari-proxy ChannelData: %s", msg.Data)
	}
	msg, err = nc.Request(prefix+"get."+app+"."+b.srv.Bus().EntityID(),
		[]byte(`{"kind":"ChannelData","key":{"kind":"channel","id":"nope"}}`), 5*time.Second)
	must(t, err)
	if err := json.Unmarshal(msg.Data, &pres); err != nil || pres.Error != "Not found" {
		t.Fatalf("ari-proxy ChannelData of a missing channel: %s, want error \"Not found\"", msg.Data)
	}

	// Hung up from A; ChannelDestroyed reaches A.
	a.mustDo("DELETE", "/channels/"+id, 204)
	evA.skipTo("ChannelDestroyed", 5*time.Second)
	if code, _ := a.do("GET", "/channels/"+id, nil); code != 404 {
		t.Errorf("GET of the hung-up channel through A: %d, want 404", code)
	}

	// The commands went out on ari-proxy's subjects, in its request shape.
	deadline := time.After(5 * time.Second)
	kinds := map[string]bool{}
	for !kinds["ChannelAnswer"] || !kinds["ChannelRecord"] || !kinds["LiveRecordingStop"] || !kinds["ChannelHangup"] {
		select {
		case m := <-seen:
			if m.Subject != prefix+"command."+app+"."+b.srv.Bus().EntityID() {
				t.Fatalf("command on %s, want %scommand.%s.%s", m.Subject, prefix, app, b.srv.Bus().EntityID())
			}
			var req struct {
				Kind string `json:"kind"`
				Key  struct {
					Kind, ID, Node, App string
				} `json:"key"`
			}
			must(t, json.Unmarshal(m.Data, &req))
			if req.Key.Node != b.srv.Bus().EntityID() || req.Key.App != app {
				t.Fatalf("request %s: key node/app", m.Data)
			}
			kinds[req.Kind] = true
		case <-deadline:
			t.Fatalf("ari-proxy request kinds seen on NATS: %v", kinds)
		}
	}
}

// TestClusterRefusesCreates: a clustered node that has lost NATS, or is
// draining, refuses new channels and bridges with a 503 that says why (the
// others can take them), and says so in /readyz; it still answers requests
// on what it has.
func TestClusterRefusesCreates(t *testing.T) {
	readyz := func(n *node) (int, string) {
		code, _, body := rawRequest(t, "GET", n.baseURL()+"/readyz", "", "", nil)
		return code, body
	}
	// Nothing listens on port 1: the node never connects.
	lost := startNode(t, func(c *config.Config) { c.NATS.URL = "nats://127.0.0.1:1" })
	for _, path := range []string{"/bridges", "/channels/create?endpoint=PJSIP/x&app=test", "/channels?endpoint=PJSIP/x&app=test"} {
		if code, body := lost.do("POST", path, nil); code != 503 || !strings.Contains(string(body), "lost its NATS connection") {
			t.Errorf("POST %s without NATS: %d %s, want 503 naming NATS", path, code, body)
		}
	}
	if code, body := readyz(lost); code != 503 || !strings.Contains(body, "nats: not connected") {
		t.Errorf("readyz without NATS: %d %q", code, body)
	}
	lost.mustDo("GET", "/channels", 200)
	// A dispatcher probing with OPTIONS skips it (TestKamailioSkipsUnreadyNode).
	pollFor(t, 5*time.Second, func() bool { return sipOptions(lost.srv.SIPAddr()) == 503 }, "OPTIONS answered 503 without NATS")

	a, _, app, _, _ := clusterNodes(t)
	evA := a.connect(app)
	if code, body := readyz(a); code != 200 {
		t.Fatalf("readyz of a connected node: %d %q", code, body)
	}
	bridge := a.mustDo("POST", "/bridges", 200) // takes creates while up
	var br struct{ ID string }
	must(t, json.Unmarshal(bridge, &br))
	phone := newPhone(t, "udp")
	id, call := answeredCall(t, a, evA, phone, "301")
	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		drained <- a.srv.Shutdown(ctx)
	}()
	pollFor(t, 5*time.Second, func() bool {
		code, body := readyz(a)
		return code == 503 && strings.Contains(body, "draining")
	}, "readyz says draining")
	if code, body := a.do("POST", "/bridges", nil); code != 503 || !strings.Contains(string(body), "is draining") {
		t.Errorf("POST /bridges while draining: %d %s, want 503", code, body)
	}
	// What it has still obeys.
	a.mustDo("GET", "/channels/"+id, 200)
	a.mustDo("GET", "/bridges/"+br.ID, 200)
	must(t, call.Hangup(context.Background()))
	if err := wait(t, drained, 20*time.Second, "drain"); err != nil {
		t.Fatal(err)
	}
}

// TestClusterAriClientRecordsRemoteCall: an unmodified npm ari-client app
// connected to node A only answers and records a call that lands on node
// B, as it would on one Asterisk; B made the recording.
func TestClusterAriClientRecordsRemoteCall(t *testing.T) {
	a, b, app, _, _ := clusterNodes(t)
	name := "cluster/js-" + app
	proc := nodeari.Start(t, "cluster-record.js", map[string]string{
		"ARI_URL": a.baseURL(), "ARI_APP": app, "REC_NAME": name, "RECORD_MS": "1500", "TIMEOUT_MS": "40000",
	})
	if _, err := proc.WaitLine("READY", 20*time.Second); err != nil {
		t.Fatalf("ari-client did not connect: %v\n%s", err, proc.Output())
	}
	waitStandIn(t, b, app)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	phone := newPhone(t, "udp")
	call, err := phone.Dial(ctx, b.target("302"), sipua.CallOptions{})
	if err != nil {
		t.Fatalf("dial B: %v\n%s", err, proc.Output())
	}
	if _, err := proc.WaitLine("RECORDING", 10*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, proc.Output())
	}
	go func() { _ = call.SendAudio(ctx, sweep(8*3000)) }()
	wait(t, call.Ended(), 20*time.Second, "BYE from the app on A")
	if err := proc.Wait(10 * time.Second); err != nil {
		t.Fatalf("app: %v\n%s", err, proc.Output())
	}
	var started, finished bool
	for _, l := range proc.Lines() {
		switch l["type"] {
		case "StasisStart":
			ch, _ := l["channel"].(string)
			if l["asterisk_id"] != a.srv.Bus().EntityID() || !strings.HasPrefix(ch, b.cfg.NodeID+"-") {
				t.Fatalf("StasisStart %v: want B's channel, and A's asterisk_id %s", l, a.srv.Bus().EntityID())
			}
			started = true
		case "RecordingFinished":
			rec, _ := l["recording"].(map[string]any)
			if d, _ := rec["duration"].(float64); rec["name"] != name || d < 1 {
				t.Fatalf("RecordingFinished %v: want %s, over a second", l, name)
			}
			finished = true
		}
	}
	if !started || !finished {
		t.Fatalf("app saw StasisStart %v, RecordingFinished %v:\n%s", started, finished, proc.Output())
	}
	row, err := b.srv.Catalog().Meta.RecordingByName(ctx, name)
	if err != nil || row.Node != b.cfg.NodeID {
		t.Fatalf("catalog row of %s: %+v, %v; want made on B", name, row, err)
	}
	if wav := b.mustDo("GET", "/recordings/stored/"+urlq(name)+"/file", 200); len(wav) < 16000 {
		t.Fatalf("B's file: %d bytes, want over a second of audio", len(wav))
	}
}

// TestClusterAriClientRecordsCallsOnBothNodes: one unmodified npm
// ari-client app, connected to node A only, answers and records two
// calls, one landing on A and one on B, as it would two calls of one
// Asterisk: each node makes the recording of its own call, and the app
// hears both recordings finish.
func TestClusterAriClientRecordsCallsOnBothNodes(t *testing.T) {
	a, b, app, _, _ := clusterNodes(t)
	name := "cluster/both-" + app
	proc := nodeari.Start(t, "cluster-record.js", map[string]string{
		"ARI_URL": a.baseURL(), "ARI_APP": app, "REC_NAME": name, "CALLS": "2", "RECORD_MS": "1500", "TIMEOUT_MS": "50000",
	})
	if _, err := proc.WaitLine("READY", 20*time.Second); err != nil {
		t.Fatalf("ari-client did not connect: %v\n%s", err, proc.Output())
	}
	waitStandIn(t, b, app)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	phone := newPhone(t, "udp")
	want := map[string]*node{} // recording name -> the node that makes it
	var calls []*sipua.Call
	for i, n := range []*node{a, b} {
		call, err := phone.Dial(ctx, n.target("302"), sipua.CallOptions{})
		if err != nil {
			t.Fatalf("dial %s: %v\n%s", n.cfg.NodeID, err, proc.Output())
		}
		l, err := proc.WaitLine("RECORDING", 10*time.Second)
		if err != nil {
			t.Fatalf("%v\n%s", err, proc.Output())
		}
		ch, _ := l["channel"].(string)
		rec := fmt.Sprintf("%s-%d", name, i+1)
		if l["name"] != rec || !strings.HasPrefix(ch, n.cfg.NodeID+"-") {
			t.Fatalf("RECORDING %v: want %s of a channel of %s", l, rec, n.cfg.NodeID)
		}
		want[rec] = n
		calls = append(calls, call)
		go func() { _ = call.SendAudio(ctx, sweep(8*3000)) }()
	}
	for _, call := range calls {
		wait(t, call.Ended(), 20*time.Second, "BYE from the app on A")
	}
	if err := proc.Wait(10 * time.Second); err != nil {
		t.Fatalf("app: %v\n%s", err, proc.Output())
	}
	started := map[string]bool{} // node id -> a StasisStart of its channel seen
	finished := map[string]bool{}
	for _, l := range proc.Lines() {
		switch l["type"] {
		case "StasisStart":
			ch, _ := l["channel"].(string)
			if l["asterisk_id"] != a.srv.Bus().EntityID() {
				t.Fatalf("StasisStart %v: want A's asterisk_id %s (the node it is connected to)", l, a.srv.Bus().EntityID())
			}
			for _, n := range []*node{a, b} {
				started[n.cfg.NodeID] = started[n.cfg.NodeID] || strings.HasPrefix(ch, n.cfg.NodeID+"-")
			}
		case "RecordingFinished":
			rec, _ := l["recording"].(map[string]any)
			n, _ := rec["name"].(string)
			if d, _ := rec["duration"].(float64); want[n] == nil || d < 1 {
				t.Fatalf("RecordingFinished %v: want one of %v, over a second", l, want)
			}
			finished[n] = true
		}
	}
	if !started[a.cfg.NodeID] || !started[b.cfg.NodeID] || len(finished) != 2 {
		t.Fatalf("app saw StasisStart of channels of %v (want A's and B's), RecordingFinished of %v:\n%s", started, finished, proc.Output())
	}
	for rec, n := range want {
		row, err := a.srv.Catalog().Meta.RecordingByName(ctx, rec)
		if err != nil || row.Node != n.cfg.NodeID {
			t.Fatalf("catalog row of %s: %+v, %v; want made on %s", rec, row, err, n.cfg.NodeID)
		}
		if wav := n.mustDo("GET", "/recordings/stored/"+urlq(rec)+"/file", 200); len(wav) < 16000 {
			t.Fatalf("%s's file of %s: %d bytes, want over a second of audio", n.cfg.NodeID, rec, len(wav))
		}
	}
}
