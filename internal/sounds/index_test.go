package sounds

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

type tree struct {
	dir1, dir2 string
	monkeys    []int16 // dir1/en/tt-monkeys.wav, 8 kHz
	digit1     []int16 // dir1/en/digits/1.wav
	beep       []int16 // dir1/beep.ulaw (decoded values)
}

// makeTree builds two sound directories:
//
//	dir1/en/tt-monkeys.wav          8 kHz mono
//	dir1/en/digits/1.wav            8 kHz mono
//	dir1/en/core-sounds-en.txt      descriptions
//	dir1/en/readme.txt, x.mp3       ignored
//	dir1/fr/tt-monkeys.sln16        16 kHz raw
//	dir1/en_US_f_Allison/hello.wav  48 kHz stereo
//	dir1/beep.ulaw                  no language
//	dir1/digits/2.sln               top-level non-language dir, no language
//	dir2/en/tt-monkeys.alaw         lower priority
//	dir2/de/extra.wav               16 kHz mono
func makeTree(t *testing.T) *tree {
	t.Helper()
	root := t.TempDir()
	tr := &tree{dir1: filepath.Join(root, "a"), dir2: filepath.Join(root, "b")}
	tr.monkeys = ramp(8000 * 3)
	tr.digit1 = sine(4000, 8000, 440, 8000)
	writeFile(t, filepath.Join(tr.dir1, "en/tt-monkeys.wav"), wavBytes(8000, 1, tr.monkeys))
	writeFile(t, filepath.Join(tr.dir1, "en/digits/1.wav"), wavBytes(8000, 1, tr.digit1))
	writeFile(t, filepath.Join(tr.dir1, "en/core-sounds-en.txt"), []byte("; comment\ntt-monkeys: Monkeys screaming\ndigits/1: 1\n"))
	writeFile(t, filepath.Join(tr.dir1, "en/readme.txt"), []byte("hi"))
	writeFile(t, filepath.Join(tr.dir1, "en/x.mp3"), []byte("ID3"))
	writeFile(t, filepath.Join(tr.dir1, "fr/tt-monkeys.sln16"), slnBytes(sine(16000, 16000, 1000, 10000)))
	tone := sine(48000, 48000, 1000, 12000)
	writeFile(t, filepath.Join(tr.dir1, "en_US_f_Allison/hello.wav"), wavBytes(48000, 2, interleave(tone, tone)))
	beep := sine(800, 8000, 1000, 6000)
	writeFile(t, filepath.Join(tr.dir1, "beep.ulaw"), ulawBytes(beep))
	tr.beep = make([]int16, len(beep))
	c, _ := Decode(bytesReader(ulawBytes(beep)), "ulaw")
	copy(tr.beep, c.Samples())
	writeFile(t, filepath.Join(tr.dir1, "digits/2.sln"), slnBytes(ramp(1600)))
	writeFile(t, filepath.Join(tr.dir2, "en/tt-monkeys.alaw"), make([]byte, 800))
	writeFile(t, filepath.Join(tr.dir2, "de/extra.wav"), wavBytes(16000, 1, sine(16000, 16000, 500, 5000)))
	return tr
}

func ids(ss []Sound) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

