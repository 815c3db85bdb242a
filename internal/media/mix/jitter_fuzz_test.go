package mix

import (
	"encoding/binary"
	"testing"
)

// FuzzJitter drives a play-out buffer with what a remote sender controls
// (SSRCs, RTP timestamps, packet sizes; G.711 or linear payloads) mixed
// with the mixer's pulls, trims and a drain, and checks what must hold
// whatever arrives: no panic; the buffered span within the ring; each
// pull one frame; and the counts bounded by the pulls — a frame counts as
// played or as lost only in a pull (played in place, or covered by an
// underrun's silent pulls and skipped on restart).
func FuzzJitter(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0xa0, 0, 1, 1, 1, 2, 2, 2})
	f.Add([]byte{0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0xa0, 1, 1, 1, 1, 0, 1, 0, 0, 3, 0xc0, 1, 3, 4, 1, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var j jitter
		var ts uint32
		dst := make([]int16, FrameSamples)
		var pulls uint64
		for len(ops) > 0 {
			op := ops[0]
			ops = ops[1:]
			switch op % 6 {
			case 0, 1: // a packet: timestamp step and size from the input
				if len(ops) < 4 {
					return
				}
				step := int32(int16(binary.BigEndian.Uint16(ops)))
				n := int(ops[2])*4 + 1
				ssrc := uint32(ops[3] % 3)
				ops = ops[4:]
				ts += uint32(step * 8)
				if op%6 == 0 {
					j.push(ssrc, ts, constFrame(int16(n), n))
				} else {
					j.pushG711(ssrc, ts, make([]byte, n), n%2 == 0)
				}
			case 2, 3:
				if j.pull(dst); len(dst) != FrameSamples {
					t.Fatal("a pull changed the frame's length")
				}
				pulls++
			case 4:
				j.trim()
			case 5:
				if op%2 == 0 {
					j.drain()
				} else {
					ts += uint32(int32(op) << 12) // a jump
				}
			}
			if j.buf != nil && j.maxEnd-j.playTS > int64(len(j.buf)) {
				t.Fatalf("buffered span %d past the ring's %d", j.maxEnd-j.playTS, len(j.buf))
			}
			st := j.stats()
			if st.FramesPlayed > pulls || st.FramesLost > pulls {
				t.Fatalf("after %d pulls: %d frames played, %d lost", pulls, st.FramesPlayed, st.FramesLost)
			}
		}
	})
}
