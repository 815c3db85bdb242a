package e2e

import (
	"encoding/binary"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/baresip"
)

// TestOzekiPlaySendDTMFAndReject: the verbs and commands no other test
// runs on a real call. A Script(url) call's OzML sends digits (SendDTMF)
// and plays a tone (Play), then waits; meanwhile the SendDTMF and Play
// commands act on the same call: baresip receives both pairs of digits
// (RFC 4733) and hears both tones (1,000 Hz from the verb, 2,000 Hz from
// the command) in its received audio. A second call whose OzML is
// <Reject/> is refused before it is answered, with SIP 403 (Call
// Rejected), never established.
func TestOzekiPlaySendDTMFAndReject(t *testing.T) {
	recv := startReceiver(t)
	recv.answer = func(path string, form url.Values) (int, string) {
		if path != "/incoming" {
			return 200, ""
		}
		if form.Get("Callee") == "601" {
			return 200, `<?xml version="1.0"?><Response><Reject/></Response>`
		}
		return 200, `<?xml version="1.0"?><Response><SendDTMF>42</SendDTMF><Play>tone:!1000/1500</Play><Delay>30</Delay></Response>`
	}
	n := ozekiNode(t, "_6XX", "Script("+recv.url("/incoming")+")")
	auth := "/api?Username=HTTP_User_1&Password=qwe123&"

	phone := baresip.Start(t, baresip.Options{User: "ozverbs", Record: true})
	if err := phone.Dial(n.target("600")); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.WaitEvent("CALL_ESTABLISHED", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if d, err := phone.WaitDTMF(2, 10*time.Second); err != nil || d != "42" {
		t.Fatalf("the SendDTMF verb's digits: %q %v, want 42", d, err)
	}
	id := n.activeCall()
	// The verb's tone (1.5 s) has been played before the Delay; the
	// commands act on the call during the Delay.
	if r := parseOz(t, n.ozekiGet(auth+"command=SendDTMF&DTMF=7%23&CallId="+url.QueryEscape(id))); r.Code != 200 {
		t.Fatalf("SendDTMF: %d %s", r.Code, r.Message)
	}
	if d, err := phone.WaitDTMF(2, 10*time.Second); err != nil || d != "7#" {
		t.Fatalf("the SendDTMF command's digits: %q %v, want 7#", d, err)
	}
	if r := parseOz(t, n.ozekiGet(auth+"command=Play&Url="+url.QueryEscape("tone:!2000/1500")+"&CallId="+url.QueryEscape(id))); r.Code != 200 {
		t.Fatalf("Play: %d %s", r.Code, r.Message)
	}
	// What baresip receives is written to its file as it arrives: both
	// tones are in it while the call is up.
	var heard1000, heard2000 bool
	err := testutil.Poll(15*time.Second, 100*time.Millisecond, func() bool {
		m, _ := filepath.Glob(filepath.Join(phone.RecordDir, "*dec*.wav"))
		if len(m) == 0 {
			return false
		}
		b, err := os.ReadFile(m[0])
		if err != nil || len(b) < 44+3200 {
			return false
		}
		pcm := make([]int16, (len(b)-44)/2)
		for i := range pcm {
			pcm[i] = int16(binary.LittleEndian.Uint16(b[44+2*i:]))
		}
		for off := 0; off+1600 <= len(pcm); off += 800 {
			w := pcm[off : off+1600]
			if rms(w) < 300 {
				continue
			}
			heard1000 = heard1000 || dominant(w, 1000, 2000)
			heard2000 = heard2000 || dominant(w, 2000, 1000)
		}
		return heard1000 && heard2000
	})
	if err != nil {
		t.Fatalf("received audio: the Play verb's 1000 Hz heard %v, the Play command's 2000 Hz heard %v", heard1000, heard2000)
	}
	if r := parseOz(t, n.ozekiGet(auth+"command=Hangup&CallId="+url.QueryEscape(id))); r.Code != 200 {
		t.Fatalf("Hangup: %d %s", r.Code, r.Message)
	}
	if _, err := phone.WaitEvent("CALL_CLOSED", 10*time.Second); err != nil {
		t.Fatal(err)
	}

	// <Reject/>: refused before the answer.
	rej := baresip.Start(t, baresip.Options{User: "ozreject"})
	if err := rej.Dial(n.target("601")); err != nil {
		t.Fatal(err)
	}
	ev, err := rej.WaitEvent("CALL_CLOSED", 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(ev["param"]); !containsAny(got, "403", "Forbidden") {
		t.Fatalf("the rejected call closed with %q, want 403", got)
	}
	for _, e := range rej.Events() {
		if e["type"] == "CALL_ESTABLISHED" {
			t.Fatal("the rejected call was answered")
		}
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
