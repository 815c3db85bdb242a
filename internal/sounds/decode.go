package sounds

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/tapedeck/tapedeck/internal/codec"
)

// MaxFileSize is the largest sound file or download (in bytes) that is
// decoded; larger ones fail with ErrTooLarge (a decoded clip takes up to 2
// bytes per 8 kHz sample in memory: 50 MB of μ-law is ~1.7 h, 100 MB).
const MaxFileSize = 50 << 20

// OutputRate is the sample rate of every decoded clip.
const OutputRate = 8000

type kind int

const (
	kindWAV  kind = iota // RIFF/WAVE, format read from its header
	kindSlin             // raw signed 16-bit little-endian mono
	kindUlaw             // raw G.711 μ-law
	kindAlaw             // raw G.711 A-law
	kindL16              // raw signed 16-bit big-endian (audio/L16, RFC 2586)
)

type format struct {
	name     string // Asterisk format name reported in FormatLang
	kind     kind
	rate     int // sample rate of raw formats
	channels int // channels of raw formats (1 unless audio/L16)
}

// Extensions as Asterisk's format modules register them.
var extFormats = map[string]format{
	"wav":    {"wav", kindWAV, 8000, 1},
	"wav16":  {"wav16", kindWAV, 16000, 1},
	"sln":    {"slin", kindSlin, 8000, 1},
	"raw":    {"slin", kindSlin, 8000, 1},
	"sln12":  {"slin12", kindSlin, 12000, 1},
	"sln16":  {"slin16", kindSlin, 16000, 1},
	"sln24":  {"slin24", kindSlin, 24000, 1},
	"sln32":  {"slin32", kindSlin, 32000, 1},
	"sln44":  {"slin44", kindSlin, 44100, 1},
	"sln48":  {"slin48", kindSlin, 48000, 1},
	"sln96":  {"slin96", kindSlin, 96000, 1},
	"sln192": {"slin192", kindSlin, 192000, 1},
	"ulaw":   {"ulaw", kindUlaw, 8000, 1},
	"ul":     {"ulaw", kindUlaw, 8000, 1},
	"mu":     {"ulaw", kindUlaw, 8000, 1},
	"ulw":    {"ulaw", kindUlaw, 8000, 1},
	"pcm":    {"ulaw", kindUlaw, 8000, 1},
	"alaw":   {"alaw", kindAlaw, 8000, 1},
	"al":     {"alaw", kindAlaw, 8000, 1},
	"alw":    {"alaw", kindAlaw, 8000, 1},
}

// formatOrder: preference of Open among formats of the same language:
// lossless 8 kHz first (no resampling), then higher-rate PCM, then G.711.
var formatOrder = []string{"wav", "slin", "wav16", "slin16", "slin12", "slin24", "slin32",
	"slin44", "slin48", "slin96", "slin192", "ulaw", "alaw"}

func formatByExt(ext string) (format, bool) {
	f, ok := extFormats[ext]
	return f, ok
}

func formatRank(name string) int {
	for i, n := range formatOrder {
		if n == name {
			return i
		}
	}
	return len(formatOrder)
}

// formatMatches reports whether a file of format name matches a List filter
// given as a format name ("slin16") or an extension ("sln16", "pcm").
func formatMatches(name, query string) bool {
	if strings.EqualFold(name, query) {
		return true
	}
	f, ok := formatByExt(strings.ToLower(query))
	return ok && f.name == name
}