func TestIndexListGet(t *testing.T) {
	tr := makeTree(t)
	ix := NewIndex([]string{tr.dir1, tr.dir2, filepath.Join(tr.dir1, "missing")})

	all := ix.List("", "")
	if got, want := ids(all), []string{"beep", "digits/1", "digits/2", "extra", "hello", "tt-monkeys"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("List ids = %v, want %v", got, want)
	}
	s, ok := ix.Get("tt-monkeys")
	if !ok {
		t.Fatal("Get(tt-monkeys) not found")
	}
	want := Sound{ID: "tt-monkeys", Text: "Monkeys screaming", Formats: []FormatLang{
		{"en", "alaw"}, {"en", "wav"}, {"fr", "slin16"},
	}}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("Get = %+v, want %+v", s, want)
	}
	b, _ := json.Marshal(s)
	if string(b) != `{"id":"tt-monkeys","text":"Monkeys screaming","formats":[{"language":"en","format":"alaw"},{"language":"en","format":"wav"},{"language":"fr","format":"slin16"}]}` {
		t.Fatalf("JSON = %s", b)
	}
	if s, _ := ix.Get("hello"); !reflect.DeepEqual(s.Formats, []FormatLang{{"en", "wav"}}) {
		t.Fatalf("hello formats = %+v (en_US_f_Allison must be reported as en)", s.Formats)
	}
	if s, _ := ix.Get("beep"); !reflect.DeepEqual(s.Formats, []FormatLang{{"", "ulaw"}}) {
		t.Fatalf("beep formats = %+v", s.Formats)
	}
	if s, _ := ix.Get("digits/2"); !reflect.DeepEqual(s.Formats, []FormatLang{{"", "slin"}}) {
		t.Fatalf("digits/2 formats = %+v", s.Formats)
	}
	if _, ok := ix.Get("nope"); ok {
		t.Fatal("Get(nope) found")
	}
	if _, ok := ix.Get("x"); ok {
		t.Fatal("Get(x) found an .mp3")
	}

	for _, c := range []struct {
		lang, format string
		want         []string
	}{
		{"fr", "", []string{"tt-monkeys"}},
		{"en", "", []string{"digits/1", "hello", "tt-monkeys"}},
		{"en_US", "", []string{"hello"}},
		{"en_US_f_Allison", "", []string{"hello"}},
		{"", "slin16", []string{"tt-monkeys"}},
		{"", "sln16", []string{"tt-monkeys"}},
		{"", "pcm", []string{"beep"}},
		{"en", "alaw", []string{"tt-monkeys"}},
		{"de", "wav", []string{"extra"}},
		{"it", "", nil},
	} {
		got := ix.List(c.lang, c.format)
		if got == nil {
			t.Fatalf("List(%q,%q) = nil, want non-nil", c.lang, c.format)
		}
		if !slices.Equal(ids(got), c.want) {
			t.Errorf("List(%q,%q) = %v, want %v", c.lang, c.format, ids(got), c.want)
		}
	}
	if got := ix.List("fr", ""); !reflect.DeepEqual(got[0].Formats, []FormatLang{{"fr", "slin16"}}) {
		t.Errorf("List(fr) formats = %+v", got[0].Formats)
	}
	if err := ix.Err(); err != nil {
		t.Errorf("Err = %v", err)
	}
}

