package e2e

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// TestTwilioLiveControlOfScriptCall: the Twilio API records a call that an
// OzML script runs (Script(url), no ARI application; the script records
// the call with its own <Record>): the npm twilio library starts a second
// recording by the call's CallSid, pauses, resumes and stops it while the
// script holds the call; the catalog keeps both recordings of the call.
func TestTwilioLiveControlOfScriptCall(t *testing.T) {
	needTwilioLibrary(t)
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
	scriptRec := onlyRecordingInProgress(t, ctx, n, acc, "the script's recording in progress in the catalog")
	callSid := scriptRec.CallSid
	twilioRecordAlongside(t, ctx, n, acc, sc, callSid, "script")
	// The script still holds the call: it is live until the caller hangs up.
	select {
	case <-sc.Ended():
		t.Fatal("the script's call ended before its Delay")
	default:
	}
	must(t, sc.Hangup(ctx))
	waitRecordingStatus(t, ctx, n, acc, scriptRec.Sid, meta.StatusCompleted, 10*time.Second, "the script's recording completed at the hangup")
	if c := callRows(t, n, acc, callSid); c != 2 {
		t.Errorf("the call's recordings: %d, want the script's and the API's", c)
	}
}
