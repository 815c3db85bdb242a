package codec

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"testing"
)

func TestKnownValues(t *testing.T) {
	tests := []struct {
		name string
		got  int
		want int
	}{
		{"MulawEncode(0)", int(MulawEncode(0)), 0xFF},
		{"MulawEncode(1)", int(MulawEncode(1)), 0xFF},
		{"MulawEncode(-1)", int(MulawEncode(-1)), 0x7E},
		{"MulawEncode(8)", int(MulawEncode(8)), 0xFE},
		{"MulawEncode(-8)", int(MulawEncode(-8)), 0x7E},
		{"MulawEncode(1000)", int(MulawEncode(1000)), 0xCE},
		{"MulawEncode(-1000)", int(MulawEncode(-1000)), 0x4E},
		{"MulawEncode(32767)", int(MulawEncode(32767)), 0x80},
		{"MulawEncode(-32768)", int(MulawEncode(-32768)), 0x00},
		{"MulawEncode(32124)", int(MulawEncode(32124)), 0x80},
		{"MulawDecode(0x00)", int(MulawDecode(0x00)), -32124},
		{"MulawDecode(0x80)", int(MulawDecode(0x80)), 32124},
		{"MulawDecode(0xFF)", int(MulawDecode(0xFF)), 0},
		{"MulawDecode(0x7F)", int(MulawDecode(0x7F)), 0},
		{"MulawDecode(0xFE)", int(MulawDecode(0xFE)), 8},
		{"MulawDecode(0x7E)", int(MulawDecode(0x7E)), -8},
		{"MulawDecode(0xCE)", int(MulawDecode(0xCE)), 988},
		{"MulawDecode(0xEF)", int(MulawDecode(0xEF)), 132},
		{"AlawEncode(0)", int(AlawEncode(0)), 0xD5},
		{"AlawEncode(-1)", int(AlawEncode(-1)), 0x55},
		{"AlawEncode(-8)", int(AlawEncode(-8)), 0x55},
		{"AlawEncode(16)", int(AlawEncode(16)), 0xD4},
		{"AlawEncode(1000)", int(AlawEncode(1000)), 0xFA},
		{"AlawEncode(-1000)", int(AlawEncode(-1000)), 0x7A},
		{"AlawEncode(32767)", int(AlawEncode(32767)), 0xAA},
		{"AlawEncode(-32768)", int(AlawEncode(-32768)), 0x2A},
		{"AlawDecode(0x55)", int(AlawDecode(0x55)), -8},
		{"AlawDecode(0xD5)", int(AlawDecode(0xD5)), 8},
		{"AlawDecode(0xAA)", int(AlawDecode(0xAA)), 32256},
		{"AlawDecode(0x2A)", int(AlawDecode(0x2A)), -32256},
		{"AlawDecode(0xFA)", int(AlawDecode(0xFA)), 1008},
		{"MulawSilence", MulawSilence, int(MulawEncode(0))},
		{"decode(MulawSilence)", int(MulawDecode(MulawSilence)), 0},
		{"AlawSilence", AlawSilence, int(AlawEncode(0))},
		{"decode(AlawSilence)", int(AlawDecode(AlawSilence)), 8},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %#x (%d), want %#x (%d)", tt.name, tt.got, tt.got, tt.want, tt.want)
		}
	}
}

// TestMatchesReference checks every possible input against the Sun g711.c
// port in reference_test.go.
func TestMatchesReference(t *testing.T) {
	for i := math.MinInt16; i <= math.MaxInt16; i++ {
		s := int16(i)
		if got, want := MulawEncode(s), refLinear2Ulaw(i); got != want {
			t.Fatalf("MulawEncode(%d) = %#02x, reference %#02x", s, got, want)
		}
		if got, want := AlawEncode(s), refLinear2Alaw(i); got != want {
			t.Fatalf("AlawEncode(%d) = %#02x, reference %#02x", s, got, want)
		}
	}
	for i := 0; i < 256; i++ {
		b := byte(i)
		if got, want := int(MulawDecode(b)), refUlaw2Linear(b); got != want {
			t.Fatalf("MulawDecode(%#02x) = %d, reference %d", b, got, want)
		}
		if got, want := int(AlawDecode(b)), refAlaw2Linear(b); got != want {
			t.Fatalf("AlawDecode(%#02x) = %d, reference %d", b, got, want)
		}
	}
}

