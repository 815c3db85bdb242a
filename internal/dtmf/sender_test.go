package dtmf

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// seqString renders a packet sequence as e.g. "160 320 400E 400E 400E".
func seqString(evs []Event) string {
	parts := make([]string, len(evs))
	for i, e := range evs {
		parts[i] = fmt.Sprint(e.Duration)
		if e.End {
			parts[i] += "E"
		}
	}
	return strings.Join(parts, " ")
}

func TestSenderPackets(t *testing.T) {
	tests := []struct {
		digit rune
		dur   time.Duration
		rate  uint32
		ptime int
		event uint8
		want  string
	}{
		{'5', 100 * time.Millisecond, 8000, 20, 5, "160 320 480 640 800E 800E 800E"},
		{'#', 50 * time.Millisecond, 8000, 20, 11, "160 320 400E 400E 400E"},
		{'*', 60 * time.Millisecond, 8000, 20, 10, "160 320 480E 480E 480E"},
		{'a', 20 * time.Millisecond, 8000, 20, 12, "160E 160E 160E"},
		{'1', 10 * time.Millisecond, 8000, 20, 1, "80E 80E 80E"},
		{'D', 40 * time.Millisecond, 16000, 20, 15, "320 640E 640E 640E"},
		{'0', 100 * time.Millisecond, 8000, 30, 0, "240 480 720 800E 800E 800E"},
		{'9', 125*time.Microsecond + 1, 8000, 20, 9, "1E 1E 1E"}, // rounds to 1 tick
		{'9', 62500 * time.Nanosecond, 8000, 20, 9, "1E 1E 1E"},  // 0.5 tick rounds up
		{'B', 8191875 * time.Microsecond, 8000, 2000, 13, "16000 32000 48000 64000 65535E 65535E 65535E"},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%c/%v/%d/%d", tt.digit, tt.dur, tt.rate, tt.ptime)
		t.Run(name, func(t *testing.T) {
			evs, err := NewSenderPackets(tt.digit, tt.dur, tt.rate, tt.ptime)
			if err != nil {
				t.Fatal(err)
			}
			if got := seqString(evs); got != tt.want {
				t.Fatalf("sequence %q, want %q", got, tt.want)
			}
			for i, e := range evs {
				if e.Event != tt.event || e.Volume != DefaultVolume {
					t.Fatalf("packet %d: %+v, want event %d volume %d", i, e, tt.event, DefaultVolume)
				}
			}

			s, err := NewSender(tt.digit, tt.dur, tt.rate, tt.ptime)
			if err != nil {
				t.Fatal(err)
			}
			if s.Len() != len(evs) {
				t.Fatalf("Len() = %d, want %d", s.Len(), len(evs))
			}
			for i := 0; ; i++ {
				ev, marker, ok := s.Next()
				if !ok {
					if i != len(evs) {
						t.Fatalf("Next stopped after %d packets, want %d", i, len(evs))
					}
					break
				}
				if i >= len(evs) || ev != evs[i] {
					t.Fatalf("Next #%d = %+v, want %+v", i, ev, evs[i])
				}
				if marker != (i == 0) {
					t.Fatalf("Next #%d marker = %v", i, marker)
				}
			}
			if _, _, ok := s.Next(); ok {
				t.Fatal("Next returned a packet after the sequence ended")
			}
		})
	}
}

func TestSenderErrors(t *testing.T) {
	tests := []struct {
		digit rune
		dur   time.Duration
		rate  uint32
		ptime int
		want  error
	}{
		{'x', 100 * time.Millisecond, 8000, 20, ErrInvalidDigit},
		{'E', 100 * time.Millisecond, 8000, 20, ErrInvalidDigit},
		{'1', 0, 8000, 20, ErrInvalidDuration},
		{'1', -time.Second, 8000, 20, ErrInvalidDuration},
		{'1', 62499 * time.Nanosecond, 8000, 20, ErrInvalidDuration},      // < 0.5 tick
		{'1', 8191937500 * time.Nanosecond, 8000, 20, ErrDurationTooLong}, // 65535.5 ticks
		{'1', 9 * time.Second, 8000, 20, ErrDurationTooLong},
		{'1', 2 * time.Second, 48000, 20, ErrDurationTooLong},
		{'1', 1 << 62, 8000, 20, ErrDurationTooLong},
		{'1', 1 << 62, 48000, 20, ErrDurationTooLong},
		{'1', 100 * time.Millisecond, 0xFFFFFFFF, 20, ErrInvalidPtime},
		{'1', 100 * time.Millisecond, 0, 20, ErrInvalidClockRate},
		{'1', 100 * time.Millisecond, 8000, 0, ErrInvalidPtime},
		{'1', 100 * time.Millisecond, 8000, -20, ErrInvalidPtime},
		{'1', 100 * time.Millisecond, 8000, 10000, ErrInvalidPtime}, // 80000 ticks
		{'1', 100 * time.Millisecond, 100, 1, ErrInvalidPtime},      // 0.1 tick
	}
	for _, tt := range tests {
		evs, err := NewSenderPackets(tt.digit, tt.dur, tt.rate, tt.ptime)
		if !errors.Is(err, tt.want) || evs != nil {
			t.Errorf("NewSenderPackets(%q, %v, %d, %d) = (%v, %v), want (nil, %v)",
				tt.digit, tt.dur, tt.rate, tt.ptime, evs, err, tt.want)
		}
	}
}

