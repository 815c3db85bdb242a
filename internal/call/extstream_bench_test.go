package call

import (
	"bufio"
	"net"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	pionrtp "github.com/pion/rtp"

	"github.com/tapedeck/tapedeck/internal/codec"
)

// BenchmarkExternalMediaLatency: what an AudioSocket external media
// channel (slin16, so resampled both ways) adds to the audio it forwards,
// over a real loopback TCP connection, at the real pace of one frame per
// 20 ms (run it with -benchtime=250x: 5 s). to-far-end: from the frame
// handed to the channel as a bridge sends it (decode, resample, queue,
// writer goroutine, write) until the far end has read the whole message.
// from-far-end: from the far end writing a message until the channel's
// tap sees the frame (read, resample, queue, played at once when due).
// Reported as p50/p99 in µs.
func BenchmarkExternalMediaLatency(b *testing.B) {
	for _, dir := range []string{"to-far-end", "from-far-end"} {
		b.Run(dir, func(b *testing.B) {
			m := benchManager(b)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			var mu sync.Mutex
			var arrived []time.Time
			peer := make(chan net.Conn, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				peer <- c
				r := bufio.NewReader(c)
				var buf []byte
				for {
					kind, _, grown, err := readASMessage(r, buf)
					buf = grown
					if err != nil {
						return
					}
					if kind == 0x12 {
						mu.Lock()
						arrived = append(arrived, time.Now())
						mu.Unlock()
					}
				}
			}()
			f := streamFormats["slin16"]
			conn, err := dialAudioSocket(ln.Addr().String(), [16]byte{1}, f.kind, 1, f.frameBytes())
			if err != nil {
				b.Fatal(err)
			}
			ch, sm, err := m.newStreamChannel(ExternalMediaOptions{App: "bench"}, "AudioSocket/bench", StateUp, f, nil)
			if err != nil {
				b.Fatal(err)
			}
			sm.connect(conn)
			go conn.run(sm)
			far := <-peer
			var seen []time.Time
			ch.AttachTap(AudioFunc(func(*Frame) {
				mu.Lock()
				seen = append(seen, time.Now())
				mu.Unlock()
			}), StageSink)
			pcm := make([]int16, 160)
			codec.DecodeMulaw(pcm, benchPayload)
			buf := make([]byte, 160)
			msg := appendASMessage(nil, 0x12, make([]byte, 640))
			var sent []time.Time
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			b.ResetTimer()
			for range b.N {
				<-tick.C
				sent = append(sent, time.Now())
				if dir == "to-far-end" {
					ch.sendBridged(pcm, buf)
				} else if _, err := far.Write(msg); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				mu.Lock()
				n := len(arrived) + len(seen)
				mu.Unlock()
				if n >= len(sent) {
					break
				}
			}
			mu.Lock()
			got := arrived
			if dir == "from-far-end" {
				got = seen
			}
			if len(got) != len(sent) {
				sm.mu.Lock()
				q := len(sm.queue)
				sm.mu.Unlock()
				b.Fatalf("%d frames sent, %d arrived, %d samples queued, %d dropped", len(sent), len(got), q, sm.dropped.Load())
			}
			lat := make([]float64, len(sent))
			for i := range sent {
				lat[i] = float64(got[i].Sub(sent[i]).Microseconds())
			}
			mu.Unlock()
			slices.Sort(lat)
			b.ReportMetric(lat[len(lat)/2], "p50-µs")
			b.ReportMetric(lat[len(lat)*99/100], "p99-µs")
			b.ReportMetric(lat[len(lat)-1], "max-µs")
		})
	}
}

