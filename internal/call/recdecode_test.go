package call

import (
	"path/filepath"
	"testing"
	"time"

	pionrtp "github.com/pion/rtp"

	"github.com/tapedeck/tapedeck/internal/codec"
	"github.com/tapedeck/tapedeck/internal/recorder"
)

// TestRecordingDecodesIntoItsQueue: a recording that is its channel's only
// tap gets each in-order G.711 packet decoded straight into its queue (the
// channel's decode buffer is not written), and the file is exactly what
// the general path writes: µ-law and A-law packets, reordered, copied and
// lost ones, and silent ones (queued as gaps), placed by the timeline.
func TestRecordingDecodesIntoItsQueue(t *testing.T) {
	r := newRig(t)
	ch, _, fm := r.inbound("app", offer(t, 5000, ""))
	rec := startRecording(t, r, ch, RecordOptions{Name: "calls/dec", Format: "wav", IfExists: "fail"})

	type pkt struct {
		k    int // frame number: timestamp 160k, sequence number k
		pt   uint8
		loud bool
	}
	var seq []pkt
	for k := 0; k < 60; k++ {
		pt := uint8(0)
		if k >= 30 {
			pt = 8
		}
		seq = append(seq, pkt{k, pt, k%7 != 3})
	}
	// Frames 10 and 11 swapped, 20 sent twice, 25 lost, 40 late by three.
	seq[10], seq[11] = seq[11], seq[10]
	seq = append(seq[:21], seq[20:]...)
	seq = append(seq[:26], seq[27:]...) // (the copy shifted 25 to index 26)
	late := seq[41]
	seq = append(seq[:41], seq[42:]...)
	seq = append(seq[:44], append([]pkt{late}, seq[44:]...)...)

	payload := func(p pkt) []byte {
		b := make([]byte, 160)
		for i := range b {
			switch {
			case !p.loud && p.pt == 0:
				b[i] = 0xFF // µ-law zero
			case !p.loud:
				b[i] = 0xD5 // A-law's quietest (not zero: audio)
			default:
				b[i] = byte(p.k*13 + i)
			}
		}
		return b
	}
	// The reference: the general path's placement of the decoded frames.
	tl := recorder.NewTimeline(8000, 60*time.Millisecond)
	var want []int16
	emit := func(p []int16) { want = append(want, p...) }
	base := time.Unix(1000, 0)
	arrival := func(i int) time.Time { return base.Add(time.Duration(i) * 20 * time.Millisecond) }
	for i, p := range seq {
		pcm := make([]int16, 160)
		if p.pt == 0 {
			codec.DecodeMulaw(pcm, payload(p))
		} else {
			codec.DecodeAlaw(pcm, payload(p))
		}
		if i > 0 && seq[i-1] == p {
			continue // the RTP session's meter drops the copy before the timeline
		}
		tl.Push(1, uint32(160*p.k), pcm, arrival(i), emit)
	}
	tl.Flush(emit)

	for i, p := range seq {
		if i == 1 {
			// From here on the in-order packets must not touch the
			// channel's decode buffer.
			for j := range ch.pcm {
				ch.pcm[j] = -7
			}
		}
		if i == 8 {
			for j, v := range ch.pcm {
				if v != -7 {
					t.Fatalf("in-order packets were decoded into the channel's buffer (sample %d = %d)", j, v)
				}
			}
		}
		pk := &pionrtp.Packet{Header: pionrtp.Header{PayloadType: p.pt, SSRC: 1, Timestamp: uint32(160 * p.k), SequenceNumber: uint16(p.k)}, Payload: payload(p)}
		fm.setArrival(arrival(i))
		ch.OnAudio(pk, uint64(p.k))
	}
	rec.Stop()
	r.ev.expect("RecordingFinished")
	got := readWAV(t, filepath.Join(r.m.opts.RecordingsDir, "calls", "dec.wav"))
	if len(got) != len(want) {
		t.Fatalf("%d samples, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sample %d = %d, want %d", i, got[i], want[i])
		}
	}
	q := rec.Quality()
	if q.PacketsLost != 1 || q.PacketsDuplicated != 1 || q.PacketsReceived != 59 {
		t.Fatalf("quality %+v", q)
	}
}
