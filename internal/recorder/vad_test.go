package recorder

import (
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// speech synthesises text with espeak-ng and converts it to 8 kHz 16-bit
// mono with sox. It skips (visibly) when the tools are missing, and fails
// when CI=true.
func speech(t *testing.T, text string) []int16 {
	t.Helper()
	espeak, err1 := exec.LookPath("espeak-ng")
	sox, err2 := exec.LookPath("sox")
	if err1 != nil || err2 != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("espeak-ng and sox are required in CI (apt-get install espeak-ng sox)")
		}
		t.Skip("SKIPPED: VAD speech test needs espeak-ng and sox (apt-get install espeak-ng sox)")
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "s.wav")
	if b, err := exec.Command(espeak, "-v", "en", "-s", "150", "-w", raw, text).CombinedOutput(); err != nil {
		t.Fatalf("espeak-ng: %v %s", err, b)
	}
	out := filepath.Join(dir, "s8k.wav")
	if b, err := exec.Command(sox, raw, "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", out).CombinedOutput(); err != nil {
		t.Fatalf("sox: %v %s", err, b)
	}
	_, pcm := readWAV(t, out)
	// Trim leading and trailing near-silence.
	a, b := 0, len(pcm)
	for a < b && abs16(pcm[a]) < 200 {
		a++
	}
	for b > a && abs16(pcm[b-1]) < 200 {
		b--
	}
	return pcm[a:b]
}

func abs16(v int16) int { return int(math.Abs(float64(v))) }

func rms(x []int16) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(x)))
}

// activeRMS is the RMS over 20 ms frames within 20 dB of the loudest.
func activeRMS(x []int16) float64 {
	var frames []float64
	peak := 0.0
	for i := 0; i+160 <= len(x); i += 160 {
		r := rms(x[i : i+160])
		frames = append(frames, r)
		peak = max(peak, r)
	}
	var s float64
	n := 0
	for _, r := range frames {
		if r > peak/10 {
			s += r * r
			n++
		}
	}
	return math.Sqrt(s / float64(n))
}

func whiteNoise(n int, r float64, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]float64, n)
	for i := range out {
		out[i] = rng.NormFloat64() * r
	}
	return out
}

// pinkNoise uses Paul Kellet's economy filter, scaled to RMS r.
func pinkNoise(n int, r float64, seed uint64) []float64 {
	w := whiteNoise(n, 1, seed)
	out := make([]float64, n)
	var b0, b1, b2 float64
	var s float64
	for i, x := range w {
		b0 = 0.99765*b0 + x*0.0990460
		b1 = 0.96300*b1 + x*0.2965164
		b2 = 0.57000*b2 + x*1.0526913
		out[i] = b0 + b1 + b2 + x*0.1848
		s += out[i] * out[i]
	}
	g := r / math.Sqrt(s/float64(n))
	for i := range out {
		out[i] *= g
	}
	return out
}

func mix(sig []int16, noise []float64) []int16 {
	out := make([]int16, len(sig))
	for i := range sig {
		out[i] = sat16(int64(math.Round(float64(sig[i]) + noise[i])))
	}
	return out
}

func runVAD(v *VAD, pcm []int16) {
	for i := 0; i+160 <= len(pcm); i += 160 {
		v.Frame(pcm[i : i+160])
	}
}

func TestVADSpeech(t *testing.T) {
	u1 := speech(t, "Hello, this is a test of the recording server. Please leave a message after the tone.")
	u2 := speech(t, "Thank you. Goodbye.")
	sil := func(d time.Duration) []int16 { return make([]int16, int(d*8000/time.Second)) }
	var sig []int16
	sig = append(sig, sil(2*time.Second)...)
	sig = append(sig, u1...)
	sig = append(sig, sil(3*time.Second)...)
	sig = append(sig, u2...)
	sig = append(sig, sil(4*time.Second)...)
	speechDur := time.Duration(len(u1)+len(u2)) * time.Second / 8000
	total := time.Duration(len(sig)/160*160) * time.Second / 8000
	sr := activeRMS(append(append([]int16{}, u1...), u2...))
	t.Logf("speech %v of %v, active speech RMS %.0f", speechDur, total, sr)

	for _, tc := range []struct {
		name  string
		noise []float64
	}{
		{"clean", make([]float64, len(sig))},
		{"white 20dB", whiteNoise(len(sig), sr/10, 1)},
		{"pink 20dB", pinkNoise(len(sig), sr/10, 2)},
		{"white 15dB", whiteNoise(len(sig), sr/math.Pow(10, 0.75), 3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := NewVAD(8000)
			runVAD(v, mix(sig, tc.noise))
			talk, silence := v.TalkingDuration(), v.SilenceDuration()
			t.Logf("talking %v, silence %v, silent for %v, floor %.1f dBFS", talk, silence, v.SilentFor(), v.NoiseFloor())
			if talk+silence != total {
				t.Errorf("talking+silence = %v, want %v", talk+silence, total)
			}
			// Speech (with its short internal pauses) is detected; each
			// utterance may gain up to the 300 ms hangover.
			if talk < speechDur*80/100 || talk > speechDur+2*vadHangover+100*time.Millisecond {
				t.Errorf("talking %v, speech lasts %v", talk, speechDur)
			}
			// The 2+3+4 s of silence are mostly silence.
			if silence < 9*time.Second-2*vadHangover-500*time.Millisecond {
				t.Errorf("silence %v, want about 9 s", silence)
			}
			// Ends with 4 s of silence, minus the hangover.
			if sf := v.SilentFor(); sf < 4*time.Second-vadHangover-200*time.Millisecond || sf > 4*time.Second {
				t.Errorf("SilentFor %v, want about %v", sf, 4*time.Second-vadHangover)
			}
		})
	}
}

