package mix

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/tapedeck/tapedeck/internal/codec"
)

// TestPushG711SameAsPush feeds two participants the same packets, one
// decoded by the caller and pushed (Push), the other pushed as G.711
// (PushG711), through in-order runs, reordering, loss, late and duplicate
// packets, bursts past the ring's size and the burst depth, packets longer
// than the burst depth, timestamp wraps and jumps and SSRC changes, with
// ticks and trims between; after every step the two play-out buffers must
// hold the same ring, presence bits and counters, and play the same frames.
func TestPushG711SameAsPush(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewPCG(seed, 13))
		alaw := seed%2 == 0
		a, b := &Participant{}, &Participant{}
		ssrc := rng.Uint32()
		ts := uint32(0xFFFFFFFF - 160*uint32(rng.IntN(50))) // wraps early on
		payload := make([]byte, 4*burstDepth)
		pcm := make([]int16, len(payload))
		for step := range 3000 {
			switch r := rng.IntN(100); {
			case r < 55: // the next packet, 20 ms (sometimes 10 or 30 ms)
				n := []int{160, 160, 160, 80, 240}[rng.IntN(5)]
				push(t, a, b, ssrc, ts, payload[:n], pcm, alaw, rng)
				ts += uint32(n)
			case r < 62: // reordered or late: an older timestamp
				n := 160
				push(t, a, b, ssrc, ts-uint32(160*(1+rng.IntN(12))), payload[:n], pcm, alaw, rng)
			case r < 66: // lost
				ts += 160
			case r < 70: // a burst (a sender's catch-up), sometimes past the ring
				for range 1 + rng.IntN(30) {
					push(t, a, b, ssrc, ts, payload[:160], pcm, alaw, rng)
					ts += 160
				}
			case r < 72: // one packet longer than the burst depth
				n := burstDepth + 160*(1+rng.IntN(8))
				push(t, a, b, ssrc, ts, payload[:n], pcm, alaw, rng)
				ts += uint32(n)
			case r < 73: // a timestamp jump (reset)
				ts += uint32(2 * SampleRate)
			case r < 74: // another stream
				ssrc++
			case r < 75:
				a.Trim()
				b.Trim()
			case r < 76:
				a.Drain()
				b.Drain()
			default: // a tick
				ga, gb := a.pull(), b.pull()
				if ga != gb || !slices.Equal(a.in[:], b.in[:]) {
					t.Fatalf("seed %d step %d: pulled %v %v, frames differ", seed, step, ga, gb)
				}
			}
			same(t, seed, step, a, b)
		}
	}
}

// push pushes the same random payload to a decoded (Push) and b (PushG711).
func push(t *testing.T, a, b *Participant, ssrc, ts uint32, payload []byte, pcm []int16, alaw bool, rng *rand.Rand) {
	t.Helper()
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	if rng.IntN(20) == 0 { // digital silence
		fill := byte(0xFF)
		if alaw {
			fill = 0xD5
		}
		for i := range payload {
			payload[i] = fill
		}
	}
	pcm = pcm[:len(payload)]
	codec.DecodeG711Sound(pcm, payload, alaw)
	a.Push(ssrc, ts, pcm)
	b.PushG711(ssrc, ts, payload, alaw)
}

// same fails unless the two play-out buffers are in the same state.
func same(t *testing.T, seed uint64, step int, a, b *Participant) {
	t.Helper()
	ja, jb := a.jb, b.jb // copies
	if !slices.Equal(ja.buf, jb.buf) || !slices.Equal(ja.present, jb.present) {
		t.Fatalf("seed %d step %d: rings differ", seed, step)
	}
	ja.buf, ja.present, jb.buf, jb.present = nil, nil, nil, nil
	if !reflect.DeepEqual(ja, jb) {
		t.Fatalf("seed %d step %d: state differs:\n%+v\n%+v", seed, step, ja, jb)
	}
}
