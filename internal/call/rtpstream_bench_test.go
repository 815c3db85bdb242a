package call

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	pionrtp "github.com/pion/rtp"

	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/sdp"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// BenchmarkRTPStreamedCallCPU: the whole cost, in CPU time of the process,
// of one more copy of recorded calls' audio at the real pace of one frame
// per 20 ms, 50 calls at once, on real RTP sockets read by a Poller as in
// the server (10 ms rounds, each socket read every 100 ms): a second
// recording of each call, or a stream of each to an RTP external media
// receiver the way a transcription app makes one (a snoop, spy=in, and an
// RTP ulaw external media channel in a bridge, which forwards directly:
// a sendto per frame). The phones' sending (a sendto per frame) is in
// every figure, the receiver's reads (recvmmsg every 10 ms) in the
// stream's; one-recording is the baseline the others
// add to. Run it with -benchtime=250x (5 s of audio); cpu-ns/frame is the
// figure (per call and frame).
func BenchmarkRTPStreamedCallCPU(b *testing.B) {
	const calls = 50
	for _, mode := range []string{"one-recording", "second-recording", "rtp-stream"} {
		b.Run(mode, func(b *testing.B) {
			poller, err := rtp.NewPoller(10*time.Millisecond, 100*time.Millisecond, 1)
			if err != nil {
				b.Skip("no Poller here:", err)
			}
			ports, err := rtp.NewPorts("127.0.0.1", 46000, 46999)
			if err != nil {
				b.Fatal(err)
			}
			m := NewManager(Options{Bus: event.NewBus("bench"), Ports: ports, RecordingsDir: b.TempDir(), Poller: poller})
			b.Cleanup(func() { m.HangupAll(CauseNormalClearing); poller.Close() })
			m.opts.Bus.Register(event.NewSubscriber("bench", 100000, false), nil)

			phone, err := rtp.ListenSocket(netip.MustParseAddrPort("127.0.0.1:0"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { phone.Close() })
			// The far end: one socket for every stream, read every 10 ms
			// (its buffer holds a few hundred packets).
			far, err := rtp.ListenSocket(netip.MustParseAddrPort("127.0.0.1:0"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { far.Close() })
			farPoller, err := rtp.NewPoller(10*time.Millisecond, 10*time.Millisecond, 1)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(farPoller.Close)
			var got atomic.Int64
			if _, err := farPoller.Add(far, func(p []byte, _ netip.AddrPort, _ time.Time) { got.Add(int64(len(p))) }); err != nil {
				b.Fatal(err)
			}

			ulaw := sdp.Format{PayloadType: 0, Name: "PCMU", ClockRate: 8000}
			var to []netip.AddrPort
			for i := range calls {
				cfg, err := ports.ListenConfig(poller)
				if err != nil {
					b.Fatal(err)
				}
				ch, err := m.newChannel(channelSpec{user: "alice", callID: fmt.Sprint("c", i), dialplan: DialplanCEP{Context: "default", Exten: "300"},
					state: StateUp, dialog: newFakeDialog(), choice: sdp.Choice{Audio: ulaw},
					remote: &sdp.Media{Addr: net.UDPAddrFromAddrPort(phone.LocalAddr()), Formats: []sdp.Format{ulaw}, Direction: sdp.SendRecv, Ptime: 20}}, cfg)
				if err != nil {
					b.Fatal(err)
				}
				ch.enterStasis("bench", nil)
				to = append(to, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(cfg.LocalPort())))
				benchRecord(b, ch, fmt.Sprintf("first-%d", i))
				switch mode {
				case "second-recording":
					benchRecord(b, ch, fmt.Sprintf("second-%d", i))
				case "rtp-stream":
					j, err := m.Snoop(ChannelID(ch.id), SnoopOptions{Spy: "in", App: "bench"})
					if err != nil {
						b.Fatal(err)
					}
					sn, err := m.channel(string(j.ID))
					if err != nil {
						b.Fatal(err)
					}
					ej, err := m.ExternalMedia(ExternalMediaOptions{App: "bench", ExternalHost: far.LocalAddr().String(), Encapsulation: "rtp", Transport: "udp", Format: "ulaw"})
					if err != nil {
						b.Fatal(err)
					}
					ext, err := m.channel(string(ej.ID))
					if err != nil {
						b.Fatal(err)
					}
					br, err := m.createBridge("", "mixing", "")
					if err != nil {
						b.Fatal(err)
					}
					for _, c := range []*Channel{sn, ext} {
						if err := br.AddChannel(c, false); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			var pkt pionrtp.Packet
			pkt.Version, pkt.SSRC, pkt.Payload = 2, 42, benchPayload
			buf := make([]byte, 1500)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			runtime.GC()
			before := cpuTime(b)
			b.ResetTimer()
			for i := range b.N {
				<-tick.C
				pkt.SequenceNumber, pkt.Timestamp = uint16(i), uint32(i*160)
				n, _ := pkt.MarshalTo(buf)
				for _, a := range to {
					_, _ = phone.WriteTo(buf[:n], a)
				}
			}
			<-tick.C // the last frame's tick
			b.StopTimer()
			b.ReportMetric(float64(cpuTime(b)-before)/float64(b.N*calls), "cpu-ns/frame")
			if mode == "rtp-stream" {
				// The last 100 ms may still be on their way, and the first
				// frames came before the streams were up.
				if want := int64(calls * (b.N - 10) * 172); got.Load() < want {
					b.Fatalf("the far end got %d bytes, want at least %d", got.Load(), want)
				}
			}
		})
	}
}

// rtpStreamRig is a call on real sockets read by a Poller as in the server
// (10 ms rounds, each socket read every 100 ms), streamed to an RTP
// external media channel (ulaw) whose far end is far: through a snoop
// (via "snoop", spy=in, the way a transcription app streams a caller; the
// call is recorded) or bridged with the call directly (via "call", a
// voice bot), or through a snoop with spy=both ("snoop-both"). The bridges
// forward directly.
type rtpStreamRig struct {
	m                *Manager
	call, snoop, ext *Channel
	br               *Bridge
	rec              *LiveRecording
	phone, far       *net.UDPConn
	to               *net.UDPAddr
}

func newRTPStreamRig(tb testing.TB, via string) *rtpStreamRig {
	poller, err := rtp.NewPoller(10*time.Millisecond, 100*time.Millisecond, 1)
	if err != nil {
		tb.Skip("no Poller here:", err)
	}
	lo, hi := testutil.FreeUDPPortRange(tb, 16)
	ports, err := rtp.NewPorts("127.0.0.1", lo, hi)
	if err != nil {
		tb.Fatal(err)
	}
	r := &rtpStreamRig{}
	r.m = NewManager(Options{Bus: event.NewBus("bench"), Ports: ports, RecordingsDir: tb.TempDir(), Poller: poller})
	tb.Cleanup(func() { r.m.HangupAll(CauseNormalClearing); poller.Close() })
	r.m.opts.Bus.Register(event.NewSubscriber("bench", 100000, false), nil)
	if r.phone, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.phone.Close() })
	if r.far, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.far.Close() })
	ulaw := sdp.Format{PayloadType: 0, Name: "PCMU", ClockRate: 8000}
	cfg, err := ports.ListenConfig(poller)
	if err != nil {
		tb.Fatal(err)
	}
	r.call, err = r.m.newChannel(channelSpec{user: "alice", callID: "c1", dialplan: DialplanCEP{Context: "default", Exten: "300"},
		state: StateUp, dialog: newFakeDialog(), choice: sdp.Choice{Audio: ulaw},
		remote: &sdp.Media{Addr: r.phone.LocalAddr().(*net.UDPAddr), Formats: []sdp.Format{ulaw}, Direction: sdp.SendRecv, Ptime: 20}}, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	r.call.enterStasis("bench", nil)
	r.to = net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(cfg.LocalPort())))
	streamed := r.call
	if via == "snoop" || via == "snoop-both" {
		spy := "in"
		if via == "snoop-both" {
			spy = "both" // mixed on the media clock (snoopMedia.onTick)
		}
		r.rec = benchRecord(tb, r.call, "first")
		j, err := r.m.Snoop(ChannelID(r.call.id), SnoopOptions{Spy: spy, App: "bench"})
		if err != nil {
			tb.Fatal(err)
		}
		if r.snoop, err = r.m.channel(string(j.ID)); err != nil {
			tb.Fatal(err)
		}
		streamed = r.snoop
	}
	ej, err := r.m.ExternalMedia(ExternalMediaOptions{App: "bench", ExternalHost: r.far.LocalAddr().String(), Encapsulation: "rtp", Transport: "udp", Format: "ulaw"})
	if err != nil {
		tb.Fatal(err)
	}
	if r.ext, err = r.m.channel(string(ej.ID)); err != nil {
		tb.Fatal(err)
	}
	if r.br, err = r.m.createBridge("", "mixing", ""); err != nil {
		tb.Fatal(err)
	}
	for _, c := range []*Channel{streamed, r.ext} {
		if err := r.br.AddChannel(c, false); err != nil {
			tb.Fatal(err)
		}
	}
	if !r.br.direct.Load() {
		tb.Fatal("the stream's bridge mixes")
	}
	return r
}

