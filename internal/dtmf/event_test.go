package dtmf

import (
	"bytes"
	"errors"
	"testing"
)

func TestUnmarshal(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    Event
		wantErr error
	}{
		{"digit 5 start", []byte{0x05, 0x0A, 0x00, 0xA0}, Event{Event: 5, Volume: 10, Duration: 160}, nil},
		{"end bit", []byte{0x0B, 0x8A, 0x03, 0x20}, Event{Event: 11, End: true, Volume: 10, Duration: 800}, nil},
		{"reserved bit ignored", []byte{0x01, 0x4A, 0x00, 0x01}, Event{Event: 1, Volume: 10, Duration: 1}, nil},
		{"all bits", []byte{0xFF, 0xFF, 0xFF, 0xFF}, Event{Event: 255, End: true, Volume: 63, Duration: 0xFFFF}, nil},
		{"zeros", []byte{0, 0, 0, 0}, Event{}, nil},
		{"trailing bytes ignored", []byte{0x0F, 0x80, 0x12, 0x34, 0xAA, 0xBB}, Event{Event: 15, End: true, Duration: 0x1234}, nil},
		{"nil", nil, Event{}, ErrShortPayload},
		{"1 byte", []byte{1}, Event{}, ErrShortPayload},
		{"3 bytes", []byte{1, 2, 3}, Event{}, ErrShortPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Event
			if tt.wantErr != nil {
				e = Event{Event: 99, Duration: 42} // must stay untouched
			}
			err := e.Unmarshal(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				if (e != Event{Event: 99, Duration: 42}) {
					t.Fatalf("event modified on error: %+v", e)
				}
				return
			}
			if e != tt.want {
				t.Fatalf("got %+v, want %+v", e, tt.want)
			}
		})
	}
}

func TestMarshalTo(t *testing.T) {
	tests := []struct {
		name    string
		ev      Event
		bufLen  int
		want    []byte
		wantErr error
	}{
		{"start", Event{Event: 5, Volume: 10, Duration: 160}, 4, []byte{0x05, 0x0A, 0x00, 0xA0}, nil},
		{"end", Event{Event: 11, End: true, Volume: 10, Duration: 800}, 4, []byte{0x0B, 0x8A, 0x03, 0x20}, nil},
		{"max", Event{Event: 255, End: true, Volume: 63, Duration: 0xFFFF}, 4, []byte{0xFF, 0xBF, 0xFF, 0xFF}, nil},
		{"bigger buffer", Event{Event: 1, Duration: 1}, 8, []byte{0x01, 0x00, 0x00, 0x01}, nil},
		{"short buffer", Event{Event: 1}, 3, nil, ErrShortBuffer},
		{"nil buffer", Event{Event: 1}, 0, nil, ErrShortBuffer},
		{"volume 64", Event{Event: 1, Volume: 64}, 4, nil, ErrInvalidVolume},
		{"volume 255", Event{Event: 1, Volume: 255}, 4, nil, ErrInvalidVolume},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := bytes.Repeat([]byte{0xEE}, tt.bufLen)
			n, err := tt.ev.MarshalTo(buf)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if n != 0 || !bytes.Equal(buf, bytes.Repeat([]byte{0xEE}, tt.bufLen)) {
					t.Fatalf("n=%d buf=%x modified on error", n, buf)
				}
				return
			}
			if n != 4 || !bytes.Equal(buf[:4], tt.want) {
				t.Fatalf("got n=%d %x, want 4 %x", n, buf[:n], tt.want)
			}
			for _, b := range buf[4:] {
				if b != 0xEE {
					t.Fatalf("wrote past 4 bytes: %x", buf)
				}
			}
		})
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	var buf [4]byte
	for ev := 0; ev < 256; ev += 3 {
		for _, end := range []bool{false, true} {
			for vol := 0; vol <= MaxVolume; vol += 7 {
				for _, dur := range []uint16{0, 1, 160, 0x8000, 0xFFFF} {
					in := Event{Event: uint8(ev), End: end, Volume: uint8(vol), Duration: dur}
					if _, err := in.MarshalTo(buf[:]); err != nil {
						t.Fatal(err)
					}
					var out Event
					if err := out.Unmarshal(buf[:]); err != nil {
						t.Fatal(err)
					}
					if out != in {
						t.Fatalf("round trip %+v -> %x -> %+v", in, buf, out)
					}
				}
			}
		}
	}
}

