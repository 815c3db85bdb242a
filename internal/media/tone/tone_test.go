package tone

import (
	"errors"
	"io"
	"math"
	"strings"
	"testing"
)

// render reads n samples from t in 160-sample frames.
func render(t testing.TB, src *Tone, n int) []int16 {
	t.Helper()
	out := make([]int16, 0, n)
	buf := make([]int16, 160)
	for len(out) < n {
		k := min(len(buf), n-len(out))
		got, err := src.Read(buf[:k])
		if err != nil {
			t.Fatalf("Read: %v after %d samples", err, len(out))
		}
		out = append(out, buf[:got]...)
	}
	return out
}

// goertzel returns the power of frequency f in x, normalised so that a sine
// of amplitude A gives about A²/4... only ratios are used by the tests.
func goertzel(x []int16, f float64) float64 {
	w := 2 * math.Pi * f / SampleRate
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s := float64(v) + c*s1 - s2
		s2, s1 = s1, s
	}
	p := s1*s1 + s2*s2 - c*s1*s2
	n := float64(len(x))
	return p / (n * n)
}

// amplitudeAt estimates the amplitude of the f component of x.
func amplitudeAt(x []int16, f float64) float64 {
	return 2 * math.Sqrt(goertzel(x, f))
}

func rms(x []int16) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(x)))
}

type run struct {
	on bool
	ms int
}

// cadence splits x into 10 ms blocks, classifies each as tone or silence
// and returns the runs.
func cadence(x []int16) []run {
	const blk = SampleRate / 100
	var runs []run
	for i := 0; i+blk <= len(x); i += blk {
		on := rms(x[i:i+blk]) > 100
		if len(runs) > 0 && runs[len(runs)-1].on == on {
			runs[len(runs)-1].ms += 10
		} else {
			runs = append(runs, run{on, 10})
		}
	}
	return runs
}

func TestParse(t *testing.T) {
	tests := []struct {
		in     string
		parts  []Part
		finite bool
		length int64
	}{
		{"440", []Part{{Freq1: 440}}, false, -1},
		{" 350+440 ", []Part{{Freq1: 350, Freq2: 440}}, false, -1},
		{"440/1500,0/3500", []Part{{Freq1: 440, Duration: 1500}, {Duration: 3500}}, false, -1},
		{"!350+440/100,!0/100", []Part{{Once: true, Freq1: 350, Freq2: 440, Duration: 100}, {Once: true, Duration: 100}}, true, 1600},
		{"425*24/400, 0/200", []Part{{Freq1: 425, Freq2: 24, Modulate: true, Duration: 400}, {Duration: 200}}, false, -1},
		{"480+620/500|0/500", []Part{{Freq1: 480, Freq2: 620, Duration: 500}, {Duration: 500}}, false, -1},
		{"M69/100", []Part{{Freq1: 440, Duration: 100}}, false, -1},
		{"!M69+M81/50", []Part{{Once: true, Freq1: 440, Freq2: 880, Duration: 50}}, true, 400},
		{"!440", []Part{{Once: true, Freq1: 440}}, false, -1},
		{"!440/0", []Part{{Once: true, Freq1: 440}}, false, -1},
	}
	for _, tc := range tests {
		tn, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		got := tn.Parts()
		if len(got) != len(tc.parts) {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.in, got, tc.parts)
			continue
		}
		for i := range got {
			g, w := got[i], tc.parts[i]
			if g.Once != w.Once || g.Modulate != w.Modulate || g.Duration != w.Duration ||
				math.Abs(g.Freq1-w.Freq1) > 1e-9 || math.Abs(g.Freq2-w.Freq2) > 1e-9 {
				t.Errorf("Parse(%q) part %d = %+v, want %+v", tc.in, i, g, w)
			}
		}
		if tn.Finite() != tc.finite || tn.Length() != tc.length {
			t.Errorf("Parse(%q): Finite=%v Length=%d, want %v %d", tc.in, tn.Finite(), tn.Length(), tc.finite, tc.length)
		}
		if tn.String() != strings.TrimSpace(tc.in) {
			t.Errorf("String() = %q", tn.String())
		}
	}
}

func TestParseMalformed(t *testing.T) {
	bad := []string{
		"", " ", "abc", "ring", "440/", "/100", "440+", "+440", "440*", "440+620+700",
		"-440", "440/-1", "440/abc", "440/100x", "!", "!!440", "440,,0", "440,", ",440",
		"4 40", "440.5", "M", "M128", "M200/10", "4000", "10000/400", "440/100/100",
		"440/99999999999", "0x1b8", "440 / 100",
	}
	for _, s := range bad {
		if tn, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) = %+v, want error", s, tn.Parts())
		} else if !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) error %v does not wrap ErrSyntax", s, err)
		}
	}
}

