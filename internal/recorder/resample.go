package recorder

import "math"

// Halfband interpolator 8 kHz -> 16 kHz. Even output samples are the input
// samples (delayed); odd ones are interpolated half-way between inputs with a
// Blackman-windowed sinc of upTaps taps (Q15).
const (
	upHalf  = 8          // taps on each side of the interpolated point
	upTaps  = 2 * upHalf // taps in the interpolation branch
	upChunk = 160        // input samples processed per step (20 ms)
)

var upCoef = func() (c [upTaps]int32) {
	var f [upTaps]float64
	sum := 0.0
	for i := range f {
		d := float64(i-upHalf) + 0.5 // distance from the interpolated point
		x := math.Pi * d
		w := 0.42 + 0.5*math.Cos(math.Pi*d/upHalf) + 0.08*math.Cos(2*math.Pi*d/upHalf)
		f[i] = math.Sin(x) / x * w
		sum += f[i]
	}
	for i := range f {
		c[i] = int32(math.Round(f[i] / sum * 32768))
	}
	return c
}()

// upsampler doubles the sample rate. Output is aligned with the input: after
// drain, exactly twice as many samples have come out as went in.
type upsampler struct {
	hist   [upTaps - 1 + upChunk]int16 // history followed by new input
	primed int                         // leading outputs still to discard
}

func newUpsampler() *upsampler {
	return &upsampler{primed: upHalf}
}

// process upsamples in (at most upChunk samples) into out (len >= 2*len(in))
// and returns the number of samples written.
func (u *upsampler) process(out []int16, in []int16) int {
	const h = upTaps - 1
	copy(u.hist[h:], in)
	n := 0
	x := u.hist[:h+len(in)]
	for i := 0; i < len(in); i++ {
		// window x[i : i+upTaps] has the interpolated point between
		// x[i+upHalf-1] and x[i+upHalf].
		win := x[i : i+upTaps : i+upTaps]
		var acc int64
		for k, c := range upCoef {
			acc += int64(c) * int64(win[k])
		}
		if u.primed > 0 {
			u.primed--
			continue
		}
		out[n] = win[upHalf-1]
		out[n+1] = sat16((acc + 1<<14) >> 15)
		n += 2
	}
	copy(u.hist[:h], x[len(in):])
	return n
}

// drain feeds zeros to push out the delayed tail (2*upHalf samples).
func (u *upsampler) drain(out []int16) int {
	var zero [upHalf]int16
	return u.process(out, zero[:])
}

func sat16(v int64) int16 {
	if v > math.MaxInt16 {
		return math.MaxInt16
	}
	if v < math.MinInt16 {
		return math.MinInt16
	}
	return int16(v)
}
