package recorder

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// With WithHeaderAtEnd the periodic writes of buffered audio leave the
// header alone (about one write a second, not two); Flush and Close rewrite it,
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
			// On disk: everything but at most the buffer (one second,
			// the recorder's part of README's crash bound); without
			// WithHeaderAtEnd exactly the two full buffers, with it
			// writes that end on a page of the file (writeFull).
			if want := int64(wavHeaderLen + 2*2*8000); !atEnd && fi.Size() != want {
				t.Fatalf("file size %d after two seconds, want %d", fi.Size(), want)
			}
			if min := int64(wavHeaderLen + 2*(len(pcm)-8000)); atEnd && (fi.Size() < min || fi.Size()%filePage != 0) {
				t.Fatalf("file size %d after %d samples, want a multiple of %d of at least %d", fi.Size(), len(pcm), filePage, min)
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
	// What was written reaches the file but for at most the buffer (one
	// second, README's crash bound; the writes end on pages of the file,
	// so some of it is still buffered).
	if _, err := Recover(dir); err != nil {
		t.Fatal(err)
	}
	_, got := readWAV(t, path)
	if len(got) < len(pcm)-8000 {
		t.Fatalf("recovered %d samples of %d written: more than the 1 s buffer lost", len(got), len(pcm))
	}
	equalPCM(t, "recovered file", got, pcm[:len(got)])
	w.(*writer).be.(*wavWriter).out.f.Close()
}

// TestWAVWritesEndOnPages: with WithHeaderAtEnd each periodic write of a
// full buffer ends on a page of the file (writeFull), and what is not yet
// on disk is never more than the buffer (one second of audio), mono and
// stereo, from the first frame to the last; the closed file holds it all.
func TestWAVWritesEndOnPages(t *testing.T) {
	for _, channels := range []int{1, 2} {
		t.Run(fmt.Sprintf("channels=%d", channels), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "p.wav")
			w, err := Create(path, Format{Name: "wav"}, Fail, WithHeaderAtEnd(), WithChannels(channels))
			if err != nil {
				t.Fatal(err)
			}
			buffer := 2 * 8000 * channels // bytes: one second
			pcm := ramp(8000*channels*10+123*channels, 9)
			frame, sizes := 160*channels, map[int64]bool{}
			for off := 0; off < len(pcm); off += frame {
				if err := w.Write(pcm[off:min(off+frame, len(pcm))]); err != nil {
					t.Fatal(err)
				}
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				written := int64(wavHeaderLen + 2*min(off+frame, len(pcm)))
				if fi.Size() < written-int64(buffer) {
					t.Fatalf("after %d bytes written the file has %d: more than the %d-byte buffer unwritten", written, fi.Size(), buffer)
				}
				if fi.Size() != wavHeaderLen && fi.Size()%filePage != 0 {
					t.Fatalf("after %d bytes written the file has %d: a write that does not end on a %d-byte page", written, fi.Size(), filePage)
				}
				sizes[fi.Size()] = true
			}
			if len(sizes) < 9 {
				t.Fatalf("the file took %d sizes in 10 s of audio: %v", len(sizes), sizes)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			info, got := readWAV(t, path)
			if int(info.Channels) != channels {
				t.Fatalf("%d channels", info.Channels)
			}
			equalPCM(t, "closed file", got, pcm)
		})
	}
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