func TestFrequencies(t *testing.T) {
	tests := []struct {
		spec    string
		present []float64
		absent  []float64
	}{
		{"440", []float64{440}, []float64{350, 480, 620, 1000}},
		{"350+440", []float64{350, 440}, []float64{480, 620, 1000}},
		{"480+620", []float64{480, 620}, []float64{350, 440, 1000}},
		{"1400", []float64{1400}, []float64{440, 950}},
		{"0+425", []float64{425}, []float64{400, 450}},
		{"M69", []float64{440}, []float64{425}},
		// AM: carrier and both sidebands.
		{"425*25", []float64{425, 400, 450}, []float64{300, 600}},
	}
	for _, tc := range tests {
		x := render(t, MustParse(tc.spec), 8000)
		for _, f := range tc.present {
			if a := amplitudeAt(x, f); a < 0.3*Amplitude {
				t.Errorf("%s: amplitude at %g Hz = %.0f, want >= %.0f", tc.spec, f, a, 0.3*Amplitude)
			}
		}
		for _, f := range tc.absent {
			if a := amplitudeAt(x, f); a > 0.01*Amplitude {
				t.Errorf("%s: amplitude at %g Hz = %.0f, want ~0", tc.spec, f, a)
			}
		}
	}
}

func TestLevelAndPhaseContinuity(t *testing.T) {
	// A steady 440 Hz tone read frame by frame must be the ideal sampled
	// sinusoid (phase continuous across frames) at Amplitude.
	x := render(t, MustParse("440"), 8000*3)
	for i, v := range x {
		want := Amplitude * math.Sin(2*math.Pi*440*float64(i)/SampleRate)
		if math.Abs(float64(v)-want) > 2 {
			t.Fatalf("sample %d = %d, want %.1f", i, v, want)
		}
	}
	if a := amplitudeAt(x, 440); math.Abs(a-Amplitude) > 0.01*Amplitude {
		t.Errorf("amplitude %.1f, want %d", a, Amplitude)
	}
	// Odd-sized reads give the same signal as one big read.
	y := make([]int16, 0, len(x))
	src := MustParse("440")
	buf := make([]int16, 97)
	for len(y) < len(x) {
		n, _ := src.Read(buf[:min(len(buf), len(x)-len(y))])
		y = append(y, buf[:n]...)
	}
	for i := range x {
		if x[i] != y[i] {
			t.Fatalf("sample %d differs with 97-sample reads: %d vs %d", i, y[i], x[i])
		}
	}
}

func TestCadence(t *testing.T) {
	tests := []struct {
		uri    string
		freqs  []float64
		on     []int // expected on/off durations (ms) of the repeating cycle
		cycles int
	}{
		{"ring;tonezone=fr", []float64{440}, []int{1500, 3500}, 3},
		{"ring", []float64{440, 480}, []int{2000, 4000}, 2},
		{"busy;tonezone=us", []float64{480, 620}, []int{500, 500}, 5},
		{"ring;tonezone=uk", []float64{400, 450}, []int{400, 200, 400, 2000}, 3},
		{"busy;tonezone=de", []float64{425}, []int{480, 480}, 4},
		{"ring;tonezone=de", []float64{425}, []int{1000, 4000}, 2},
		{"record;tonezone=de", []float64{1400}, []int{80, 15000}, 2},
		{"congestion;tonezone=it", []float64{425}, []int{200, 200}, 4},
		{"ring;TONEZONE=JP", []float64{400}, []int{1000, 2000}, 3},
		{"ring;tonezone=se", []float64{425}, []int{1000, 5000}, 2},
		{"440/1500,0/3500", []float64{440}, []int{1500, 3500}, 2},
	}
	for _, tc := range tests {
		tn, err := ParseURI(tc.uri, "")
		if err != nil {
			t.Fatalf("ParseURI(%q): %v", tc.uri, err)
		}
		period := 0
		for _, d := range tc.on {
			period += d
		}
		x := render(t, tn, period*tc.cycles*SampleRate/1000)
		runs := cadence(x)
		if len(runs) != len(tc.on)*tc.cycles {
			t.Errorf("%s: %d runs %v, want %d", tc.uri, len(runs), runs, len(tc.on)*tc.cycles)
			continue
		}
		for i, r := range runs {
			wantOn := i%2 == 0
			if r.on != wantOn || r.ms != tc.on[i%len(tc.on)] {
				t.Errorf("%s: run %d = %+v, want on=%v %d ms (runs %v)", tc.uri, i, r, wantOn, tc.on[i%len(tc.on)], runs)
				break
			}
		}
		// Frequency content of the first "on" period.
		first := x[:tc.on[0]*SampleRate/1000]
		for _, f := range tc.freqs {
			if a := amplitudeAt(first, f); a < 0.3*Amplitude {
				t.Errorf("%s: amplitude at %g Hz = %.0f", tc.uri, f, a)
			}
		}
		if tn.Length() != -1 {
			t.Errorf("%s: Length = %d, want -1", tc.uri, tn.Length())
		}
	}
}

