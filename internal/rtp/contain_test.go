package rtp

import (
	"testing"

	"github.com/pion/rtp"
)

// panicky panics on one sequence number and records the others.
type panicky struct {
	recorder
	on uint16
}

func (p *panicky) OnAudio(pkt *rtp.Packet, ext uint64) {
	if pkt.SequenceNumber == p.on {
		panic("a consumer's bug")
	}
	p.recorder.OnAudio(pkt, ext)
}

func TestHandlerPanicIsContained(t *testing.T) { bothModes(t, testHandlerPanicIsContained) }

// A panic in a call's audio consumer, set off by one packet, drops that
// packet only: the reading goroutine (or the Poller worker every call
// shares) goes on, and so do the session's later packets.
func testHandlerPanicIsContained(t *testing.T, batched bool) {
	h := &panicky{on: 3}
	s, peer := newPair(t, h, batched)
	before := HandlerPanics.Load()
	for seq := uint16(1); seq <= 6; seq++ {
		if _, err := peer.WriteToUDP(packet(0, seq, uint32(seq)*160, 5, false, make([]byte, 160)), s.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return h.n.Load() == 5 })
	if got := HandlerPanics.Load() - before; got != 1 {
		t.Fatalf("%d panics counted, want 1", got)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, want := range []uint64{1, 2, 4, 5, 6} {
		if h.audio[i]&0xffff != want {
			t.Fatalf("delivered %v, want every packet but the third", h.audio)
		}
	}
}
