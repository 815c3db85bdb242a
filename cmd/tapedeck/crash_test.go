package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// recordEverything connects an app that answers each call and records it
// as name.
func recordEverything(t *testing.T, base, app, name string) <-chan struct{} {
	t.Helper()
	started := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ws := strings.Replace(base, "http://", "ws://", 1)
	conn, _, err := websocket.Dial(ctx, ws+"/ari/events?app="+app+"&api_key=asterisk:asterisk", nil)
	if err != nil {
		t.Fatal(err)
	}
	post := func(path string) {
		req, _ := http.NewRequest("POST", base+"/ari"+path, nil)
		req.SetBasicAuth("asterisk", "asterisk")
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}
	go func() {
		for {
			_, data, err := conn.Read(ctx)
			if err != nil {
				return
			}
			s := string(data)
			switch {
			case strings.Contains(s, `"type":"StasisStart"`):
				i := strings.Index(s, `"id":"`) + 6
				id := s[i : i+strings.Index(s[i:], `"`)]
				post("/channels/" + id + "/answer")
				post("/channels/" + id + "/record?format=wav&name=" + name)
			case strings.Contains(s, `"type":"RecordingStarted"`):
				started <- struct{}{}
			}
		}
	}()
	return started
}

// TestRecordingSurvivesKill9: kill -9 in the middle of a recording leaves a
// valid WAV with all but (at most) the last 1.5 s of the audio, as the
// README promises (the wav writer's second plus up to 500 ms queued); at
// restart it is repaired, logged and listed as recovered.
func TestRecordingSurvivesKill9(t *testing.T) {
	sipPort, httpPort := testutil.FreeSIPPort(t), testutil.FreeTCPPort(t)
	cfgPath := writeConfig(t, sipPort, httpPort)
	p := startBinary(t, "-config", cfgPath)
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitHTTP(t, base)
	started := recordEverything(t, base, "vm-record", "crash")

	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	phone, err := sipua.New(sipua.Options{User: "frank", RTPMin: rtpLo, RTPMax: rtpHi})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	call, err := phone.Dial(ctx, fmt.Sprintf("sip:305@127.0.0.1:%d", sipPort), sipua.CallOptions{})
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, p.output())
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatalf("recording did not start\n%s", p.output())
	}
	tone := make([]int16, 8000*3+4000) // 3.5 s
	for i := range tone {
		tone[i] = int16(8000 * ((i/10)%2*2 - 1))
	}
	if err := call.SendAudio(ctx, tone); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done

	dataDir := dataDirOf(t, cfgPath)
	path := filepath.Join(dataDir, "recording", "crash.wav")
	// Restart: the file is repaired and catalogued as recovered.
	p2 := startBinary(t, "-config", cfgPath)
	waitHTTP(t, base)
	if !strings.Contains(p2.output(), "recovered unfinished recording") || !strings.Contains(p2.output(), "crash") {
		t.Fatalf("no recovery log line:\n%s", p2.output())
	}
	samples := wavSamples(t, path)
	if samples < len(tone)-12000 || samples > len(tone)+800 {
		t.Fatalf("recovered WAV holds %d samples; sent %d, want at least all but the last 1.5 s", samples, len(tone))
	}
	req, _ := http.NewRequest("GET", base+"/ari/recordings/stored/crash", nil)
	req.SetBasicAuth("asterisk", "asterisk")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"recovered":true`) {
		t.Fatalf("stored recording after recovery: %d %s", res.StatusCode, body)
	}
}

func dataDirOf(t *testing.T, cfgPath string) string {
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "data_dir: "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no data_dir")
	return ""
}

// wavSamples validates a 16-bit mono 8 kHz WAV and returns its sample count.
func wavSamples(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 44 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" || string(b[12:16]) != "fmt " || string(b[36:40]) != "data" {
		t.Fatalf("not a canonical WAV: % x", b[:min(len(b), 44)])
	}
	if riff := binary.LittleEndian.Uint32(b[4:8]); int(riff) != len(b)-8 {
		t.Fatalf("RIFF size %d for a %d-byte file", riff, len(b))
	}
	data := int(binary.LittleEndian.Uint32(b[40:44]))
	if data != len(b)-44 {
		t.Fatalf("data size %d, %d bytes present", data, len(b)-44)
	}
	if rate := binary.LittleEndian.Uint32(b[24:28]); rate != 8000 {
		t.Fatalf("rate %d", rate)
	}
	return data / 2
}