type law struct {
	name   string
	enc    func(int16) byte
	dec    func(byte) int16
	encBuf func([]byte, []int16) int
	decBuf func([]int16, []byte) int
	// step returns the quantisation step (in 16-bit units) of a code word.
	step func(byte) int
}

var laws = []law{
	{
		name: "mulaw", enc: MulawEncode, dec: MulawDecode,
		encBuf: EncodeMulaw, decBuf: DecodeMulaw,
		step: func(b byte) int { return 8 << ((^b & 0x70) >> 4) },
	},
	{
		name: "alaw", enc: AlawEncode, dec: AlawDecode,
		encBuf: EncodeAlaw, decBuf: DecodeAlaw,
		step: func(b byte) int {
			seg := int((b^0x55)&0x70) >> 4
			return 16 << max(seg-1, 0)
		},
	},
}

// TestCodeRoundTrip: decoding a code word and encoding the result must give
// the same code word back. The only exception is µ-law "negative zero" 0x7F,
// which decodes to 0 and therefore re-encodes as 0xFF.
func TestCodeRoundTrip(t *testing.T) {
	for _, l := range laws {
		for i := 0; i < 256; i++ {
			b := byte(i)
			want := b
			if l.name == "mulaw" && b == 0x7F {
				want = 0xFF
			}
			if got := l.enc(l.dec(b)); got != want {
				t.Errorf("%s: enc(dec(%#02x)=%d) = %#02x, want %#02x", l.name, b, l.dec(b), got, want)
			}
		}
	}
}

// TestQuantisationError bounds |dec(enc(s)) - s| for every input: at most half
// a quantisation step, plus up to 3 for µ-law negatives (the reference rounds
// their 14-bit magnitude up, see the package doc), except beyond the largest
// code word where the value is clipped to the extreme level.
func TestQuantisationError(t *testing.T) {
	for _, l := range laws {
		maxCode := l.dec(l.enc(math.MaxInt16)) // largest reconstruction level
		minCode := l.dec(l.enc(math.MinInt16))
		worst := 0
		for i := math.MinInt16; i <= math.MaxInt16; i++ {
			s := int16(i)
			b := l.enc(s)
			d := int(l.dec(b))
			err := d - i
			if err < 0 {
				err = -err
			}
			bound := l.step(b) / 2
			if l.name == "mulaw" && i < 0 {
				bound += 3
			}
			if i > int(maxCode) || i < int(minCode) {
				// Clipping region: the nearest level is the extreme one.
				if d != int(maxCode) && d != int(minCode) {
					t.Fatalf("%s: %d decoded to %d, want clipped to %d/%d", l.name, i, d, minCode, maxCode)
				}
				continue
			}
			if err > bound {
				t.Fatalf("%s: sample %d -> %#02x -> %d: error %d > bound %d", l.name, i, b, d, err, bound)
			}
			worst = max(worst, err)
		}
		t.Logf("%s: worst in-range error %d", l.name, worst)
	}
}

// TestMonotonic: the reconstructed value must be non-decreasing in the input.
func TestMonotonic(t *testing.T) {
	for _, l := range laws {
		prev := l.dec(l.enc(math.MinInt16))
		for i := math.MinInt16 + 1; i <= math.MaxInt16; i++ {
			d := l.dec(l.enc(int16(i)))
			if d < prev {
				t.Fatalf("%s: dec(enc(%d)) = %d < dec(enc(%d)) = %d", l.name, i, d, i-1, prev)
			}
			prev = d
		}
	}
}

// TestSymmetry: the decode tables are odd-symmetric (sign bit flips the sign)
// and the A-law encoder is exactly sign-symmetric under one's complement.
func TestSymmetry(t *testing.T) {
	for _, l := range laws {
		for i := 0; i < 256; i++ {
			b := byte(i)
			if l.dec(b^0x80) != -l.dec(b) {
				t.Errorf("%s: dec(%#02x) = %d, dec(%#02x) = %d; want negatives", l.name, b, l.dec(b), b^0x80, l.dec(b^0x80))
			}
		}
	}
	for i := math.MinInt16; i <= math.MaxInt16; i++ {
		s := int16(i)
		if AlawEncode(^s) != AlawEncode(s)^0x80 {
			t.Fatalf("AlawEncode(%d) = %#02x, AlawEncode(%d) = %#02x: not mirrored", s, AlawEncode(s), ^s, AlawEncode(^s))
		}
	}
}

