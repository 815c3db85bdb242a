// Package codec implements the ITU-T G.711 companding laws (µ-law, used by the
// RTP payload format PCMU, and A-law, used by PCMA) between 16-bit signed
// linear PCM and 8-bit code words, plus a tiny descriptor registry for the two
// static RTP payload types.
//
// All functions are pure, allocation-free and safe for concurrent use.
// Decoding is a 256-entry table lookup. Encoding one sample computes the
// segment with a single bit-length instruction instead of the 8-step search
// of the reference code; the frame encoders (EncodeMulaw, EncodeAlaw) look
// the code word up in a table built from it (16 KiB for µ-law, 8 KiB for
// A-law), which avoids a sign branch that real audio mispredicts half the
// time.
//
// The results are bit-exact with the classic Sun Microsystems g711.c (as
// revised in 1994 to handle unquantised 16-bit input, the version found in
// sox, pjmedia and many others). g711_test.go checks this for all 65536
// inputs. Two details of that reference worth knowing:
//
//   - µ-law: the 16-bit input is first scaled to 14 bits with an arithmetic
//     shift and negative values are negated afterwards, so negative inputs
//     round slightly away from zero (e.g. -1 encodes to 0x7E, which decodes
//     to -8). The decoded value is always within one quantisation step of the
//     input. The ITU-T G.191 software uses a one's-complement convention
//     instead and may give the neighbouring code word for some negative
//     inputs; both are valid G.711 encoders and decode identically.
//   - A-law: input is scaled to 13 bits and negative values use the one's
//     complement, which makes the encoder exactly sign-symmetric:
//     AlawEncode(^s) == AlawEncode(s) ^ 0x80 for every s.
package codec

import (
	"math/bits"
	"runtime"
	"unsafe"
)

const (
	// MulawSilence is the µ-law code word for a linear value of 0.
	MulawSilence = 0xFF
	// AlawSilence is the A-law code word for the smallest positive level
	// (linear +8), the conventional A-law idle pattern.
	AlawSilence = 0xD5
)

const (
	// mulawClip is the largest 14-bit magnitude that still has its own code
	// word. The reference clips at 8159, but 8159+33 = 8192 falls outside
	// segment 7 and takes the reference's "out of range" path, which yields
	// the same code word as 8158; clipping one lower removes that branch.
	mulawClip = 8158
	// mulawBias is the µ-law bias (0x84 in 16-bit units) in 14-bit units.
	mulawBias = 0x84 >> 2
)

// MulawEncode compresses one 16-bit linear sample to a µ-law code word.
func MulawEncode(s int16) byte {
	v := int32(s) >> 2 // 14-bit signed
	mask := byte(0xFF)
	if v < 0 {
		v = -v
		mask = 0x7F
	}
	v = min(v, mulawClip) + mulawBias // 33..8191
	// Segment seg covers [64<<seg - 64 ... 64<<seg - 1] after biasing, so it
	// is the bit length of v/64.
	seg := bits.Len32(uint32(v) >> 6) // 0..7
	return (byte(seg)<<4 | byte(v>>(seg+1))&0x0F) ^ mask
}

// MulawDecode expands one µ-law code word to a 16-bit linear sample.
func MulawDecode(b byte) int16 {
	return mulawToLinear[b]
}

// AlawEncode compresses one 16-bit linear sample to an A-law code word (with
// the even bits inverted, as transmitted).
func AlawEncode(s int16) byte {
	v := int32(s) >> 3 // 13-bit signed
	mask := byte(0xD5)
	if v < 0 {
		v = ^v // -v-1: one's complement magnitude, 0..4095
		mask = 0x55
	}
	// Segment seg covers magnitudes up to 32<<seg - 1, so it is the bit length
	// of v/32. Segments 0 and 1 share the same step size.
	seg := bits.Len32(uint32(v) >> 5) // 0..7
	shift := max(seg, 1)
	return (byte(seg)<<4 | byte(v>>shift)&0x0F) ^ mask
}

// AlawDecode expands one A-law code word (as transmitted) to a 16-bit linear
// sample.
func AlawDecode(b byte) int16 {
	return alawToLinear[b]
}