// BenchmarkStreamSendCPU: the CPU the process spends per 20 ms frame an
// external media stream (AudioSocket to a loopback TCP receiver in this
// process) sends, as a bridge hands it over: the encoding, the hand-off,
// the socket write and the goroutine wake-ups, whichever goroutine pays
// them, and the receiver's reads (the same in every case but batching).
// Measured with getrusage over the whole run, the receiver's draining
// included; frames come faster than real time, held back while the
// receiver is 20 frames behind. cpu-ns/frame is the figure; ns/op is wall
// time. batch5 writes five frames at once (ari.audiosocket_batch_ms: 100).
func BenchmarkStreamSendCPU(b *testing.B) {
	for _, c := range []struct {
		name   string
		format string
		batch  int
	}{{"ulaw", "ulaw", 1}, {"ulaw-batch5", "ulaw", 5}, {"slin", "slin", 1}} {
		b.Run(c.name, func(b *testing.B) {
			m := benchManager(b)
			r := benchStreamBatch(b, m, c.format, c.batch)
			b.ReportAllocs()
			runtime.GC()
			before := cpuTime(b)
			b.ResetTimer()
			for range b.N {
				r.send(b)
			}
			r.drain(b, b.N)
			b.StopTimer()
			b.ReportMetric(float64(cpuTime(b)-before)/float64(b.N), "cpu-ns/frame")
		})
	}
}

// cpuTime is the process's user and system CPU so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSnoopStreamLatency: what a transcription app's stream adds to
// the caller's audio, at the real pace of one frame per 20 ms: from the
// caller's frame reaching its channel (as the RTP reader hands it over)
// through a snoop channel (spy=in), a bridge and an AudioSocket ulaw
// channel to the far end having read it over loopback TCP. Run it with
// -benchtime=250x (5 s); p50/p99/max in µs.
func BenchmarkSnoopStreamLatency(b *testing.B) {
	m := benchManager(b)
	ch := benchChannel(b, m)
	j, err := m.Snoop(ChannelID(ch.id), SnoopOptions{Spy: "in", App: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	sn, err := m.channel(string(j.ID))
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	const codes = 96 // frame i is filled with µ-law code 0x10+i%codes
	var mu sync.Mutex
	var sent, lat []time.Duration
	start := time.Now()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		var buf []byte
		for {
			kind, p, grown, err := readASMessage(r, buf)
			buf = grown
			if err != nil {
				return
			}
			at := time.Since(start)
			if kind != asKindAudio || len(p) == 0 || p[0] < 0x10 || p[0] >= 0x10+codes {
				continue // silence the mixer sends while nothing is due
			}
			mu.Lock()
			for i := len(sent) - 1; i >= 0; i-- {
				if int(p[0]) == 0x10+i%codes {
					lat = append(lat, at-sent[i])
					break
				}
			}
			mu.Unlock()
		}
	}()
	f := streamFormats["ulaw"]
	conn, err := dialAudioSocket(ln.Addr().String(), [16]byte{1}, f.kind, 1, f.frameBytes())
	if err != nil {
		b.Fatal(err)
	}
	ext, sm, err := m.newStreamChannel(ExternalMediaOptions{App: "bench"}, "AudioSocket/bench", StateUp, f, nil)
	if err != nil {
		b.Fatal(err)
	}
	sm.connect(conn)
	go conn.run(sm)
	ext.enterStasis("bench", nil)
	br, err := m.createBridge("", "mixing", "")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []*Channel{sn, ext} {
		if err := br.AddChannel(c, false); err != nil {
			b.Fatal(err)
		}
	}
	var pkt pionrtp.Packet
	payload := make([]byte, 160)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	for i := range b.N {
		<-tick.C
		for k := range payload {
			payload[k] = byte(0x10 + i%codes)
		}
		pkt.SequenceNumber, pkt.Timestamp, pkt.Payload = uint16(i), uint32(i*160), payload
		mu.Lock()
		sent = append(sent, time.Since(start))
		mu.Unlock()
		ch.OnAudio(&pkt, 0)
	}
	b.StopTimer()
	deadline := time.Now().Add(3 * time.Second)
	for {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n >= b.N*9/10 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if b.N < 10 {
		return // the first, one-frame round: a mixing bridge is still priming its play-out buffer
	}
	if len(lat) < b.N*9/10 {
		b.Fatalf("%d of %d frames reached the far end", len(lat), b.N)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
	b.ReportMetric(float64(len(lat)), "frames-arrived")
}
