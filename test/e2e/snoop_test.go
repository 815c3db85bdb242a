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
	agentPhone, err := sipua.New(sipua.Options{User: "agent", RTPMin: 46000, RTPMax: 46999, AutoAnswer: true,
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
