package call

import (
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil"
)

// TestBridgeJoinLeave: joining takes the channel's media over (owned reads,
// a participant tap), publishes ChannelEnteredBridge; leaving gives it back,
// publishes ChannelLeftBridge, and the party's digits no longer reach the
// other side. A recording channel cannot join; a hung-up party leaves.
func TestBridgeJoinLeave(t *testing.T) {
	r := newRig(t)
	a, _, fa := r.inbound("app", offer(t, 5000, ""))
	b, _, fb := r.inbound("app", offer(t, 5002, ""))
	br := r.newBridge("br")
	r.ev.expect("BridgeCreated")
	for _, ch := range []*Channel{a, b} {
		if err := br.AddChannel(ch, false); err != nil {
			t.Fatal(err)
		}
		r.ev.expect("ChannelEnteredBridge")
	}
	if !fa.isOwned() || len(a.tapList()) != 1 {
		t.Fatalf("joined: owned %v, taps %d", fa.isOwned(), len(a.tapList()))
	}
	if got := br.JSON().Channels; len(got) != 2 {
		t.Fatalf("bridge channels %v", got)
	}
	// The bridge's clock reads the parties and sends them the mix.
	eventually(t, "the mix sent to a party", func() bool {
		fb.mu.Lock()
		defer fb.mu.Unlock()
		return fb.written > 0
	})
	if err := br.AddChannel(a, false); err != nil {
		t.Fatalf("adding a member again: %v", err)
	}

	if err := br.RemoveChannel(a); err != nil {
		t.Fatal(err)
	}
	r.ev.expect("ChannelLeftBridge")
	if fa.isOwned() || len(a.tapList()) != 0 {
		t.Fatalf("left: owned %v, taps %d", fa.isOwned(), len(a.tapList()))
	}
	a.OnDTMF('7', 100, true)
	r.ev.expect("ChannelDtmfReceived")
	select {
	case d := <-fb.sentDigits():
		t.Fatalf("digit %q of a party that left reached the bridge", d)
	case <-time.After(50 * time.Millisecond):
	}
	if err := br.RemoveChannel(a); err == nil {
		t.Fatal("removing a non-member succeeded")
	}

	// A recording channel cannot join.
	if _, err := a.Record(RecordOptions{Name: "rec-a", Format: "wav"}); err != nil {
		t.Fatal(err)
	}
	r.ev.expect("RecordingStarted")
	if err := br.AddChannel(a, false); err == nil {
		t.Fatal("a recording channel joined a bridge")
	}

	// Hanging up takes the party out.
	b.hangup(CauseNormalClearing, true)
	r.ev.expect("ChannelLeftBridge")
	if got := br.JSON().Channels; len(got) != 0 {
		t.Fatalf("bridge channels after hangup %v", got)
	}
	br.Destroy()
	r.ev.expect("BridgeDestroyed")
	if r.bridgeExists("br") {
		t.Fatal("destroyed bridge still found")
	}
}

// TestBridgeClockCatchesUp: a bridge clock that wakes late (a busy host)
// mixes, besides its frame, the frames real time is ahead by while a party
// has more audio waiting than the play-out depth, instead of leaving it to
// overflow the party's buffer (oldest frames dropped, lost from the
// recordings). With nothing waiting it resumes without mixing silence.
func TestBridgeClockCatchesUp(t *testing.T) {
	r := newRig(t)
	br := r.newBridge("br")
	p := br.mixer.Add("party")
	for k := range 6 { // 120 ms (what a play-out buffer holds) came while the clock slept
		p.Push(1, uint32(k*160), make([]int16, 160))
	}
	step := br.stepper()
	step()
	if n := br.mixer.Ticks(); n != 1 {
		t.Fatalf("first step mixed %d frames, want 1", n)
	}
	r.clock.Advance(100 * time.Millisecond) // the next wake-up, 80 ms late
	step()
	if n, d := br.mixer.Ticks(), p.Stats().Depth; n != 4 || d != 320 {
		t.Fatalf("late step: %d frames mixed in all, %d samples waiting; want 4 and the 40 ms play-out depth", n, d)
	}
	r.clock.Advance(200 * time.Millisecond) // late again, nothing waiting beyond the depth
	step()
	if n := br.mixer.Ticks(); n != 5 {
		t.Fatalf("with nothing to catch up the step mixed %d frames, want 1", n-4)
	}
	step() // on time again (no time has passed): one frame
	if n := br.mixer.Ticks(); n != 6 {
		t.Fatalf("%d frames mixed, want 6", n)
	}
	br.Destroy()
}