// latencies sends frames from the phone at the real pace (one per 20 ms;
// frame i carries µ-law code 0x10+i%64, which survives decoding and
// encoding unchanged, so the far end knows which it got) and returns how
// long each took from the phone's send to the far end's read, for the
// frames the far end got, and the RTP sequence numbers used (first, first+n).
func (r *rtpStreamRig) latencies(n, first int) []time.Duration {
	return paced(n, first, 42, r.phone, r.to, r.far)
}

// replyLatencies is latencies in the other direction, what a voice bot
// says back: frames sent by the far end to the external media channel's
// socket at the real pace, read by the phone (the call bridged directly
// with its stream, via "call").
func (r *rtpStreamRig) replyLatencies(n, first int) []time.Duration {
	s, ok := r.ext.media.(*rtp.Session)
	if !ok {
		panic(fmt.Sprintf("external channel media %T", r.ext.media))
	}
	return paced(n, first, 77, r.far, s.LocalAddr(), r.phone)
}

// paced sends n frames (SSRC ssrc, sequence numbers first to first+n)
// from the socket from to the address to at the real pace, one per 20 ms,
// frame i carrying µ-law code 0x10+(first+i)%64, and returns how long each
// took from its send to its read on the socket recv, for the frames recv
// got (a frame that does not come is lost; recv gives up 2 s after the
// last).
func paced(n, first int, ssrc uint32, from *net.UDPConn, to *net.UDPAddr, recv *net.UDPConn) []time.Duration {
	sent := make([]atomic.Int64, n) // UnixNano (recv reads it when the frame comes)
	lat := make([]time.Duration, 0, n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		var p pionrtp.Packet
		next := 0
		for next < n {
			_ = recv.SetReadDeadline(time.Now().Add(2 * time.Second))
			k, _, err := recv.ReadFromUDP(buf)
			if err != nil {
				return
			}
			at := time.Now()
			if p.Unmarshal(buf[:k]) != nil || len(p.Payload) == 0 {
				continue
			}
			for next < n && byte(0x10+(first+next)%64) != p.Payload[0] {
				next++ // lost
			}
			if next < n {
				lat = append(lat, time.Duration(at.UnixNano()-sent[next].Load()))
				next++
			}
		}
	}()
	var pkt pionrtp.Packet
	pkt.Version, pkt.SSRC = 2, ssrc
	payload := make([]byte, 160)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := range n {
		<-tick.C
		for k := range payload {
			payload[k] = byte(0x10 + (first+i)%64)
		}
		pkt.SequenceNumber, pkt.Timestamp, pkt.Payload = uint16(first+i), uint32((first+i)*160), payload
		raw, _ := pkt.Marshal()
		sent[i].Store(time.Now().UnixNano())
		_, _ = from.WriteToUDP(raw, to)
	}
	<-done
	return lat
}

