package recorder

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/gotranspile/g722"

	"github.com/tapedeck/tapedeck/internal/codec"
)

func TestRawFormats(t *testing.T) {
	pcm := sine(8000*2+80, 440, 12000, 8000)
	dir := t.TempDir()
	for _, name := range []string{"sln", "ulaw", "alaw"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, "r."+name)
			w, err := Create(path, Format{Name: name}, Fail)
			if err != nil {
				t.Fatal(err)
			}
			writeFrames(t, w, pcm)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			var want []byte
			switch name {
			case "sln":
				for _, v := range pcm {
					want = binary.LittleEndian.AppendUint16(want, uint16(v))
				}
			case "ulaw":
				want = make([]byte, len(pcm))
				codec.EncodeMulaw(want, pcm)
			case "alaw":
				want = make([]byte, len(pcm))
				codec.EncodeAlaw(want, pcm)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: %d bytes differ from the reference encoding (%d bytes)", name, len(got), len(want))
			}
			// Append continues the raw stream.
			w, err = Create(path, Format{Name: name}, Append)
			if err != nil {
				t.Fatal(err)
			}
			writeFrames(t, w, pcm[:160])
			w.Close()
			got2, _ := os.ReadFile(path)
			if !bytes.Equal(got2[:len(want)], want) || len(got2) != len(want)+len(want)/len(pcm)*160 {
				t.Fatalf("append: %d bytes", len(got2))
			}
		})
	}
}

func TestSLNAppendTrimsPartialSample(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odd.sln")
	os.WriteFile(path, []byte{1, 0, 2, 0, 9}, 0o644)
	w, err := Create(path, Format{Name: "sln"}, Append)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]int16{3})
	w.Close()
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, []byte{1, 0, 2, 0, 3, 0}) {
		t.Fatalf("got % x", got)
	}
}

func TestG722(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.g722")
	w, err := Create(path, Format{Name: "g722"}, Fail)
	if err != nil {
		t.Fatal(err)
	}
	const n = 8000 * 2
	in := sine(n, 800, 8000, 8000)
	writeFrames(t, w, in)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	// 64 kbit/s: one byte per 8 kHz sample.
	if len(b) != n {
		t.Fatalf("%d bytes, want %d", len(b), n)
	}
	dec := g722.Decode(b, g722.Rate64000, 0)
	if len(dec) != 2*n {
		t.Fatalf("decoded %d samples", len(dec))
	}
	// Decoded audio is the 800 Hz tone at 16 kHz: compare after the codec's
	// group delay, found by search.
	want := sine(2*n, 800, 8000, 16000)
	best := -1e9
	for d := 0; d < 64; d++ {
		if s := snr(want[1000:2*n-1000], dec[1000+d:2*n-1000+d]); s > best {
			best = s
		}
	}
	if best < 20 {
		t.Errorf("G.722 round trip SNR %.1f dB, want >= 20", best)
	}
}
