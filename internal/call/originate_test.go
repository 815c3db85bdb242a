package call

import (
	"context"
	"testing"

	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/sip"
)

// failingDialer answers every INVITE with a final failure.
type failingDialer struct {
	code int
	got  chan sip.DialOptions
}

func (d *failingDialer) Dial(ctx context.Context, o sip.DialOptions) (*sip.OutDialog, error) {
	d.got <- o
	return nil, &sip.RejectedError{Code: d.code, Reason: "Busy Here"}
}

// TestOriginateFailure: a rejected outbound call publishes Dial with the
// status of its SIP code and ends with the matching cause; originating to
// an application nobody runs is refused at once.
func TestOriginateFailure(t *testing.T) {
	dialer := &failingDialer{code: 486, got: make(chan sip.DialOptions, 1)}
	r := newRig(t, func(o *Options) { o.Dialer = dialer })
	sub := event.NewSubscriber("app", 64, false)
	r.bus.Register(sub, nil)

	if _, err := r.originate(OriginateOptions{Endpoint: "PJSIP/bob@127.0.0.1:5090", App: "nobody"}); err == nil {
		t.Fatal("originate to an unregistered application succeeded")
	}
	ch, err := r.originate(OriginateOptions{Endpoint: "PJSIP/bob@127.0.0.1:5090", App: "app", CallerID: "Alice <100>"})
	if err != nil {
		t.Fatal(err)
	}
	o := <-dialer.got
	if o.Target != "sip:bob@127.0.0.1:5090" || o.FromUser != "100" || o.FromName != "Alice" || len(o.Offer) == 0 {
		t.Fatalf("dial options %+v", o)
	}
	if ev := r.ev.expect("Dial"); ev["dialstatus"] != "" {
		t.Fatalf("first Dial %v", ev)
	}
	if ev := r.ev.expect("Dial"); ev["dialstatus"] != "BUSY" {
		t.Fatalf("Dial %v", ev)
	}
	ev := r.ev.expect("ChannelDestroyed")
	if ev["cause"] != float64(CauseUserBusy) {
		t.Fatalf("cause %v", ev["cause"])
	}
	<-ch.Done()
	r.ev.none("StasisStart") // a call never answered never enters the application

	r2 := newRig(t)
	if _, err := r2.originate(OriginateOptions{Endpoint: "PJSIP/bob@127.0.0.1", Extension: "300"}); err == nil {
		t.Fatal("originate without a dialer succeeded")
	}
}
