package call

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/event"
)

// TestAnswer: answering needs the application; it sends one 200 with an SDP
// answer, moves the channel Up (ChannelStateChange) and is idempotent; a
// failed 200 leaves the channel ringing.
func TestAnswer(t *testing.T) {
	r := newRig(t)
	ch, d, _ := r.inbound("", offer(t, 5000, ""))
	if err := ch.Answer(); !isNotInApplication(err) {
		t.Fatalf("answer outside an application: %v", err)
	}
	ch.enterStasis("app", nil)
	r.ev.expect("StasisStart")
	if err := ch.Answer(); err != nil {
		t.Fatal(err)
	}
	ev := r.ev.expect("ChannelStateChange")
	if st := ev["channel"].(map[string]any)["state"]; st != "Up" {
		t.Fatalf("state %v", st)
	}
	if err := ch.Answer(); err != nil {
		t.Fatal(err)
	}
	answers, _, _ := d.snapshot()
	if len(answers) != 1 || !bytes.Contains(answers[0], []byte("m=audio")) {
		t.Fatalf("answers %q", answers)
	}
	if !bytes.Contains(answers[0], []byte("a=sendrecv")) {
		t.Fatalf("answer to a sendrecv offer: %s", answers[0])
	}

	ch2, d2, _ := r.inbound("app", offer(t, 5002, ""))
	d2.answerErr = errors.New("transaction gone")
	if err := ch2.Answer(); err == nil {
		t.Fatal("a failed 200 answered the channel")
	}
	if ch2.State() != StateRing {
		t.Fatalf("state after a failed answer: %v", ch2.State())
	}
}

// TestLateOfferAnswer: without an offer the 200 carries ours and the ACK's
// answer sets the media; an ACK without a usable answer hangs up (58).
func TestLateOfferAnswer(t *testing.T) {
	r := newRig(t)
	ch, d, fm := r.inbound("app", nil)
	if err := ch.Answer(); err != nil {
		t.Fatal(err)
	}
	answers, _, _ := d.snapshot()
	if len(answers) != 1 || !bytes.Contains(answers[0], []byte("a=rtpmap:0 PCMU")) {
		t.Fatalf("200 of a late offer call: %q", answers)
	}
	n := fm.updateCount()
	d.ack(offer(t, 6000, ""))
	eventually(t, "media updated from the ACK", func() bool { return fm.updateCount() > n })
	if u := fm.lastUpdate(); u.remote == nil || u.remote.Port != 6000 || u.pt != 0 || u.dt != 101 {
		t.Fatalf("update %+v", u)
	}

	ch2, d2, _ := r.inbound("app", nil)
	if err := ch2.Answer(); err != nil {
		t.Fatal(err)
	}
	d2.ack([]byte("not sdp"))
	ev := r.ev.expect("ChannelDestroyed")
	if ev["cause"] != float64(CauseBearerNotAvail) {
		t.Fatalf("cause %v", ev["cause"])
	}
	<-ch2.Done()
	if _, _, h := d2.snapshot(); len(h) != 1 {
		t.Fatalf("hangups %v", h)
	}
}