func TestSenderZeroValue(t *testing.T) {
	var s Sender
	if _, _, ok := s.Next(); ok {
		t.Fatal("zero Sender produced a packet")
	}
	if s.Len() != 0 {
		t.Fatalf("zero Sender Len = %d", s.Len())
	}
}

func TestSenderZeroAllocs(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		s, err := NewSender('5', 100*time.Millisecond, 8000, 20)
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, _, ok := s.Next(); !ok {
				break
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocs, want 0", allocs)
	}
}

// TestSenderToDetector sends digit strings through Sender -> MarshalTo ->
// Unmarshal -> Detector, with various kinds of packet loss, and checks that
// every digit comes out exactly once, in order, with the right duration.
func TestSenderToDetector(t *testing.T) {
	tests := []struct {
		name string
		// keep decides whether packet i of n (of one digit) is delivered.
		keep func(i, n int) bool
		// flush: call Flush after each digit (needed when all Ends are lost).
		flush bool
		// wantFull: the reported duration equals the sent duration.
		wantFull bool
	}{
		{"lossless", func(i, n int) bool { return true }, false, true},
		{"start lost", func(i, n int) bool { return i != 0 }, false, true},
		{"only End packets", func(i, n int) bool { return i >= n-EndRepeats }, false, true},
		{"only last End", func(i, n int) bool { return i == n-1 }, false, true},
		{"first two Ends lost", func(i, n int) bool { return i < n-EndRepeats || i == n-1 }, false, true},
		{"all Ends lost, next digit supersedes", func(i, n int) bool { return i < n-EndRepeats }, false, false},
		{"all Ends lost, flushed", func(i, n int) bool { return i < n-EndRepeats }, true, false},
	}
	const digitsIn = "1123#*ABCD0099"
	const toneLen = 100 * time.Millisecond
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Detector
			var got []rune
			var durs []int
			begins := 0
			ts := uint32(0xFFFFF000) // exercise wrap-around
			var buf [4]byte
			for _, r := range digitsIn {
				evs, err := NewSenderPackets(r, toneLen, 8000, 20)
				if err != nil {
					t.Fatal(err)
				}
				for i, e := range evs {
					if !tt.keep(i, len(evs)) {
						continue
					}
					if _, err := e.MarshalTo(buf[:]); err != nil {
						t.Fatal(err)
					}
					var rx Event
					if err := rx.Unmarshal(buf[:]); err != nil {
						t.Fatal(err)
					}
					digit, ms, begin, done := d.Push(ts, i == 0, rx, 8000)
					if begin {
						begins++
					}
					if done {
						got = append(got, digit)
						durs = append(durs, ms)
					}
				}
				if tt.flush {
					if digit, ms, ok := d.Flush(); ok {
						got = append(got, digit)
						durs = append(durs, ms)
					}
				}
				ts += 160 * 8 // next digit: 100 ms tone + 60 ms gap
			}
			if digit, ms, ok := d.Flush(); ok {
				got = append(got, digit)
				durs = append(durs, ms)
			}
			if string(got) != digitsIn {
				t.Fatalf("detected %q, want %q", string(got), digitsIn)
			}
			for i, ms := range durs {
				if tt.wantFull && ms != 100 {
					t.Fatalf("digit %d: %d ms, want 100", i, ms)
				}
				if !tt.wantFull && ms != 80 { // last non-End packet: 640 ticks
					t.Fatalf("digit %d: %d ms, want 80", i, ms)
				}
			}
			if begins > len(digitsIn) || begins < len(digitsIn)-1 {
				t.Fatalf("%d begins for %d digits", begins, len(digitsIn))
			}
		})
	}
}

func BenchmarkSenderNext(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		s, _ := NewSender('5', 100*time.Millisecond, 8000, 20)
		for {
			if _, _, ok := s.Next(); !ok {
				break
			}
		}
	}
}