// BenchmarkRTPStreamLatency: what an RTP external media stream adds to a
// call's audio, at the real pace of one frame per 20 ms, on real sockets
// read by a Poller as in the server (10 ms rounds, a recorded call's
// socket read every 100 ms): from the phone's send to the far end's read
// of the same frame, through the call's socket, the snoop (spy=in; the
// call is recorded) or nothing (the call bridged with its stream), the
// bridge and the RTP external media channel. Run it with -benchtime=250x
// (5 s); p50/p99/max in µs. A socket left on the Poller's schedule makes
// it wait for the next read (up to 100 ms for the snoop's call, up to the
// bridge's 20 ms tick for the direct bridge). "reply" is the other
// direction of "call": from the far end's send to the external channel to
// the phone's read (what a voice bot says back). "snoop-both" is "snoop"
// with spy=both, whose two directions are mixed on the media clock (a
// 20 ms tick) instead of forwarded as they arrive.
func BenchmarkRTPStreamLatency(b *testing.B) {
	for _, via := range []string{"snoop", "call", "reply", "snoop-both"} {
		b.Run(via, func(b *testing.B) {
			measure := (*rtpStreamRig).latencies
			if via == "reply" {
				via, measure = "call", (*rtpStreamRig).replyLatencies
			}
			r := newRTPStreamRig(b, via)
			b.ResetTimer()
			lat := measure(r, b.N, 0)
			b.StopTimer()
			if len(lat) < b.N*9/10 {
				b.Fatalf("the far end got %d of %d frames", len(lat), b.N)
			}
			slices.Sort(lat)
			q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) }
			b.ReportMetric(q(0.5), "p50-µs")
			b.ReportMetric(q(0.99), "p99-µs")
			b.ReportMetric(q(1), "max-µs")
		})
	}
}

