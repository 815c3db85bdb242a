package recorder

import (
	"math"
	"testing"
	"time"
)

// Asterisk's threshold counts a steady tone as talking however long it
// lasts (the adaptive VAD would learn it as the noise floor), and digital
// silence or a faint hiss as silence.
func TestDSPSteadyToneIsTalking(t *testing.T) {
	d := NewDSP(8000, 0)
	amp := 32767 * math.Pow(10, -9.0/20)
	pcm := make([]int16, 160)
	for f := range 5 * 50 { // 5 s of 440 Hz at -9 dBFS
		for i := range pcm {
			pcm[i] = int16(amp * math.Sin(2*math.Pi*440*float64(f*160+i)/8000))
		}
		if !d.Frame(pcm) {
			t.Fatalf("frame %d of a -9 dBFS tone is silence", f)
		}
	}
	if d.TalkingDuration() != 5*time.Second || d.SilentFor() != 0 {
		t.Fatalf("talking %v, silent for %v", d.TalkingDuration(), d.SilentFor())
	}
	quiet := make([]int16, 160)
	for i := range quiet {
		quiet[i] = int16(200 * math.Sin(float64(i)))
	}
	for range 50 {
		if d.Frame(quiet) {
			t.Fatal("a faint frame (average magnitude below 256) counts as talking")
		}
	}
	if d.SilentFor() != time.Second || d.SilenceDuration() != time.Second {
		t.Fatalf("silent for %v, silence %v", d.SilentFor(), d.SilenceDuration())
	}
}
