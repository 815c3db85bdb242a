package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil/baresip"
	"github.com/tapedeck/tapedeck/internal/testutil/nodeari"
)

// dialerLine renders one line of dialer.js as TYPE[/detail]: the state of a
// ChannelStateChange, the dialstatus of a Dial, the cause of a
// ChannelDestroyed.
func dialerLine(l nodeari.Line) string {
	typ, _ := l["type"].(string)
	switch typ {
	case "ChannelStateChange":
		return typ + "/" + fmt.Sprint(l["state"])
	case "Dial":
		return typ + "/" + fmt.Sprint(l["dialstatus"])
	case "ChannelDestroyed":
		return fmt.Sprintf("%s/%v", typ, l["cause"])
	case "ChannelDialplan":
		return fmt.Sprintf("%s/%v(%v)", typ, l["dialplan_app"], l["dialplan_app_data"])
	}
	return typ
}

func dialerSequence(p *nodeari.Proc) []string {
	var seq []string
	for _, l := range p.Lines() {
		switch l["type"] {
		case "READY", "ORIGINATED", "CREATED":
			continue
		}
		seq = append(seq, dialerLine(l))
	}
	return seq
}

// TestAriDialerOriginateEvents: an npm ari-client dialer originates into its
// application and follows the channel from creation to destruction. The
// events come in Asterisk's order (ast_dial + chan_pjsip): ChannelCreated,
// Dial with an empty dialstatus, Ringing, Up, Dial ANSWER, StasisStart; and
// for a failure the Dial status and ChannelDestroyed with the cause, with
// no StasisStart.
func TestAriDialerOriginateEvents(t *testing.T) {
	n := startNode(t)
	run := func(t *testing.T, env map[string]string) *nodeari.Proc {
		env["ARI_URL"] = n.baseURL()
		env["ARI_APP"] = "dialer"
		p := nodeari.Start(t, "dialer.js", env)
		if _, err := p.WaitLine("READY", 20*time.Second); err != nil {
			t.Fatalf("dialer did not start: %v\n%s", err, p.Output())
		}
		return p
	}
	want := func(t *testing.T, p *nodeari.Proc, want ...string) {
		t.Helper()
		if err := p.Wait(30 * time.Second); err != nil {
			t.Fatalf("dialer: %v\n%s", err, p.Output())
		}
		if got := strings.Join(dialerSequence(p), " "); got != strings.Join(want, " ") {
			t.Fatalf("events\n got %s\nwant %s", got, strings.Join(want, " "))
		}
	}

	t.Run("unreachable", func(t *testing.T) {
		// Nothing listens on the discard port: the INVITE is never answered
		// and the originate timeout (1 s) ends the dial.
		p := run(t, map[string]string{"ENDPOINT": "PJSIP/nobody@127.0.0.1:9", "DIAL_TIMEOUT": "1"})
		want(t, p, "ChannelCreated", "Dial/", "Dial/NOANSWER", "ChannelHangupRequest", "ChannelDestroyed/19")
		if l := p.Lines()[len(p.Lines())-1]; l["cause_txt"] != "User alerting, no answer" {
			t.Errorf("cause_txt %v", l["cause_txt"])
		}
	})

	t.Run("rejected", func(t *testing.T) {
		phone := baresip.Start(t, baresip.Options{User: "callee", AnswerMode: "auto"})
		// baresip answers 404 for a user it does not have.
		p := run(t, map[string]string{"ENDPOINT": fmt.Sprintf("PJSIP/nobody@127.0.0.1:%d", phone.SIPPort)})
		want(t, p, "ChannelCreated", "Dial/", "Dial/CHANUNAVAIL", "ChannelHangupRequest", "ChannelDestroyed/1")
	})

	for _, mode := range []string{"originate", "create"} {
		t.Run("answered-"+mode, func(t *testing.T) {
			phone := baresip.Start(t, baresip.Options{User: "callee"})
			p := run(t, map[string]string{"ENDPOINT": fmt.Sprintf("PJSIP/callee@127.0.0.1:%d", phone.SIPPort), "MODE": mode})
			if _, err := phone.WaitEvent("CALL_INCOMING", 15*time.Second); err != nil {
				t.Fatalf("%v\n%s", err, p.Output())
			}
			if _, err := p.WaitLine("ChannelStateChange", 10*time.Second); err != nil {
				t.Fatalf("no Ringing: %v\n%s", err, p.Output())
			}
			if err := phone.Accept(); err != nil {
				t.Fatal(err)
			}
			var seq []string
			if mode == "create" {
				// The created channel is in the application at once:
				// Asterisk runs Stasis on it, and the application,
				// subscribed, hears that its dialplan application is
				// now Stasis. An originated channel's AppDial2 comes
				// before the application subscribes, and its Stasis at
				// answer is at the same location: no ChannelDialplan.
				seq = []string{"ChannelCreated", "ChannelDialplan/Stasis(dialer,dialed)", "StasisStart", "Dial/", "ChannelStateChange/Ringing", "ChannelStateChange/Up", "Dial/ANSWER"}
			} else {
				seq = []string{"ChannelCreated", "Dial/", "ChannelStateChange/Ringing", "ChannelStateChange/Up", "Dial/ANSWER", "StasisStart"}
			}
			if mode == "create" {
				// dialer.js hangs up on a StasisStart in state Up only.
				if _, err := p.WaitLine("Dial", 10*time.Second); err != nil {
					t.Fatal(err)
				}
				deadline := time.Now().Add(10 * time.Second)
				for !strings.Contains(strings.Join(dialerSequence(p), " "), "Dial/ANSWER") {
					if time.Now().After(deadline) {
						t.Fatalf("no Dial ANSWER\n%s", p.Output())
					}
					time.Sleep(20 * time.Millisecond)
				}
				n.mustDo("DELETE", "/channels/"+createdID(t, p), 204)
			}
			want(t, p, append(seq, "ChannelHangupRequest", "StasisEnd", "ChannelDestroyed/16")...)
			if l := p.Lines()[len(p.Lines())-1]; l["cause_txt"] != "Normal Clearing" {
				t.Errorf("cause_txt %v", l["cause_txt"])
			}
		})
	}
}

func createdID(t *testing.T, p *nodeari.Proc) string {
	t.Helper()
	l, err := p.WaitLine("CREATED", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return l["id"].(string)
}
