package codec

import "testing"

func TestDescriptors(t *testing.T) {
	tests := []struct {
		c     Codec
		name  string
		pt    uint8
		rate  uint32
		enc   func(int16) byte
		probe int16
	}{
		{PCMU, "PCMU", 0, 8000, MulawEncode, 1000},
		{PCMA, "PCMA", 8, 8000, AlawEncode, 1000},
	}
	for _, tt := range tests {
		if tt.c.Name != tt.name || tt.c.PayloadType != tt.pt || tt.c.ClockRate != tt.rate {
			t.Errorf("%s: got {%q, %d, %d}, want {%q, %d, %d}", tt.name,
				tt.c.Name, tt.c.PayloadType, tt.c.ClockRate, tt.name, tt.pt, tt.rate)
		}
		if tt.c.Encode == nil || tt.c.Decode == nil {
			t.Fatalf("%s: nil Encode/Decode", tt.name)
		}
		var b [1]byte
		if n := tt.c.Encode(b[:], []int16{tt.probe}); n != 1 || b[0] != tt.enc(tt.probe) {
			t.Errorf("%s.Encode wrong: n=%d b=%#02x", tt.name, n, b[0])
		}
		var s [1]int16
		if n := tt.c.Decode(s[:], b[:]); n != 1 || s[0] == 0 {
			t.Errorf("%s.Decode wrong: n=%d s=%d", tt.name, n, s[0])
		}
	}
}

func TestByName(t *testing.T) {
	tests := []struct {
		in     string
		want   string
		wantOK bool
	}{
		{"PCMU", "PCMU", true},
		{"pcmu", "PCMU", true},
		{"PcMu", "PCMU", true},
		{"PCMA", "PCMA", true},
		{"pcma", "PCMA", true},
		{"", "", false},
		{"PCM", "", false},
		{"PCMUX", "", false},
		{"G722", "", false},
		{"telephone-event", "", false},
	}
	for _, tt := range tests {
		c, ok := ByName(tt.in)
		if ok != tt.wantOK || c.Name != tt.want {
			t.Errorf("ByName(%q) = (%q, %v), want (%q, %v)", tt.in, c.Name, ok, tt.want, tt.wantOK)
		}
	}
}

func TestByPayloadType(t *testing.T) {
	tests := []struct {
		pt     uint8
		want   string
		wantOK bool
	}{
		{0, "PCMU", true},
		{8, "PCMA", true},
		{3, "", false},
		{9, "", false},
		{18, "", false},
		{101, "", false},
		{255, "", false},
	}
	for _, tt := range tests {
		c, ok := ByPayloadType(tt.pt)
		if ok != tt.wantOK || c.Name != tt.want {
			t.Errorf("ByPayloadType(%d) = (%q, %v), want (%q, %v)", tt.pt, c.Name, ok, tt.want, tt.wantOK)
		}
		if ok && c.PayloadType != tt.pt {
			t.Errorf("ByPayloadType(%d) returned PT %d", tt.pt, c.PayloadType)
		}
	}
}
