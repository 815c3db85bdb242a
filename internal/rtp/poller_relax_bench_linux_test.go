package rtp

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkPollerRelaxedReads: the process's CPU (user + system, getrusage)
// per datagram of 100 sockets that each receive a 172-byte datagram every
// 20 ms in real time (a recorded call's RTP), read by a Poller with the
// server's cadence (10 ms steps, 100 ms reads), each socket read every
// read interval (relaxed=false) or every 200 ms (relaxed=true). One op is
// 200 ms of traffic; the sender's share (one sendto per datagram, the same
// in both) is included.
func BenchmarkPollerRelaxedReads(b *testing.B) {
	for _, relaxed := range []bool{false, true} {
		b.Run(fmt.Sprintf("relaxed=%v", relaxed), func(b *testing.B) {
			const socks = 100
			p, err := NewPoller(10*time.Millisecond, 100*time.Millisecond, 1)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			var got atomic.Int64
			fn := func([]byte, netip.AddrPort, time.Time) { got.Add(1) }
			addrs := make([]netip.AddrPort, socks)
			for i := range addrs {
				s, err := ListenSocket(netip.MustParseAddrPort("127.0.0.1:0"))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				reg, err := p.Add(s, fn)
				if err != nil {
					b.Fatal(err)
				}
				defer reg.Remove()
				if relaxed {
					reg.SetRelaxed(200 * time.Millisecond)
				}
				addrs[i] = s.LocalAddr()
			}
			peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			defer peer.Close()
			payload := make([]byte, 172)
			var r0, r1 unix.Rusage
			b.ResetTimer()
			unix.Getrusage(unix.RUSAGE_SELF, &r0)
			start := time.Now()
			sent := 0
			for frame := 0; frame < b.N*10; frame++ {
				time.Sleep(time.Until(start.Add(time.Duration(frame) * 20 * time.Millisecond)))
				for _, a := range addrs {
					peer.WriteToUDPAddrPort(payload, a)
					sent++
				}
			}
			deadline := time.Now().Add(2 * time.Second)
			for got.Load() < int64(sent) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			unix.Getrusage(unix.RUSAGE_SELF, &r1)
			b.StopTimer()
			if got.Load() != int64(sent) {
				b.Fatalf("%d of %d datagrams read", got.Load(), sent)
			}
			cpu := time.Duration(r1.Utime.Nano()-r0.Utime.Nano()) + time.Duration(r1.Stime.Nano()-r0.Stime.Nano())
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(sent), "cpu-ns/datagram")
		})
	}
}
