package call

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/sip"
)

// TestCatalogInfoVsSetVar: the catalog's description of a recording reads
// the channel's caller while an API sets CALLERID(num); under -race this
// fails unless catalogInfo takes the channel's lock.
func TestCatalogInfoVsSetVar(t *testing.T) {
	m := testManager(t, "")
	ch := testChannel(t, m)
	ch.enterStasis("app", nil)
	f, err := recorder.Lookup("wav")
	if err != nil {
		t.Fatal(err)
	}
	r := &LiveRecording{m: m, ch: ch, name: "x", format: f, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 200 {
			if err := ch.SetVar("CALLERID(num)", string(rune('0'+i%10)), false); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 200 {
		if in := r.catalogInfo("in-progress"); len(in.CallerNumber) > 1 {
			t.Fatalf("caller %q", in.CallerNumber)
		}
	}
	wg.Wait()
}

// idleDialer is a Dialer that is never reached (outboundChannel does not
// dial).
type idleDialer struct{}

func (idleDialer) Dial(context.Context, sip.DialOptions) (*sip.OutDialog, error) {
	panic("not dialed")
}

// TestOriginateVariablesBeforePublish: an originated channel's variables
// are in place before the channel can be found; a reader that finds it by
// id (under its lock) while it is being made must not race the writes.
func TestOriginateVariablesBeforePublish(t *testing.T) {
	m := testManager(t, "")
	m.SetDialer(idleDialer{})
	stop := make(chan struct{})
	defer close(stop)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if ch, err := m.channel("orig"); err == nil {
				ch.mu.Lock()
				v := ch.vars["A"]
				ch.mu.Unlock()
				if v != "1" {
					t.Errorf("variable A = %q on a published channel", v)
				}
				return
			}
		}
	}()
	vars := map[string]string{}
	for i := range 50 {
		vars[string(rune('B'+i))] = "x"
	}
	vars["A"] = "1"
	ch, _, err := m.outboundChannel(OriginateOptions{Endpoint: "PJSIP/bob@127.0.0.1:5999", ChannelID: "orig", Variables: vars}, StateDown)
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	vars["A"] = "changed"
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.vars["A"] != "1" {
		t.Errorf("the channel shares the caller's map: A = %q", ch.vars["A"])
	}
}

// failDialer answers every INVITE with an error, at once.
type failDialer struct{}

func (failDialer) Dial(context.Context, sip.DialOptions) (*sip.OutDialog, error) {
	return nil, errors.New("unreachable")
}

// TestDialVsSetCallerID: dialing reads the caller id it puts in From while
// the application may set CALLERID(num); under -race this fails unless the
// dial takes the channel's lock.
func TestDialVsSetCallerID(t *testing.T) {
	m := testManager(t, "")
	m.SetDialer(failDialer{})
	for range 20 {
		ch, err := m.create(OriginateOptions{Endpoint: "PJSIP/bob@127.0.0.1:5999", App: "app"})
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.Dial("", 0); err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			if err := ch.SetVar("CALLERID(num)", "1", false); err != nil {
				break // hung up: the dial failed
			}
			if i > 1e6 {
				t.Fatal("the failed dial never hung up")
			}
		}
		<-ch.Done()
	}
}