func sine(n int, freq, amp, phase float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(i)/8000+phase)))
	}
	return out
}

func snrDB(ref, got []int16) float64 {
	var sig, noise float64
	for i := range ref {
		r := float64(ref[i])
		e := float64(got[i]) - r
		sig += r * r
		noise += e * e
	}
	return 10 * math.Log10(sig/noise)
}

func TestSineSNR(t *testing.T) {
	tests := []struct {
		freq   float64
		dBFS   float64
		minSNR float64
	}{
		{1000, -3, 35},
		{1000, -10, 35},
		{1000, -20, 35},
		{1004, -3, 35},
		{1004, -10, 35},
		{1004, -20, 35},
		{1004, -30, 30},
	}
	for _, l := range laws {
		for _, tt := range tests {
			amp := 32767 * math.Pow(10, tt.dBFS/20)
			in := sine(8000, tt.freq, amp, 0.3)
			enc := make([]byte, len(in))
			out := make([]int16, len(in))
			if n := l.encBuf(enc, in); n != len(in) {
				t.Fatalf("encode returned %d", n)
			}
			if n := l.decBuf(out, enc); n != len(in) {
				t.Fatalf("decode returned %d", n)
			}
			snr := snrDB(in, out)
			t.Logf("%s %g Hz %g dBFS: SNR %.2f dB", l.name, tt.freq, tt.dBFS, snr)
			if snr < tt.minSNR {
				t.Errorf("%s %g Hz at %g dBFS: SNR %.2f dB < %g dB", l.name, tt.freq, tt.dBFS, snr, tt.minSNR)
			}
		}
	}
}

func TestBufferForms(t *testing.T) {
	pcm := []int16{0, 1, -1, 100, -100, 1000, -1000, 32767, -32768, 12345}
	codes := []byte{0x00, 0x7F, 0x80, 0xFF, 0x55, 0xD5, 0x12, 0xAB, 0xCD, 0xEF}
	for _, l := range laws {
		for _, tc := range []struct{ dst, src, want int }{
			{10, 10, 10}, {4, 10, 4}, {10, 4, 4}, {0, 10, 0}, {10, 0, 0},
		} {
			enc := make([]byte, tc.dst+1)
			for i := range enc {
				enc[i] = 0x3C
			}
			if n := l.encBuf(enc[:tc.dst], pcm[:tc.src]); n != tc.want {
				t.Errorf("%s encode dst=%d src=%d: n=%d want %d", l.name, tc.dst, tc.src, n, tc.want)
			}
			for i := range enc {
				want := byte(0x3C)
				if i < tc.want {
					want = l.enc(pcm[i])
				}
				if enc[i] != want {
					t.Errorf("%s encode dst=%d src=%d: enc[%d]=%#02x want %#02x", l.name, tc.dst, tc.src, i, enc[i], want)
				}
			}

			dec := make([]int16, tc.dst+1)
			for i := range dec {
				dec[i] = 777
			}
			if n := l.decBuf(dec[:tc.dst], codes[:tc.src]); n != tc.want {
				t.Errorf("%s decode dst=%d src=%d: n=%d want %d", l.name, tc.dst, tc.src, n, tc.want)
			}
			for i := range dec {
				want := int16(777)
				if i < tc.want {
					want = l.dec(codes[i])
				}
				if dec[i] != want {
					t.Errorf("%s decode dst=%d src=%d: dec[%d]=%d want %d", l.name, tc.dst, tc.src, i, dec[i], want)
				}
			}
		}
		if n := l.encBuf(nil, nil); n != 0 {
			t.Errorf("%s: encode(nil,nil) = %d", l.name, n)
		}
		if n := l.decBuf(nil, nil); n != 0 {
			t.Errorf("%s: decode(nil,nil) = %d", l.name, n)
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	pcm := make([]int16, 160)
	pay := make([]byte, 160)
	for _, l := range laws {
		if a := testing.AllocsPerRun(100, func() {
			l.encBuf(pay, pcm)
			l.decBuf(pcm, pay)
		}); a != 0 {
			t.Errorf("%s: %v allocs per run, want 0", l.name, a)
		}
	}
}

// FuzzDecode treats the input as a G.711 payload of either law: decoding must
// match the reference and re-encoding must reproduce the payload (apart from
// µ-law negative zero).
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x00, 0x7F, 0x80, 0xFF})
	f.Add([]byte{0x55, 0xD5, 0x2A, 0xAA})
	f.Add([]byte{})
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7E, 0xD5, 0xD5, 0xD5, 0xD5, 0xD5, 0x55, 0xD5, 0xD5, 0x00})
	f.Fuzz(func(t *testing.T, payload []byte) {
		pcm := make([]int16, len(payload))
		back := make([]byte, len(payload))
		for _, l := range laws {
			if n := l.decBuf(pcm, payload); n != len(payload) {
				t.Fatalf("%s decode n=%d want %d", l.name, n, len(payload))
			}
			if n := l.encBuf(back, pcm); n != len(payload) {
				t.Fatalf("%s encode n=%d want %d", l.name, n, len(payload))
			}
			for i, b := range payload {
				var ref int
				if l.name == "mulaw" {
					ref = refUlaw2Linear(b)
				} else {
					ref = refAlaw2Linear(b)
				}
				if int(pcm[i]) != ref {
					t.Fatalf("%s: dec(%#02x) = %d, reference %d", l.name, b, pcm[i], ref)
				}
				want := b
				if l.name == "mulaw" && b == 0x7F {
					want = 0xFF
				}
				if back[i] != want {
					t.Fatalf("%s: %#02x -> %d -> %#02x", l.name, b, pcm[i], back[i])
				}
			}
			// The recorded packet's decode (word stores where the port
			// has them) writes the same samples, at an odd offset too,
			// and says sound exactly when one is not zero.
			for _, off := range []int{0, 1} {
				buf := make([]int16, off+len(payload)+1)
				buf[off+len(payload)] = 0x5A5A
				sound := DecodeG711Sound(buf[off:], payload, l.name == "alaw")
				if !slices.Equal(buf[off:off+len(payload)], pcm) || buf[off+len(payload)] != 0x5A5A {
					t.Fatalf("%s at offset %d: DecodeG711Sound differs from the scalar decode or wrote past the end", l.name, off)
				}
				if want := slices.ContainsFunc(pcm, func(v int16) bool { return v != 0 }); sound != want {
					t.Fatalf("%s: sound %v, want %v", l.name, sound, want)
				}
			}
		}
	})
}