func TestDigitEventMapping(t *testing.T) {
	tests := []struct {
		r     rune
		ev    uint8
		ok    bool
		canon rune // EventToDigit(ev)
	}{
		{'0', 0, true, '0'}, {'1', 1, true, '1'}, {'2', 2, true, '2'},
		{'3', 3, true, '3'}, {'4', 4, true, '4'}, {'5', 5, true, '5'},
		{'6', 6, true, '6'}, {'7', 7, true, '7'}, {'8', 8, true, '8'},
		{'9', 9, true, '9'}, {'*', 10, true, '*'}, {'#', 11, true, '#'},
		{'A', 12, true, 'A'}, {'B', 13, true, 'B'}, {'C', 14, true, 'C'},
		{'D', 15, true, 'D'},
		{'a', 12, true, 'A'}, {'b', 13, true, 'B'}, {'c', 14, true, 'C'},
		{'d', 15, true, 'D'},
		{'E', 0, false, 0}, {'e', 0, false, 0}, {'x', 0, false, 0},
		{' ', 0, false, 0}, {'/', 0, false, 0}, {':', 0, false, 0},
		{'@', 0, false, 0}, {'`', 0, false, 0}, {'+', 0, false, 0},
		{0, 0, false, 0}, {'\u0663', 0, false, 0}, {-1, 0, false, 0},
	}
	for _, tt := range tests {
		ev, ok := DigitToEvent(tt.r)
		if ok != tt.ok || ev != tt.ev {
			t.Errorf("DigitToEvent(%q) = (%d, %v), want (%d, %v)", tt.r, ev, ok, tt.ev, tt.ok)
		}
		if !tt.ok {
			continue
		}
		r, ok := EventToDigit(ev)
		if !ok || r != tt.canon {
			t.Errorf("EventToDigit(%d) = (%q, %v), want (%q, true)", ev, r, ok, tt.canon)
		}
	}
	for e := 16; e < 256; e++ {
		if r, ok := EventToDigit(uint8(e)); ok || r != 0 {
			t.Errorf("EventToDigit(%d) = (%q, %v), want (0, false)", e, r, ok)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte{0x05, 0x0A, 0x00, 0xA0})
	f.Add([]byte{0x0B, 0xCA, 0x03, 0x20, 0x00})
	f.Add([]byte{0x01})
	f.Fuzz(func(t *testing.T, payload []byte) {
		var e Event
		err := e.Unmarshal(payload)
		if len(payload) < 4 {
			if !errors.Is(err, ErrShortPayload) {
				t.Fatalf("len %d: err = %v, want ErrShortPayload", len(payload), err)
			}
			return
		}
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		var buf [4]byte
		n, err := e.MarshalTo(buf[:])
		if err != nil || n != 4 {
			t.Fatalf("MarshalTo(%+v) = %d, %v", e, n, err)
		}
		// Identical except for the reserved bit, which is always cleared.
		want := [4]byte{payload[0], payload[1] &^ 0x40, payload[2], payload[3]}
		if buf != want {
			t.Fatalf("re-marshal %x -> %+v -> %x", payload[:4], e, buf)
		}
	})
}

var sinkEvent Event

func BenchmarkUnmarshal(b *testing.B) {
	b.ReportAllocs()
	p := []byte{0x0B, 0x8A, 0x03, 0x20}
	for b.Loop() {
		if err := sinkEvent.Unmarshal(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalTo(b *testing.B) {
	b.ReportAllocs()
	var buf [4]byte
	e := Event{Event: 11, End: true, Volume: 10, Duration: 800}
	for b.Loop() {
		if _, err := e.MarshalTo(buf[:]); err != nil {
			b.Fatal(err)
		}
	}
}
