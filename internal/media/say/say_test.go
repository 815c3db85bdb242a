package say

import (
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/tapedeck/tapedeck/internal/media"
)

func TestWords(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "zero"},
		{7, "seven"},
		{13, "thirteen"},
		{20, "twenty"},
		{21, "twenty one"},
		{100, "one hundred"},
		{101, "one hundred one"},
		{110, "one hundred ten"},
		{999, "nine hundred ninety nine"},
		{1000, "one thousand"},
		{1234, "one thousand two hundred thirty four"},
		{20015, "twenty thousand fifteen"},
		{100000, "one hundred thousand"},
		{1000000, "one million"},
		{2000000013, "two billion thirteen"},
		{-5, "minus five"},
		{-1100, "minus one thousand one hundred"},
		{987654321012, "nine hundred eighty seven billion six hundred fifty four million three hundred twenty one thousand twelve"},
		{MaxNumber, "nine hundred ninety nine billion nine hundred ninety nine million nine hundred ninety nine thousand nine hundred ninety nine"},
	}
	for _, tc := range tests {
		if got := strings.Join(Words(tc.n), " "); got != tc.want {
			t.Errorf("Words(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	for _, n := range []int64{MaxNumber + 1, -MaxNumber - 1, math.MaxInt64, math.MinInt64} {
		if w := Words(n); w != nil {
			t.Errorf("Words(%d) = %v, want nil", n, w)
		}
	}
}

func TestPromptsComplete(t *testing.T) {
	have := Prompts("en")
	var need []string
	for i := int64(0); i <= 100; i++ {
		need = append(need, Words(i)...)
	}
	need = append(need, Words(-1_234_567_890)...)
	need = append(need, CharacterWords("abcdefghijklmnopqrstuvwxyz0123456789*#!@$-.=+/ ")...)
	w, _ := DigitWords("*#-")
	need = append(need, w...)
	all, err := loadPrompts()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range need {
		if !slices.Contains(have, n) {
			t.Errorf("prompt %q missing", n)
		}
	}
	var total int
	for name, pcm := range all["en"] {
		total += 2 * len(pcm)
		if len(pcm) < 800 || len(pcm) > 16000 {
			t.Errorf("prompt %q is %d samples (want 0.1 s .. 2 s)", name, len(pcm))
		}
		var peak int
		for _, v := range pcm {
			peak = max(peak, abs(int(v)))
		}
		// Normalised to about -6 dBFS (16384).
		if peak < 12000 || peak > 20000 {
			t.Errorf("prompt %q peak %d, want about 16384", name, peak)
		}
	}
	if total > 1<<20 {
		t.Errorf("prompts total %d bytes, want < 1 MiB", total)
	}
	t.Logf("%d prompts, %d bytes", len(all["en"]), total)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func readAll(t testing.TB, src media.Source, frame int) []int16 {
	t.Helper()
	var out []int16
	buf := make([]int16, frame)
	for {
		n, err := src.Read(buf)
		if err == io.EOF {
			if n != 0 {
				t.Fatalf("EOF with n=%d", n)
			}
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatal("Read returned 0, nil")
		}
		out = append(out, buf[:n]...)
	}
}

func expectedLength(t *testing.T, words []string) int64 {
	all, _ := loadPrompts()
	var n int64
	for i, w := range words {
		if i > 0 {
			n += Gap
		}
		n += int64(len(all["en"][w]))
	}
	return n
}

func TestSources(t *testing.T) {
	tests := []struct {
		name  string
		mk    func() (media.Source, error)
		words string
	}{
		{"number 1234", func() (media.Source, error) { return Number(1234, "en") }, "one thousand two hundred thirty four"},
		{"number 0", func() (media.Source, error) { return Number(0, "") }, "zero"},
		{"number -5 fr", func() (media.Source, error) { return Number(-5, "fr") }, "minus five"},
		{"numberstring", func() (media.Source, error) { return NumberString(" +42 ", "en_US") }, "forty two"},
		{"digits", func() (media.Source, error) { return Digits("1024*#", "en") }, "one zero two four star pound"},
		{"characters", func() (media.Source, error) { return Characters("Ab-1 @x.", "en") }, "a b dash one space at x dot"},
		{"characters skip", func() (media.Source, error) { return Characters("é~Z", "de") }, "z"},
		{"uri number", func() (media.Source, error) { return FromURI("number:2000000013", "en") }, "two billion thirteen"},
		{"uri digits", func() (media.Source, error) { return FromURI("digits:911", "en") }, "nine one one"},
		{"uri characters", func() (media.Source, error) { return FromURI("characters:OK!", "en") }, "o k exclamation-point"},
	}
	for _, tc := range tests {
		src, err := tc.mk()
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		sp := src.(*Speech)
		if got := strings.Join(sp.Words(), " "); got != tc.words {
			t.Errorf("%s: words %q, want %q", tc.name, got, tc.words)
		}
		if sp.Lang() != "en" {
			t.Errorf("%s: lang %q", tc.name, sp.Lang())
		}
		want := expectedLength(t, sp.Words())
		d := src.(media.Durationer)
		if d.Length() != want {
			t.Errorf("%s: Length %d, want %d", tc.name, d.Length(), want)
		}
		pcm := readAll(t, src, 160)
		if int64(len(pcm)) != want {
			t.Errorf("%s: produced %d samples, want %d", tc.name, len(pcm), want)
		}
		// Non-silent: RMS well above zero, and each prompt region has energy.
		var e float64
		for _, v := range pcm {
			e += float64(v) * float64(v)
		}
		if r := math.Sqrt(e / float64(len(pcm))); r < 500 {
			t.Errorf("%s: rms %.0f, want speech", tc.name, r)
		}
		// The gaps are exact silence.
		for _, sg := range sp.segs {
			if sg.pcm != nil {
				continue
			}
			for _, v := range pcm[sg.start : sg.start+sg.n] {
				if v != 0 {
					t.Fatalf("%s: gap at %d not silent", tc.name, sg.start)
				}
			}
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		mk   func() (media.Source, error)
		want error
	}{
		{"number big", func() (media.Source, error) { return Number(MaxNumber+1, "en") }, ErrOutOfRange},
		{"number min", func() (media.Source, error) { return Number(math.MinInt64, "en") }, ErrOutOfRange},
		{"numberstring float", func() (media.Source, error) { return NumberString("1.5", "en") }, ErrNotInteger},
		{"numberstring junk", func() (media.Source, error) { return NumberString("12abc", "en") }, ErrNotInteger},
		{"numberstring empty", func() (media.Source, error) { return NumberString("", "en") }, ErrNotInteger},
		{"numberstring word", func() (media.Source, error) { return NumberString("five", "en") }, ErrNotInteger},
		{"numberstring hex", func() (media.Source, error) { return NumberString("0x10", "en") }, ErrNotInteger},
		{"numberstring overflow", func() (media.Source, error) { return NumberString("99999999999999999999", "en") }, ErrOutOfRange},
		{"uri number float", func() (media.Source, error) { return FromURI("number:3.14", "en") }, ErrNotInteger},
		{"digits letter", func() (media.Source, error) { return Digits("12a4", "en") }, ErrBadDigit},
		{"digits space", func() (media.Source, error) { return Digits("1 2", "en") }, ErrBadDigit},
		{"digits empty", func() (media.Source, error) { return Digits("", "en") }, ErrEmpty},
		{"characters empty", func() (media.Source, error) { return Characters("", "en") }, ErrEmpty},
		{"characters unsupported", func() (media.Source, error) { return Characters("~^", "en") }, ErrEmpty},
		{"uri sound", func() (media.Source, error) { return FromURI("sound:hello", "en") }, ErrUnknownScheme},
		{"uri none", func() (media.Source, error) { return FromURI("1234", "en") }, ErrUnknownScheme},
	}
	for _, tc := range tests {
		src, err := tc.mk()
		if err == nil {
			t.Errorf("%s: got %v, want error", tc.name, src)
		} else if !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestLanguage(t *testing.T) {
	for in, want := range map[string]string{"": "en", "en": "en", "en_US": "en", "EN-gb": "en", "fr": "en", "de_DE": "en"} {
		if got := Language(in); got != want {
			t.Errorf("Language(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSeek(t *testing.T) {
	src, err := Number(1234, "en")
	if err != nil {
		t.Fatal(err)
	}
	ref := readAll(t, src, 160)
	sk := src.(media.Seeker)
	// Restart after EOF.
	if p, err := sk.Seek(0, io.SeekStart); p != 0 || err != nil {
		t.Fatalf("Seek(0) = %d, %v", p, err)
	}
	if got := readAll(t, src, 73); !slices.Equal(got, ref) {
		t.Fatal("restart does not replay the same audio")
	}
	sp := src.(*Speech)
	// Arbitrary positions, including segment boundaries.
	positions := []int64{0, 1, 159, 4000, sp.Length() - 1}
	for _, sg := range sp.segs {
		positions = append(positions, sg.start, sg.start+sg.n-1)
	}
	for _, p := range positions {
		if got, err := sk.Seek(p, io.SeekStart); got != p || err != nil {
			t.Fatalf("Seek(%d) = %d, %v", p, got, err)
		}
		rest := readAll(t, src, 160)
		if !slices.Equal(rest, ref[p:]) {
			t.Fatalf("audio after Seek(%d) differs", p)
		}
	}
	// Relative seeks (skipms-style forward/reverse) and clamping.
	sk.Seek(8000, io.SeekStart)
	if p, _ := sk.Seek(-3*8000, io.SeekCurrent); p != 0 {
		t.Errorf("reverse past start = %d, want 0", p)
	}
	if p, _ := sk.Seek(3*8000, io.SeekCurrent); p != min(3*8000, sp.Length()) {
		t.Errorf("forward = %d", p)
	}
	if p, _ := sk.Seek(1<<40, io.SeekCurrent); p != sp.Length() {
		t.Errorf("forward past end = %d, want %d", p, sp.Length())
	}
	if n, err := src.Read(make([]int16, 160)); n != 0 || err != io.EOF {
		t.Errorf("Read at end = %d, %v", n, err)
	}
	if p, _ := sk.Seek(-160, io.SeekEnd); p != sp.Length()-160 {
		t.Errorf("SeekEnd = %d", p)
	}
	if n, err := src.Read(make([]int16, 1000)); n != 160 || err != nil {
		t.Errorf("short final read = %d, %v", n, err)
	}
	if _, err := sk.Seek(0, 7); err == nil {
		t.Error("bad whence accepted")
	}
}

func TestReadAllocs(t *testing.T) {
	src, err := Number(-987654321, "en")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]int16, 160)
	allocs := testing.AllocsPerRun(500, func() {
		if _, err := src.Read(buf); err == io.EOF {
			src.(media.Seeker).Seek(0, io.SeekStart)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocs per Read", allocs)
	}
}

func BenchmarkRead(b *testing.B) {
	src, err := Number(-987654321, "en")
	if err != nil {
		b.Fatal(err)
	}
	sk := src.(media.Seeker)
	buf := make([]int16, 160)
	b.ReportAllocs()
	b.SetBytes(320)
	for b.Loop() {
		if _, err := src.Read(buf); err == io.EOF {
			sk.Seek(0, io.SeekStart)
		}
	}
}

func BenchmarkNumber(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Number(1234, "en"); err != nil {
			b.Fatal(err)
		}
	}
}
