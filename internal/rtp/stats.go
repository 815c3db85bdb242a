package rtp

import "time"

// Stats are receiver statistics for one remote source, as RFC 3550 A.3 and
// A.8 define them.
type Stats struct {
	SSRC         uint32
	Received     uint64 // packets received, duplicates excluded
	Bytes        uint64 // payload bytes received
	Expected     uint64 // extended highest seq - base seq + 1
	Lost         int64  // Expected - Received (may be negative with duplicates)
	Duplicates   uint64
	Reordered    uint64
	Jitter       float64 // interarrival jitter in timestamp units
	MaxSeq       uint64  // extended highest sequence number
	Sent         uint64  // packets sent
	SentBytes    uint64
	RTCPReceived uint64 // RTCP compound packets received
	RemoteLost   uint32 // cumulative loss the remote reported for our stream
	RemoteJitter uint32
	LastSRNTP    uint64 // NTP time of the last sender report received
	SSRCChanges  uint64
	// SourceDropped counts packets dropped because they came from another
	// address than the learned source (strict RTP); SourceChanges the
	// accepted changes of source (a NAT rebinding continuing the stream).
	SourceDropped uint64
	SourceChanges uint64
	LastPacketAt  time.Time
	FirstPacketAt time.Time
}

// seqTracker unwraps 16-bit sequence numbers and keeps the counters.
type seqTracker struct {
	started  bool
	base     uint64
	max      uint64 // extended
	received uint64
	dups     uint64
	reorder  uint64
	window   [4]uint64 // bitmap of the last 256 extended seqs relative to max
	// jitter
	transit int64
	jitter  float64
}

// unwrap extends seq relative to the highest extended sequence seen.
func unwrap(max uint64, seq uint16) uint64 {
	cycles := max &^ 0xFFFF
	cand := cycles | uint64(seq)
	// Pick the candidate closest to max.
	if cand+0x8000 < max {
		cand += 0x10000
	} else if cand > max+0x8000 && cand >= 0x10000 {
		cand -= 0x10000
	}
	return cand
}

// update records one packet and returns its extended sequence number and
// whether it was a duplicate.
func (s *seqTracker) update(seq uint16, rtpTS uint32, arrivalUnits int64) (ext uint64, dup bool) {
	if !s.started {
		s.started = true
		ext = uint64(seq) + 1<<16 // keep room below for early reordered packets
		s.base, s.max = ext, ext
		s.received = 1
		s.setSeen(ext)
		s.transit = arrivalUnits - int64(rtpTS)
		return ext, false
	}
	ext = unwrap(s.max, seq)
	if ext > s.max {
		shift := ext - s.max
		s.shift(shift)
		s.max = ext
	} else {
		if s.max-ext < 256 && s.seen(ext) {
			s.dups++
			return ext, true
		}
		s.reorder++
		if ext < s.base {
			s.base = ext
		}
	}
	s.setSeen(ext)
	s.received++
	transit := arrivalUnits - int64(rtpTS)
	d := transit - s.transit
	s.transit = transit
	if d < 0 {
		d = -d
	}
	s.jitter += (float64(d) - s.jitter) / 16
	return ext, false
}

func (s *seqTracker) shift(n uint64) {
	if n >= 256 {
		s.window = [4]uint64{}
		return
	}
	for ; n > 0; n-- { // n is small in steady state (1)
		carry := uint64(0)
		for i := 0; i < 4; i++ {
			next := s.window[i] >> 63
			s.window[i] = s.window[i]<<1 | carry
			carry = next
		}
	}
}

func (s *seqTracker) setSeen(ext uint64) {
	d := s.max - ext
	if d < 256 {
		s.window[d/64] |= 1 << (d % 64)
	}
}

func (s *seqTracker) seen(ext uint64) bool {
	d := s.max - ext
	return d < 256 && s.window[d/64]&(1<<(d%64)) != 0
}

func (s *seqTracker) expected() uint64 {
	if !s.started {
		return 0
	}
	return s.max - s.base + 1
}
