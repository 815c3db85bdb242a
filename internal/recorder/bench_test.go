package recorder

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// BenchmarkRecorderFrame is the per-frame recorder path: Timeline push (in
// order), VAD and a buffered wav write, for one 20 ms frame of 160 samples.
func BenchmarkRecorderFrame(b *testing.B) {
	w, err := Create(filepath.Join(b.TempDir(), "bench.wav"), Format{Name: "wav"}, Fail)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	tl := NewTimeline(8000, 60*time.Millisecond)
	vad := NewVAD(8000)
	pcm := sine(160, 440, 8000, 8000)
	now := time.Unix(0, 0)
	var werr error
	out := func(p []int16) {
		vad.Frame(p)
		if err := w.Write(p); err != nil {
			werr = err
		}
	}
	b.ReportAllocs()
	b.SetBytes(160 * 2)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tl.Push(1, uint32(i*160), pcm, now, out)
		now = now.Add(20 * time.Millisecond)
	}
	b.StopTimer()
	if werr != nil {
		b.Fatal(werr)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/frame")
}

// BenchmarkWriterFrame measures one 20 ms frame written to each format.
func BenchmarkWriterFrame(b *testing.B) {
	for _, name := range []string{"wav", "wav16", "sln", "ulaw", "alaw", "g722", "flac"} {
		b.Run(name, func(b *testing.B) {
			w, err := Create(filepath.Join(b.TempDir(), "b."+name), Format{Name: name}, Fail)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			pcm := sine(160, 440, 8000, 8000)
			b.ReportAllocs()
			b.SetBytes(160 * 2)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := w.Write(pcm); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkTimelineReorder(b *testing.B) {
	tl := NewTimeline(8000, 60*time.Millisecond)
	pcm := make([]int16, 160)
	now := time.Unix(0, 0)
	out := func([]int16) {}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		// pairs swapped
		k := uint32(i ^ 1)
		tl.Push(1, k*160, pcm, now, out)
		now = now.Add(20 * time.Millisecond)
	}
}

func BenchmarkVADFrame(b *testing.B) {
	v := NewVAD(8000)
	pcm := sine(160, 440, 8000, 8000)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		v.Frame(pcm)
	}
}

// heapPerWriter opens n writers of format name and returns heap bytes per
// open writer.
func heapPerWriter(tb testing.TB, name string, n int) float64 {
	dir := tb.TempDir()
	ws := make([]Writer, n)
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for i := range ws {
		w, err := Create(filepath.Join(dir, fmt.Sprintf("w%d.%s", i, name)), Format{Name: name}, Fail)
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(make([]int16, 160))
		ws[i] = w
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	per := float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / float64(n)
	for _, w := range ws {
		w.Close()
	}
	return per
}

func TestHeapPerWriter(t *testing.T) {
	for _, name := range []string{"wav", "wav16", "sln", "ulaw", "g722", "flac"} {
		per := heapPerWriter(t, name, 100)
		t.Logf("%s: %.0f bytes heap per open writer", name, per)
		if name == "wav" && per > 64<<10 {
			t.Errorf("wav writer uses %.0f bytes, want < 64 KiB", per)
		}
	}
}

func BenchmarkHeapPerWAVWriter(b *testing.B) {
	var per float64
	for i := 0; i < b.N; i++ {
		per = heapPerWriter(b, "wav", 100)
	}
	b.ReportMetric(per, "B/writer")
}

// BenchmarkWriterFrameSync is BenchmarkWriterFrame/wav with the writer
// goroutine's fsync policy: Sync every syncEvery frames (100 frames: the
// default recording.fsync_interval_seconds of 2 s). It measures what the
// policy costs per frame, on the writer goroutine (never the media path).
func BenchmarkWriterFrameSync(b *testing.B) {
	for _, every := range []int{0, 100, 50} {
		b.Run(fmt.Sprintf("every=%d", every), func(b *testing.B) {
			w, err := Create(filepath.Join(b.TempDir(), "b.wav"), Format{Name: "wav"}, Fail)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			pcm := sine(160, 440, 8000, 8000)
			b.ReportAllocs()
			b.SetBytes(160 * 2)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := w.Write(pcm); err != nil {
					b.Fatal(err)
				}
				if every > 0 && i%every == every-1 {
					if err := w.Sync(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