// TestReinviteHold: a sendonly re-INVITE holds (ChannelHold, no audio sent
// to the peer), sendrecv unholds, a bad offer is refused and changes
// nothing, an offerless one gets our offer.
func TestReinviteHold(t *testing.T) {
	r := newRig(t)
	ch, _, fm := r.inbound("app", offer(t, 5000, ""))
	if err := ch.Answer(); err != nil {
		t.Fatal(err)
	}
	code, body := ch.Reinvite(offer(t, 5004, "sendonly"))
	if code != 200 || !bytes.Contains(body, []byte("a=recvonly")) {
		t.Fatalf("hold: %d %s", code, body)
	}
	r.ev.expect("ChannelHold")
	if u := fm.lastUpdate(); u.remote != nil {
		t.Fatalf("audio still sent to a peer that holds: %+v", u)
	}
	code, _ = ch.Reinvite(offer(t, 5004, "sendonly"))
	if code != 200 {
		t.Fatal(code)
	}
	code, body = ch.Reinvite(offer(t, 5006, "sendrecv"))
	if code != 200 || !bytes.Contains(body, []byte("a=sendrecv")) {
		t.Fatalf("unhold: %d %s", code, body)
	}
	r.ev.none("ChannelHold") // the repeated hold published nothing
	if u := fm.lastUpdate(); u.remote == nil || u.remote.Port != 5006 {
		t.Fatalf("unhold update %+v", u)
	}
	n := fm.updateCount()
	if code, _ := ch.Reinvite([]byte("garbage")); code != 400 {
		t.Fatalf("malformed re-INVITE: %d", code)
	}
	if fm.updateCount() != n {
		t.Fatal("a refused re-INVITE changed the media")
	}
	code, body = ch.Reinvite(nil)
	if code != 200 || !bytes.Contains(body, []byte("m=audio")) {
		t.Fatalf("offerless re-INVITE: %d %s", code, body)
	}
	if ch.State() != StateUp {
		t.Fatal(ch.State())
	}
	// The answer to that offer comes in the ACK: a new address applies,
	// a sendonly answer holds, an unusable one changes nothing.
	ch.ReinviteAnswer(offer(t, 5010, ""))
	if u := fm.lastUpdate(); u.remote == nil || u.remote.Port != 5010 {
		t.Fatalf("late answer update %+v", u)
	}
	ch.Reinvite(nil)
	ch.ReinviteAnswer(offer(t, 5010, "sendonly"))
	r.ev.expect("ChannelHold")
	if u := fm.lastUpdate(); u.remote != nil {
		t.Fatalf("audio still sent after a holding answer: %+v", u)
	}
	n = fm.updateCount()
	ch.ReinviteAnswer([]byte("garbage"))
	if fm.updateCount() != n {
		t.Fatal("an unusable answer changed the media")
	}
	ch.ReinviteAnswer(offer(t, 5012, "sendrecv"))
	r.ev.expect("ChannelUnhold")
	if u := fm.lastUpdate(); u.remote == nil || u.remote.Port != 5012 {
		t.Fatalf("unholding answer update %+v", u)
	}
}

// TestRingAndEarlyMedia: ring sends 180, progress 183 (with an SDP
// answer), and neither once the call is up.
func TestRingAndEarlyMedia(t *testing.T) {
	r := newRig(t)
	ch, d, _ := r.inbound("app", offer(t, 5000, ""))
	if err := ch.Ring(); err != nil {
		t.Fatal(err)
	}
	if err := ch.Progress(); err != nil {
		t.Fatal(err)
	}
	if err := ch.Answer(); err != nil {
		t.Fatal(err)
	}
	_ = ch.Ring()
	_ = ch.Progress()
	if _, p, _ := d.snapshot(); len(p) != 2 || p[0] != 180 || p[1] != 183 {
		t.Fatalf("provisionals %v", p)
	}
}

// TestHangupRace: the API, the peer and a shutdown hang up at once: one
// ChannelHangupRequest, one StasisEnd, one ChannelDestroyed, the media
// closed once, and later operations find no channel.
func TestHangupRace(t *testing.T) {
	r := newRig(t)
	ch, d, fm := r.inbound("app", offer(t, 5000, ""))
	if err := ch.Answer(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(3)
		go func() { defer wg.Done(); _ = ch.Hangup(CauseNormalClearing) }()
		go func() { defer wg.Done(); ch.Ended(0) }()
		go func() { defer wg.Done(); ch.hangup(CauseFailure, false) }()
	}
	wg.Wait()
	<-ch.Done()
	counts := map[string]int{}
	for ev := r.ev.next(100 * time.Millisecond); ev != nil; ev = r.ev.next(100 * time.Millisecond) {
		counts[ev["type"].(string)]++
	}
	for _, typ := range []string{"ChannelHangupRequest", "StasisEnd", "ChannelDestroyed"} {
		if counts[typ] != 1 {
			t.Errorf("%s published %d times", typ, counts[typ])
		}
	}
	if n := fm.closeCount(); n != 1 {
		t.Errorf("media closed %d times", n)
	}
	if _, _, h := d.snapshot(); len(h) > 1 {
		t.Errorf("dialog hung up %d times", len(h))
	}
	if err := ch.Hangup(CauseNormalClearing); !errors.Is(err, ErrChannelNotFound) {
		t.Errorf("hangup after the end: %v", err)
	}
	if err := ch.Answer(); !errors.Is(err, ErrChannelNotFound) {
		t.Errorf("answer after the end: %v", err)
	}
	if r.channelExists(ch.ID()) {
		t.Error("the manager still lists the channel")
	}
}

