package recorder

import (
	"math"
	"testing"
	"time"
	"unsafe"
)

// send feeds n packets of 20 ms from seq0/ts0, arriving every 20 ms plus
// delay(i), skipping those lose(i) says.
func send(m *Meter, ssrc uint32, seq0 uint16, ts0 uint32, t0 time.Time, n int, lose func(int) bool, delay func(int) time.Duration) (dups int) {
	for i := range n {
		if lose != nil && lose(i) {
			continue
		}
		at := t0.Add(time.Duration(i) * 20 * time.Millisecond)
		if delay != nil {
			at = at.Add(delay(i))
		}
		if m.Packet(ssrc, seq0+uint16(i), ts0+uint32(i*160), at) {
			dups++
		}
	}
	return dups
}

func TestMeterLossAcrossSequenceWrap(t *testing.T) {
	m := NewMeter(8000)
	t0 := time.Unix(1000, 0)
	lost := 0
	send(m, 7, 65500, 4294967000, t0, 200, func(i int) bool {
		if i%20 == 3 { // 5 %
			lost++
			return true
		}
		return false
	}, nil)
	c := m.Counts()
	if c.Expected != 200 || c.Received != int64(200-lost) || c.Lost != int64(lost) || lost != 10 {
		t.Fatalf("counts %+v, lost %d of 200", c, lost)
	}
	if c.Duplicated != 0 || c.Late != 0 {
		t.Fatalf("counts %+v", c)
	}
	if c.JitterMs > 0.01 {
		t.Fatalf("jitter %.3f ms for a steady sender", c.JitterMs)
	}
}

func TestMeterDuplicatesAndReordering(t *testing.T) {
	m := NewMeter(8000)
	t0 := time.Unix(1000, 0)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 20 * time.Millisecond) }
	order := []int{0, 1, 3, 2, 2, 4, 5, 5, 5, 6}
	dups := 0
	for k, i := range order {
		if m.Packet(1, uint16(100+i), uint32(i*160), at(k)) {
			dups++
		}
	}
	c := m.Counts()
	if dups != 3 || c.Duplicated != 3 || c.Expected != 7 || c.Received != 7 || c.Lost != 0 {
		t.Fatalf("dups %d, counts %+v", dups, c)
	}
	m.Late()
	if m.Counts().Late != 1 {
		t.Fatal("Late not counted")
	}
	// A packet reordered before the first one is expected and received.
	m2 := NewMeter(8000)
	m2.Packet(1, 10, 1600, at(0))
	m2.Packet(1, 9, 1440, at(1))
	if c := m2.Counts(); c.Expected != 2 || c.Received != 2 {
		t.Fatalf("reordered first: %+v", c)
	}
}

// A pause ends a stretch: what the sender sent meanwhile is not lost; a new
// SSRC and a large jump of the sequence start a stretch too.
func TestMeterStretches(t *testing.T) {
	m := NewMeter(8000)
	t0 := time.Unix(1000, 0)
	send(m, 1, 0, 0, t0, 50, nil, nil)
	m.Break()
	send(m, 1, 150, 150*160, t0.Add(3*time.Second), 50, func(i int) bool { return i == 10 }, nil)
	c := m.Counts()
	if c.Expected != 100 || c.Received != 99 || c.Lost != 1 {
		t.Fatalf("after a pause: %+v", c)
	}
	send(m, 2, 40000, 9, t0.Add(5*time.Second), 10, nil, nil)  // new SSRC
	send(m, 2, 10000, 99, t0.Add(6*time.Second), 10, nil, nil) // jump back by 30000
	if c := m.Counts(); c.Expected != 120 || c.Received != 119 || c.Lost != 1 {
		t.Fatalf("after a new SSRC and a jump: %+v", c)
	}
}

// Jitter follows RFC 3550: packets arriving alternately 0 and 10 ms late
// converge on about 10 ms of jitter.
func TestMeterJitter(t *testing.T) {
	m := NewMeter(8000)
	send(m, 1, 0, 0, time.Unix(1000, 0), 500, nil, func(i int) time.Duration {
		return time.Duration(i%2) * 10 * time.Millisecond
	})
	if j := m.Counts().JitterMs; math.Abs(j-10) > 0.5 {
		t.Fatalf("jitter %.2f ms, want about 10", j)
	}
}

// BenchmarkMeterPacket is the meter's cost per packet on the media path
// (steady stream, 1 % loss).
func BenchmarkMeterPacket(b *testing.B) {
	m := NewMeter(8000)
	t0 := time.Unix(1000, 0)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if i%100 == 50 {
			continue
		}
		m.Packet(1, uint16(i), uint32(i*160), t0.Add(time.Duration(i)*20*time.Millisecond))
	}
}

// Gaps counts the packets after a hole in the sequence numbers, and the
// loss grows only with it.
func TestMeterGaps(t *testing.T) {
	m := NewMeter(8000)
	at := time.Unix(0, 0)
	lost, gaps := int64(0), uint64(0)
	for _, seq := range []uint16{1, 2, 3, 5, 6, 4, 6, 9, 10, 8, 11, 65535, 0, 1} {
		m.Packet(7, seq, uint32(seq)*160, at)
		c := m.Counts()
		if c.Lost > lost && m.Gaps() == gaps {
			t.Fatalf("seq %d: lost %d -> %d with no gap counted", seq, lost, c.Lost)
		}
		lost, gaps = c.Lost, m.Gaps()
	}
	if gaps != 3 {
		t.Fatalf("%d gaps, want 3 (before 5 and 9, 65535 two below the first)", gaps)
	}
}

// TestMeterPacketFieldsPacked: what Packet touches for an in-order packet
// lies in the Meter's first two cache lines (the call package embeds the
// Meter at the start of its recording; see TestMediaPathFieldsPacked).
func TestMeterPacketFieldsPacked(t *testing.T) {
	var m Meter
	for name, end := range map[string]uintptr{
		"epoch":      unsafe.Offsetof(m.epoch) + unsafe.Sizeof(m.epoch),
		"rate":       unsafe.Offsetof(m.rate) + unsafe.Sizeof(m.rate),
		"max":        unsafe.Offsetof(m.max) + unsafe.Sizeof(m.max),
		"segRecv":    unsafe.Offsetof(m.segRecv) + unsafe.Sizeof(m.segRecv),
		"transit":    unsafe.Offsetof(m.transit) + unsafe.Sizeof(m.transit),
		"jitter":     unsafe.Offsetof(m.jitter) + unsafe.Sizeof(m.jitter),
		"window":     unsafe.Offsetof(m.window) + unsafe.Sizeof(m.window),
		"gaps":       unsafe.Offsetof(m.gaps) + unsafe.Sizeof(m.gaps),
		"ssrc":       unsafe.Offsetof(m.ssrc) + unsafe.Sizeof(m.ssrc),
		"started":    unsafe.Offsetof(m.started) + 1,
		"hasTransit": unsafe.Offsetof(m.hasTransit) + 1,
	} {
		if end > 128 {
			t.Errorf("Meter.%s ends at byte %d, past the first two cache lines", name, end)
		}
	}
}
