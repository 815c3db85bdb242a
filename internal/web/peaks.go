package web

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Peaks is a recording's waveform: the loudest sample of each of len(Peaks)
// equal slices of the audio, scaled to 0..255.
type Peaks struct {
	Duration float64 `json:"duration"` // seconds
	Rate     int     `json:"rate"`
	Peaks    []int   `json:"peaks"` // 0..255 (not []uint8: JSON would make it base64)
}

// ErrNoWaveform is returned for formats whose samples Peaks cannot read
// (compressed ones: mp3, ogg, flac, g722).
var ErrNoWaveform = errors.New("no waveform for this format")

// PeakBuckets is how many peaks a waveform has.
const PeakBuckets = 1000

// ComputePeaks reads a recording of format (wav, wav16, sln, ulaw, alaw)
// of size bytes and returns n peaks.
func ComputePeaks(r io.Reader, size int64, format string, n int) (Peaks, error) {
	cr := &countReader{r: r}
	br := bufio.NewReaderSize(cr, 64<<10)
	rate, channels, bits := 8000, 1, 16
	dataLen := size
	switch format {
	case "wav", "wav16":
		var err error
		rate, channels, bits, dataLen, err = wavHeader(br)
		if err != nil {
			return Peaks{}, err
		}
		if hdr := cr.n - int64(br.Buffered()); dataLen > size-hdr {
			dataLen = size - hdr // a header not yet finalised, or a truncated file
		}
	case "sln":
	case "ulaw", "alaw":
		bits = 8
	default:
		return Peaks{}, ErrNoWaveform
	}
	if bits != 16 && !(bits == 8 && (format == "ulaw" || format == "alaw")) {
		return Peaks{}, fmt.Errorf("%w: %d-bit samples", ErrNoWaveform, bits)
	}
	frameBytes := int64(channels * bits / 8)
	frames := dataLen / frameBytes
	if n <= 0 {
		n = PeakBuckets
	}
	p := Peaks{Rate: rate, Duration: float64(frames) / float64(rate), Peaks: make([]int, n)}
	if frames == 0 {
		return p, nil
	}
	var table *[256]int16
	if format == "ulaw" {
		table = &ulawTable
	} else if format == "alaw" {
		table = &alawTable
	}
	buf := make([]byte, 32<<10)
	buf = buf[:len(buf)-len(buf)%int(frameBytes)]
	var frame int64
	var loud [PeakBuckets * 4]int32
	bucketOf := func(f int64) int { return int(f * int64(n) / frames) }
	acc := loud[:0]
	if n <= len(loud) {
		acc = loud[:n]
	} else {
		acc = make([]int32, n)
	}
	b, next := 0, int64(0) // current bucket; first frame of the next one
	for frame < frames {
		want := int64(len(buf))
		if rest := (frames - frame) * frameBytes; rest < want {
			want = rest
		}
		k, err := io.ReadFull(br, buf[:want])
		k -= k % int(frameBytes)
		fb := int(frameBytes)
		for i := 0; i < k; i += fb {
			if frame >= next { // the bucket changes: one division per bucket, not per sample
				b = bucketOf(frame)
				next = (int64(b+1)*frames + int64(n) - 1) / int64(n)
			}
			var v int32
			if table == nil && channels == 1 {
				v = int32(int16(binary.LittleEndian.Uint16(buf[i:])))
				if v < 0 {
					v = -v
				}
			} else {
				for c := 0; c < channels; c++ {
					var s int32
					if table != nil {
						s = int32(table[buf[i+c]])
					} else {
						s = int32(int16(binary.LittleEndian.Uint16(buf[i+2*c:])))
					}
					if s < 0 {
						s = -s
					}
					v = max(v, s)
				}
			}
			if v > acc[b] {
				acc[b] = v
			}
			frame++
		}
		if err != nil { // a short file: what was read is the waveform
			break
		}
	}
	for i, v := range acc {
		p.Peaks[i] = int(v * 255 / 32768)
	}
	return p, nil
}

// wavHeader reads a RIFF/WAVE header up to the start of the data chunk.
func wavHeader(r io.Reader) (rate, channels, bits int, dataLen int64, err error) {
	var hdr [12]byte
	if _, err = io.ReadFull(r, hdr[:]); err != nil {
		return
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		err = errors.New("not a RIFF/WAVE file")
		return
	}
	for {
		var ch [8]byte
		if _, err = io.ReadFull(r, ch[:]); err != nil {
			return
		}
		id, n := string(ch[0:4]), int64(binary.LittleEndian.Uint32(ch[4:]))
		switch id {
		case "fmt ":
			b := make([]byte, n+n%2)
			if _, err = io.ReadFull(r, b); err != nil {
				return
			}
			if n < 16 {
				err = errors.New("short fmt chunk")
				return
			}
			if tag := binary.LittleEndian.Uint16(b[0:]); tag != 1 && tag != 0xfffe {
				err = fmt.Errorf("%w: WAV encoding %#x", ErrNoWaveform, tag)
				return
			}
			channels = int(binary.LittleEndian.Uint16(b[2:]))
			rate = int(binary.LittleEndian.Uint32(b[4:]))
			bits = int(binary.LittleEndian.Uint16(b[14:]))
		case "data":
			if rate == 0 || channels == 0 {
				err = errors.New("data before fmt")
			}
			dataLen = n
			if n == 0 || n == 0xffffffff { // still being written
				dataLen = 1 << 62
			}
			return
		default:
			if _, err = io.CopyN(io.Discard, r, n+n%2); err != nil {
				return
			}
		}
	}
}

var ulawTable, alawTable [256]int16

func init() {
	for i := range 256 {
		u := ^byte(i)
		t := (int(u&0x0f) << 3) + 0x84
		t <<= (u & 0x70) >> 4
		if u&0x80 != 0 {
			ulawTable[i] = int16(0x84 - t)
		} else {
			ulawTable[i] = int16(t - 0x84)
		}
		a := byte(i) ^ 0x55
		v := int(a&0x0f) << 4
		seg := (a & 0x70) >> 4
		switch seg {
		case 0:
			v += 8
		case 1:
			v += 0x108
		default:
			v += 0x108
			v <<= seg - 1
		}
		if a&0x80 != 0 {
			alawTable[i] = int16(v)
		} else {
			alawTable[i] = int16(-v)
		}
	}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
