package dtmf

import (
	"fmt"
	"testing"
)

// res is what Push (or Flush, with op "flush") is expected to return.
type res struct {
	digit rune
	ms    int
	begin bool
	done  bool
}

type step struct {
	op   string // "" = Push, "flush", "reset"
	ts   uint32
	ev   uint8
	end  bool
	dur  uint16
	rate uint32 // 0 -> 8000 (Push default)
	want res
}

// pkt builds a Push step of event ev at timestamp ts.
func pkt(ts uint32, ev uint8, dur uint16, end bool, want res) step {
	return step{ts: ts, ev: ev, dur: dur, end: end, want: want}
}

var none = res{}

func TestDetector(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"normal event with 3 End retransmissions", []step{
			pkt(1000, 5, 160, false, res{'5', 20, true, false}),
			pkt(1000, 5, 320, false, res{'5', 40, false, false}),
			pkt(1000, 5, 480, false, res{'5', 60, false, false}),
			pkt(1000, 5, 640, true, res{'5', 80, false, true}),
			pkt(1000, 5, 640, true, none),
			pkt(1000, 5, 640, true, none),
			{op: "flush", want: none},
		}},
		{"lost start packets: only End packets arrive", []step{
			pkt(1000, 5, 640, true, res{'5', 80, true, true}),
			pkt(1000, 5, 640, true, none),
			pkt(1000, 5, 640, true, none),
			{op: "flush", want: none},
		}},
		{"lost start packets: only the last End arrives", []step{
			pkt(500, 11, 1600, true, res{'#', 200, true, true}),
			{op: "flush", want: none},
		}},
		{"two consecutive identical digits", []step{
			pkt(1000, 1, 160, false, res{'1', 20, true, false}),
			pkt(1000, 1, 400, true, res{'1', 50, false, true}),
			pkt(1000, 1, 400, true, none),
			pkt(1000, 1, 400, true, none),
			pkt(2600, 1, 160, false, res{'1', 20, true, false}),
			pkt(2600, 1, 480, true, res{'1', 60, false, true}),
			pkt(2600, 1, 480, true, none),
		}},
		{"two identical digits, End-only", []step{
			pkt(1000, 9, 400, true, res{'9', 50, true, true}),
			pkt(1000, 9, 400, true, none),
			pkt(2000, 9, 400, true, res{'9', 50, true, true}),
			pkt(2000, 9, 400, true, none),
		}},
		{"out-of-range event codes ignored", []step{
			pkt(1000, 16, 160, false, none), // flash
			pkt(1000, 16, 800, true, none),
			pkt(2000, 255, 160, true, none),
			pkt(3000, 2, 160, false, res{'2', 20, true, false}),
			pkt(4000, 20, 160, false, none), // must not supersede '2'
			pkt(3000, 2, 320, true, res{'2', 40, false, true}),
			{op: "flush", want: none},
		}},
		{"new event before End: previous reported done, begin deferred", []step{
			pkt(1000, 3, 160, false, res{'3', 20, true, false}),
			pkt(1000, 3, 320, false, res{'3', 40, false, false}),
			pkt(2000, 4, 160, false, res{'3', 40, false, true}),
			pkt(2000, 4, 320, false, res{'4', 40, true, false}),
			pkt(2000, 4, 480, true, res{'4', 60, false, true}),
			pkt(2000, 4, 480, true, none),
			pkt(1000, 3, 400, true, none), // late End of '3'
			{op: "flush", want: none},
		}},
		{"superseding End packet: new event done on its retransmission", []step{
			pkt(1000, 3, 160, false, res{'3', 20, true, false}),
			pkt(2000, 4, 480, true, res{'3', 20, false, true}),
			pkt(2000, 4, 480, true, res{'4', 60, true, true}),
			pkt(2000, 4, 480, true, none),
			{op: "flush", want: none},
		}},
		{"superseding End packet, then a reordered non-End packet of it", []step{
			pkt(1000, 3, 160, false, res{'3', 20, true, false}),
			pkt(2000, 4, 480, true, res{'3', 20, false, true}),
			pkt(2000, 4, 320, false, res{'4', 60, true, true}),
			pkt(2000, 4, 480, true, none),
		}},
		{"superseding End packet, retransmissions lost: flushed", []step{
			pkt(1000, 3, 160, false, res{'3', 20, true, false}),
			pkt(2000, 4, 480, true, res{'3', 20, false, true}),
			{op: "flush", want: res{'4', 60, false, true}},
			pkt(2000, 4, 480, true, none),
		}},
		{"event superseded before its begin was reported", []step{
			pkt(1000, 1, 160, false, res{'1', 20, true, false}),
			pkt(2000, 2, 160, false, res{'1', 20, false, true}),
			pkt(3000, 3, 240, false, res{'2', 20, true, true}),
			pkt(3000, 3, 320, false, res{'3', 40, true, false}),
			{op: "flush", want: res{'3', 40, false, true}},
		}},
		{"late non-End packet after End ignored", []step{
			pkt(1000, 7, 160, false, res{'7', 20, true, false}),
			pkt(1000, 7, 480, true, res{'7', 60, false, true}),
			pkt(1000, 7, 320, false, none),
		}},
		{"reordered durations keep the maximum", []step{
			pkt(1000, 8, 320, false, res{'8', 40, true, false}),
			pkt(1000, 8, 160, false, res{'8', 40, false, false}),
			pkt(1000, 8, 640, true, res{'8', 80, false, true}),
		}},
		{"clock rate", []step{
			{ts: 1, ev: 0, dur: 320, end: true, rate: 16000, want: res{'0', 20, true, true}},
			{ts: 2, ev: 10, dur: 480, end: true, rate: 48000, want: res{'*', 10, true, true}},
			{ts: 3, ev: 12, dur: 8000, end: true, rate: 0, want: res{'A', 1000, true, true}},
			{ts: 4, ev: 15, dur: 7, end: true, rate: 8000, want: res{'D', 0, true, true}},
		}},
		{"flush pending event without End", []step{
			{op: "flush", want: none},
			pkt(1000, 6, 160, false, res{'6', 20, true, false}),
			pkt(1000, 6, 800, false, res{'6', 100, false, false}),
			{op: "flush", want: res{'6', 100, false, true}},
			{op: "flush", want: none},
			pkt(1000, 6, 960, true, none), // End arriving after the flush
			pkt(1000, 6, 960, false, none),
		}},
		{"finished timestamps remembered for the last 4 events", []step{
			pkt(100, 1, 80, true, res{'1', 10, true, true}),
			pkt(200, 2, 80, true, res{'2', 10, true, true}),
			pkt(300, 3, 80, true, res{'3', 10, true, true}),
			pkt(400, 4, 80, true, res{'4', 10, true, true}),
			pkt(100, 1, 80, true, none),
			pkt(400, 4, 80, true, none),
			pkt(500, 5, 80, true, res{'5', 10, true, true}),
			// 100 fell out of the window: accepted as a new event.
			pkt(100, 1, 80, true, res{'1', 10, true, true}),
		}},
		{"timestamp wrap-around", []step{
			pkt(0xFFFFFF00, 1, 160, true, res{'1', 20, true, true}),
			pkt(0x00000100, 1, 160, true, res{'1', 20, true, true}),
			pkt(0xFFFFFF00, 1, 160, true, none),
		}},
		{"different event code on the same timestamp keeps the first", []step{
			pkt(1000, 1, 160, false, res{'1', 20, true, false}),
			pkt(1000, 2, 320, true, res{'1', 40, false, true}),
		}},
		{"long-duration event segments are merged", []step{
			pkt(1000, 5, 160, false, res{'5', 20, true, false}),
			pkt(1000, 5, 0xFFFF, false, res{'5', 8191, false, false}),
			pkt(1000+0xFFFF, 5, 160, false, res{'5', 8211, false, false}),
			pkt(1000+0xFFFF, 5, 800, true, res{'5', 8291, false, true}),
			pkt(1000+0xFFFF, 5, 800, true, none),
			pkt(1000, 5, 0xFFFF, false, none),
		}},
		{"next segment with another digit is a new event", []step{
			pkt(1000, 5, 0xFFFF, false, res{'5', 8191, true, false}),
			pkt(1000+0xFFFF, 6, 160, false, res{'5', 8191, false, true}),
			pkt(1000+0xFFFF, 6, 320, true, res{'6', 40, true, true}),
		}},
		{"reset forgets everything", []step{
			pkt(1000, 1, 160, false, res{'1', 20, true, false}),
			{op: "reset"},
			{op: "flush", want: none},
			pkt(1000, 1, 320, true, res{'1', 40, true, true}),
			{op: "reset"},
			pkt(1000, 1, 320, true, res{'1', 40, true, true}),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Detector
			for i, s := range tt.steps {
				var got res
				switch s.op {
				case "":
					ev := Event{Event: s.ev, End: s.end, Volume: 10, Duration: s.dur}
					got.digit, got.ms, got.begin, got.done = d.Push(s.ts, false, ev, s.rate)
				case "flush":
					var ok bool
					got.digit, got.ms, ok = d.Flush()
					got.done = ok
				case "reset":
					d.Reset()
					continue
				}
				if got != s.want {
					t.Fatalf("step %d (%s ts=%d ev=%d dur=%d end=%v): got %s, want %s",
						i, s.op, s.ts, s.ev, s.dur, s.end, fmtRes(got), fmtRes(s.want))
				}
			}
		})
	}
}