func TestOnceParts(t *testing.T) {
	// All parts once: 100 ms tone + 100 ms silence, then EOF.
	tn := MustParse("!350+440/100,!0/100")
	buf := make([]int16, 160)
	var all []int16
	for {
		n, err := tn.Read(buf)
		if err == io.EOF {
			if n != 0 {
				t.Fatalf("EOF with n=%d", n)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, buf[:n]...)
		if len(all) > 10000 {
			t.Fatal("no EOF")
		}
	}
	if len(all) != 1600 {
		t.Fatalf("played %d samples, want 1600", len(all))
	}
	if r := rms(all[:800]); r < 1000 {
		t.Errorf("tone part rms %.0f", r)
	}
	if r := rms(all[800:]); r != 0 {
		t.Errorf("silent part rms %.0f", r)
	}
	// EOF is sticky.
	if n, err := tn.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("Read after EOF = %d, %v", n, err)
	}

	// Short final read: 240 samples = 160 + 80, then EOF.
	tn = MustParse("!440/30")
	if n, err := tn.Read(buf); n != 160 || err != nil {
		t.Fatalf("read 1 = %d, %v", n, err)
	}
	if n, err := tn.Read(buf); n != 80 || err != nil {
		t.Fatalf("read 2 = %d, %v", n, err)
	}
	if n, err := tn.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read 3 = %d, %v", n, err)
	}

	// Once prefix, then a repeating cadence: US stutter dial tone is six
	// 100 ms bursts and then steady dial tone.
	tn, err := ParseURI("stutter", "us")
	if err != nil {
		t.Fatal(err)
	}
	runs := cadence(render(t, tn, 8000*3))
	want := []run{{true, 100}, {false, 100}, {true, 100}, {false, 100}, {true, 100}, {false, 100},
		{true, 100}, {false, 100}, {true, 100}, {false, 100}, {true, 100}, {false, 100}, {true, 1800}}
	if len(runs) != len(want) {
		t.Fatalf("stutter runs %v, want %v", runs, want)
	}
	for i := range want {
		if runs[i] != want[i] {
			t.Fatalf("stutter runs %v, want %v", runs, want)
		}
	}

	// Once prefix then cycle: the prefix is not repeated.
	tn = MustParse("!1000/100,440/100,0/100")
	x := render(t, tn, 8000)
	if a := amplitudeAt(x[:800], 1000); a < 0.9*Amplitude {
		t.Errorf("prefix 1000 Hz amplitude %.0f", a)
	}
	if a := amplitudeAt(x[800:], 1000); a > 0.02*Amplitude {
		t.Errorf("prefix repeated: 1000 Hz amplitude %.0f after it", a)
	}
	if a := amplitudeAt(x[5600:6400], 440); a < 0.9*Amplitude {
		t.Errorf("cycle 440 Hz amplitude %.0f in the 4th cycle", a)
	}
}