// TestBridgeClockCatchesUpBeyondTheBuffer: a clock that woke up 200 ms late
// finds 11 frames of a party's packets at once, more than the 120 ms
// play-out buffer: the step mixes them all (none dropped, nothing missing
// from the bridge's recordings), and a burst left over once the step has
// caught up is trimmed to the play-out buffer, not kept as latency.
func TestBridgeClockCatchesUpBeyondTheBuffer(t *testing.T) {
	r := newRig(t)
	br := r.newBridge("br")
	p := br.mixer.Add("party")
	p.Push(1, 0, make([]int16, 160))
	p.Push(1, 160, make([]int16, 160))
	step := br.stepper()
	step()
	r.clock.Advance(220 * time.Millisecond) // the next wake-up, 200 ms late
	for k := 2; k < 13; k++ {               // what came meanwhile, read at once
		p.Push(1, uint32(k*160), make([]int16, 160))
	}
	step()
	if n, st := br.mixer.Ticks(), p.Stats(); n != 11 || st.Depth != 320 || st.OverflowDrops != 0 {
		t.Fatalf("late step: %d frames mixed in all, %d samples waiting, %d dropped; want 11, the 40 ms play-out depth, none",
			n, st.Depth, st.OverflowDrops)
	}
	r.clock.Advance(20 * time.Millisecond)
	for k := 13; k < 25; k++ { // a burst of 240 ms with the clock on time
		p.Push(1, uint32(k*160), make([]int16, 160))
	}
	step()
	if st := p.Stats(); st.Depth > 6*160 || st.OverflowDrops == 0 {
		t.Fatalf("after a burst: %d samples waiting, %d dropped; want at most 120 ms left, the rest dropped", st.Depth, st.OverflowDrops)
	}
	br.Destroy()
}

// TestLeavingPartyKeepsItsSideUntilItsLastFrameIsRecorded: a party that
// has left is taken off its stereo side (and out of the mixer) only once the
// tick that played its last frame has given it to the recordings; the play-
// out buffer is empty as soon as that tick has pulled the frame, and taken
// off its side then, the frame was missing from the stereo recording's
// channel (TestBridgeRecordingKeepsLastFrames at load 10-13).
func TestLeavingPartyKeepsItsSideUntilItsLastFrameIsRecorded(t *testing.T) {
	r := newRig(t)
	br := r.newBridge("br")
	p := br.mixer.Add("party")
	br.sides[0].Store(p)
	p.Push(1, 0, make([]int16, 160))
	p.Drain()
	step := br.stepper()
	br.mu.Lock() // the tick's recording step waits here, after the pull
	stepped := make(chan struct{})
	go func() { step(); close(stepped) }()
	if err := testutil.Poll(5*time.Second, time.Millisecond, func() bool { return p.Stats().Depth == 0 }); err != nil {
		br.mu.Unlock()
		t.Fatal("the tick did not pull the frame")
	}
	br.draining.Add(1)
	go br.drainAndRemove(p)
	deadline := time.Now().Add(150 * time.Millisecond) // several of drainAndRemove's 20 ms looks
	for time.Now().Before(deadline) {
		if br.sides[0].Load() != p {
			br.mu.Unlock()
			t.Fatal("the party left its stereo side while the tick holding its last frame had not recorded it")
		}
		time.Sleep(5 * time.Millisecond)
	}
	br.mu.Unlock()
	<-stepped
	if err := testutil.Poll(5*time.Second, time.Millisecond, func() bool { return br.sides[0].Load() == nil && br.mixer.Len() == 0 }); err != nil {
		t.Fatal("the party was not removed once the tick had recorded its frame")
	}
	br.Destroy()
}
