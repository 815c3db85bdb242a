package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil/nodeari"
)

// TestTwilioNodeLibrary: the official npm twilio library, unmodified (its
// HTTP client only sent to tapedeck instead of api.twilio.com), lists
// (following next_page_uri), fetches, filters, deletes and lists the
// soft-deleted recordings of two real recorded calls, and reads tapedeck's
// errors as Twilio's.
func TestTwilioNodeLibrary(t *testing.T) {
	needTwilioLibrary(t)
	n := startNode(t)
	events := n.connect("test")
	acc := defaultAccount(t, n)
	call1 := recordCall(t, n, events, "350", "tw/one", 1200*time.Millisecond)
	call2 := recordCall(t, n, events, "350", "tw/two", 600*time.Millisecond)

	p := nodeari.Start(t, "twilio-recordings.js", map[string]string{
		"TWILIO_BASE": n.baseURL(), "TWILIO_ACCOUNT_SID": acc.Sid, "TWILIO_AUTH_TOKEN": acc.AuthToken, "TWILIO_CALL_SID": call1,
	})
	line := func(typ string) nodeari.Line {
		t.Helper()
		l, err := p.WaitLine(typ, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	recs := func(l nodeari.Line) []map[string]any {
		var out []map[string]any
		arr, _ := l["recordings"].([]any)
		for _, r := range arr {
			out = append(out, r.(map[string]any))
		}
		return out
	}
	list := recs(line("list"))
	if len(list) != 2 || list[0]["callSid"] != call2 || list[1]["callSid"] != call1 {
		t.Fatalf("list (newest first, two pages of one): %v", list)
	}
	for _, r := range list {
		if r["status"] != "completed" || r["channels"] != 1.0 || r["apiVersion"] != "2010-04-01" || r["source"] != "StartCallRecordingAPI" ||
			r["mediaUrl"] != n.baseURL()+"/2010-04-01/Accounts/"+acc.Sid+"/Recordings/"+fmt.Sprint(r["sid"]) || r["errorCode"] != nil {
			t.Errorf("recording as the library reads it: %v", r)
		}
	}
	if list[1]["duration"] != "1" || list[0]["duration"] != "1" { // 1.2 s and 0.6 s, in whole seconds
		t.Errorf("durations %v, %v", list[1]["duration"], list[0]["duration"])
	}
	if l := line("page"); l["n"] != 1.0 || l["next"] == nil {
		t.Errorf("first page of one: %v", l)
	}
	fetched := line("fetch")["recording"].(map[string]any)
	if fetched["sid"] != list[0]["sid"] || fetched["callSid"] != call2 {
		t.Errorf("fetch: %v", fetched)
	}
	if byCall := recs(line("callList")); len(byCall) != 1 || byCall[0]["sid"] != list[1]["sid"] {
		t.Errorf("Calls/{CallSid}/Recordings: %v", byCall)
	}
	if f := recs(line("filtered")); len(f) != 1 || f[0]["callSid"] != call1 {
		t.Errorf("CallSid + DateCreated> filter: %v", f)
	}
	if l := line("before2001"); l["n"] != 0.0 {
		t.Errorf("DateCreated< 2001: %v", l)
	}
	if l := line("remove"); l["removed"] != true {
		t.Errorf("remove: %v", l)
	}
	if after := recs(line("afterRemove")); len(after) != 1 || after[0]["sid"] != list[1]["sid"] {
		t.Errorf("after the delete: %v", after)
	}
	soft := recs(line("softDeleted"))
	if len(soft) != 2 || soft[0]["sid"] != list[0]["sid"] || soft[0]["status"] != "deleted" {
		t.Errorf("IncludeSoftDeleted: %v", soft)
	}
	if l := line("fetchDeleted"); l["status"] != 404.0 || l["code"] != 20404.0 || l["moreInfo"] != "https://www.twilio.com/docs/errors/20404" {
		t.Errorf("fetching the deleted recording: %v", l)
	}
	if l := line("badToken"); l["status"] != 401.0 || l["code"] != 20003.0 {
		t.Errorf("a wrong token: %v", l)
	}
	line("done")
	if err := p.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	// The media of the other call, as WAV (the file) and as MP3.
	media := fmt.Sprint(list[1]["mediaUrl"])
	file, err := os.ReadFile(filepath.Join(n.recDir(), "tw", "one.wav"))
	if err != nil {
		t.Fatal(err)
	}
	if code, hdr, wav := httpGet(t, media+".wav", "", false); code != 200 || hdr.Get("Content-Type") != "audio/x-wav" || !bytes.Equal(wav, file) {
		t.Errorf("media .wav: %d %q, %d bytes, want the file's %d", code, hdr.Get("Content-Type"), len(wav), len(file))
	}
	if code, hdr, mp3 := httpGet(t, media+".mp3", "", false); code != 200 || hdr.Get("Content-Type") != "audio/mpeg" || len(mp3) < 1000 || mp3[0] != 0xff {
		t.Errorf("media .mp3: %d %q, %d bytes", code, hdr.Get("Content-Type"), len(mp3))
	}
	if code, _, _ := httpGet(t, fmt.Sprint(list[0]["mediaUrl"])+".wav", "", false); code != 404 {
		t.Errorf("the deleted recording's media: %d, want 404", code)
	}
	// The media went at once; the file of the other call is still there.
	if _, err := os.Stat(filepath.Join(n.recDir(), "tw", "two.wav")); !os.IsNotExist(err) {
		t.Errorf("the deleted recording's file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(n.recDir(), "tw", "one.wav")); err != nil {
		t.Errorf("the other recording's file: %v", err)
	}
}

// TestAbsentRecordingOfSilentCall: a recording of a real call that got no
// audio is catalogued absent: Twilio's status and error code in its API,
// in-progress until it ends, and its media is not served.
func TestAbsentRecordingOfSilentCall(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	acc := defaultAccount(t, n)
	phone := newPhone(t, "udp")
	id, call := recordingCall(t, n, events, phone, "350", "name=tw%2Fsilent&format=wav")
	twilioRec := func() map[string]any {
		t.Helper()
		l := map[string]any{}
		code, body := rc(t, n, acc, "GET", "/2010-04-01/Accounts/"+acc.Sid+"/Recordings.json")
		if code != 200 || json.Unmarshal(body, &l) != nil {
			t.Fatalf("list: %d %s", code, body)
		}
		recs := l["recordings"].([]any)
		if len(recs) != 1 {
			t.Fatalf("list: %s", body)
		}
		return recs[0].(map[string]any)
	}
	if r := twilioRec(); r["status"] != "in-progress" || r["duration"] != "-1" {
		t.Errorf("while recording: %v", r)
	}
	if code, _, _ := httpGet(t, fmt.Sprint(twilioRec()["media_url"]), "", false); code != 404 {
		t.Errorf("media while recording: %d, want 404", code)
	}
	n.mustDo("POST", "/recordings/live/tw%2Fsilent/stop", 204)
	events.skipTo("RecordingFinished", 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, call.Hangup(ctx))
	events.skipTo("ChannelDestroyed", 5*time.Second)
	_ = id
	r := twilioRec()
	if r["status"] != "absent" || r["error_code"] != 16101.0 {
		t.Errorf("after a call without audio: %v", r)
	}
	if code, _, _ := httpGet(t, fmt.Sprint(r["media_url"])+".wav", "", false); code != 404 {
		t.Errorf("media of an absent recording: %d, want 404", code)
	}
	rr := rcRecording(t, n, acc, fmt.Sprint(r["sid"]))
	if rr["status"] != "absent" || rr["duration"] != "0.0" {
		t.Errorf("the Restcomm API: %v", rr)
	}
}