// FuzzEncode treats the input as little-endian 16-bit PCM: encoding must match
// the reference and the reconstruction must stay monotonic with the input.
func FuzzEncode(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x80})
	f.Fuzz(func(t *testing.T, raw []byte) {
		pcm := make([]int16, len(raw)/2)
		for i := range pcm {
			pcm[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
		}
		out := make([]byte, len(pcm))
		for _, l := range laws {
			if n := l.encBuf(out, pcm); n != len(pcm) {
				t.Fatalf("%s encode n=%d want %d", l.name, n, len(pcm))
			}
			for i, s := range pcm {
				var ref byte
				if l.name == "mulaw" {
					ref = refLinear2Ulaw(int(s))
				} else {
					ref = refLinear2Alaw(int(s))
				}
				if out[i] != ref {
					t.Fatalf("%s: enc(%d) = %#02x, reference %#02x", l.name, s, out[i], ref)
				}
				if i > 0 {
					a, b := pcm[i-1], s
					da, db := l.dec(out[i-1]), l.dec(out[i])
					if (a < b && da > db) || (a > b && da < db) {
						t.Fatalf("%s: not monotonic: %d->%d, %d->%d", l.name, a, da, b, db)
					}
				}
			}
		}
	})
}

var sinkByte byte
var sinkInt16 int16

func BenchmarkMulawEncode(b *testing.B) {
	b.ReportAllocs()
	var s int16
	for b.Loop() {
		sinkByte = MulawEncode(s)
		s += 97
	}
}

func BenchmarkMulawDecode(b *testing.B) {
	b.ReportAllocs()
	var c byte
	for b.Loop() {
		sinkInt16 = MulawDecode(c)
		c += 7
	}
}

func BenchmarkAlawEncode(b *testing.B) {
	b.ReportAllocs()
	var s int16
	for b.Loop() {
		sinkByte = AlawEncode(s)
		s += 97
	}
}

