// Package tone generates call-progress tones from Asterisk tone strings and
// tone zones (the indications of Asterisk's indications.conf), as played by
// ARI `tone:` media URIs.
//
// # Tone strings
//
// A tone string is a list of parts separated by ',' (or by '|' when the
// string contains one, as Asterisk accepts):
//
//	part      = ["!"] freq [ ("+" | "*") freq ] [ "/" duration_ms ]
//	freq      = hertz | "M" midi_note
//
// "f1+f2" sums two sinusoids, "f1*f2" is f1 amplitude-modulated by f2 (90 %
// depth, as in Asterisk). Frequency 0 is silence. A part without a duration
// (or with duration 0) plays forever. Frequencies are whole hertz below the
// 4 kHz Nyquist limit of 8 kHz audio; MIDI notes are 0..127 (M69 = 440 Hz).
//
// Parts prefixed with '!' are played once: when the list is exhausted,
// playback resumes at the first part without '!', exactly as Asterisk's
// playtones generator does (so a '!' part that comes after the first
// repeating part is repeated with the rest of the cycle; in practice '!'
// parts form a prefix, e.g. the six bursts of a stutter dial tone). If every
// part is '!', the tone is finite and Read returns io.EOF at its end.
//
// Generation: each component is a sinusoid of peak Amplitude produced by a
// phase accumulator and an interpolated sine table (no allocation per Read).
// The phase is continuous across Reads and starts at zero at the beginning of
// each part (as in Asterisk), which makes the output a pure function of the
// position, so Seek is exact.
//
// Examples: "350+440" (US dial tone), "440/1500,0/3500" (French ringing),
// "!350+440/100,!0/100,350+440" (recall dial tone), "425*24/400,0/200".
package tone

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/tapedeck/tapedeck/internal/media"
)

const (
	// SampleRate is the rate of the generated audio (8 kHz).
	SampleRate = 8000

	// Amplitude is the peak amplitude of each sinusoidal component, about
	// 0.22 of full scale: the level Asterisk's playtones uses by default
	// (7219). A two-frequency part therefore peaks at about 0.44 full scale.
	Amplitude = 7219

	// MaxFrequency is the exclusive upper bound for a frequency in hertz.
	MaxFrequency = SampleRate / 2

	// amDepth is the modulation depth of "f1*f2" parts.
	amDepth = 0.9
)

// ErrSyntax is wrapped by the errors Parse returns for malformed tone strings.
var ErrSyntax = errors.New("tone: invalid tone string")

// Part is one element of a tone string.
type Part struct {
	Once     bool    // '!' prefix: not part of the repeating cadence
	Freq1    float64 // Hz; 0 = none
	Freq2    float64 // Hz; 0 = none
	Modulate bool    // Freq1 amplitude-modulated by Freq2 ("f1*f2")
	Duration int     // milliseconds; 0 = forever
}

type part struct {
	Part
	samples    int64  // length in samples; 0 = forever
	inc1, inc2 uint32 // phase increments (2^32 = one cycle)
	silent     bool
}

// Tone is a playable tone list. It implements media.Source, media.Seeker and
// media.Durationer. A Tone is not safe for concurrent use; use Clone to get
// an independent player of the same tone.
type Tone struct {
	spec  string
	parts []part
	rep   int     // index of the first repeating part; -1: none (finite)
	start []int64 // start offset of each part on the first pass; valid up to the first infinite part
	pre   int64   // samples before parts[rep] (whole length when rep < 0); -1 if infinite
	cycle int64   // samples in parts[rep:]; -1 if infinite or rep < 0

	// playback state
	pos      int64 // absolute position in samples
	idx      int   // current part
	off      int64 // samples into the current part
	ph1, ph2 uint32
	done     bool
}

var (
	_ media.Source     = (*Tone)(nil)
	_ media.Seeker     = (*Tone)(nil)
	_ media.Durationer = (*Tone)(nil)
)

// Parse parses an Asterisk tone string. Surrounding white space of each part
// is ignored; empty parts and any other deviation from the syntax are errors.
func Parse(s string) (*Tone, error) {
	spec := strings.TrimSpace(s)
	if spec == "" {
		return nil, fmt.Errorf("%w: empty", ErrSyntax)
	}
	sep := ","
	if strings.Contains(spec, "|") {
		sep = "|"
	}
	fields := strings.Split(spec, sep)
	t := &Tone{spec: spec, rep: -1, parts: make([]part, 0, len(fields))}
	for i, f := range fields {
		p, err := parsePart(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%w: part %d %q: %s", ErrSyntax, i+1, strings.TrimSpace(f), err)
		}
		if !p.Once && t.rep < 0 {
			t.rep = i
		}
		t.parts = append(t.parts, p)
	}
	t.layout()
	return t, nil
}