func TestIndexOpenLanguage(t *testing.T) {
	tr := makeTree(t)
	ix := NewIndex([]string{tr.dir1, tr.dir2})
	for _, c := range []struct {
		id, lang     string
		dir, format  string
		reportedLang string
	}{
		{"tt-monkeys", "en", "en", "wav", "en"},
		{"tt-monkeys", "", "en", "wav", "en"},
		{"tt-monkeys", "fr", "fr", "slin16", "fr"},
		{"tt-monkeys", "fr_CA", "fr", "slin16", "fr"}, // base language
		{"tt-monkeys", "de", "en", "wav", "en"},       // then en
		{"hello", "en", "en_US_f_Allison", "wav", "en"},
		{"hello", "en_US", "en_US_f_Allison", "wav", "en"},
		{"hello", "fr", "en_US_f_Allison", "wav", "en"},
		{"beep", "en", "", "ulaw", ""},     // no language
		{"extra", "en", "de", "wav", "de"}, // any language
		{"digits/1", "en_GB", "en", "wav", "en"},
	} {
		f, err := ix.Resolve(c.id, c.lang)
		if err != nil {
			t.Fatalf("Resolve(%q,%q): %v", c.id, c.lang, err)
		}
		if f.Dir != c.dir || f.Format != c.format || f.Language != c.reportedLang {
			t.Errorf("Resolve(%q,%q) = %+v, want dir %q format %q lang %q", c.id, c.lang, f, c.dir, c.format, c.reportedLang)
		}
		if _, err := ix.Open(c.id, c.lang); err != nil {
			t.Errorf("Open(%q,%q): %v", c.id, c.lang, err)
		}
	}

	// exact content at 8 kHz
	m, err := ix.Open("tt-monkeys", "en")
	if err != nil {
		t.Fatal(err)
	}
	if m.Length() != int64(len(tr.monkeys)) {
		t.Fatalf("Length = %d, want %d", m.Length(), len(tr.monkeys))
	}
	if got := readAll(t, m); !slices.Equal(got, tr.monkeys) {
		t.Fatal("decoded tt-monkeys differs from what was written")
	}
	m, _ = ix.Open("digits/1", "en")
	if got := readAll(t, m); !slices.Equal(got, tr.digit1) {
		t.Fatal("decoded digits/1 differs")
	}
	m, _ = ix.Open("beep", "")
	if got := readAll(t, m); !slices.Equal(got, tr.beep) {
		t.Fatal("decoded beep.ulaw differs")
	}
	// a second Open gets an independent clip (cached samples)
	m1, _ := ix.Open("tt-monkeys", "en")
	m2, _ := ix.Open("tt-monkeys", "en")
	m1.Seek(100, 0)
	if p, _ := m2.Seek(0, 1); p != 0 {
		t.Fatalf("clips share their position")
	}

	// resampled: 16 kHz raw -> 1 s at 8 kHz with a 1 kHz tone of amplitude 10000
	m, _ = ix.Open("tt-monkeys", "fr")
	got := readAll(t, m)
	if len(got) != 8000 {
		t.Fatalf("slin16 1 s decoded to %d samples", len(got))
	}
	if a := toneAmp(got[1000:7000], 1000); a < 9900 || a > 10100 {
		t.Errorf("slin16 1 kHz amplitude = %.0f, want ~10000", a)
	}
	// 48 kHz stereo, both channels the same tone of 12000
	m, _ = ix.Open("hello", "en")
	got = readAll(t, m)
	if len(got) != 8000 {
		t.Fatalf("48k 1 s decoded to %d samples", len(got))
	}
	if a := toneAmp(got[1000:7000], 1000); a < 11880 || a > 12120 {
		t.Errorf("48k stereo 1 kHz amplitude = %.0f, want ~12000", a)
	}
}

func TestIndexInvalidNames(t *testing.T) {
	tr := makeTree(t)
	secret := filepath.Join(filepath.Dir(tr.dir1), "secret.wav")
	writeFile(t, secret, wavBytes(8000, 1, ramp(100)))
	ix := NewIndex([]string{tr.dir1, tr.dir2})
	for _, id := range []string{"", "../secret", "en/../../secret", "/etc/passwd", secret[:len(secret)-4],
		"a\x00b", "tt-monkeys\x00", "./tt-monkeys", "digits//1", "digits/1/", `..\secret`, "a\\b", "..", "x/..", "a\nb"} {
		if _, err := ix.Open(id, "en"); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Open(%q) err = %v, want ErrInvalidName", id, err)
		}
		if _, ok := ix.Get(id); ok {
			t.Errorf("Get(%q) found", id)
		}
	}
	if _, err := ix.Open("nope", "en"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open(nope) err = %v, want ErrNotFound", err)
	}
	if _, err := ix.Open("readme", "en"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open(readme) err = %v, want ErrNotFound (.txt not a sound)", err)
	}
}

