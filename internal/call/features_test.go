package call

import (
	"fmt"
	"testing"
	"time"
)

// liveNames are the manager's recordings in progress.
func liveNames(m *Manager) map[string]bool {
	m.recMu.Lock()
	defer m.recMu.Unlock()
	out := map[string]bool{}
	for n := range m.live {
		out[n] = true
	}
	return out
}

func sendDigit(ch *Channel, d rune) {
	ch.OnDTMF(d, 0, false)
	ch.OnDTMF(d, 100, true)
}

func expectSent(t *testing.T, fm *fakeMedia, want string) {
	t.Helper()
	for _, w := range want {
		select {
		case d := <-fm.sentDigits():
			if d != w {
				t.Fatalf("peer was sent %q, want %q (of %q)", d, w, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("peer was not sent %q (of %q)", w, want)
		}
	}
	select {
	case d := <-fm.sentDigits():
		t.Fatalf("peer was sent an extra %q", d)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestOnlineRecorderDigits: the *3 tap consumes "*3" (the peer is sent
// nothing), starts an auto-<timestamp>-<TOUCH_MIXMONITOR> recording in
// TOUCH_MIXMONITOR_FORMAT, stops it at the next *3; '*' followed by
// another digit, or by '3' too late, reaches the peer as both digits.
func TestOnlineRecorderDigits(t *testing.T) {
	r := newRig(t)
	a, _, _ := r.inbound("app", offer(t, 5000, ""))
	b, _, fb := r.inbound("app", offer(t, 5002, ""))
	for _, ch := range []*Channel{a, b} {
		if err := ch.Answer(); err != nil {
			t.Fatal(err)
		}
	}
	br := r.newBridge("br")
	defer br.Destroy()
	for _, ch := range []*Channel{a, b} {
		if err := br.AddChannel(ch, false); err != nil {
			t.Fatal(err)
		}
	}
	a.mu.Lock()
	a.vars = map[string]string{"TOUCH_MIXMONITOR": "pcm", "TOUCH_MIXMONITOR_FORMAT": "wav16"}
	a.mu.Unlock()
	o := &onlineRecorder{m: r.m, ch: a, peer: b, br: br}
	a.AttachTap(o, StageControl)

	name := fmt.Sprintf("auto-%d-pcm", r.clock.Now().Unix())
	sendDigit(a, '*')
	sendDigit(a, '3')
	deadline := time.Now().Add(5 * time.Second)
	for !liveNames(r.m)[name] {
		if time.Now().After(deadline) {
			t.Fatalf("recordings %v, want %s", liveNames(r.m), name)
		}
		time.Sleep(5 * time.Millisecond)
	}
	o.mu.Lock()
	format := o.rec.format.Name
	o.mu.Unlock()
	if format != "wav16" {
		t.Fatalf("format %s, want TOUCH_MIXMONITOR_FORMAT's wav16", format)
	}
	expectSent(t, fb, "")

	sendDigit(a, '*')
	sendDigit(a, '3')
	for liveNames(r.m)[name] {
		if time.Now().After(deadline) {
			t.Fatal("the second *3 did not stop the recording")
		}
		time.Sleep(5 * time.Millisecond)
	}
	expectSent(t, fb, "")

	sendDigit(a, '*')
	sendDigit(a, '5')
	expectSent(t, fb, "*5")

	sendDigit(a, '*')
	r.clock.Advance(4 * time.Second)
	sendDigit(a, '3')
	expectSent(t, fb, "*3")
	if n := len(liveNames(r.m)); n != 0 {
		t.Fatalf("a late '3' started a recording: %v", liveNames(r.m))
	}
}
