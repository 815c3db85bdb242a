package main

import (
	"encoding/binary"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// The AudioSocket receiver reads its connections in rounds, not with a
// goroutine per connection woken for every frame (on loopback the server
// would pay for those wake-ups): 20 connections add no goroutine, and each
// stream's audio is counted, whole, including what came after the last
// round (report reads it), and a message split across two writes.
func TestStreamReceiverReadsAudioSocketInRounds(t *testing.T) {
	poller, err := rtp.NewPoller(20*time.Millisecond, 100*time.Millisecond, 1)
	if err != nil {
		t.Skip("no Poller here:", err)
	}
	defer poller.Close()
	s, err := newStreamReceiver(poller)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	before := runtime.NumGoroutine()
	const conns, frames = 20, 10
	ids := make([]uuid.UUID, conns)
	cs := make([]net.Conn, conns)
	msg := func(kind byte, body []byte) []byte {
		b := []byte{kind, 0, 0}
		binary.BigEndian.PutUint16(b[1:], uint16(len(body)))
		return append(b, body...)
	}
	for i := range cs {
		c, err := net.Dial("tcp", s.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cs[i], ids[i] = c, uuid.New()
		if _, err := c.Write(msg(0x01, ids[i][:])); err != nil {
			t.Fatal(err)
		}
	}
	for f := range frames {
		for i, c := range cs {
			m := msg(0x10, make([]byte, 320))
			if f == frames-1 && i == 0 { // split: header and part of the body, then the rest
				if _, err := c.Write(m[:100]); err != nil {
					t.Fatal(err)
				}
				time.Sleep(2 * asRound)
				m = m[100:]
			}
			if _, err := c.Write(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	testutil.Eventually(t, 5*time.Second, time.Millisecond, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) == conns
	}, "connections taken: want %d", conns)
	if n := runtime.NumGoroutine() - before; n > 2 {
		t.Fatalf("%d goroutines more with %d AudioSocket connections open: want them read in rounds, not a goroutine each", n, conns)
	}
	rep := s.report("slin", frames*160, conns)
	if rep.Received != conns || rep.Short != 0 || rep.MinPct != 100 || len(rep.Problems) > 0 {
		t.Fatalf("report %+v: want %d streams, each whole", rep, conns)
	}
	for _, id := range ids {
		s.mu.Lock()
		got := s.bytes[id]
		s.mu.Unlock()
		if got != frames*320 {
			t.Fatalf("stream %v: %d bytes, want %d", id, got, frames*320)
		}
	}
}
