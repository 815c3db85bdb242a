package recorder

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	want := map[string]Format{
		"wav":   {"wav", "wav", "audio/wav", true},
		"wav16": {"wav16", "wav16", "audio/wav", true},
		"sln":   {"sln", "sln", "audio/L16;rate=8000", true},
		"ulaw":  {"ulaw", "ulaw", "audio/basic", true},
		"alaw":  {"alaw", "alaw", "audio/x-alaw-basic", true},
		"g722":  {"g722", "g722", "audio/G722", true},
		"flac":  {"flac", "flac", "audio/flac", false},
	}
	for name, w := range want {
		f, err := Lookup(name)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", name, err)
		}
		if f != w {
			t.Errorf("Lookup(%q) = %+v, want %+v", name, f, w)
		}
		if g, ok := ByExt("." + strings.ToUpper(w.Ext)); !ok || g != w {
			t.Errorf("ByExt(%q) = %+v, %v", w.Ext, g, ok)
		}
	}
	if f, err := Lookup("WAV"); err != nil || f.Name != "wav" {
		t.Errorf("Lookup(WAV) = %+v, %v", f, err)
	}
	for _, bad := range []string{"", "gsm", "wav ", "../wav"} {
		if _, err := Lookup(bad); !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("Lookup(%q) error %v, want ErrUnknownFormat", bad, err)
		}
	}
	if _, ok := ByExt("gsm"); ok {
		t.Error("ByExt(gsm) found")
	}
	fs := Formats()
	if len(fs) != 9 {
		t.Fatalf("Formats() has %d entries", len(fs))
	}
	fs[0].Name = "changed"
	if Formats()[0].Name != "wav" {
		t.Error("Formats returns the internal table")
	}
	if f, _ := ByExt("mp3"); f.ContentType != "audio/mpeg" {
		t.Errorf("mp3 content type %q", f.ContentType)
	}
	if f, _ := ByExt("ogg"); f.ContentType != "audio/ogg" {
		t.Errorf("ogg content type %q", f.ContentType)
	}
}

func TestLookupUnavailable(t *testing.T) {
	_, err := Lookup("ogg")
	var ue *UnavailableError
	if opusInProcess { // -tags opus
		if err != nil {
			t.Fatalf("Lookup(ogg) with libopus: %v", err)
		}
	} else {
		if !errors.As(err, &ue) || !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrUnknownFormat) {
			t.Fatalf("Lookup(ogg) = %v", err)
		}
		if !strings.Contains(err.Error(), "-tags opus") || !strings.Contains(err.Error(), "libopus-dev") {
			t.Errorf("ogg hint %q", err)
		}
	}

	old := lookPath
	t.Cleanup(func() { lookPath = old })
	lookPath = func(string) (string, error) { return "", exec.ErrNotFound }
	_, err = Lookup("mp3")
	if lameInProcess {
		if err != nil {
			t.Fatalf("Lookup(mp3) with libmp3lame: %v", err)
		}
		return
	}
	if !errors.As(err, &ue) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Lookup(mp3) without lame = %v", err)
	}
	if err.Error() != mp3Hint || !strings.Contains(err.Error(), "apt-get install lame") {
		t.Errorf("mp3 hint %q", err)
	}
	if _, err := Create(t.TempDir()+"/x.mp3", Format{Name: "mp3"}, Fail); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Create(mp3) without lame = %v", err)
	}
	lookPath = func(string) (string, error) { return "/usr/bin/lame", nil }
	if _, err := Lookup("mp3"); err != nil {
		t.Errorf("Lookup(mp3) with lame on PATH: %v", err)
	}
}
