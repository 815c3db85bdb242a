package call

import (
	"testing"
	"time"
)

// A channel that only recordings tap, in no application, has its socket's
// reads relaxed to the writers' tick; another tap (here a digit gatherer's)
// puts them back to every read interval until it detaches; entering an
// application does too, for good. A recording that a digit ends keeps the
// reads as they are.
func TestChannelRelaxedWhileOnlyRecorded(t *testing.T) {
	r := newRig(t)
	waitRelax := func(fm *fakeMedia, want time.Duration, what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for fm.relaxed() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the media's relaxed period is %v, want %v", what, fm.relaxed(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	record := func(ch *Channel, o RecordOptions) {
		t.Helper()
		if _, err := ch.record(o, "policy"); err != nil { // as Record() does
			t.Fatal(err)
		}
		r.ev.expect("RecordingStarted")
	}
	ch, _, fm := r.inbound("", offer(t, 5000, ""))
	if fm.relaxed() != 0 {
		t.Fatalf("a channel without taps is relaxed: %v", fm.relaxed())
	}
	record(ch, RecordOptions{Name: "calls/relax", Format: "wav", IfExists: "fail"})
	waitRelax(fm, writerTick, "recorded")
	detach, ok := ch.AttachTap(DigitFunc(func(Digit) bool { return false }), StageControl)
	if !ok {
		t.Fatal("AttachTap refused")
	}
	waitRelax(fm, 0, "a digit gatherer attached")
	detach()
	waitRelax(fm, writerTick, "the gatherer detached")
	ch.enterStasis("app", nil)
	r.ev.expect("StasisStart")
	waitRelax(fm, 0, "in an application")

	ch2, _, fm2 := r.inbound("", offer(t, 5002, ""))
	record(ch2, RecordOptions{Name: "calls/relax-hash", Format: "wav", IfExists: "fail", TerminateOn: "#"})
	record(ch2, RecordOptions{Name: "calls/relax-plain", Format: "wav", IfExists: "fail"})
	deadline := time.Now().Add(5 * time.Second)
	for len(ch2.tapList()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the recordings did not attach: %d taps", len(ch2.tapList()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := fm2.relaxed(); got != 0 {
		t.Fatalf("a channel whose recording ends on # is relaxed: %v", got)
	}
}
