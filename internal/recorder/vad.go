package recorder

import (
	"math"
	"time"
)

// VAD parameters.
const (
	vadThresholdDB = 9.0   // frame energy above the noise floor that counts as speech
	vadMinSpeechDB = -55.0 // speech must also be louder than this (dBFS)
	vadFloorWindow = 1500 * time.Millisecond
	vadHangover    = 300 * time.Millisecond
	vadFloorBins   = 16
	vadSilenceDB   = -100.0
	vadHighPassHz  = 200.0
)

// VAD is an energy voice activity detector for 20 ms frames. The noise floor
// is the minimum energy of high-passed (200 Hz) frames over the last ~1.5 s, so steady background
// noise sits on the floor and counts as silence; a frame is speech when its
// energy is vadThresholdDB above the floor (and above -55 dBFS). A hangover of
// 300 ms keeps speech on through the gaps between words.
type VAD struct {
	rate int

	// Noise floor: minimum energy over a sliding window, kept as the minima
	// of vadFloorBins sub-windows.
	bins      [vadFloorBins]float64
	binDur    time.Duration
	binFill   time.Duration
	cur       int
	floor     float64
	hang      time.Duration
	talking   time.Duration
	silence   time.Duration
	silentFor time.Duration
	speech    bool
	lastDB    float64
	hpA       float64 // high-pass pole
	hpX, hpY  float64 // high-pass state
}

// NewVAD returns a detector for PCM at sampleRate.
func NewVAD(sampleRate int) *VAD {
	if sampleRate <= 0 {
		sampleRate = SampleRate
	}
	v := &VAD{rate: sampleRate, binDur: vadFloorWindow / vadFloorBins}
	v.Reset()
	return v
}

// Reset forgets the noise floor and durations.
func (v *VAD) Reset() {
	*v = VAD{rate: v.rate, binDur: v.binDur}
	v.hpA = math.Exp(-2 * math.Pi * vadHighPassHz / float64(v.rate))
	for i := range v.bins {
		v.bins[i] = math.Inf(1)
	}
	v.floor = math.Inf(1)
}

// Frame classifies one frame (normally 20 ms) and returns whether it is
// speech (including hangover).
func (v *VAD) Frame(pcm []int16) (speech bool) {
	if len(pcm) == 0 {
		return v.speech
	}
	// High-pass (one pole at ~200 Hz) first: rumble and the low end of
	// pink noise carry no speech and make frame energies jumpy.
	var sum float64
	a := v.hpA
	x1, y1 := v.hpX, v.hpY
	for _, s := range pcm {
		x := float64(s)
		y := a * (y1 + x - x1)
		x1, y1 = x, y
		sum += y * y
	}
	v.hpX, v.hpY = x1, y1
	mean := sum / float64(len(pcm))
	db := vadSilenceDB
	if mean > 0 {
		db = max(10*math.Log10(mean/(32768*32768)), vadSilenceDB)
	}
	v.lastDB = db
	dur := time.Duration(len(pcm)) * time.Second / time.Duration(v.rate)

	// Decide against the floor of the frames before this one, then let this
	// frame update the floor.
	floor := v.floor
	if math.IsInf(floor, 1) {
		floor = db
	}
	raw := db > floor+vadThresholdDB && db > vadMinSpeechDB
	v.updateFloor(db, dur)

	if raw {
		v.hang = vadHangover
	}
	on := v.hang > 0
	if !raw && v.hang > 0 {
		v.hang -= dur
	}
	if on {
		v.speech = true
		v.talking += dur
		v.silentFor = 0
	} else {
		v.speech = false
		v.silence += dur
		v.silentFor += dur
	}
	return v.speech
}

func (v *VAD) updateFloor(db float64, dur time.Duration) {
	if db < v.bins[v.cur] {
		v.bins[v.cur] = db
	}
	v.binFill += dur
	if v.binFill >= v.binDur {
		v.binFill = 0
		v.cur = (v.cur + 1) % vadFloorBins
		v.bins[v.cur] = math.Inf(1)
	}
	f := math.Inf(1)
	for _, b := range v.bins {
		f = min(f, b)
	}
	v.floor = f
}

// Speech reports the last frame's decision.
func (v *VAD) Speech() bool { return v.speech }

// TalkingDuration is the total duration of speech frames (with hangover).
func (v *VAD) TalkingDuration() time.Duration { return v.talking }

// SilenceDuration is the total duration of non-speech frames.
func (v *VAD) SilenceDuration() time.Duration { return v.silence }

// SilentFor is the current run of non-speech (0 while talking).
func (v *VAD) SilentFor() time.Duration { return v.silentFor }

// NoiseFloor is the current noise floor estimate in dBFS.
func (v *VAD) NoiseFloor() float64 { return v.floor }

// Level is the last frame's energy in dBFS.
func (v *VAD) Level() float64 { return v.lastDB }