func BenchmarkAlawDecode(b *testing.B) {
	b.ReportAllocs()
	var c byte
	for b.Loop() {
		sinkInt16 = AlawDecode(c)
		c += 7
	}
}

// Buffer benchmarks use one 20 ms frame at 8 kHz (160 samples).
func benchFrame(b *testing.B, encode bool, l law) {
	pcm := sine(160, 1004, 10000, 0)
	pay := make([]byte, 160)
	l.encBuf(pay, pcm)
	b.SetBytes(160)
	b.ReportAllocs()
	for b.Loop() {
		if encode {
			l.encBuf(pay, pcm)
		} else {
			l.decBuf(pcm, pay)
		}
	}
}

func BenchmarkEncodeMulawFrame(b *testing.B) { benchFrame(b, true, laws[0]) }
func BenchmarkDecodeMulawFrame(b *testing.B) { benchFrame(b, false, laws[0]) }
func BenchmarkEncodeAlawFrame(b *testing.B)  { benchFrame(b, true, laws[1]) }
func BenchmarkDecodeAlawFrame(b *testing.B)  { benchFrame(b, false, laws[1]) }

// The frame encoders (table lookups) agree with the per-sample ones for
// every 16-bit input.
func TestFrameEncodersExhaustive(t *testing.T) {
	src := make([]int16, 1<<16)
	for i := range src {
		src[i] = int16(uint16(i))
	}
	mu, a := make([]byte, len(src)), make([]byte, len(src))
	EncodeMulaw(mu, src)
	EncodeAlaw(a, src)
	for i, s := range src {
		if mu[i] != MulawEncode(s) {
			t.Fatalf("EncodeMulaw(%d) = %#x, MulawEncode %#x", s, mu[i], MulawEncode(s))
		}
		if a[i] != AlawEncode(s) {
			t.Fatalf("EncodeAlaw(%d) = %#x, AlawEncode %#x", s, a[i], AlawEncode(s))
		}
	}
}

// DecodeG711Sound decodes as DecodeMulaw and DecodeAlaw do and finds a
// frame that is all silence (µ-law's two zero codes) in the same pass.
func TestDecodeG711Sound(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, alaw := range []bool{false, true} {
		got, want := make([]int16, 256), make([]int16, 256)
		if alaw {
			DecodeAlaw(want, all)
		} else {
			DecodeMulaw(want, all)
		}
		if !DecodeG711Sound(got, all, alaw) {
			t.Fatalf("alaw %v: a frame with sound reported silent", alaw)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("alaw %v: code %#x decoded to %d, want %d", alaw, i, got[i], want[i])
			}
		}
	}
	silent := []byte{0xFF, 0x7F, 0xFF}
	if DecodeG711Sound(make([]int16, 3), silent, false) {
		t.Fatal("µ-law silence reported as sound")
	}
	if !DecodeG711Sound(make([]int16, 3), []byte{0xFF, 0xFE, 0xFF}, false) {
		t.Fatal("one sample of sound missed")
	}
	if !DecodeG711Sound(make([]int16, 2), []byte{0xD5, 0x55}, true) {
		t.Fatal("A-law's quietest codes (not zero) reported silent")
	}
	// Every length around the four-sample stores, at an odd sample offset
	// in dst, with one sample of sound at each position or none: the
	// samples, the answer and what lies past len(src) in dst.
	for n := 0; n <= 35; n++ {
		for at := -1; at < n; at++ {
			src := bytes.Repeat([]byte{MulawSilence}, n)
			if at >= 0 {
				src[at] = byte(0x80 + at)
			}
			want := make([]int16, n)
			DecodeMulaw(want, src)
			buf := make([]int16, n+3)
			for i := range buf {
				buf[i] = 0x5A5A
			}
			if got := DecodeG711Sound(buf[1:], src, false); got != (at >= 0) {
				t.Fatalf("n %d, sound at %d: reported %v", n, at, got)
			}
			if buf[0] != 0x5A5A || buf[n+1] != 0x5A5A || buf[n+2] != 0x5A5A {
				t.Fatalf("n %d: wrote outside dst[:%d]: %v", n, n, buf)
			}
			for i := range want {
				if buf[1+i] != want[i] {
					t.Fatalf("n %d, sound at %d: sample %d is %d, want %d", n, at, i, buf[1+i], want[i])
				}
			}
		}
	}
}