func fmtRes(r res) string {
	return fmt.Sprintf("{digit=%q ms=%d begin=%v done=%v}", r.digit, r.ms, r.begin, r.done)
}

// TestDetectorMarkerIgnored: the marker bit must not change the outcome (the
// packet carrying it is often the one that is lost).
func TestDetectorMarkerIgnored(t *testing.T) {
	seq := []Event{{Event: 1, Duration: 160}, {Event: 1, Duration: 320, End: true}, {Event: 1, Duration: 320, End: true}}
	for _, marker := range []bool{false, true} {
		var d Detector
		var dones, begins int
		for _, ev := range seq {
			_, _, b, dn := d.Push(42, marker, ev, 8000)
			if b {
				begins++
			}
			if dn {
				dones++
			}
		}
		if begins != 1 || dones != 1 {
			t.Errorf("marker=%v: begins=%d dones=%d, want 1/1", marker, begins, dones)
		}
	}
}

func TestDetectorZeroAllocs(t *testing.T) {
	var d Detector
	ts := uint32(0)
	allocs := testing.AllocsPerRun(200, func() {
		ts += 800
		d.Push(ts, true, Event{Event: 1, Duration: 160}, 8000)
		d.Push(ts, false, Event{Event: 1, Duration: 320, End: true}, 8000)
		d.Push(ts, false, Event{Event: 1, Duration: 320, End: true}, 8000)
		d.Flush()
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per event, want 0", allocs)
	}
}

// FuzzDetector feeds arbitrary packet sequences (4 bytes each: timestamp
// selector, event, flags, duration) drawn from at most 4 distinct timestamps,
// so the Detector's finished-timestamp window covers all of them. Then every
// distinct timestamp that carried a DTMF event must be reported done exactly
// once (Push or the final Flush), and begin at most once per done.
func FuzzDetector(f *testing.F) {
	f.Add([]byte{0, 1, 0, 160, 0, 1, 1, 200, 0, 1, 1, 200, 1, 1, 1, 90})
	f.Add([]byte{0, 3, 0, 10, 1, 4, 1, 20, 2, 5, 0, 30, 1, 4, 1, 20})
	f.Add([]byte{3, 16, 1, 1, 2, 200, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Detector
		seen := map[uint32]bool{}
		begins, dones := 0, 0
		for ; len(data) >= 4; data = data[4:] {
			ts := uint32(data[0]%4) * 1000
			ev := Event{Event: data[1] % 20, End: data[2]&1 != 0, Duration: uint16(data[3]) * 40}
			rate := uint32(data[2]>>1) * 1000
			digit, ms, begin, done := d.Push(ts, data[2]&2 != 0, ev, rate)
			if ev.Event < 16 {
				seen[ts] = true
			}
			if begin || done {
				if _, ok := DigitToEvent(digit); !ok {
					t.Fatalf("reported invalid digit %q", digit)
				}
			}
			if ms < 0 || (digit == 0 && (ms != 0 || begin || done)) {
				t.Fatalf("inconsistent result %q %d %v %v", digit, ms, begin, done)
			}
			if begin {
				begins++
			}
			if done {
				dones++
			}
			if begins > dones+1 {
				t.Fatalf("begins %d > dones %d + 1", begins, dones)
			}
		}
		if digit, _, ok := d.Flush(); ok {
			if _, valid := DigitToEvent(digit); !valid {
				t.Fatalf("flushed invalid digit %q", digit)
			}
			dones++
		}
		if _, _, ok := d.Flush(); ok {
			t.Fatal("second Flush reported an event")
		}
		if dones != len(seen) {
			t.Fatalf("%d events done, want %d (distinct timestamps)", dones, len(seen))
		}
		if begins > dones || begins < dones-1 {
			t.Fatalf("begins %d, dones %d", begins, dones)
		}
	})
}

func BenchmarkDetectorPush(b *testing.B) {
	b.ReportAllocs()
	var d Detector
	seq := []Event{
		{Event: 5, Volume: 10, Duration: 160},
		{Event: 5, Volume: 10, Duration: 320},
		{Event: 5, Volume: 10, Duration: 480},
		{Event: 5, Volume: 10, Duration: 640, End: true},
		{Event: 5, Volume: 10, Duration: 640, End: true},
		{Event: 5, Volume: 10, Duration: 640, End: true},
	}
	var ts uint32
	i := 0
	for b.Loop() {
		if i == 0 {
			ts += 1600
		}
		d.Push(ts, i == 0, seq[i], 8000)
		if i++; i == len(seq) {
			i = 0
		}
	}
}