// MustParse is like Parse but panics on error. For tone strings known to be
// valid (tables, tests).
func MustParse(s string) *Tone {
	t, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return t
}

func parsePart(s string) (part, error) {
	var p part
	if s == "" {
		return p, errors.New("empty part")
	}
	if s[0] == '!' {
		p.Once = true
		s = s[1:]
	}
	freqs := s
	if i := strings.IndexByte(s, '/'); i >= 0 {
		freqs = s[:i]
		d, err := parseUint(s[i+1:], 1<<31-1)
		if err != nil {
			return p, fmt.Errorf("duration: %s", err)
		}
		p.Duration = int(d)
	}
	f1, f2 := freqs, ""
	if i := strings.IndexAny(freqs, "+*"); i >= 0 {
		p.Modulate = freqs[i] == '*'
		f1, f2 = freqs[:i], freqs[i+1:]
		if f2 == "" {
			return p, errors.New("missing second frequency")
		}
	}
	var err error
	if p.Freq1, err = parseFreq(f1); err != nil {
		return p, err
	}
	if f2 != "" {
		if p.Freq2, err = parseFreq(f2); err != nil {
			return p, err
		}
	}
	p.samples = int64(p.Duration) * (SampleRate / 1000)
	p.inc1 = phaseInc(p.Freq1)
	p.inc2 = phaseInc(p.Freq2)
	p.silent = p.Freq1 == 0 && (p.Freq2 == 0 || p.Modulate)
	return p, nil
}

func parseUint(s string, max uint64) (uint64, error) {
	if s == "" {
		return 0, errors.New("missing number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a non-negative integer", s)
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > max {
		return 0, fmt.Errorf("%q out of range", s)
	}
	return v, nil
}

func parseFreq(s string) (float64, error) {
	if s == "" {
		return 0, errors.New("missing frequency")
	}
	if s[0] == 'M' || s[0] == 'm' {
		n, err := parseUint(s[1:], 127)
		if err != nil {
			return 0, fmt.Errorf("midi note: %s", err)
		}
		f := MidiToHz(int(n))
		if f >= MaxFrequency {
			return 0, fmt.Errorf("midi note %d (%.1f Hz) is above %d Hz", n, f, MaxFrequency)
		}
		return f, nil
	}
	v, err := parseUint(s, MaxFrequency-1)
	if err != nil {
		return 0, fmt.Errorf("frequency: %s (must be 0..%d Hz)", err, MaxFrequency-1)
	}
	return float64(v), nil
}

// MidiToHz converts a MIDI note number to hertz (69 = A4 = 440 Hz).
func MidiToHz(note int) float64 {
	return 440 * math.Pow(2, float64(note-69)/12)
}

func phaseInc(f float64) uint32 {
	return uint32(math.Round(f / SampleRate * (1 << 32)))
}

// layout computes the part offsets, prefix and cycle lengths.
func (t *Tone) layout() {
	t.start = make([]int64, len(t.parts))
	var acc int64
	inf := false
	t.pre, t.cycle = -1, -1
	end := len(t.parts)
	if t.rep >= 0 {
		end = t.rep
	}
	for i := range t.parts {
		if i == end {
			if !inf {
				t.pre = acc
			}
		}
		t.start[i] = acc
		if t.parts[i].samples == 0 {
			inf = true
		}
		if !inf {
			acc += t.parts[i].samples
		}
	}
	if end == len(t.parts) && !inf {
		t.pre = acc
	}
	if t.rep >= 0 && !inf {
		t.cycle = acc - t.pre
	}
}

// String returns the tone string the Tone was parsed from.
func (t *Tone) String() string { return t.spec }

// Parts returns a copy of the parsed parts.
func (t *Tone) Parts() []Part {
	ps := make([]Part, len(t.parts))
	for i := range t.parts {
		ps[i] = t.parts[i].Part
	}
	return ps
}

// Finite reports whether the tone ends by itself (every part is '!' and has a
// duration).
func (t *Tone) Finite() bool { return t.rep < 0 && t.pre >= 0 }

// Length returns the total length in samples of a finite tone, -1 otherwise.
func (t *Tone) Length() int64 {
	if t.Finite() {
		return t.pre
	}
	return -1
}

// Position returns the current position in samples from the start.
func (t *Tone) Position() int64 { return t.pos }

// Clone returns an independent copy of t positioned at the start.
func (t *Tone) Clone() *Tone {
	c := &Tone{spec: t.spec, parts: t.parts, rep: t.rep, start: t.start, pre: t.pre, cycle: t.cycle}
	return c // parts and start are never mutated after Parse, so sharing is safe
}

// Seek repositions the tone; offsets are in samples, whence as in io.Seeker.
// Seek(0, io.SeekStart) restarts the tone. Positions before the start clamp
// to 0; for finite tones positions past the end clamp to the end. io.SeekEnd
// is an error for tones that never end.
func (t *Tone) Seek(offset int64, whence int) (int64, error) {
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = t.pos
	case io.SeekEnd:
		if !t.Finite() {
			return t.pos, errors.New("tone: SeekEnd on an endless tone")
		}
		base = t.pre
	default:
		return t.pos, errors.New("tone: invalid whence")
	}
	pos := base + offset
	if offset > 0 && pos < base { // overflow
		pos = math.MaxInt64
	}
	if pos < 0 {
		pos = 0
	}
	if t.Finite() && pos > t.pre {
		pos = t.pre
	}
	t.locate(pos)
	return t.pos, nil
}

