package recorder

import "time"

// DSPThreshold is Asterisk's default silence threshold (dsp.conf
// silencethreshold): a frame whose average magnitude is below it is silent.
const DSPThreshold = 256

// DSP is Asterisk's silence detector (ast_dsp_silence): a frame is silent
// when the average magnitude of its samples is below the threshold, and
// talking otherwise, whatever its spectrum: a steady tone or noise above
// the threshold is talking. It keeps the same durations as VAD, so a
// recording's maxSilenceSeconds, talking_duration and silence_duration
// mean what they mean in Asterisk.
type DSP struct {
	rate      int
	threshold int
	talking   time.Duration
	silence   time.Duration
	silentFor time.Duration
	speech    bool
}

// NewDSP returns a detector for PCM at sampleRate; threshold <= 0 is
// DSPThreshold.
func NewDSP(sampleRate, threshold int) *DSP {
	if sampleRate <= 0 {
		sampleRate = SampleRate
	}
	if threshold <= 0 {
		threshold = DSPThreshold
	}
	return &DSP{rate: sampleRate, threshold: threshold}
}

// Talking reports whether a frame's average magnitude reaches the
// threshold.
func Talking(pcm []int16, threshold int) bool {
	if len(pcm) == 0 {
		return false
	}
	var accum int64
	for _, s := range pcm {
		if s < 0 {
			accum -= int64(s)
		} else {
			accum += int64(s)
		}
	}
	return accum/int64(len(pcm)) >= int64(threshold)
}

// Frame classifies one frame and returns whether it is talking.
func (d *DSP) Frame(pcm []int16) bool {
	if len(pcm) == 0 {
		return d.speech
	}
	dur := time.Duration(len(pcm)) * time.Second / time.Duration(d.rate)
	d.speech = Talking(pcm, d.threshold)
	if d.speech {
		d.talking += dur
		d.silentFor = 0
	} else {
		d.silence += dur
		d.silentFor += dur
	}
	return d.speech
}

// TalkingDuration is the total time classified as talking.
func (d *DSP) TalkingDuration() time.Duration { return d.talking }

// SilenceDuration is the total time classified as silence.
func (d *DSP) SilenceDuration() time.Duration { return d.silence }

// SilentFor is the current run of silence.
func (d *DSP) SilentFor() time.Duration { return d.silentFor }
