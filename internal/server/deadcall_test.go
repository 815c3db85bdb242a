package server

import (
	"context"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sdp"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

func squareWave(n int) []int16 {
	a := make([]int16, n)
	for i := range a {
		a[i] = int16(4000 - 8000*(i/10%2))
	}
	return a
}

// TestRTPTimeoutEndsDeadCall: a recorded call whose peer goes silent (no
// RTP, no BYE) is hung up after rtp.timeout_seconds with cause 44; the
// phone gets the BYE and the recording is finished and catalogued
// completed with the audio that came.
func TestRTPTimeoutEndsDeadCall(t *testing.T) {
	srv := newServer(t, func(c *config.Config) { c.RTP.TimeoutSeconds = 1 })
	phone := newPhone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before := scrape(t, srv, "", "")
	call, err := phone.Dial(ctx, sipua.Target("2001", srv.SIPAddr()), sipua.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := call.SendAudio(ctx, squareWave(1600)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	select {
	case <-call.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("the silent call was not hung up")
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("hung up %v after the last packet, before the 1 s timeout", d)
	}
	poll(t, 5*time.Second, "the channel gone", func() bool { return srv.Calls().Count() == 0 })
	row, err := srv.Catalog().Stored(ctx, "calls/drain")
	if err != nil {
		t.Fatal(err)
	}
	if row.Status != meta.StatusCompleted || row.Duration < 0.15 {
		t.Errorf("recording after the timeout: status %s, duration %v", row.Status, row.Duration)
	}
	after := scrape(t, srv, "", "")
	const series = `tapedeck_call_hangups_total{cause="Requested channel not available"}`
	if after[series]-before[series] != 1 {
		t.Errorf("%s moved by %v", series, after[series]-before[series])
	}
}

// TestRTPTimeoutPausedByHold: a call the peer puts on hold (sendonly) is
// not hung up while held however long the silence; once resumed, silence
// ends it again.
func TestRTPTimeoutPausedByHold(t *testing.T) {
	srv := newServer(t, func(c *config.Config) { c.RTP.TimeoutSeconds = 1 })
	phone := newPhone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	call, err := phone.Dial(ctx, sipua.Target("2001", srv.SIPAddr()), sipua.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := call.Reinvite(ctx, sdp.SendOnly); err != nil || code != 200 {
		t.Fatalf("hold: %d %v", code, err)
	}
	select {
	case <-call.Ended():
		t.Fatal("a held call was hung up by the RTP timeout")
	case <-time.After(2500 * time.Millisecond): // 2.5 timeouts of silence
	}
	if code, err := call.Reinvite(ctx, sdp.SendRecv); err != nil || code != 200 {
		t.Fatalf("resume: %d %v", code, err)
	}
	select {
	case <-call.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("the resumed silent call was not hung up")
	}
}