// BenchmarkRTPStreamForward: one frame through a stream's forward path on
// the calling goroutine, without the wake-up that brings it (the Poller's
// on-arrival reader) or the read: the frame a channel's socket delivered,
// decoded, through its taps (the call's recording, the snoop), the direct
// bridge, the external channel's (or, "reply", the call's) encode, RTP
// packet and the sendto to the far end (or the phone). ns/op is that path's
// CPU with its system call; allocs/op must be 0.
func BenchmarkRTPStreamForward(b *testing.B) {
	for _, via := range []string{"snoop", "call", "reply"} {
		b.Run(via, func(b *testing.B) {
			from := "call"
			if via == "snoop" {
				from = "snoop"
			}
			r := newRTPStreamRig(b, from)
			ch := r.call
			if via == "reply" {
				ch = r.ext
			}
			var pkt pionrtp.Packet
			pkt.Version, pkt.SSRC, pkt.Payload = 2, 42, make([]byte, 160)
			for i := range pkt.Payload {
				pkt.Payload[i] = 0x10
			}
			sent := func(c *Channel) uint64 { return c.media.(*rtp.Session).Stats().Sent }
			out := r.ext
			if via == "reply" {
				out = r.call
			}
			before := sent(out)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				pkt.SequenceNumber, pkt.Timestamp = uint16(i), uint32(i*160)
				ch.OnAudio(&pkt, uint64(i))
			}
			b.StopTimer()
			if n := sent(out) - before; n != uint64(b.N) {
				b.Fatalf("%d frames sent for %d forwarded", n, b.N)
			}
		})
	}
}
