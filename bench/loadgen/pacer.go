package main

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	rtpsess "github.com/tapedeck/tapedeck/internal/rtp"
)

const packetInterval = 20 * time.Millisecond

// stream is the audio (and optional RFC 4733 DTMF) one call sends. Packets
// are built here, with our own sequence numbers and timestamps, and written
// with Session.WriteRTP, so DTMF events can be sent alongside the audio
// (RFC 4733 §2.5.1.1 allows it) and the recording has no hole where a
// digit was pressed.
type stream struct {
	sess   *rtpsess.Session
	audio  *audioLoop
	pcma   bool
	pt     uint8
	dtmfPT uint8 // 0: no DTMF
	limit  int   // audio packets to send; 0 = until stop
	digits string
	dtmfAt int // audio packet index where the first digit starts

	pkt   rtp.Packet
	ev    [4]byte
	off   int // loop frame offset (calls do not all say the same word at once)
	start time.Time

	sent     int // audio packets
	dtmfSent int // event packets
	errs     int
	// gone is closed when the pacer drops the stream (limit reached or
	// stopped); only then may other goroutines read its counters.
	gone     chan struct{}
	stopped  atomic.Bool
	finished bool
}

func newStream(sess *rtpsess.Session, a *audioLoop, pcma bool, dtmfPT uint8, limit int, digits string) *stream {
	s := &stream{sess: sess, audio: a, pcma: pcma, dtmfPT: dtmfPT, limit: limit, gone: make(chan struct{}), off: rand.IntN(a.frames)}
	if pcma {
		s.pt = 8
	}
	s.pkt.Version = 2
	s.pkt.SSRC = rand.Uint32()
	s.pkt.SequenceNumber = uint16(rand.Uint32())
	s.pkt.Timestamp = rand.Uint32()
	if dtmfPT != 0 && digits != "" {
		s.digits = digits
		if limit > 0 {
			s.dtmfAt = limit / 2
		} else {
			s.dtmfAt = 100
		}
	}
	return s
}

// stop ends an open-ended stream (the callee side of scenario c).
func (s *stream) stop() { s.stopped.Store(true) }

// digit timing: each digit is 100 ms (5 packets) then 100 ms of pause.
const (
	digitPackets = 5
	digitPeriod  = 10
)

// sendOne writes audio packet number s.sent and, during a digit, the
// matching telephone-event packet(s).
func (s *stream) sendOne() {
	p := &s.pkt
	p.PayloadType = s.pt
	p.Marker = s.sent == 0
	p.Payload = s.audio.frame(s.off+s.sent, s.pcma)
	if err := s.sess.WriteRTP(p); err != nil {
		s.errs++
	}
	s.sent++
	p.SequenceNumber++
	if s.digits != "" && s.sent-1 >= s.dtmfAt {
		k := s.sent - 1 - s.dtmfAt
		d, j := k/digitPeriod, k%digitPeriod
		if d < len(s.digits) && j < digitPackets {
			s.sendEvent(s.digits[d], j)
		}
	}
	p.Timestamp += frameSamples
}

// sendEvent sends packet j of a digit whose event started digitPackets
// packets ago at most; the last one is sent three times, as RFC 4733 asks.
func (s *stream) sendEvent(digit byte, j int) {
	p := &s.pkt
	code := eventCode(digit)
	evStart := p.Timestamp - uint32(j*frameSamples)
	dur := uint16((j + 1) * frameSamples)
	end := j == digitPackets-1
	s.ev[0] = code
	s.ev[1] = 10 // volume -10 dBm0
	if end {
		s.ev[1] |= 0x80
	}
	s.ev[2], s.ev[3] = byte(dur>>8), byte(dur)
	ts, pt, marker, payload := p.Timestamp, p.PayloadType, p.Marker, p.Payload
	p.Timestamp, p.PayloadType, p.Marker, p.Payload = evStart, s.dtmfPT, j == 0, s.ev[:]
	reps := 1
	if end {
		reps = 3
	}
	for range reps {
		if err := s.sess.WriteRTP(p); err != nil {
			s.errs++
		}
		s.dtmfSent++
		p.SequenceNumber++
	}
	p.Timestamp, p.PayloadType, p.Marker, p.Payload = ts, pt, marker, payload
}

func eventCode(d byte) byte {
	switch {
	case d >= '0' && d <= '9':
		return d - '0'
	case d == '*':
		return 10
	case d == '#':
		return 11
	}
	return 0
}

// pacer drives every stream from one goroutine: every tick it sends each
// stream the packets that are due (by elapsed time since the stream's
// start, so a late tick catches up instead of slowing the stream down).
// Streams start at different times, so with a tick shorter than 20 ms the
// sends are spread over the packet interval rather than bursted.
type pacer struct {
	tick time.Duration

	mu      sync.Mutex
	streams []*stream
	wake    chan struct{}

	late     atomic.Int64 // packets sent more than one interval late
	maxBurst atomic.Int64
}

func newPacer(tick time.Duration) *pacer {
	return &pacer{tick: tick, wake: make(chan struct{}, 1)}
}

func (p *pacer) add(s *stream) {
	s.start = time.Now()
	p.mu.Lock()
	p.streams = append(p.streams, s)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *pacer) run(stop <-chan struct{}) {
	t := time.NewTicker(p.tick)
	defer t.Stop()
	var work []*stream
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		case <-p.wake:
		}
		now := time.Now()
		p.mu.Lock()
		work = append(work[:0], p.streams...)
		p.mu.Unlock()
		removed := false
		for _, s := range work {
			if s.stopped.Load() {
				s.finished, removed = true, true
				close(s.gone)
				continue
			}
			due := int(now.Sub(s.start)/packetInterval) + 1
			if s.limit > 0 && due > s.limit {
				due = s.limit
			}
			if due-s.sent > 1 {
				p.late.Add(int64(due - s.sent - 1))
				if b := int64(due - s.sent); b > p.maxBurst.Load() {
					p.maxBurst.Store(b)
				}
			}
			for s.sent < due {
				s.sendOne()
			}
			if s.limit > 0 && s.sent >= s.limit {
				s.finished, removed = true, true
				close(s.gone)
			}
		}
		if removed {
			p.mu.Lock()
			keep := p.streams[:0]
			for _, s := range p.streams {
				if !s.finished {
					keep = append(keep, s)
				}
			}
			clear(p.streams[len(keep):])
			p.streams = keep
			p.mu.Unlock()
		}
	}
}
