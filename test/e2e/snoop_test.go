package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	rtpsess "github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/nodeari"
)

// TestAriSupervisorSnoopRecordsEachDirection: an npm ari-client call-centre
// app bridges a caller with an agent it originates, then snoops the
// caller's channel twice (spy=in: what the caller says; spy=out: what the
// caller hears) and records each snoop channel. The caller sends 440 Hz,
// the agent 1000 Hz: each file holds only its party's tone. Hanging up the
// caller hangs up both snoop channels and stores the recordings.
func TestAriSupervisorSnoopRecordsEachDirection(t *testing.T) {
	n := startNode(t, withRoute("_3XX", "Stasis(callcentre)"))
	agentSink := &audioSink{}
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	agentPhone, err := sipua.New(sipua.Options{User: "agent", RTPMin: rtpLo, RTPMax: rtpHi, AutoAnswer: true,
		IncomingHandler: func() rtpsess.Handler { return agentSink }})
	if err != nil {
		t.Fatal(err)
	}
	defer agentPhone.Close()
	app := nodeari.Start(t, "supervisor.js", map[string]string{
		"ARI_URL": n.baseURL(), "ARI_APP": "callcentre",
		"AGENT": fmt.Sprintf("PJSIP/agent@127.0.0.1:%d", agentPhone.Port()),
	})
	if _, err := app.WaitLine("READY", 20*time.Second); err != nil {
		t.Fatalf("supervisor did not start: %v\n%s", err, app.Output())
	}
	caller := newPhone(t, "udp")
	res := dialAsync(caller, n.target("300"), sipua.CallOptions{Handler: &audioSink{}})
	rc := wait(t, res, 15*time.Second, "caller answered")
	must(t, rc.err)
	var agentCall *sipua.Call
	select {
	case agentCall = <-agentPhone.Incoming():
	case <-time.After(10 * time.Second):
		t.Fatalf("agent not called\n%s", app.Output())
	}
	deadline := time.Now().Add(10 * time.Second)
	for started := 0; started < 2; {
		started = 0
		for _, l := range app.Lines() {
			if l["type"] == "RecordingStarted" {
				started++
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("recordings not started\n%s", app.Output())
		}
		if started < 2 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, l := range app.Lines() {
		if l["type"] == "SNOOPING" && !strings.HasPrefix(fmt.Sprint(l["name"]), "Snoop/") {
			t.Errorf("snoop channel name %v", l["name"])
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = rc.call.SendAudio(ctx, sine(440, 8000*2, 8000)) }()
	go func() { defer wg.Done(); _ = agentCall.SendAudio(ctx, sine(1000, 8000*2, 8000)) }()
	wg.Wait()
	if !dominant(agentSink.samples(), 440, 1000) {
		t.Errorf("the agent does not hear the caller")
	}
	must(t, rc.call.Hangup(ctx))
	if _, err := app.WaitLine("DONE", 15*time.Second); err != nil {
		t.Fatalf("recordings did not finish: %v\n%s", err, app.Output())
	}
	for _, c := range []struct {
		name      string
		want, not float64
	}{{"supervisor-caller", 440, 1000}, {"supervisor-agent", 1000, 440}} {
		rate, pcm := readWAV(t, filepath.Join(n.recDir(), c.name+".wav"))
		if rate != 8000 || len(pcm) < 8000 {
			t.Fatalf("%s: %d Hz, %d samples", c.name, rate, len(pcm))
		}
		t.Logf("%s: %d samples, %.0f Hz %.0f, %.0f Hz %.0f", c.name, len(pcm), c.want, goertzel(pcm, c.want), c.not, goertzel(pcm, c.not))
		if !dominant(pcm, c.want, c.not) || goertzel(pcm, c.want) < 20*goertzel(pcm, 700) {
			t.Errorf("%s holds not only %.0f Hz: %.0f vs %.0f Hz %.0f", c.name, c.want, goertzel(pcm, c.want), c.not, goertzel(pcm, c.not))
		}
	}
	// The snoop channels went with the caller.
	deadline = time.Now().Add(5 * time.Second)
	for {
		body := string(n.mustDo("GET", "/channels", 200))
		if !strings.Contains(body, "Snoop/") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("snoop channels outlived the caller: %s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAriSnoopSpyBothWhisperIn: a caller (440 Hz) bridged with an agent
// (1000 Hz). A spy=both snoop on the caller is the clocked mix of both
// directions: its recording holds both tones and lasts about as long as
// the call (one frame per 20 ms tick, not one per frame of each side). A
// whisper=in snoop on the caller whispers into what the caller says: a
// 2000 Hz tone played to it reaches the agent (the bridged peer) and not
// the caller.
func TestAriSnoopSpyBothWhisperIn(t *testing.T) {
	n := startNode(t, withRoute("_3XX", "Stasis(sup)"))
	ev := n.connect("sup")
	callerSink, agentSink := &audioSink{}, &audioSink{}
	var ids []string
	var calls []*sipua.Call
	for i, sink := range []*audioSink{callerSink, agentSink} {
		p := newPhone(t, "udp")
		res := dialAsync(p, n.target(fmt.Sprintf("30%d", i)), sipua.CallOptions{Handler: sink})
		st := ev.skipTo("StasisStart", 10*time.Second)
		id := fmt.Sprint(st["channel"].(map[string]any)["id"])
		n.mustDo("POST", "/channels/"+id+"/answer", 204)
		rc := wait(t, res, 15*time.Second, "call answered")
		must(t, rc.err)
		ids, calls = append(ids, id), append(calls, rc.call)
	}
	n.mustDo("POST", "/bridges/b1?type=mixing", 200)
	n.mustDo("POST", "/bridges/b1/addChannel?channel="+ids[0]+","+ids[1], 204)
	if code, body := n.do("POST", "/channels/"+ids[0]+"/snoop?app=sup&whisper=sideways", nil); code != 400 {
		t.Errorf("bad whisper: %d %s", code, body)
	}
	n.mustDo("POST", "/channels/"+ids[0]+"/snoop/spyboth?app=sup&spy=both", 200)
	n.mustDo("POST", "/channels/"+ids[0]+"/snoop/whisperin?app=sup&whisper=in", 200)
	n.mustDo("POST", "/channels/spyboth/record?name=snoop-both&format=wav", 201)
	callerSink.reset()
	agentSink.reset()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = calls[0].SendAudio(ctx, sine(440, 8000*2, 8000)) }()
	go func() { defer wg.Done(); _ = calls[1].SendAudio(ctx, sine(1000, 8000*2, 8000)) }()
	time.Sleep(300 * time.Millisecond) // the whisper comes in the middle of the talk
	n.mustDo("POST", "/channels/whisperin/play?media=tone:!2000/1000", 201)
	wg.Wait()
	time.Sleep(300 * time.Millisecond) // the last frames reach the phones
	heardByAgent, heardByCaller := agentSink.samples(), callerSink.samples()
	n.mustDo("POST", "/recordings/live/snoop-both/stop", 204)
	elapsed := time.Since(start)

	if g2, g7 := goertzel(heardByAgent, 2000), goertzel(heardByAgent, 700); g2 < 20*g7 || !dominant(heardByAgent, 440, 700) {
		t.Errorf("the agent does not hear the whisper with the caller: 2000 Hz %.0f, 440 Hz %.0f, 700 Hz %.0f", g2, goertzel(heardByAgent, 440), g7)
	}
	if g2, g1 := goertzel(heardByCaller, 2000), goertzel(heardByCaller, 1000); g2*20 > g1 {
		t.Errorf("the caller hears a whisper meant for what the caller says: 2000 Hz %.0f against the agent's 1000 Hz %.0f", g2, g1)
	}
	rate, pcm := readWAV(t, filepath.Join(n.recDir(), "snoop-both.wav"))
	if rate != 8000 || len(pcm) < 8000 {
		t.Fatalf("snoop-both: %d Hz, %d samples", rate, len(pcm))
	}
	// Power per 100 ms block, summed: a frame dropped by the jitter
	// buffer shifts a tone's phase, which a Goertzel over the whole file
	// would count against it.
	g440, g1000, g700 := blockPower(pcm, 440), blockPower(pcm, 1000), blockPower(pcm, 700)
	t.Logf("snoop-both: %d samples over %v; 440 Hz %.0f, 1000 Hz %.0f, 700 Hz %.0f", len(pcm), elapsed, g440, g1000, g700)
	if g440 < 20*g700 || g1000 < 20*g700 || g440 > 10*g1000 || g1000 > 10*g440 {
		t.Errorf("snoop-both does not hold both parties: 440 Hz %.0f, 1000 Hz %.0f, 700 Hz %.0f", g440, g1000, g700)
	}
	if max := int(elapsed.Seconds()*8000) + 1600; len(pcm) > max {
		t.Errorf("snoop-both has %d samples for %v of call: more than one frame per tick", len(pcm), elapsed)
	}
}

// blockPower is goertzel's power at f summed over 100 ms blocks (phase
// jumps between blocks do not cancel).
func blockPower(pcm []int16, f float64) float64 {
	var sum float64
	for off := 0; off+800 <= len(pcm); off += 800 {
		sum += goertzel(pcm[off:off+800], f)
	}
	return sum
}
