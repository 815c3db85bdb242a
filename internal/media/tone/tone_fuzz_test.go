package tone

import (
	"errors"
	"io"
	"math"
	"testing"
)

// FuzzParse feeds arbitrary tone strings (the tone: URIs of ARI play
// requests) through Parse and plays what parses: no panic, errors wrap
// ErrSyntax, and a parsed tone plays, seeks and reports its length
// consistently.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"!350+440/100,!0/100", "350+440", "440/500,0/500", "!440/100|!0/100|480/200",
		"M60/100", "m65+m69/250", "1400*40/500", "!0/0", "0/0", "", ",", " , ",
		"99999999999999999999/1", "440/99999999999999999999", "!440/-1", "440+", "+440",
		"/100", "440//100", "M999/100", "440*/100", "\x00", "440/100,", "!!440/100",
	} {
		f.Add(s)
	}
	for _, z := range zones {
		for _, s := range z {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		tn, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse(%q) = %v, does not wrap ErrSyntax", s, err)
			}
			return
		}
		if n := tn.Length(); tn.Finite() && n < 0 || !tn.Finite() && n != -1 {
			t.Fatalf("Parse(%q): Finite %v with Length %d", s, tn.Finite(), n)
		}
		buf := make([]int16, 160)
		var played int64
		for i := 0; i < 5; i++ {
			n, err := tn.Read(buf)
			played += int64(n)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("Parse(%q).Read: %v", s, err)
			}
		}
		if tn.Position() != played {
			t.Fatalf("Parse(%q): position %d after reading %d samples", s, tn.Position(), played)
		}
		for _, off := range []int64{0, 1, 7999, math.MaxInt64, -1} {
			pos, err := tn.Seek(off, io.SeekStart)
			if err != nil || pos < 0 || tn.Finite() && pos > tn.Length() {
				t.Fatalf("Parse(%q).Seek(%d) = %d, %v", s, off, pos, err)
			}
			if _, err := tn.Read(buf); err != nil && err != io.EOF {
				t.Fatalf("Parse(%q): Read after Seek(%d): %v", s, off, err)
			}
		}
		if again, err := Parse(tn.String()); err != nil || again.Length() != tn.Length() {
			t.Fatalf("Parse(%q).String() = %q does not parse back the same: %v", s, tn.String(), err)
		}
	})
}
