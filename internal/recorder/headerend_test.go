package recorder

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// With WithHeaderAtEnd the periodic writes of buffered audio leave the
// header alone (one write a second, not two); Flush and Close rewrite it,
// and a file cut short keeps its in-progress marker so Recover repairs it.
func TestWAVHeaderAtEnd(t *testing.T) {
	for _, atEnd := range []bool{false, true} {
		t.Run(fmt.Sprintf("atEnd=%v", atEnd), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "h.wav")
			var opts []Option
			if atEnd {
				opts = append(opts, WithHeaderAtEnd())
			}
			w, err := Create(path, Format{Name: "wav"}, Fail, opts...)
			if err != nil {
				t.Fatal(err)
			}
			pcm := ramp(8000*2+160, 7) // two full 1 s buffers written, 160 samples buffered
			if err := w.Write(pcm); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if want := int64(wavHeaderLen + 2*2*8000); fi.Size() != want {
				t.Fatalf("file size %d after two seconds, want %d", fi.Size(), want)
			}
			declared := func() uint32 {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				return binary.LittleEndian.Uint32(b[40:44])
			}
			want := uint32(2 * 2 * 8000)
			if atEnd {
				want = 0
			}
			if got := declared(); got != want {
				t.Fatalf("header declares %d data bytes after the periodic writes, want %d", got, want)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if got, want := declared(), uint32(2*len(pcm)); got != want {
				t.Fatalf("header declares %d data bytes after Flush, want %d", got, want)
			}
			if err := w.Write(pcm[:8000]); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			_, got := readWAV(t, path)
			equalPCM(t, "closed file", got, append(append([]int16(nil), pcm...), pcm[:8000]...))
		})
	}
}

// A crash (no Close) with WithHeaderAtEnd leaves the header of the start;
// Recover sets the sizes from the file.
func TestWAVHeaderAtEndRecovered(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.wav")
	w, err := Create(path, Format{Name: "wav"}, Fail, WithHeaderAtEnd())
	if err != nil {
		t.Fatal(err)
	}
	pcm := ramp(3*8000, 3)
	if err := w.Write(pcm); err != nil {
		t.Fatal(err)
	}
	// The process "crashes": the Writer is abandoned, the marker stays.
	if _, err := Recover(dir); err != nil {
		t.Fatal(err)
	}
	_, got := readWAV(t, path)
	equalPCM(t, "recovered file", got, pcm)
	w.(*writer).be.(*wavWriter).out.f.Close()
}

// appendLE16's copy of the samples' memory writes the same bytes as the
// portable loop.
func TestAppendLE16(t *testing.T) {
	s := ramp(1000, 11)
	s = append(s, -32768, 32767, -1, 0, 1)
	got := appendLE16(make([]byte, 3, 3+2*len(s)), s)
	for i, v := range s {
		if u := binary.LittleEndian.Uint16(got[3+2*i:]); u != uint16(v) {
			t.Fatalf("sample %d: %#04x, want %#04x", i, u, uint16(v))
		}
	}
	if len(appendLE16(nil, nil)) != 0 {
		t.Fatal("empty append")
	}
}

// BenchmarkWriterHeaderAtEnd: a wav write of a 20 ms frame with the header
// rewritten every second (as before) and only at the end (the call
// package's recordings).
func BenchmarkWriterHeaderAtEnd(b *testing.B) {
	for _, atEnd := range []bool{false, true} {
		b.Run(fmt.Sprintf("atEnd=%v", atEnd), func(b *testing.B) {
			var opts []Option
			if atEnd {
				opts = append(opts, WithHeaderAtEnd())
			}
			w, err := Create(filepath.Join(b.TempDir(), "b.wav"), Format{Name: "wav"}, Fail, opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			pcm := sine(160, 440, 8000, 8000)
			b.ReportAllocs()
			b.SetBytes(160 * 2)
			for b.Loop() {
				if err := w.Write(pcm); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendLE16 is the conversion of a second of audio to the file's
// byte order.
// (loop: the portable per-sample loop, as on a big-endian machine.)
func BenchmarkAppendLE16(b *testing.B) {
	for _, copyMem := range []bool{true, false} {
		name := "copy"
		if !copyMem {
			name = "loop"
		}
		b.Run(name, func(b *testing.B) {
			defer func(v bool) { nativeLE = v }(nativeLE)
			nativeLE = nativeLE && copyMem
			s := ramp(8000, 5)
			buf := make([]byte, 0, 2*len(s))
			b.SetBytes(int64(2 * len(s)))
			for b.Loop() {
				buf = appendLE16(buf[:0], s)
			}
		})
	}
}
