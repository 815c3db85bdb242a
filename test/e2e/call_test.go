package e2e

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/tapedeck/tapedeck/internal/sdp"
	"github.com/tapedeck/tapedeck/internal/sipua"
)

// TestCallLifecycle: a real SIP call with RTP enters the app, is answered
// over ARI, DTMF arrives as ChannelDtmfReceived, and a BYE from the caller
// produces ChannelHangupRequest, StasisEnd, ChannelDestroyed in order.
func TestCallLifecycle(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			n := startNode(t)
			events := n.connect("test")
			phone := newPhone(t, transport)

			res := dialAsync(phone, n.target("305"), sipua.CallOptions{})
			start := events.expect("StasisStart", 5*time.Second)
			if got := start["args"]; !reflect.DeepEqual(got, []any{"305"}) {
				t.Fatalf("StasisStart args = %v, want [305]", got)
			}
			if start["application"] != "test" || start["asterisk_id"] == "" || start["timestamp"] == nil {
				t.Fatalf("StasisStart base fields: %v", start)
			}
			ch := start["channel"].(map[string]any)
			id := ch["id"].(string)
			if ch["state"] != "Ring" || !strings.HasPrefix(ch["name"].(string), "PJSIP/alice-") {
				t.Fatalf("channel %v", ch)
			}
			dp := ch["dialplan"].(map[string]any)
			if dp["exten"] != "305" || dp["app_name"] != "Stasis" || dp["app_data"] != "test,305" {
				t.Fatalf("dialplan %v", dp)
			}
			// The channel is visible over REST.
			body := n.mustDo("GET", "/channels/"+id, 200)
			if !contains(string(body), `"id":"`+id+`"`) {
				t.Fatalf("GET channel: %s", body)
			}
			n.mustDo("POST", "/channels/"+id+"/answer", 204)
			r := wait(t, res, 10*time.Second, "answer")
			if r.err != nil {
				t.Fatalf("dial: %v", r.err)
			}
			call := r.call
			sc := events.expect("ChannelStateChange", 5*time.Second)
			if sc["channel"].(map[string]any)["state"] != "Up" {
				t.Fatalf("state change %v", sc)
			}

			// RTP flows: the server latches to our media and counts packets.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			tone := make([]int16, 8000/2) // 0.5 s
			for i := range tone {
				tone[i] = int16(8000 * sinApprox(i))
			}
			if err := call.SendAudio(ctx, tone); err != nil {
				t.Fatal(err)
			}
			if err := call.SendDTMF("12#", 120*time.Millisecond, 60*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			var digits string
			for range 3 {
				ev := events.expect("ChannelDtmfReceived", 5*time.Second)
				digits += ev["digit"].(string)
				if ms, _ := ev["duration_ms"].(float64); ms < 100 || ms > 200 {
					t.Errorf("duration_ms = %v, want about 120", ev["duration_ms"])
				}
				if channelID(ev) != id {
					t.Errorf("DTMF on channel %s, want %s", channelID(ev), id)
				}
			}
			if digits != "12#" {
				t.Fatalf("digits = %q, want 12#", digits)
			}
			stats := n.mustDo("GET", "/channels/"+id+"/rtp_statistics", 200)
			if !contains(string(stats), `"rxcount":`) || contains(string(stats), `"rxcount":0,`) {
				t.Fatalf("rtp_statistics shows no packets: %s", stats)
			}

			if err := call.Hangup(ctx); err != nil {
				t.Fatalf("BYE: %v", err)
			}
			hr := events.expect("ChannelHangupRequest", 5*time.Second)
			if channelID(hr) != id {
				t.Fatal("hangup request for another channel")
			}
			events.expect("StasisEnd", 5*time.Second)
			d := events.expect("ChannelDestroyed", 5*time.Second)
			if d["cause"].(float64) != 16 || d["cause_txt"] != "Normal Clearing" {
				t.Fatalf("ChannelDestroyed %v", d)
			}
			n.mustDo("GET", "/channels/"+id, 404)
		})
	}
}

func sinApprox(i int) float64 {
	// 400 Hz square-ish wave is enough to carry audio; keep it cheap.
	if (i/10)%2 == 0 {
		return 0.5
	}
	return -0.5
}

