package mix

import (
	"math"
	"testing"
)

// constFrame returns n samples of value v.
func constFrame(v int16, n int) []int16 {
	f := make([]int16, n)
	for i := range f {
		f[i] = v
	}
	return f
}

// sine returns n samples of a phase-continuous sine starting at sample start.
func sine(freq, amp float64, start, n int) []int16 {
	f := make([]int16, n)
	for i := range f {
		f[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(start+i)/SampleRate)))
	}
	return f
}

// goertzel returns the amplitude of the freq component of x.
func goertzel(x []int16, freq float64) float64 {
	w := 2 * math.Pi * freq / SampleRate
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s0 := float64(v) + c*s1 - s2
		s2, s1 = s1, s0
	}
	p := s1*s1 + s2*s2 - c*s1*s2
	return 2 * math.Sqrt(max(p, 0)) / float64(len(x))
}

// tickResult is a copy of everything one TickRecord delivered.
type tickResult struct {
	out    map[string][]int16
	mixed  []int16
	parts  map[string][]int16
	active map[string]bool
	order  []string
}

// tick runs one TickRecord and copies its results.
func tick(m *Mixer) tickResult {
	r := tickResult{out: map[string][]int16{}, parts: map[string][]int16{}, active: map[string]bool{}}
	m.TickRecord(func(p *Participant, f []int16) {
		if len(f) != FrameSamples {
			panic("bad frame length")
		}
		r.out[p.ID()] = append([]int16(nil), f...)
	}, func(mixed []int16, parts []Frame) {
		r.mixed = append([]int16(nil), mixed...)
		for _, f := range parts {
			r.parts[f.ID] = append([]int16(nil), f.PCM...)
			r.active[f.ID] = f.Active
			r.order = append(r.order, f.ID)
		}
	})
	return r
}

// level returns the frame's value if it is constant, or -99999 if not.
func level(f []int16) int {
	for _, v := range f {
		if v != f[0] {
			return -99999
		}
	}
	return int(f[0])
}

// single sets up a mixer with one participant and returns a function that
// ticks once and returns that participant's own played frame level.
func single(t *testing.T) (*Mixer, *Participant, func() int) {
	t.Helper()
	m := New()
	p := m.Add("a")
	return m, p, func() int {
		r := tick(m)
		return level(r.parts["a"])
	}
}
