package speech

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapedeck/tapedeck/internal/testutil"
)

// TestSynthCachesAndDecodes: espeak-ng's speech is decoded at 8 kHz with
// sound in it; the same text and voice is synthesised once (the cached
// file is reused), another voice is another file.
func TestSynthCachesAndDecodes(t *testing.T) {
	testutil.RequireTool(t, "espeak-ng")
	s := New(t.TempDir())
	ctx := context.Background()
	p1, err := s.File(ctx, "en", "Your call will be recorded.")
	if err != nil {
		t.Fatal(err)
	}
	st1, _ := os.Stat(p1)
	p2, err := s.File(ctx, "en", "Your call will be recorded.")
	if err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(p2)
	if p1 != p2 || !st1.ModTime().Equal(st2.ModTime()) {
		t.Fatalf("synthesised again: %s %s", p1, p2)
	}
	p3, err := s.File(ctx, "en-us", "Your call will be recorded.")
	if err != nil || p3 == p1 {
		t.Fatalf("another voice: %s %v", p3, err)
	}
	c, err := s.Clip(ctx, "en", "Your call will be recorded.")
	if err != nil {
		t.Fatal(err)
	}
	pcm := c.Samples()
	loud := 0
	for _, x := range pcm {
		if x > 2000 || x < -2000 {
			loud++
		}
	}
	if len(pcm) < 8000 || loud < 1000 {
		t.Fatalf("%d samples, %d loud", len(pcm), loud)
	}
	if m, _ := filepath.Glob(filepath.Join(s.Dir, "*.tmp")); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}

// TestSynthUnavailableAndBadInput: a missing program and bad voices or
// texts fail with a clear cause; a text starting with "-" is text, not an
// option.
func TestSynthUnavailableAndBadInput(t *testing.T) {
	s := New(t.TempDir())
	s.Program = filepath.Join(t.TempDir(), "no-espeak-ng")
	if err := s.Available(); err != ErrUnavailable {
		t.Fatalf("Available: %v", err)
	}
	if _, err := s.File(context.Background(), "en", "hello"); err != ErrUnavailable {
		t.Fatalf("File: %v", err)
	}
	for _, v := range []string{"en;rm", "../x", strings.Repeat("a", 41)} {
		if CheckVoice(v) == nil {
			t.Errorf("voice %q accepted", v)
		}
	}
	if _, err := New(t.TempDir()).File(context.Background(), "en", "   "); err == nil {
		t.Error("empty text accepted")
	}
	voice, text, err := ParseURI(strings.TrimPrefix(URI("en", "a:b c/d%"), "speech:"))
	if err != nil || voice != "en" || text != "a:b c/d%" {
		t.Fatalf("URI round trip: %q %q %v", voice, text, err)
	}
	if s2 := New(t.TempDir()); s2.Available() == nil {
		if _, err := s2.File(context.Background(), "en", "-v xx --help"); err != nil {
			t.Fatalf("a text starting with '-': %v", err)
		}
	}
}
