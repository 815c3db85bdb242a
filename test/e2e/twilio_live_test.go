package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/nodeari"
)

// twilioLive runs test/node/twilio-live.js once: the npm twilio library
// creates (rec == "") or updates a recording of a live call.
func twilioLive(t *testing.T, n *node, acc meta.Account, callSid, rec string, params map[string]string) nodeari.Line {
	t.Helper()
	ps, _ := json.Marshal(params)
	action := "create"
	if rec != "" {
		action = "update"
	}
	p := nodeari.Start(t, "twilio-live.js", map[string]string{
		"TWILIO_BASE": n.baseURL(), "TWILIO_ACCOUNT_SID": acc.Sid, "TWILIO_AUTH_TOKEN": acc.AuthToken,
		"TWILIO_CALL_SID": callSid, "TWILIO_ACTION": action, "TWILIO_RECORDING": rec, "TWILIO_PARAMS": string(ps),
	})
	l, err := p.WaitLine("result", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	return l
}

// longestZeroRun is the longest run of zero samples in pcm.
func longestZeroRun(pcm []int16) int {
	best, run := 0, 0
	for _, s := range pcm {
		if s == 0 {
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	return best
}

// TestTwilioLiveCallRecording: the npm twilio library starts, pauses,
// resumes and stops recordings of a real call (Calls/{CallSid}/Recordings,
// Twilio.CURRENT); a second start while one runs, an update of a finished
// recording, dual channels on an unbridged call and an unknown call get
// Twilio's errors. Of 1 s + 1 s paused + 1 s of audio sent, a pause that
// skips keeps about 2 s, one that inserts silence keeps about 3 s with 1 s
// of digital silence in the middle.
func TestTwilioLiveCallRecording(t *testing.T) {
	if _, err := os.Stat(filepath.Join(testutil.RepoRoot(t), "test", "node", "node_modules", "twilio")); err != nil {
		testutil.SkipOrFail(t, "test/node/node_modules/twilio missing; run scripts/test-deps.sh (npm ci in test/node)")
	}
	n := startNode(t)
	events := n.connect("test")
	acc := defaultAccount(t, n)
	phone := newPhone(t, "udp")
	id, call := answeredCall(t, n, events, phone, "350")
	_, body := n.do("GET", "/channels/"+id+"/variable?variable=CALLSID", nil)
	var v struct{ Value string }
	_ = json.Unmarshal(body, &v)
	callSid := v.Value
	if !strings.HasPrefix(callSid, "CA") {
		t.Fatalf("CALLSID %q", callSid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sent := 0
	send := func(ms int) {
		t.Helper()
		must(t, call.SendAudio(ctx, sweep(ms*8)))
		sent += ms / 20
		waitRx(t, n, id, sent)
	}
	wantErr := func(what string, l nodeari.Line, status, code float64) {
		t.Helper()
		if l["error"] != true || l["status"] != status || l["code"] != code ||
			l["moreInfo"] != "https://www.twilio.com/docs/errors/"+strconv.Itoa(int(code)) {
			t.Errorf("%s: %v, want Twilio's error %v/%v", what, l, status, code)
		}
	}
	wantErr("dual channels on a call with one party", twilioLive(t, n, acc, callSid, "", map[string]string{"recordingChannels": "dual"}), 400, 20001)
	wantErr("an unknown call", twilioLive(t, n, acc, "CA"+strings.Repeat("0", 32), "", nil), 404, 20404)

	lengths := map[string]float64{}
	for _, behavior := range []string{"skip", "silence"} {
		l := twilioLive(t, n, acc, callSid, "", map[string]string{"recordingChannels": "mono", "recordingTrack": "both", "trim": "do-not-trim"})
		sid, _ := l["sid"].(string)
		if !meta.IsRecordingSid(sid) || l["status"] != "in-progress" || l["callSid"] != callSid || l["channels"] != 1.0 ||
			l["source"] != "StartCallRecordingAPI" || l["track"] != "both" ||
			l["uri"] != "/2010-04-01/Accounts/"+acc.Sid+"/Calls/"+callSid+"/Recordings/"+sid+".json" {
			t.Fatalf("%s: create: %v", behavior, l)
		}
		wantErr("a second recording while one runs", twilioLive(t, n, acc, callSid, "", nil), 400, 16108)
		send(1000)
		if l := twilioLive(t, n, acc, callSid, "Twilio.CURRENT", map[string]string{"status": "paused", "pauseBehavior": behavior}); l["status"] != "paused" || l["sid"] != sid {
			t.Fatalf("%s: pause: %v", behavior, l)
		}
		send(1000)
		if l := twilioLive(t, n, acc, callSid, "Twilio.CURRENT", map[string]string{"status": "in-progress"}); l["status"] != "in-progress" || l["sid"] != sid {
			t.Fatalf("%s: resume: %v", behavior, l)
		}
		send(1000)
		if l := twilioLive(t, n, acc, callSid, sid, map[string]string{"status": "stopped"}); l["status"] != "stopped" || l["sid"] != sid {
			t.Fatalf("%s: stop: %v", behavior, l)
		}
		var rec meta.Recording
		pollFor(t, 10*time.Second, func() bool {
			var err error
			rec, err = n.srv.Catalog().Meta.Recording(context.Background(), acc.Sid, sid)
			return err == nil && rec.Status == meta.StatusCompleted
		}, "the recording completed in the catalog")
		wantErr("pausing a finished recording", twilioLive(t, n, acc, callSid, sid, map[string]string{"status": "paused"}), 400, 16114)
		rate, pcm := readWAV(t, filepath.Join(n.recDir(), rec.Name+".wav"))
		lengths[behavior] = float64(len(pcm)) / float64(rate)
		zeros := float64(longestZeroRun(pcm)) / float64(rate)
		switch behavior {
		case "skip":
			if zeros > 0.3 {
				t.Errorf("skip: %.2f s of silence in the file; the paused second should be left out", zeros)
			}
		case "silence":
			if zeros < 0.9 || zeros > 1.3 {
				t.Errorf("silence: the longest silence is %.2f s, want the paused second", zeros)
			}
		}
	}
	t.Logf("recorded: skip %.2f s, silence %.2f s", lengths["skip"], lengths["silence"])
	if d := lengths["skip"]; d < 1.8 || d > 2.4 {
		t.Errorf("skip: %.2f s recorded, want about 2 s (the paused second left out)", d)
	}
	if d := lengths["silence"]; d < 2.8 || d > 3.4 {
		t.Errorf("silence: %.2f s recorded, want about 3 s (the paused second as silence)", d)
	}
	must(t, call.Hangup(ctx))
	events.skipTo("ChannelDestroyed", 5*time.Second)
}
