package rtp

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// HandlerPanics counts panics in a Handler (a call's audio or digit
// consumers) that a packet set off and that were contained: the packet is
// dropped, the call and every other call go on.
var HandlerPanics atomic.Uint64

var lastPanicLog atomic.Int64 // unix nanoseconds of the last logged one

// contain is deferred around each Handler call: the packet path is shared
// by every call on a Poller worker, so one call's panic must not stop it.
// At most one panic a second is logged (with its stack): a sender that can
// set one off can send it in every packet.
func contain() {
	v := recover()
	if v == nil {
		return
	}
	n := HandlerPanics.Add(1)
	now := time.Now().UnixNano()
	if last := lastPanicLog.Load(); now-last >= int64(time.Second) && lastPanicLog.CompareAndSwap(last, now) {
		slog.Error("rtp: recovered from a panic in a packet's handler; the packet was dropped",
			"panic", fmt.Sprint(v), "panics_so_far", n, "stack", string(debug.Stack()))
	}
}

func (s *Session) deliverAudio(pkt *rtp.Packet, ext uint64) {
	defer contain()
	s.handler.OnAudio(pkt, ext)
}

func (s *Session) deliverDTMF(digit rune, ms int, end bool) {
	defer contain()
	s.handler.OnDTMF(digit, ms, end)
}