func TestSeek(t *testing.T) {
	for _, spec := range []string{"440/1500,0/3500", "!1000/100,350+440/250,0/130", "425*24/400,0/200", "440", "!440/300,!0/200"} {
		tn := MustParse(spec)
		total := 8000 * 4
		if tn.Finite() {
			total = int(tn.Length())
		}
		ref := render(t, MustParse(spec), total)
		render(t, tn, min(total, 12345))
		// Restart.
		if pos, err := tn.Seek(0, io.SeekStart); err != nil || pos != 0 {
			t.Fatalf("%s: Seek(0) = %d, %v", spec, pos, err)
		}
		lim := len(ref)
		if tn.Finite() {
			lim = int(tn.Length())
		}
		got := render(t, tn, min(lim, 8000))
		for i := range got {
			if got[i] != ref[i] {
				t.Fatalf("%s: after restart sample %d = %d, want %d", spec, i, got[i], ref[i])
			}
		}
		if tn.Finite() {
			continue
		}
		// Arbitrary positions match continuous playback.
		for _, p := range []int64{1, 799, 800, 12000, 13000, 25601, 31999} {
			if pos, err := tn.Seek(p, io.SeekStart); err != nil || pos != p {
				t.Fatalf("%s: Seek(%d) = %d, %v", spec, p, pos, err)
			}
			got := render(t, tn, 1)
			if got[0] != ref[p] {
				t.Fatalf("%s: at %d sample %d, want %d", spec, p, got[0], ref[p])
			}
		}
		// Relative seeks (forward / reverse) and clamping at 0.
		tn.Seek(16000, io.SeekStart)
		if pos, _ := tn.Seek(-3000*8, io.SeekCurrent); pos != 0 {
			t.Errorf("%s: reverse past start = %d, want 0", spec, pos)
		}
		if pos, _ := tn.Seek(2400, io.SeekCurrent); pos != 2400 {
			t.Errorf("%s: forward = %d, want 2400", spec, pos)
		}
		if _, err := tn.Seek(0, io.SeekEnd); err == nil {
			t.Errorf("%s: SeekEnd on endless tone succeeded", spec)
		}
	}

	// Finite tone: seeking beyond the end clamps to the end (then EOF).
	tn := MustParse("!440/300,!0/200")
	if pos, err := tn.Seek(1e9, io.SeekStart); err != nil || pos != 4000 {
		t.Fatalf("Seek beyond end = %d, %v", pos, err)
	}
	if n, err := tn.Read(make([]int16, 160)); n != 0 || err != io.EOF {
		t.Fatalf("Read at end = %d, %v", n, err)
	}
	if pos, _ := tn.Seek(-800, io.SeekEnd); pos != 3200 {
		t.Fatalf("SeekEnd-800 = %d", pos)
	}
	if n, err := tn.Read(make([]int16, 1000)); n != 800 || err != nil {
		t.Fatalf("Read near end = %d, %v", n, err)
	}
	if _, err := tn.Seek(0, 42); err == nil {
		t.Error("bad whence accepted")
	}
	// Restart after EOF.
	tn.Seek(0, io.SeekStart)
	if n, err := tn.Read(make([]int16, 160)); n != 160 || err != nil {
		t.Fatalf("Read after restart = %d, %v", n, err)
	}
}

func TestClone(t *testing.T) {
	a := MustParse("440/100,0/100")
	render(t, a, 1234)
	b := a.Clone()
	if b.Position() != 0 {
		t.Fatalf("clone position %d", b.Position())
	}
	x := render(t, b, 1600)
	y := render(t, MustParse("440/100,0/100"), 1600)
	for i := range x {
		if x[i] != y[i] {
			t.Fatalf("clone differs at %d", i)
		}
	}
	if a.Position() != 1234 {
		t.Fatalf("original moved to %d", a.Position())
	}
}

func TestZones(t *testing.T) {
	for _, cc := range []string{"us", "uk", "fr", "de", "it", "jp", "au", "nl", "se"} {
		if _, ok := Zone(cc); !ok {
			t.Errorf("zone %s missing", cc)
		}
	}
	for _, cc := range Zones() {
		z, _ := Zone(cc)
		if z["description"] == "" {
			t.Errorf("zone %s: no description", cc)
		}
		for _, ind := range Indications {
			s, err := Lookup(ind, cc)
			if err != nil {
				t.Errorf("zone %s: %v", cc, err)
				continue
			}
			if s != z[ind] {
				t.Errorf("zone %s %s: Lookup %q != Zone %q", cc, ind, s, z[ind])
			}
		}
		for name, s := range z {
			if name == "description" {
				continue
			}
			tn, err := Parse(s)
			if err != nil {
				t.Errorf("zone %s %s = %q: %v", cc, name, s, err)
				continue
			}
			// Every indication produces sound within its first 20 s.
			x := make([]int16, 0, 160000)
			buf := make([]int16, 160)
			for len(x) < cap(x) {
				n, err := tn.Read(buf)
				if err != nil {
					break
				}
				x = append(x, buf[:n]...)
			}
			if rms(x) < 10 {
				t.Errorf("zone %s %s: silent", cc, name)
			}
		}
	}
	// Zone returns a copy.
	z, _ := Zone("fr")
	z["ring"] = "1000"
	if s, _ := Lookup("ring", "fr"); s != "440/1500,0/3500" {
		t.Errorf("Zone result aliases the table: fr ring = %q", s)
	}
	// Defaults and aliases.
	if s, _ := Lookup("dial", ""); s != "350+440" {
		t.Errorf("default zone dial = %q", s)
	}
	if s, _ := Lookup("BUSY", "GB"); s != "400/375,0/375" {
		t.Errorf("gb busy = %q", s)
	}
	if _, err := Lookup("ring", "zz"); !errors.Is(err, ErrUnknownZone) {
		t.Errorf("unknown zone: %v", err)
	}
	if _, err := Lookup("nope", "us"); !errors.Is(err, ErrUnknownIndication) {
		t.Errorf("unknown indication: %v", err)
	}
	if _, err := Lookup("description", "us"); !errors.Is(err, ErrUnknownIndication) {
		t.Errorf("description as indication: %v", err)
	}
}