func TestIndexRescanAndCache(t *testing.T) {
	tr := makeTree(t)
	ix := NewIndex([]string{tr.dir1})
	ix.List("", "")
	// a file added after the scan: found by Refresh (and by Get/Open misses after rescanInterval)
	writeFile(t, filepath.Join(tr.dir1, "en/new.wav"), wavBytes(8000, 1, ramp(160)))
	ix.Refresh()
	if _, ok := ix.Get("new"); !ok {
		t.Fatal("not found after Refresh")
	}
	// a rewritten file is decoded again (size/mtime changed)
	p := filepath.Join(tr.dir1, "en/new.wav")
	m, _ := ix.Open("new", "en")
	if m.Length() != 160 {
		t.Fatal(m.Length())
	}
	writeFile(t, p, wavBytes(8000, 1, ramp(320)))
	os.Chtimes(p, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	m, _ = ix.Open("new", "en")
	if m.Length() != 320 {
		t.Fatalf("stale cache: Length = %d, want 320", m.Length())
	}
	// a deleted file fails to open (the playback fails)
	os.Remove(p)
	if _, err := ix.Open("new", "en"); err == nil {
		t.Fatal("Open of a deleted file succeeded")
	}
	// a broken preferred file falls back to the next candidate
	writeFile(t, filepath.Join(tr.dir1, "en/dual.wav"), []byte("garbage, not RIFF"))
	writeFile(t, filepath.Join(tr.dir1, "en/dual.sln"), slnBytes(ramp(80)))
	ix.Refresh()
	m, err := ix.Open("dual", "en")
	if err != nil || m.Length() != 80 {
		t.Fatalf("fallback to .sln: %v", err)
	}
}

func TestDefaultDirs(t *testing.T) {
	d := t.TempDir()
	if got := DefaultDirs(d); slices.Contains(got, filepath.Join(d, "sounds")) {
		t.Fatalf("missing dir listed: %v", got)
	}
	os.Mkdir(filepath.Join(d, "sounds"), 0o755)
	got := DefaultDirs(d)
	if len(got) == 0 || got[0] != filepath.Join(d, "sounds") {
		t.Fatalf("DefaultDirs = %v", got)
	}
	for _, g := range got[1:] {
		if fi, err := os.Stat(g); err != nil || !fi.IsDir() {
			t.Errorf("listed non-directory %s", g)
		}
	}
}

func TestLangAliases(t *testing.T) {
	for name, want := range map[string][]string{
		"en":              {"en"},
		"fr_CA":           {"fr_CA", "fr"},
		"en_US_f_Allison": {"en_US_f_Allison", "en_US", "en"},
		"digits":          nil,
		"silence":         nil,
		"custom":          nil,
		"e":               nil,
		"en_":             nil,
		"1x":              nil,
	} {
		if got := langAliases(name); !slices.Equal(got, want) {
			t.Errorf("langAliases(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestDebianSounds checks the real English prompts of Debian's
// asterisk-core-sounds-en-wav (installed by scripts/test-deps.sh).
func TestDebianSounds(t *testing.T) {
	const probe = "/usr/share/asterisk/sounds/en_US_f_Allison/tt-monkeys.wav"
	if _, err := os.Stat(probe); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing under CI (scripts/test-deps.sh installs asterisk-core-sounds-en-wav): %v", probe, err)
		}
		t.Skipf("%s not installed (apt-get install asterisk-core-sounds-en-wav): %v", probe, err)
	}
	ix := NewIndex([]string{"/usr/share/asterisk/sounds"})
	m, err := ix.Open("tt-monkeys", "en")
	if err != nil {
		t.Fatal(err)
	}
	if secs := float64(m.Length()) / OutputRate; secs < 5 || secs > 60 {
		t.Fatalf("tt-monkeys is %.1f s long", secs)
	}
	pcm := readAll(t, m)
	if r := rms(pcm); r < 300 {
		t.Fatalf("tt-monkeys is (nearly) silent: rms %.0f", r)
	}
	for _, id := range []string{"digits/1", "tt-weasels", "silence/1", "letters/a", "vm-goodbye"} {
		s, ok := ix.Get(id)
		if !ok || !slices.Contains(s.Formats, FormatLang{"en", "wav"}) {
			t.Errorf("Get(%q) = %+v, %v; want an en/wav sound", id, s, ok)
		}
	}
	if n := len(ix.List("en", "wav")); n < 400 {
		t.Errorf("List(en, wav) has %d sounds, want the whole package", n)
	}
	m, err = ix.Open("silence/1", "en_US")
	if err != nil || m.Length() != 8000 {
		t.Fatalf("silence/1: %v, length %d", err, m.Length())
	}
}