// BenchmarkWAVWriterPages: the writer pool's file work for 100 recordings
// (WithHeaderAtEnd, as the call package's): each op is one 200 ms pass
// writing 200 ms of audio to each, so a full buffer is written every
// fifth op per file. cpu-ns/op is the process's user and system time
// (getrusage), the pwrite's kernel part included.
func BenchmarkWAVWriterPages(b *testing.B) {
	const files = 100
	dir := b.TempDir()
	ws := make([]Writer, files)
	for i := range ws {
		w, err := Create(filepath.Join(dir, fmt.Sprintf("%d.wav", i)), Format{Name: "wav"}, Fail, WithHeaderAtEnd())
		if err != nil {
			b.Fatal(err)
		}
		ws[i] = w
	}
	pcm := sine(1600, 440, 8000, 8000)
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ResetTimer()
	start := cpu()
	for i := 0; b.Loop(); i++ {
		if i%300 == 299 { // a minute per file: start new files (as calls end)
			for j, w := range ws {
				w.Close()
				os.Remove(w.Path())
				nw, err := Create(filepath.Join(dir, fmt.Sprintf("%d-%d.wav", j, i)), Format{Name: "wav"}, Fail, WithHeaderAtEnd())
				if err != nil {
					b.Fatal(err)
				}
				ws[j] = nw
			}
		}
		for _, w := range ws {
			if err := w.Write(pcm); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op")
	for _, w := range ws {
		w.Close()
	}
}

// WriteDirect with the caller keeping what it has not written (as the
// call package's queue does): the file is what Write would make, silence
// written with Write between the passes included; what is unwritten stays
// within the buffer and a pass; the passes without silence end on pages;
// DirectSamples is the buffer.
func TestWAVWriteDirect(t *testing.T) {
	for _, channels := range []int{1, 2} {
		t.Run(fmt.Sprintf("channels=%d", channels), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "d.wav")
			w, err := Create(path, Format{Name: "wav"}, Fail, WithHeaderAtEnd(), WithChannels(channels))
			if err != nil {
				t.Fatal(err)
			}
			dw := w.(DirectWriter)
			if dw.DirectSamples() != 8000*channels {
				t.Fatalf("DirectSamples %d, want a second (%d)", dw.DirectSamples(), 8000*channels)
			}
			src := ramp(8000*channels*12, 5)
			var want, held []int16
			written := 0 // bytes of audio given to the writer and not held
			for pass := 0; len(src) > 0; pass++ {
				n := min(len(src), channels*(1+(pass*977)%3000))
				held = append(held, src[:n]...)
				want = append(want, src[:n]...)
				src = src[n:]
				silence := pass%7 == 6
				k, err := dw.WriteDirect(held, silence)
				if err != nil {
					t.Fatal(err)
				}
				if silence && k != len(held) {
					t.Fatalf("all: took %d of %d", k, len(held))
				}
				written += 2 * k
				held = held[k:]
				if silence {
					z := make([]int16, channels*(100+pass))
					if err := w.Write(z); err != nil {
						t.Fatal(err)
					}
					want = append(want, z...)
					written += 2 * len(z)
				}
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if unwritten := int64(wavHeaderLen+written+2*len(held)) - fi.Size(); unwritten > int64(2*(8000*channels+n)) {
					t.Fatalf("pass %d: %d bytes unwritten, more than the buffer and the pass", pass, unwritten)
				}
				if !silence && k > 0 && fi.Size()%filePage != 0 {
					t.Fatalf("pass %d: the file has %d bytes, not whole pages", pass, fi.Size())
				}
			}
			if _, err := dw.WriteDirect(held, true); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got := w.Samples(); got != int64(len(want)) {
				t.Errorf("Samples %d, want %d", got, len(want))
			}
			_, got := readWAV(t, path)
			equalPCM(t, "closed file", got, want)
		})
	}
}

// BenchmarkWAVWriterPassCold is the writer pool's pass over 100 wav
// recordings (WithHeaderAtEnd) with the caches as the server leaves them:
// each op, 200 ms of audio per recording is put in its queue's memory
// (the media path's part, not counted), 16 MiB are touched (the rest of
// the process's work between passes), then the pass is timed in the
// thread's CPU time (thread-cpu-ns/op, the pwrites' kernel part
// included). copy: the samples are copied into the recorder's one-second
// buffer (Write), as before DirectWriter; direct: the queue's memory holds
// the second and the recorder writes from it (WriteDirect).
func BenchmarkWAVWriterPassCold(b *testing.B) {
	for _, direct := range []bool{false, true} {
		name := "copy"
		if direct {
			name = "direct"
		}
		b.Run(name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			const files = 100
			dir := b.TempDir()
			ws := make([]DirectWriter, files)
			queues := make([][]int16, files)
			for i := range ws {
				w, err := Create(filepath.Join(dir, fmt.Sprintf("%d.wav", i)), Format{Name: "wav"}, Fail, WithHeaderAtEnd())
				if err != nil {
					b.Fatal(err)
				}
				ws[i] = w.(DirectWriter)
				queues[i] = make([]int16, 0, 8000+2560)
			}
			pcm := sine(1600, 440, 8000, 8000)
			evict := make([]byte, 16<<20)
			var cpu time.Duration
			tcpu := func() time.Duration {
				var ts unix.Timespec
				if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
					b.Fatal(err)
				}
				return time.Duration(ts.Nano())
			}
			for b.Loop() {
				for i := range queues {
					queues[i] = append(queues[i], pcm...)
				}
				for k := 0; k < len(evict); k += 64 {
					evict[k]++
				}
				c0 := tcpu()
				for i, w := range ws {
					q := queues[i]
					if !direct {
						if err := w.Write(q); err != nil {
							b.Fatal(err)
						}
						queues[i] = q[:0]
						continue
					}
					n, err := w.WriteDirect(q, false)
					if err != nil {
						b.Fatal(err)
					}
					if n > 0 {
						queues[i] = q[:copy(q, q[n:])]
					}
				}
				cpu += tcpu() - c0
			}
			b.ReportMetric(float64(cpu)/float64(b.N), "thread-cpu-ns/op")
			for _, w := range ws {
				w.Close()
			}
		})
	}
}
