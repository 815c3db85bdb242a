package main

import (
	"fmt"
	"io"
	"math"

	"github.com/tapedeck/tapedeck/internal/codec"
	"github.com/tapedeck/tapedeck/internal/media/say"
)

// frameSamples is one 20 ms packet at 8 kHz.
const frameSamples = 160

// audioLoop is the audio every call sends, looped: the built-in speech
// prompts saying "one billion two hundred thirty four million ..." with a
// quiet continuous sweep underneath, so that the signal never contains a run
// of digital silence (the gaps between prompts are exact zeros otherwise).
// Any 20 ms run of zeros in a recording is therefore a gap made by the
// server (lost or misplaced packets, a mixer underrun).
type audioLoop struct {
	pcm    []int16 // linear, a whole number of frames
	mulaw  []byte
	alaw   []byte
	frames int
}

// sweepAmplitude is about -30 dBFS: well above µ-law's zero step, well
// below speech.
const sweepAmplitude = 1000

func buildAudio() (*audioLoop, error) {
	src, err := say.Number(1234567890, "en")
	if err != nil {
		return nil, err
	}
	var speech []int16
	buf := make([]int16, frameSamples)
	for {
		n, err := src.Read(buf)
		speech = append(speech, buf[:n]...)
		if err == io.EOF || n == 0 {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	// 200 ms of sweep alone between repetitions, rounded to whole frames.
	total := len(speech) + 1600
	total = (total + frameSamples - 1) / frameSamples * frameSamples
	pcm := make([]int16, total)
	phase := 0.0
	for i := range pcm {
		// Triangle sweep 300 Hz -> 3000 Hz -> 300 Hz over the loop.
		x := float64(i) / float64(total)
		f := 300 + 2700*(1-math.Abs(2*x-1))
		phase += 2 * math.Pi * f / 8000
		v := sweepAmplitude * math.Sin(phase)
		if i < len(speech) {
			v += float64(speech[i])
		}
		pcm[i] = int16(max(-32768, min(32767, math.Round(v))))
	}
	a := &audioLoop{pcm: pcm, frames: total / frameSamples, mulaw: make([]byte, total), alaw: make([]byte, total)}
	codec.EncodeMulaw(a.mulaw, pcm)
	codec.EncodeAlaw(a.alaw, pcm)
	// The premise of gap detection: the decoded signal, looped, has no run
	// of zeros anywhere near 20 ms.
	dec := make([]int16, 2*total)
	codec.DecodeMulaw(dec[:total], a.mulaw)
	copy(dec[total:], dec[:total])
	if r := longestZeroRun(dec); r >= 16 {
		return nil, fmt.Errorf("audio loop has a %d-sample run of silence", r)
	}
	return a, nil
}

// frame returns the encoded frame i (mod the loop) for the payload type.
func (a *audioLoop) frame(i int, pcma bool) []byte {
	off := (i % a.frames) * frameSamples
	if pcma {
		return a.alaw[off : off+frameSamples]
	}
	return a.mulaw[off : off+frameSamples]
}

func longestZeroRun(s []int16) int {
	best, run := 0, 0
	for _, v := range s {
		if v == 0 {
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	return best
}
