package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/server"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// A dialplan application registered from outside Invite runs for the calls
// its routes match, and its argument check runs when the server starts.
func TestRegisteredApplication(t *testing.T) {
	ran := make(chan []string, 1)
	call.RegisterApp(call.Application{
		Name: "TestAnswer",
		Check: func(args []string, _ call.CheckEnv) error {
			if len(args) != 2 {
				return errors.New("want TestAnswer(a,b)")
			}
			return nil
		},
		Run: func(inv *call.Invocation) {
			if _, err := inv.Calls.Channel(inv.ChannelID); err != nil {
				t.Errorf("channel %q: %v", inv.ChannelID, err)
			}
			ran <- inv.Args
		},
	})
	n := startNode(t, withRoute("_7XX", "TestAnswer(x,${EXTEN})"))
	phone := newPhone(t, "udp")
	// The application leaves the call ringing; the caller gives up once it
	// has run.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dialed := make(chan error, 1)
	go func() {
		_, err := phone.Dial(ctx, n.target("705"), sipua.CallOptions{})
		dialed <- err
	}()
	select {
	case args := <-ran:
		if !reflect.DeepEqual(args, []string{"x", "705"}) {
			t.Fatalf("args %v", args)
		}
	case err := <-dialed:
		t.Fatalf("the registered application did not run; dial: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the registered application did not run")
	}
	cancel()
	<-dialed
	pollFor(t, 5*time.Second, func() bool { return n.srv.Calls().Count() == 0 }, "the cancelled call to end")

	// A route whose arguments fail the check stops the server from starting.
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.SIP.Listen, cfg.HTTP.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Dialplan = []config.Route{{Exten: "700", App: "TestAnswer(x)"}}
	must(t, cfg.Validate())
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		srv.Close()
		t.Fatal("server started with a route failing its application's check")
	}
	if want := `rule 1 (exten "700"): TestAnswer(x): want TestAnswer(a,b)`; !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

// An originated channel's extension runs its route's application through
// the registry once answered: Stasis enters the app with the route's
// arguments; a route whose app cannot run there (Wait, a Stasis app nobody
// connected) hangs the channel up.
func TestOriginateExtensionApplication(t *testing.T) {
	n := startNode(t, func(c *config.Config) {
		c.Dialplan = append(c.Dialplan, config.Route{Exten: "600", App: "Wait(30)"})
	})
	events := n.connect("test")
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	callee, err := sipua.New(sipua.Options{User: "bob", RTPMin: rtpLo, RTPMax: rtpHi, AutoAnswer: true, RingFor: 50 * time.Millisecond})
	must(t, err)
	defer callee.Close()
	endpoint := urlq(fmt.Sprintf("PJSIP/bob@127.0.0.1:%d", callee.Port()))

	n.mustDo("POST", "/channels?endpoint="+endpoint+"&extension=305&channelId=to-305", 200)
	ev := events.expect("StasisStart", 10*time.Second)
	if args, _ := ev["args"].([]any); channelID(ev) != "to-305" || len(args) != 1 || args[0] != "305" {
		t.Fatalf("StasisStart %v", ev)
	}
	n.mustDo("DELETE", "/channels/to-305", 204)
	pollFor(t, 5*time.Second, func() bool { return n.srv.Calls().Count() == 0 }, "the first channel to end")

	for _, exten := range []string{"600", "999"} {
		n.mustDo("POST", "/channels?endpoint="+endpoint+"&extension="+exten+"&channelId=to-"+exten, 200)
		pollFor(t, 10*time.Second, func() bool {
			_, err := n.srv.Calls().Channel(call.ChannelID("to-" + exten))
			return err != nil
		}, "the channel to "+exten+" to be hung up")
	}
}
