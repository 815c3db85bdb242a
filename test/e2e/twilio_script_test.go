package e2e

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// TestTwilioLiveControlOfScriptCall: the Twilio API records a call that an
// OzML script runs (Script(url), no ARI application; the script records
// the call with its own <Record>): the npm twilio library starts a second
// recording by the call's CallSid, pauses, resumes and stops it while the
// script holds the call; the catalog keeps both recordings of the call.
func TestTwilioLiveControlOfScriptCall(t *testing.T) {
	if _, err := os.Stat(filepath.Join(testutil.RepoRoot(t), "test", "node", "node_modules", "twilio")); err != nil {
		testutil.SkipOrFail(t, "test/node/node_modules/twilio missing; run scripts/test-deps.sh (npm ci in test/node)")
	}
	recv := startReceiver(t)
	recv.answer = func(path string, form url.Values) (int, string) {
		if path == "/incoming" {
			return 200, `<?xml version="1.0"?><Response><Record Format="wav"></Record><Delay>30</Delay><Hangup></Hangup></Response>`
		}
		return 200, ""
	}
	n := ozekiNode(t, "_6XX", "Script("+recv.url("/incoming")+")")
	acc := defaultAccount(t, n)
	phone := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sc, err := phone.Dial(ctx, n.target("600"), sipua.CallOptions{})
	must(t, err)
	in := recv.waitPost("IncomingCall", 10*time.Second)
	id := in.Form.Get("CallId")
	if id == "" {
		t.Fatalf("IncomingCall %v", in.Form)
	}
	// The call's CallSid: ARI answers only for channels in Stasis and the
	// IncomingCall notification names the channel, so it is read from the
	// script's own recording in the catalog.
	var scriptRec meta.Recording
	pollFor(t, 10*time.Second, func() bool {
		page, err := n.srv.Catalog().Meta.ListRecordings(ctx, meta.Query{AccountSid: acc.Sid, Limit: 10, SortBy: meta.SortDateCreated})
		if err != nil || len(page.Items) != 1 {
			return false
		}
		scriptRec = page.Items[0]
		return scriptRec.CallSid != "" && scriptRec.Status == meta.StatusInProgress
	}, "the script's recording in progress in the catalog")
	callSid := scriptRec.CallSid
	l := twilioLive(t, n, acc, callSid, "", map[string]string{"recordingTrack": "inbound"})
	sid, _ := l["sid"].(string)
	if !meta.IsRecordingSid(sid) || l["status"] != "in-progress" || l["callSid"] != callSid {
		t.Fatalf("start on a script call: %v", l)
	}
	must(t, sc.SendAudio(ctx, sweep(8*600)))
	if l := twilioLive(t, n, acc, callSid, "Twilio.CURRENT", map[string]string{"status": "paused"}); l["status"] != "paused" || l["sid"] != sid {
		t.Fatalf("pause: %v", l)
	}
	if l := twilioLive(t, n, acc, callSid, "Twilio.CURRENT", map[string]string{"status": "in-progress"}); l["status"] != "in-progress" || l["sid"] != sid {
		t.Fatalf("resume: %v", l)
	}
	must(t, sc.SendAudio(ctx, sweep(8*600)))
	if l := twilioLive(t, n, acc, callSid, sid, map[string]string{"status": "stopped"}); l["status"] != "stopped" || l["sid"] != sid {
		t.Fatalf("stop: %v", l)
	}
	var rec meta.Recording
	pollFor(t, 10*time.Second, func() bool {
		rec, err = n.srv.Catalog().Meta.Recording(ctx, acc.Sid, sid)
		return err == nil && rec.Status == meta.StatusCompleted
	}, "the API's recording completed in the catalog")
	if rec.CallSid != callSid || rec.Duration < 1 {
		t.Errorf("the API's recording: %+v, want the script call's, over a second", rec)
	}
	// The script still holds the call: it is live until the caller hangs up.
	select {
	case <-sc.Ended():
		t.Fatal("the script's call ended before its Delay")
	default:
	}
	must(t, sc.Hangup(ctx))
	pollFor(t, 10*time.Second, func() bool {
		r, err := n.srv.Catalog().Meta.Recording(ctx, acc.Sid, scriptRec.Sid)
		return err == nil && r.Status == meta.StatusCompleted
	}, "the script's recording completed at the hangup")
	if c := callRows(t, n, acc, callSid); c != 2 {
		t.Errorf("the call's recordings: %d, want the script's and the API's", c)
	}
}