func TestVADNoiseIsNotSpeech(t *testing.T) {
	for _, tc := range []struct {
		name  string
		noise []float64
	}{
		{"white -40dBFS", whiteNoise(8000*10, 328, 4)},
		{"white -20dBFS", whiteNoise(8000*10, 3277, 5)},
		{"pink -30dBFS", pinkNoise(8000*10, 1036, 6)},
		{"pink -15dBFS", pinkNoise(8000*10, 5827, 7)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := NewVAD(8000)
			runVAD(v, mix(make([]int16, len(tc.noise)), tc.noise))
			if v.TalkingDuration() != 0 {
				t.Errorf("noise counted as %v of speech", v.TalkingDuration())
			}
			if v.SilentFor() != 10*time.Second || v.SilenceDuration() != 10*time.Second {
				t.Errorf("SilentFor %v, SilenceDuration %v", v.SilentFor(), v.SilenceDuration())
			}
		})
	}
	// Digital silence.
	v := NewVAD(8000)
	runVAD(v, make([]int16, 8000))
	if v.TalkingDuration() != 0 || v.SilentFor() != time.Second {
		t.Errorf("digital silence: talking %v", v.TalkingDuration())
	}
}

// Noise that starts after a quiet period (the floor must adapt up) is
// silence again within the floor window.
func TestVADNoiseFloorAdapts(t *testing.T) {
	v := NewVAD(8000)
	runVAD(v, make([]int16, 8000*2))
	n := whiteNoise(8000*8, 2000, 8)
	runVAD(v, mix(make([]int16, len(n)), n))
	if v.TalkingDuration() > vadFloorWindow+vadHangover+100*time.Millisecond {
		t.Errorf("noise onset counted as %v of speech", v.TalkingDuration())
	}
	if v.Speech() || v.SilentFor() < 5*time.Second {
		t.Errorf("steady noise still speech: silent for %v", v.SilentFor())
	}
}

func TestVADHangover(t *testing.T) {
	v := NewVAD(8000)
	runVAD(v, make([]int16, 8000))
	tone := sine(160*10, 500, 8000, 8000)
	runVAD(v, tone)
	if !v.Speech() {
		t.Fatal("tone burst not speech")
	}
	// A 200 ms gap between words keeps speech on.
	gap := make([]int16, 1600)
	for i := 0; i < 10; i++ {
		if !v.Frame(gap[i*160 : (i+1)*160]) {
			t.Fatalf("speech ended %d ms into a gap", i*20)
		}
	}
	runVAD(v, tone)
	// After the hangover, silence.
	on := 0
	for i := 0; i < 50; i++ {
		if v.Frame(gap[:160]) {
			on++
		}
	}
	// 15 frames of hangover (+1 for the filter's tail right after the tone).
	if h := int(vadHangover / (20 * time.Millisecond)); on < h || on > h+1 {
		t.Errorf("hangover %d frames", on)
	}
	if v.SilentFor() != time.Duration(50-on)*20*time.Millisecond {
		t.Errorf("SilentFor %v", v.SilentFor())
	}
}

func TestVADZeroAllocs(t *testing.T) {
	v := NewVAD(8000)
	f := sine(160, 300, 5000, 8000)
	if a := testing.AllocsPerRun(100, func() { v.Frame(f) }); a != 0 {
		t.Errorf("%v allocs per frame", a)
	}
}