// TestHangupFromARI: DELETE /channels/{id} sends BYE to the caller and
// emits the three events in order; the reason maps to the cause.
func TestHangupFromARI(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	phone := newPhone(t, "udp")
	res := dialAsync(phone, n.target("301"), sipua.CallOptions{})
	id := channelID(events.expect("StasisStart", 5*time.Second))
	n.mustDo("POST", "/channels/"+id+"/answer", 204)
	r := wait(t, res, 10*time.Second, "answer")
	if r.err != nil {
		t.Fatal(r.err)
	}
	events.expect("ChannelStateChange", 5*time.Second)
	n.mustDo("DELETE", "/channels/"+id+"?reason=busy", 204)
	hr := events.expect("ChannelHangupRequest", 5*time.Second)
	if hr["cause"].(float64) != 17 {
		t.Fatalf("cause %v, want 17 (busy)", hr["cause"])
	}
	events.expect("StasisEnd", 5*time.Second)
	d := events.expect("ChannelDestroyed", 5*time.Second)
	if d["cause_txt"] != "User busy" {
		t.Fatalf("cause_txt %v", d["cause_txt"])
	}
	wait(t, r.call.Ended(), 5*time.Second, "BYE at the caller")
}

// TestRejectBeforeAnswer: hanging up an unanswered channel answers the
// INVITE with the SIP code of the cause.
func TestRejectBeforeAnswer(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	phone := newPhone(t, "udp")
	var provisional []int
	res := dialAsync(phone, n.target("302"), sipua.CallOptions{OnProvisional: func(code int, _ []byte) { provisional = append(provisional, code) }})
	id := channelID(events.expect("StasisStart", 5*time.Second))
	n.mustDo("POST", "/channels/"+id+"/ring", 204)
	n.mustDo("DELETE", "/channels/"+id+"?reason=busy", 204)
	r := wait(t, res, 10*time.Second, "final response")
	var rej *sipua.ErrRejected
	if !errors.As(r.err, &rej) || rej.Code != 486 {
		t.Fatalf("dial err = %v, want 486", r.err)
	}
	if !reflect.DeepEqual(provisional, []int{100, 180}) && !reflect.DeepEqual(provisional, []int{180}) {
		t.Fatalf("provisional responses %v, want 100 and 180", provisional)
	}
	events.expect("ChannelHangupRequest", 5*time.Second)
	events.expect("StasisEnd", 5*time.Second)
	events.expect("ChannelDestroyed", 5*time.Second)
}

// TestRoutingErrors: no route → 404; app not connected → 603; bad SDP →
// 400; no common codec → 488. A call in progress is not affected.
func TestRoutingErrors(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	phone := newPhone(t, "udp")

	// A call in progress that must survive everything below.
	res := dialAsync(phone, n.target("300"), sipua.CallOptions{})
	id := channelID(events.expect("StasisStart", 5*time.Second))
	n.mustDo("POST", "/channels/"+id+"/answer", 204)
	live := wait(t, res, 10*time.Second, "answer")
	if live.err != nil {
		t.Fatal(live.err)
	}
	events.expect("ChannelStateChange", 5*time.Second)

	offer, err := sdp.Offer(sdp.Local{IP: []byte{127, 0, 0, 1}, Port: 44444, SessionID: 1, Version: 1}, []string{"PCMU"}, 101)
	if err != nil {
		t.Fatal(err)
	}
	g722 := strings.NewReplacer("RTP/AVP 0 101", "RTP/AVP 9 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:9 G722/8000").Replace(string(offer))
	cases := []struct {
		name  string
		exten string
		opts  sipua.CallOptions
		code  int
	}{
		{"no route", "555", sipua.CallOptions{}, 404},
		{"app not connected", "999", sipua.CallOptions{}, 603},
		{"malformed SDP", "303", sipua.CallOptions{Body: []byte("v=0\r\nthis is not SDP\r\n")}, 400},
		{"no common codec", "303", sipua.CallOptions{Body: []byte(g722)}, 488},
		{"only video", "303", sipua.CallOptions{Body: []byte(strings.Replace(string(offer), "m=audio", "m=video", 1))}, 488},
	}
	for _, c := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := phone.Dial(ctx, n.target(c.exten), c.opts)
		cancel()
		var rej *sipua.ErrRejected
		if !errors.As(err, &rej) || rej.Code != c.code {
			t.Errorf("%s: err = %v, want %d", c.name, err, c.code)
		}
	}
	// Nothing reached the app, and the live call is still up.
	if ev := events.nextEvent(300 * time.Millisecond); ev != nil {
		t.Fatalf("unexpected event %v", ev)
	}
	body := n.mustDo("GET", "/channels/"+id, 200)
	if !contains(string(body), `"state":"Up"`) {
		t.Fatalf("live call changed: %s", body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := live.call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	events.skipTo("ChannelDestroyed", 5*time.Second)
}

// TestCancel: CANCEL before answer ends the channel with the usual events.
func TestCancel(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	phone := newPhone(t, "udp")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := phone.Dial(ctx, n.target("304"), sipua.CallOptions{})
		done <- err
	}()
	id := channelID(events.expect("StasisStart", 5*time.Second))
	n.mustDo("POST", "/channels/"+id+"/ring", 204) // a provisional, so CANCEL may be sent
	time.Sleep(50 * time.Millisecond)              // let the 180 reach the phone before canceling
	cancel()
	if err := wait(t, done, 10*time.Second, "canceled dial"); err == nil {
		t.Fatal("canceled call succeeded")
	}
	events.expect("ChannelHangupRequest", 5*time.Second)
	events.expect("StasisEnd", 5*time.Second)
	events.expect("ChannelDestroyed", 5*time.Second)
	n.mustDo("GET", "/channels/"+id, 404)
}