// locate sets the playback state for absolute position pos (already clamped).
func (t *Tone) locate(pos int64) {
	t.pos = pos
	t.done = false
	if t.Finite() && pos >= t.pre {
		t.idx, t.off, t.done = len(t.parts)-1, t.parts[len(t.parts)-1].samples, true
		t.ph1, t.ph2 = 0, 0
		return
	}
	q := pos
	if t.rep >= 0 && t.cycle > 0 && t.pre >= 0 && q >= t.pre {
		q = t.pre + (q-t.pre)%t.cycle
	}
	i := 0
	for i+1 < len(t.parts) && t.parts[i].samples != 0 && t.start[i+1] <= q {
		i++
	}
	t.idx = i
	t.off = q - t.start[i]
	p := &t.parts[i]
	// Phase restarts at each part, so it is a function of the offset alone.
	// Only the low 32 bits of the product matter, so wrap-around is harmless.
	t.ph1 = uint32(uint64(p.inc1) * uint64(t.off))
	t.ph2 = uint32(uint64(p.inc2) * uint64(t.off))
}

// Reset restarts the tone from the beginning (same as Seek(0, io.SeekStart)).
func (t *Tone) Reset() { t.locate(0) }

// Read fills pcm with the next samples. It never allocates. It returns
// 0, io.EOF once a finite tone has been played completely.
func (t *Tone) Read(pcm []int16) (int, error) {
	n := 0
	for n < len(pcm) && !t.done {
		p := &t.parts[t.idx]
		k := len(pcm) - n
		if p.samples > 0 {
			if rem := p.samples - t.off; int64(k) > rem {
				k = int(rem)
			}
		}
		t.fill(p, pcm[n:n+k])
		n += k
		t.off += int64(k)
		t.pos += int64(k)
		if p.samples > 0 && t.off >= p.samples {
			t.next()
		}
	}
	if n == 0 && t.done && len(pcm) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (t *Tone) next() {
	t.off, t.ph1, t.ph2 = 0, 0, 0
	if t.idx+1 < len(t.parts) {
		t.idx++
		return
	}
	if t.rep < 0 {
		t.done = true
		t.off = t.parts[t.idx].samples
		return
	}
	t.idx = t.rep
}

func (t *Tone) fill(p *part, out []int16) {
	if p.silent {
		clear(out)
		return
	}
	ph1, ph2 := t.ph1, t.ph2
	i1, i2 := p.inc1, p.inc2
	switch {
	case p.Modulate:
		for i := range out {
			v := Amplitude * sine(ph1) * (1 + amDepth*sine(ph2))
			out[i] = round16(v)
			ph1 += i1
			ph2 += i2
		}
	case p.Freq2 == 0:
		for i := range out {
			out[i] = round16(Amplitude * sine(ph1))
			ph1 += i1
		}
	case p.Freq1 == 0:
		for i := range out {
			out[i] = round16(Amplitude * sine(ph2))
			ph2 += i2
		}
	default:
		for i := range out {
			out[i] = round16(Amplitude * (sine(ph1) + sine(ph2)))
			ph1 += i1
			ph2 += i2
		}
	}
	t.ph1, t.ph2 = ph1, ph2
}

// Sine lookup table with linear interpolation: 1024 points per cycle gives
// an interpolation error below 5e-6 (about -106 dB).
const (
	sinBits  = 10
	sinSize  = 1 << sinBits
	fracBits = 32 - sinBits
)

var sinTab = func() (tab [sinSize + 1]float32) {
	for i := range tab {
		tab[i] = float32(math.Sin(2 * math.Pi * float64(i) / sinSize))
	}
	return
}()

func sine(ph uint32) float32 {
	i := ph >> fracBits
	frac := float32(ph&(1<<fracBits-1)) * (1.0 / (1 << fracBits))
	a := sinTab[i]
	return a + (sinTab[i+1]-a)*frac
}

func round16(v float32) int16 {
	if v >= 0 {
		v += 0.5
	} else {
		v -= 0.5
	}
	if v > math.MaxInt16 {
		return math.MaxInt16
	}
	if v < math.MinInt16 {
		return math.MinInt16
	}
	return int16(v)
}