// DecodeG711Sound is DecodeMulaw (DecodeAlaw when alaw) of len(src) code
// words into dst (at least as long), reporting whether any decoded sample
// is not zero: a frame that is all silence is found in the same pass.
//
// It is the recorded packet's decode, straight into its recording's queue
// (memory the poller has not touched for a second): on little-endian
// machines it stores four samples at a time, so a 160-sample frame takes 40
// stores where it took 160, and the store buffer no longer fills while the
// queue's lines are fetched (amd64 and arm64; elsewhere a sample a store).
func DecodeG711Sound(dst []int16, src []byte, alaw bool) (sound bool) {
	tbl := &mulawToLinear
	if alaw {
		tbl = &alawToLinear
	}
	dst = dst[:len(src)]
	var or uint64
	i := 0
	if wordStores {
		for ; len(src)-i >= 8; i += 8 {
			s := (*[8]byte)(src[i:])
			d := (*[8]int16)(dst[i:])
			w0 := uint64(uint16(tbl[s[0]])) | uint64(uint16(tbl[s[1]]))<<16 |
				uint64(uint16(tbl[s[2]]))<<32 | uint64(uint16(tbl[s[3]]))<<48
			w1 := uint64(uint16(tbl[s[4]])) | uint64(uint16(tbl[s[5]]))<<16 |
				uint64(uint16(tbl[s[6]]))<<32 | uint64(uint16(tbl[s[7]]))<<48
			// d is 16 bytes of dst, whose address may be only 2-aligned:
			// both ports store a uint64 anywhere.
			w := (*[2]uint64)(unsafe.Pointer(d))
			w[0], w[1] = w0, w1
			or |= w0 | w1
		}
	}
	for ; i < len(src); i++ {
		v := tbl[src[i]]
		dst[i] = v
		or |= uint64(uint16(v))
	}
	return or != 0
}

// wordStores: the port is little-endian (four int16 samples lie in a uint64
// as DecodeG711Sound packs them) and stores a uint64 at any address.
const wordStores = runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64"

// DecodeMulaw expands the µ-law code words in src into dst and returns the
// number of samples written, min(len(dst), len(src)). Elements of dst beyond
// that count are left untouched.
func DecodeMulaw(dst []int16, src []byte) int {
	n := min(len(dst), len(src))
	src = src[:n]
	dst = dst[:len(src)]
	for i, b := range src {
		dst[i] = mulawToLinear[b]
	}
	return n
}

// EncodeMulaw compresses the linear samples in src into µ-law code words in
// dst and returns the number of samples encoded, min(len(dst), len(src)).
// Elements of dst beyond that count are left untouched.
func EncodeMulaw(dst []byte, src []int16) int {
	n := min(len(dst), len(src))
	src = src[:n]
	dst = dst[:len(src)]
	for i, s := range src {
		dst[i] = mulawEncTab[uint16(s)>>2]
	}
	return n
}

// DecodeAlaw expands the A-law code words in src into dst and returns the
// number of samples written, min(len(dst), len(src)). Elements of dst beyond
// that count are left untouched.
func DecodeAlaw(dst []int16, src []byte) int {
	n := min(len(dst), len(src))
	src = src[:n]
	dst = dst[:len(src)]
	for i, b := range src {
		dst[i] = alawToLinear[b]
	}
	return n
}

// EncodeAlaw compresses the linear samples in src into A-law code words in dst
// and returns the number of samples encoded, min(len(dst), len(src)).
// Elements of dst beyond that count are left untouched.
func EncodeAlaw(dst []byte, src []int16) int {
	n := min(len(dst), len(src))
	src = src[:n]
	dst = dst[:len(src)]
	for i, s := range src {
		dst[i] = alawEncTab[uint16(s)>>3]
	}
	return n
}

// The encoders depend only on the top 14 (µ-law) or 13 (A-law) bits of the
// sample: the tables are indexed by them.
var mulawEncTab, alawEncTab = func() (mu *[1 << 14]byte, a *[1 << 13]byte) {
	mu, a = new([1 << 14]byte), new([1 << 13]byte)
	for i := range mu {
		mu[i] = MulawEncode(int16(uint16(i) << 2))
	}
	for i := range a {
		a[i] = AlawEncode(int16(uint16(i) << 3))
	}
	return mu, a
}()
