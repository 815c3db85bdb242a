package recorder

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The fuzz input is a stream of 8-byte packets: SSRC (1 byte), RTP
// timestamp (4, big-endian), samples (1 byte, ×4), then the time since the
// previous packet in milliseconds (2, big-endian).
func tlRecord(ssrc byte, ts uint32, samples int, dtMs uint16) []byte {
	var b [8]byte
	b[0] = ssrc
	binary.BigEndian.PutUint32(b[1:], ts)
	b[5] = byte(samples / 4)
	binary.BigEndian.PutUint16(b[6:], dtMs)
	return b[:]
}

// timelineSeeds: the attacks (timestamps stepping 9.9 s and 0.2 s
// per packet, a new SSRC on every packet 30 ms apart), a normal stream with
// loss and reordering, a long pause, wraps and jumps.
func timelineSeeds() map[string][]byte {
	seeds := map[string][]byte{}
	add := func(name string, recs ...[]byte) {
		var b []byte
		for _, r := range recs {
			b = append(b, r...)
		}
		seeds[name] = b
	}
	var walk, step, ssrc, normal, wrap []([]byte)
	for i := 0; i < 100; i++ {
		walk = append(walk, tlRecord(1, uint32(i)*79200, 160, 20))
		step = append(step, tlRecord(1, uint32(i)*1600, 160, 20))
		ssrc = append(ssrc, tlRecord(byte(i), uint32(i)*7777, 160, 30))
		if i%10 != 3 {
			k := i
			if i%10 == 5 {
				k = i + 1
			} else if i%10 == 6 {
				k = i - 1
			}
			normal = append(normal, tlRecord(7, 5000+uint32(k)*160, 160, 20))
		}
		wrap = append(wrap, tlRecord(2, 0xFFFFF000+uint32(i)*160, 160, 20))
	}
	add("walk", walk...)
	add("step", step...)
	add("ssrc", ssrc...)
	add("normal", normal...)
	add("wrap", wrap...)
	add("pause", tlRecord(1, 0, 160, 0), tlRecord(1, 160, 160, 20), tlRecord(1, 8000*30, 160, 30000), tlRecord(1, 8000*30+160, 160, 20))
	add("jumps", tlRecord(1, 0, 160, 0), tlRecord(1, 480000, 160, 20), tlRecord(1, 240000, 160, 20), tlRecord(1, 240160, 1020, 20))
	return seeds
}

// FuzzTimeline pushes packets with arbitrary SSRCs, timestamps, sizes and
// arrival times through a Timeline (as a recording's 60 ms window). It must
// not panic, must emit exactly Emitted() samples, and the silence it
// inserts must stay within the wall clock: the time since the first packet
// (+1/128) or the audio pushed, whichever is more, plus the jitter margin.
func FuzzTimeline(f *testing.F) {
	for _, seed := range timelineSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		tl := NewTimeline(8000, 60*time.Millisecond)
		var out int64
		emit := func(p []int16) { out += int64(len(p)) }
		pcm := make([]int16, 1024)
		start := time.Unix(1e9, 0)
		now := start
		var pushed int64
		for ; len(in) >= 8; in = in[8:] {
			n := int(in[5]) * 4
			now = now.Add(time.Duration(binary.BigEndian.Uint16(in[6:])) * time.Millisecond)
			tl.Push(uint32(in[0]), binary.BigEndian.Uint32(in[1:]), pcm[:n], now, emit)
			pushed += int64(n)
			if in[7]&1 == 1 {
				tl.Advance(now, emit)
			}
		}
		tl.Flush(emit)
		if out != tl.Emitted() {
			t.Fatalf("emitted %d samples, Emitted() says %d", out, tl.Emitted())
		}
		wall := int64(now.Sub(start)/time.Millisecond) * 8
		if s := tl.Stats().SilenceSamples; s > max(wall+wall/128, pushed)+tl.slack {
			t.Fatalf("%d samples of silence after %d of wall clock and %d pushed", s, wall, pushed)
		}
	})
}

// FuzzTimelinePushInOrder: the media path's fast path (PushInOrder, the
// caller then emitting the packet's samples itself, as a recording decodes
// straight into its queue) leaves the same audio, counters and emitted
// count as Push on any packet stream, Advance calls included.
func FuzzTimelinePushInOrder(f *testing.F) {
	for _, seed := range timelineSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 8*512 {
			return // each packet may add a minute of silence: keep an input's run short
		}
		type side struct {
			tl   *Timeline
			n    int64
			hash uint64
		}
		a := &side{tl: NewTimeline(8000, 60*time.Millisecond)}
		b := &side{tl: NewTimeline(8000, 60*time.Millisecond)}
		emit := func(s *side) func([]int16) {
			return func(p []int16) {
				s.n += int64(len(p))
				if allZero(p) { // silence: hashed by its length (long gaps stay cheap)
					s.hash = s.hash*1099511628211 + uint64(len(p))<<20
					return
				}
				for _, v := range p {
					s.hash = s.hash*1099511628211 + uint64(uint16(v))
				}
			}
		}
		emitA, emitB := emit(a), emit(b)
		pcm := make([]int16, 1024)
		now := time.Unix(1e9, 0)
		fast := 0
		for k := 1; len(in) >= 8; in, k = in[8:], k+1 {
			n := int(in[5]) * 4
			now = now.Add(time.Duration(binary.BigEndian.Uint16(in[6:])) * time.Millisecond)
			p := pcm[:n]
			for i := range p {
				p[i] = int16(k%20000 + 1 + i) // non-zero (silence is zero), distinct per packet and sample
			}
			ssrc, ts := uint32(in[0]), binary.BigEndian.Uint32(in[1:])
			a.tl.Push(ssrc, ts, p, now, emitA)
			if b.tl.PushInOrder(ssrc, ts, int64(n), now) {
				emitB(p)
				fast++
			} else {
				b.tl.Push(ssrc, ts, p, now, emitB)
			}
			if in[7]&1 == 1 {
				a.tl.Advance(now, emitA)
				b.tl.Advance(now, emitB)
			}
		}
		a.tl.Flush(emitA)
		b.tl.Flush(emitB)
		if a.n != b.n || a.hash != b.hash {
			t.Fatalf("Push emitted %d samples (hash %x), with PushInOrder (%d packets) %d (hash %x)", a.n, a.hash, fast, b.n, b.hash)
		}
		if a.tl.Stats() != b.tl.Stats() || a.tl.Emitted() != b.tl.Emitted() {
			t.Fatalf("counters differ: Push %+v emitted %d, with PushInOrder %+v emitted %d", a.tl.Stats(), a.tl.Emitted(), b.tl.Stats(), b.tl.Emitted())
		}
	})
}

func allZero(p []int16) bool {
	for _, v := range p {
		if v != 0 {
			return false
		}
	}
	return true
}

// TestWriteTimelineCorpus (re)writes testdata/fuzz/FuzzTimeline from
// timelineSeeds when TAPEDECK_WRITE_CORPUS is set.
func TestWriteTimelineCorpus(t *testing.T) {
	if os.Getenv("TAPEDECK_WRITE_CORPUS") == "" {
		t.Skip("set TAPEDECK_WRITE_CORPUS=1 to rewrite the seed corpus")
	}
	for name, seed := range timelineSeeds() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", seed)
		if err := os.WriteFile(filepath.Join("testdata", "fuzz", "FuzzTimeline", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