// TestHoldReinvite: a re-INVITE to hold and back keeps the call, emits
// ChannelHold/ChannelUnhold, and DTMF still works afterwards.
func TestHoldReinvite(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	phone := newPhone(t, "udp")
	res := dialAsync(phone, n.target("306"), sipua.CallOptions{})
	id := channelID(events.expect("StasisStart", 5*time.Second))
	n.mustDo("POST", "/channels/"+id+"/answer", 204)
	r := wait(t, res, 10*time.Second, "answer")
	if r.err != nil {
		t.Fatal(r.err)
	}
	events.expect("ChannelStateChange", 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if code, err := r.call.Reinvite(ctx, sdp.SendOnly); err != nil || code != 200 {
		t.Fatalf("hold re-INVITE: %d %v", code, err)
	}
	events.expect("ChannelHold", 5*time.Second)
	if code, err := r.call.Reinvite(ctx, sdp.SendRecv); err != nil || code != 200 {
		t.Fatalf("unhold re-INVITE: %d %v", code, err)
	}
	events.expect("ChannelUnhold", 5*time.Second)
	if err := r.call.SendDTMF("5", 100*time.Millisecond, 0); err != nil {
		t.Fatal(err)
	}
	if ev := events.expect("ChannelDtmfReceived", 5*time.Second); ev["digit"] != "5" {
		t.Fatalf("digit %v", ev["digit"])
	}
	n.mustDo("DELETE", "/channels/"+id, 204)
	events.expect("ChannelHangupRequest", 5*time.Second)
	wait(t, r.call.Ended(), 5*time.Second, "BYE")
}

// TestLateOffer: an INVITE without SDP gets our offer in the 200 OK and
// the answer is taken from the ACK; DTMF then flows.
func TestLateOffer(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	phone := newPhone(t, "udp")
	res := dialAsync(phone, n.target("307"), sipua.CallOptions{NoOffer: true})
	id := channelID(events.expect("StasisStart", 5*time.Second))
	n.mustDo("POST", "/channels/"+id+"/answer", 204)
	r := wait(t, res, 10*time.Second, "answer")
	if r.err != nil {
		t.Fatal(r.err)
	}
	events.expect("ChannelStateChange", 5*time.Second)
	if err := r.call.SendDTMF("7", 100*time.Millisecond, 0); err != nil {
		t.Fatal(err)
	}
	if ev := events.expect("ChannelDtmfReceived", 5*time.Second); ev["digit"] != "7" {
		t.Fatalf("digit %v", ev["digit"])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.call.Hangup(ctx)
	events.skipTo("ChannelDestroyed", 5*time.Second)
}

// TestSendDTMFToCaller: POST /channels/{id}/dtmf arrives at the phone as
// RFC 4733 events.
func TestSendDTMFToCaller(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	phone := newPhone(t, "udp")
	got := make(chan string, 8)
	res := dialAsync(phone, n.target("308"), sipua.CallOptions{Handler: digitSink(got)})
	id := channelID(events.expect("StasisStart", 5*time.Second))
	n.mustDo("POST", "/channels/"+id+"/dtmf?dtmf=", 400)
	n.mustDo("POST", "/channels/"+id+"/answer", 204)
	r := wait(t, res, 10*time.Second, "answer")
	if r.err != nil {
		t.Fatal(r.err)
	}
	// Let our media latch before the digits are sent.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.call.SendAudio(ctx, make([]int16, 800)); err != nil {
		t.Fatal(err)
	}
	n.mustDo("POST", "/channels/"+id+"/dtmf?dtmf=4%2A9&duration=80&between=40", 204)
	var s string
	for range 3 {
		s += wait(t, got, 5*time.Second, "digit at the phone")
	}
	if s != "4*9" {
		t.Fatalf("phone got %q, want 4*9", s)
	}
	_ = r.call.Hangup(ctx)
}

type digitSink chan string

func (d digitSink) OnAudio(*rtp.Packet, uint64) {}

func (d digitSink) OnDTMF(digit rune, _ int, end bool) {
	if end {
		d <- string(digit)
	}
}
