// Package audio is the one place for the format of the audio that flows
// through the call core: the sample rate of decoded PCM and the size of a
// frame. The recorder, the mixer and the call model take them from here, so
// that a wideband codec changes one constant set, not literals everywhere.
package audio

import "time"

const (
	// SampleRate is the rate of decoded PCM in Hz (G.711's 8 kHz).
	SampleRate = 8000
	// FrameDuration is one packet's (and one mixer tick's) audio.
	FrameDuration = 20 * time.Millisecond
	// FrameSamples is the number of samples in one frame (an untyped
	// constant: FrameDuration's milliseconds).
	FrameSamples = SampleRate * 20 / 1000
)

// FrameSamples and FrameDuration must agree.
var _ = [1]struct{}{}[FrameSamples*int64(time.Second)/SampleRate-int64(FrameDuration)]

// Saturate clips a sum of samples to the int16 range.
func Saturate(v int32) int16 {
	return int16(min(max(v, -32768), 32767))
}

// AddInto adds src to dst sample by sample, saturating (over the shorter
// of the two).
func AddInto(dst, src []int16) {
	for i, s := range src[:min(len(src), len(dst))] {
		dst[i] = Saturate(int32(dst[i]) + int32(s))
	}
}
