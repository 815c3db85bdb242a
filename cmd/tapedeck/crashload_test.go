package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// TestTwentyRecordingsSurviveKill9: kill -9 with 20 recordings being
// written at once (Record() routes, the load harness's kind of call) leaves
// 20 valid WAVs, each missing at most the last second of what was sent; at
// restart all are repaired and catalogued as recovered.
func TestTwentyRecordingsSurviveKill9(t *testing.T) {
	const calls = 20
	sipPort, httpPort := testutil.FreeSIPPort(t), testutil.FreeTCPPort(t)
	srvLo, srvHi := testutil.FreeUDPPortRange(t, 200)
	dataDir := t.TempDir()
	cfgPath := filepath.Join(t.TempDir(), "tapedeck.yaml")
	cfg := testutil.NodeYAML("", dataDir, sipPort, httpPort, srvLo, srvHi) + `dialplan:
  - exten: _4XX
    app: Record(load/${EXTEN},wav)
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, "-config", cfgPath)
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitHTTP(t, base)

	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	phone, err := sipua.New(sipua.Options{User: "load", RTPMin: rtpLo, RTPMax: rtpHi})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tone := make([]int16, 8000*3+4000) // 3.5 s each
	for i := range tone {
		tone[i] = int16(8000 * ((i/10)%2*2 - 1))
	}
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			call, err := phone.Dial(ctx, fmt.Sprintf("sip:%d@127.0.0.1:%d", 400+i, sipPort), sipua.CallOptions{})
			if err != nil {
				errs <- fmt.Errorf("dial %d: %w", 400+i, err)
				return
			}
			if err := call.SendAudio(ctx, tone); err != nil {
				errs <- fmt.Errorf("send %d: %w", 400+i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("%v\n%s", err, p.output())
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done

	p2 := startBinary(t, "-config", cfgPath)
	waitHTTP(t, base)
	for i := range calls {
		path := filepath.Join(dataDir, "recording", "load", fmt.Sprintf("%d.wav", 400+i))
		if n := wavSamples(t, path); n < len(tone)-8000 || n > len(tone)+800 {
			t.Errorf("%s holds %d samples after the crash; %d were sent, at most the last second may be lost", path, n, len(tone))
		}
	}
	req, _ := http.NewRequest("GET", base+"/ari/recordings/stored", nil)
	req.SetBasicAuth("asterisk", "asterisk")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var stored []struct {
		Name      string `json:"name"`
		Recovered bool   `json:"recovered"`
	}
	if err := json.NewDecoder(res.Body).Decode(&stored); err != nil {
		t.Fatal(err)
	}
	recovered := 0
	for _, s := range stored {
		if s.Recovered {
			recovered++
		}
	}
	if recovered != calls {
		t.Fatalf("%d of %d stored recordings listed as recovered: %+v\n%s", recovered, calls, stored, p2.output())
	}
}