// TestSendDTMFUsesTheClock: digits are paced by the Manager's clock: the
// second digit waits for the clock to pass the gap between them.
func TestSendDTMFUsesTheClock(t *testing.T) {
	r := newRig(t)
	ch, _, fm := r.inbound("app", offer(t, 5000, ""))
	if err := ch.Answer(); err != nil {
		t.Fatal(err)
	}
	if err := ch.SendDTMF("12", 0, 500, 100, 0); err != nil {
		t.Fatal(err)
	}
	if got := <-fm.sentDigits(); got != '1' {
		t.Fatalf("first digit %q", got)
	}
	eventually(t, "the pause between digits", func() bool { return r.clock.waiting() == 1 })
	select {
	case d := <-fm.sentDigits():
		t.Fatalf("digit %q sent before the clock moved", d)
	default:
	}
	r.clock.Advance(499 * time.Millisecond)
	select {
	case d := <-fm.sentDigits():
		t.Fatalf("digit %q sent before the gap passed", d)
	default:
	}
	r.clock.Advance(time.Millisecond)
	select {
	case d := <-fm.sentDigits():
		if d != '2' {
			t.Fatalf("second digit %q", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second digit not sent after the gap")
	}
}

// TestHoldAndMuteFromTheAPI: ARI hold/unhold publish ChannelHold and
// ChannelUnhold; mute out keeps the bridge's mix from the channel.
func TestHoldAndMuteFromTheAPI(t *testing.T) {
	r := newRig(t)
	ch, _, fm := r.inbound("app", offer(t, 5000, ""))
	if err := ch.Hold(true); err != nil {
		t.Fatal(err)
	}
	r.ev.expect("ChannelHold")
	if err := ch.Hold(false); err != nil {
		t.Fatal(err)
	}
	r.ev.expect("ChannelUnhold")
	if err := ch.Mute("sideways", true); err == nil {
		t.Fatal("a bad mute direction was accepted")
	}
	if err := ch.Mute("out", true); err != nil {
		t.Fatal(err)
	}
	ch.sendBridged(make([]int16, 160), make([]byte, 160))
	fm.mu.Lock()
	n := fm.written
	fm.mu.Unlock()
	if n != 0 {
		t.Fatal("audio sent to a channel muted out")
	}
	if err := ch.Mute("out", false); err != nil {
		t.Fatal(err)
	}
	ch.sendBridged(make([]int16, 160), make([]byte, 160))
	fm.mu.Lock()
	n = fm.written
	fm.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d frames sent after unmute", n)
	}
}

// Concurrent answers (two recordings started at once each answer the
// channel): one 200 OK is sent and every caller succeeds, instead of the
// later ones failing on the dialog's "final response already sent".
func TestConcurrentAnswers(t *testing.T) {
	r := newRig(t)
	ch, d, _ := r.inbound("", offer(t, 5000, ""))
	d.answerDelay = 20 * time.Millisecond
	ch.enterStasis("app", nil)
	errs := make(chan error, 4)
	for range cap(errs) {
		go func() { errs <- ch.Answer() }()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Errorf("answer: %v", err)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.answers) != 1 {
		t.Errorf("%d answers sent, want 1", len(d.answers))
	}
}

// TestChannelGoneByChannelDestroyed: when ChannelDestroyed is published the
// channel is no longer found, as in Asterisk, so an application that reads
// it on that event gets 404 (ARI's TestCallLifecycle did, racing the
// registry); StasisEnd and ChannelDestroyed still reach the application.
func TestChannelGoneByChannelDestroyed(t *testing.T) {
	r := newRig(t)
	ch, _, _ := r.inbound("app", offer(t, 5000, ""))
	if err := ch.Answer(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	found := map[string]bool{}
	// The filter runs inside Publish, so it sees the registry as it is
	// when each event goes out.
	sub, err := r.bus.Observe("registry-check", 16, func(ev event.Event) bool {
		if ev.Type == "StasisEnd" || ev.Type == "ChannelDestroyed" {
			_, err := r.m.channel(ch.id)
			mu.Lock()
			found[ev.Type] = err == nil
			mu.Unlock()
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.bus.Unobserve(sub) })
	if err := ch.Hangup(CauseNormalClearing); err != nil {
		t.Fatal(err)
	}
	r.ev.expect("StasisEnd")
	r.ev.expect("ChannelDestroyed")
	<-ch.Done()
	mu.Lock()
	defer mu.Unlock()
	for _, typ := range []string{"StasisEnd", "ChannelDestroyed"} {
		if f, ok := found[typ]; !ok || f {
			t.Errorf("at %s the channel was found: %v (seen %v)", typ, f, ok)
		}
	}
	if _, err := r.m.Channel(ChannelID(ch.id)); !errors.Is(err, ErrNotFound) {
		t.Errorf("channel found after its end: %v", err)
	}
}