func TestParseURI(t *testing.T) {
	ok := []struct {
		uri, def, want string
	}{
		{"ring;tonezone=fr", "", "440/1500,0/3500"},
		{"ring", "", "440+480/2000,0/4000"},
		{"ring", "de", "425/1000,0/4000"},
		{"ring;tonezone=fr", "de", "440/1500,0/3500"},
		{"record;tonezone=de", "", "1400/80,0/15000"},
		{"busy; tonezone = uk", "", "400/375,0/375"},
		{"!350+440/100,!0/100", "", "!350+440/100,!0/100"},
		{"480+620/500,0/500;tonezone=fr", "", "480+620/500,0/500"},
		{"ring;foo=bar;tonezone=it", "", "425/1000,0/4000"},
	}
	for _, tc := range ok {
		tn, err := ParseURI(tc.uri, tc.def)
		if err != nil {
			t.Errorf("ParseURI(%q, %q): %v", tc.uri, tc.def, err)
			continue
		}
		if tn.String() != tc.want {
			t.Errorf("ParseURI(%q, %q) = %q, want %q", tc.uri, tc.def, tn.String(), tc.want)
		}
	}
	bad := []struct {
		uri, def string
		want     error
	}{
		{"ringing", "", ErrUnknownIndication},
		{"description", "", ErrUnknownIndication},
		{"ring;tonezone=zz", "", ErrUnknownZone},
		{"ring", "xx", ErrUnknownZone},
		{"440/", "", ErrUnknownIndication},
		{"", "", nil},
		{";tonezone=fr", "", nil},
	}
	for _, tc := range bad {
		_, err := ParseURI(tc.uri, tc.def)
		if err == nil {
			t.Errorf("ParseURI(%q, %q) succeeded", tc.uri, tc.def)
		} else if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("ParseURI(%q, %q) = %v, want %v", tc.uri, tc.def, err, tc.want)
		}
	}
}

func TestReadAllocs(t *testing.T) {
	for _, spec := range []string{"440+480/2000,0/4000", "425*24/400,0/200", "!350+440/100,!0/100,350+440", "440"} {
		tn := MustParse(spec)
		buf := make([]int16, 160)
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := tn.Read(buf); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocs per Read, want 0", spec, allocs)
		}
	}
	tn := MustParse("440/1500,0/3500")
	allocs := testing.AllocsPerRun(100, func() { tn.Seek(12345, io.SeekStart) })
	if allocs != 0 {
		t.Errorf("%.1f allocs per Seek", allocs)
	}
}

func TestEmptyRead(t *testing.T) {
	tn := MustParse("!440/10")
	if n, err := tn.Read(nil); n != 0 || err != nil {
		t.Errorf("Read(nil) = %d, %v", n, err)
	}
}

func benchTone(b *testing.B, spec string) {
	tn := MustParse(spec)
	buf := make([]int16, 160)
	b.ReportAllocs()
	b.SetBytes(320)
	for b.Loop() {
		if _, err := tn.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadSingle(b *testing.B)  { benchTone(b, "440") }
func BenchmarkReadDual(b *testing.B)    { benchTone(b, "440+480/2000,0/4000") }
func BenchmarkReadAM(b *testing.B)      { benchTone(b, "425*24") }
func BenchmarkReadStutter(b *testing.B) { benchTone(b, bursts(6, 100, "350+440", "350+440")) }
func BenchmarkReadSilence(b *testing.B) { benchTone(b, "0") }
func BenchmarkReadFrRing(b *testing.B)  { benchTone(b, "440/1500,0/3500") }
