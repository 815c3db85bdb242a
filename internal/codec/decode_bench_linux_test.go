package codec

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// decodeG711SoundScalar is DecodeG711Sound as it was before it stored four
// samples at a time: the reference its benchmark compares with.
func decodeG711SoundScalar(dst []int16, src []byte, alaw bool) (sound bool) {
	tbl := &mulawToLinear
	if alaw {
		tbl = &alawToLinear
	}
	dst = dst[:len(src)]
	var or int16
	for i, b := range src {
		v := tbl[b]
		dst[i] = v
		or |= v
	}
	return or != 0
}

// BenchmarkDecodeG711SoundCold: what a recorded packet's decode into its
// recording's queue costs as the server runs it: 100 queues (one second and
// 320 ms each, as the call package's), each taking 10 µ-law frames of 160
// samples in a row per op (a relaxed 200 ms read of its call), with 16 MiB
// touched between ops to evict the caches as the rest of the server does.
// The decodes are timed in the thread's CPU clock (thread-cpu-ns/frame).
// scalar: a sample a store (before); words: DecodeG711Sound.
func BenchmarkDecodeG711SoundCold(b *testing.B) {
	for _, name := range []string{"scalar", "words"} {
		decode := DecodeG711Sound
		if name == "scalar" {
			decode = decodeG711SoundScalar
		}
		b.Run(name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			const queues, perRead, frame = 100, 10, 160
			qs := make([][]int16, queues)
			for i := range qs {
				qs[i] = make([]int16, 8000+2560)
			}
			pay := make([]byte, frame)
			for i := range pay {
				pay[i] = MulawEncode(int16(8000 * ((i % 16) - 8)))
			}
			evict := make([]byte, 16<<20)
			tcpu := func() time.Duration {
				var ts unix.Timespec
				if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
					b.Fatal(err)
				}
				return time.Duration(ts.Nano())
			}
			var cpu time.Duration
			pos, sound := 0, 0
			for b.Loop() {
				for k := 0; k < len(evict); k += 64 {
					evict[k]++
				}
				c0 := tcpu()
				for _, q := range qs {
					for f := 0; f < perRead; f++ {
						if decode(q[pos+f*frame:], pay, false) {
							sound++
						}
					}
				}
				cpu += tcpu() - c0
				if pos += perRead * frame; pos+perRead*frame > len(qs[0]) {
					pos = 0
				}
			}
			b.ReportMetric(float64(cpu)/float64(b.N*queues*perRead), "thread-cpu-ns/frame")
			if sound != b.N*queues*perRead {
				b.Fatalf("%d frames of sound, want %d", sound, b.N*queues*perRead)
			}
		})
	}
}