// DecodeFile decodes a sound file, its format chosen by its extension, into
// an 8 kHz mono clip. Files over MaxFileSize fail with ErrTooLarge.
func DecodeFile(path string) (*Clip, error) {
	ext := strings.TrimPrefix(filepath.Ext(path), ".")
	f, ok := formatByExt(ext)
	if !ok {
		return nil, fmt.Errorf("%w: %s: unknown extension %q", ErrUnsupported, path, ext)
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	if fi, err := fh.Stat(); err == nil && fi.Size() > MaxFileSize {
		return nil, fmt.Errorf("%w: %s: %d bytes (limit %d)", ErrTooLarge, path, fi.Size(), MaxFileSize)
	}
	c, err := decodeReader(fh, f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Decode decodes media of the format given by a file extension (with or
// without the dot: "wav", ".sln16", "ulaw"...; "" = RIFF/WAVE detected from
// the content) into an 8 kHz mono clip. At most MaxFileSize bytes are read;
// more fail with ErrTooLarge.
func Decode(r io.Reader, ext string) (*Clip, error) {
	ext = strings.ToLower(strings.TrimPrefix(ext, "."))
	if ext == "" {
		ext = "wav"
	}
	f, ok := formatByExt(ext)
	if !ok {
		return nil, fmt.Errorf("%w: unknown extension %q", ErrUnsupported, ext)
	}
	return decodeReader(r, f)
}

func decodeReader(r io.Reader, f format) (*Clip, error) {
	b, err := readLimited(r, MaxFileSize)
	if err != nil {
		return nil, err
	}
	return decodeBytes(b, f)
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: over %d bytes", ErrTooLarge, limit)
	}
	return b, nil
}

func decodeBytes(b []byte, f format) (*Clip, error) {
	switch f.kind {
	case kindWAV:
		return decodeWAV(b)
	case kindSlin, kindL16:
		var order binary.ByteOrder = binary.LittleEndian
		if f.kind == kindL16 {
			order = binary.BigEndian
		}
		ch := max(f.channels, 1)
		if f.rate == OutputRate && ch == 1 {
			pcm := make([]int16, len(b)/2)
			for i := range pcm {
				pcm[i] = int16(order.Uint16(b[2*i:]))
			}
			return NewClip(pcm), nil
		}
		n := len(b) / (2 * ch)
		mono := make([]float32, n)
		for i := range mono {
			var s float32
			for c := 0; c < ch; c++ {
				s += float32(int16(order.Uint16(b[2*(i*ch+c):])))
			}
			mono[i] = s / float32(ch)
		}
		return NewClip(toRate8k(mono, f.rate)), nil
	case kindUlaw:
		pcm := make([]int16, len(b))
		codec.DecodeMulaw(pcm, b)
		return NewClip(pcm), nil
	case kindAlaw:
		pcm := make([]int16, len(b))
		codec.DecodeAlaw(pcm, b)
		return NewClip(pcm), nil
	}
	return nil, ErrUnsupported
}

// WAVE format tags.
const (
	wavPCM        = 0x0001
	wavFloat      = 0x0003
	wavAlaw       = 0x0006
	wavMulaw      = 0x0007
	wavGSM        = 0x0031
	wavExtensible = 0xFFFE
)

var errNotWAV = errors.New("sounds: not a RIFF/WAVE file")

type wavFormat struct {
	tag        uint16
	channels   int
	rate       int
	blockAlign int
	bits       int
}

// parseWAV walks the RIFF chunks up to "data". The declared sizes need not
// match the file (a truncated or streamed file still decodes what is there).
func parseWAV(b []byte) (wavFormat, []byte, error) {
	var wf wavFormat
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return wf, nil, errNotWAV
	}
	haveFmt := false
	off := int64(12)
	for i := 0; i < 1000 && off+8 <= int64(len(b)); i++ {
		id := string(b[off : off+4])
		n := int64(binary.LittleEndian.Uint32(b[off+4:]))
		start := off + 8
		end := min(start+n, int64(len(b)))
		body := b[start:end]
		switch id {
		case "fmt ":
			if len(body) < 16 {
				return wf, nil, fmt.Errorf("%w: short fmt chunk", errNotWAV)
			}
			wf.tag = binary.LittleEndian.Uint16(body[0:])
			wf.channels = int(binary.LittleEndian.Uint16(body[2:]))
			wf.rate = int(binary.LittleEndian.Uint32(body[4:]))
			wf.blockAlign = int(binary.LittleEndian.Uint16(body[12:]))
			wf.bits = int(binary.LittleEndian.Uint16(body[14:]))
			if wf.tag == wavExtensible {
				if len(body) < 40 {
					return wf, nil, fmt.Errorf("%w: short WAVE_FORMAT_EXTENSIBLE fmt chunk", errNotWAV)
				}
				wf.tag = binary.LittleEndian.Uint16(body[24:]) // SubFormat GUID's first 2 bytes
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return wf, nil, fmt.Errorf("%w: data chunk before fmt", errNotWAV)
			}
			return wf, body, nil
		}
		off = start + n + n&1
	}
	return wf, nil, fmt.Errorf("%w: no data chunk", errNotWAV)
}

func decodeWAV(b []byte) (*Clip, error) {
	wf, data, err := parseWAV(b)
	if err != nil {
		return nil, err
	}
	if wf.channels < 1 || wf.channels > 16 {
		return nil, fmt.Errorf("%w: WAV with %d channels", ErrUnsupported, wf.channels)
	}
	if wf.rate < 1000 || wf.rate > 384000 {
		return nil, fmt.Errorf("%w: WAV sample rate %d", ErrUnsupported, wf.rate)
	}
	var bps int // bytes per sample in the file
	switch {
	case wf.tag == wavPCM && wf.bits >= 1 && wf.bits <= 32:
		bps = (wf.bits + 7) / 8
	case wf.tag == wavFloat && (wf.bits == 32 || wf.bits == 64):
		bps = wf.bits / 8
	case (wf.tag == wavAlaw || wf.tag == wavMulaw) && wf.bits == 8:
		bps = 1
	case wf.tag == wavGSM:
		return nil, fmt.Errorf("%w: WAV with GSM 06.10 audio (format 0x31, Asterisk's wav49/.WAV) is not supported", ErrUnsupported)
	default:
		return nil, fmt.Errorf("%w: WAV format tag 0x%04x with %d bits", ErrUnsupported, wf.tag, wf.bits)
	}
	ch := wf.channels
	stride := ch * bps
	if wf.blockAlign > stride {
		stride = wf.blockAlign
	}
	n := len(data) / stride

	// Fast paths: the common telephony encodings need no conversion.
	if ch == 1 && wf.rate == OutputRate {
		switch {
		case wf.tag == wavPCM && bps == 2 && stride == 2:
			pcm := make([]int16, n)
			for i := range pcm {
				pcm[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
			}
			return NewClip(pcm), nil
		case wf.tag == wavMulaw && stride == 1:
			pcm := make([]int16, n)
			codec.DecodeMulaw(pcm, data[:n])
			return NewClip(pcm), nil
		case wf.tag == wavAlaw && stride == 1:
			pcm := make([]int16, n)
			codec.DecodeAlaw(pcm, data[:n])
			return NewClip(pcm), nil
		}
	}

	// General path: every sample to float32 on the 16-bit scale, channels
	// averaged, then resampled to 8 kHz.
	sample := sampleReader(wf.tag, bps)
	mono := make([]float32, n)
	inv := 1 / float32(ch)
	for i := range mono {
		fr := data[i*stride:]
		var s float32
		for c := 0; c < ch; c++ {
			s += sample(fr[c*bps:])
		}
		mono[i] = s * inv
	}
	return NewClip(toRate8k(mono, wf.rate)), nil
}

// sampleReader returns a function reading one sample as float32 on the
// int16 scale (±32768).
func sampleReader(tag uint16, bps int) func([]byte) float32 {
	switch tag {
	case wavFloat:
		if bps == 8 {
			return func(b []byte) float32 {
				return float32(math.Float64frombits(binary.LittleEndian.Uint64(b)) * 32768)
			}
		}
		return func(b []byte) float32 {
			return math.Float32frombits(binary.LittleEndian.Uint32(b)) * 32768
		}
	case wavMulaw:
		return func(b []byte) float32 { return float32(codec.MulawDecode(b[0])) }
	case wavAlaw:
		return func(b []byte) float32 { return float32(codec.AlawDecode(b[0])) }
	}
	switch bps { // PCM; samples are left-justified in their container
	case 1:
		return func(b []byte) float32 { return (float32(b[0]) - 128) * 256 }
	case 2:
		return func(b []byte) float32 { return float32(int16(binary.LittleEndian.Uint16(b))) }
	case 3:
		return func(b []byte) float32 {
			v := int32(uint32(b[0])<<8 | uint32(b[1])<<16 | uint32(b[2])<<24)
			return float32(v) / 65536
		}
	default:
		return func(b []byte) float32 { return float32(int32(binary.LittleEndian.Uint32(b))) / 65536 }
	}
}

// toRate8k converts mono float samples at rate to 8 kHz int16.
func toRate8k(x []float32, rate int) []int16 {
	if rate != OutputRate {
		return resample(x, rate, OutputRate)
	}
	out := make([]int16, len(x))
	for i, v := range x {
		out[i] = clip16(v)
	}
	return out
}

func clip16(v float32) int16 {
	if v >= 32767 {
		return 32767
	}
	if v <= -32768 {
		return -32768
	}
	return int16(math.Round(float64(v)))
}
