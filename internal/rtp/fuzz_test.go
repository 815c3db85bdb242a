package rtp

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// The fuzz input is a stream of datagrams, each a header byte and a length
// byte then the datagram. Header: bits 0-1 pick the source address (0 the
// SDP address, 1 a NAT'd address of the phone, 2 an attacker, 3 the SDP
// address IPv4-mapped in IPv6); bit 7 sends the datagram to the RTCP
// socket; bit 6 applies new SDP first (Update), with the address picked by
// bits 4-5 (3: hold).
var fuzzAddrs = [4]netip.AddrPort{
	netip.MustParseAddrPort("127.0.0.1:4000"),
	netip.MustParseAddrPort("192.0.2.7:31000"),
	netip.MustParseAddrPort("198.51.100.66:6666"),
	netip.MustParseAddrPort("[::ffff:127.0.0.1]:4000"),
}

type fuzzPkt struct {
	hdr  byte
	data []byte
}

func fuzzStream(pkts ...fuzzPkt) []byte {
	var b []byte
	for _, p := range pkts {
		b = append(b, p.hdr, byte(len(p.data)))
		b = append(b, p.data...)
	}
	return b
}

// fuzzRun seeds: a stream from the SDP address, 0.1 s, then an attacker's
// sequential stream with its own SSRC interleaved; a NAT'd phone learned;
// a NAT rebinding; new SDP; RTCP.
func fuzzSeeds() map[string][]byte {
	payload := make([]byte, 40)
	var inject, nat, rebind []fuzzPkt
	for i := 0; i < 8; i++ {
		inject = append(inject, fuzzPkt{0, packet(0, uint16(100+i), uint32(160*i), 7, i == 0, payload)})
		inject = append(inject, fuzzPkt{2, packet(0, uint16(5000+i), uint32(90000+160*i), 0xBAD, false, payload)})
		nat = append(nat, fuzzPkt{1, packet(0, uint16(i), uint32(160*i), 9, i == 0, payload)})
	}
	for i := 0; i < 6; i++ {
		rebind = append(rebind, fuzzPkt{0, packet(0, uint16(i), uint32(160*i), 3, i == 0, payload)})
	}
	for i := 6; i < 12; i++ {
		rebind = append(rebind, fuzzPkt{1, packet(0, uint16(i), uint32(160*i), 3, false, payload)})
	}
	reinvite := append([]fuzzPkt{}, nat[:5]...)
	reinvite = append(reinvite, fuzzPkt{0x40 | 0x20, packet(0, 1, 0, 4, true, payload)}, fuzzPkt{0x40 | 0x30 | 2, packet(101, 2, 0, 4, true, []byte{1, 0x80, 0, 160})})
	sr, _ := (&rtcp.SenderReport{SSRC: 7, NTPTime: 1 << 40, Reports: []rtcp.ReceptionReport{{SSRC: 1, TotalLost: 3}}}).Marshal()
	return map[string][]byte{
		"inject":   fuzzStream(inject...),
		"nat":      fuzzStream(nat...),
		"rebind":   fuzzStream(rebind...),
		"reinvite": fuzzStream(reinvite...),
		"rtcp":     fuzzStream(fuzzPkt{0x80, sr}, fuzzPkt{0x80, []byte{0x80, 200, 0, 0}}),
	}
}

// FuzzSession runs datagrams from several sources through a session's
// receive path (source filter, statistics, DTMF, handler) and RTCP parsing,
// with new SDP in between. It must not panic; every RTP packet is either
// accepted or dropped once; the send address is always one the session was
// given or learned.
func FuzzSession(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		h := &countHandler{}
		s := NewSession(Config{PayloadType: 0, DTMFPayloadType: 101, ClockRate: 8000, Handler: h,
			Remote: net.UDPAddrFromAddrPort(fuzzAddrs[0])})
		r := &reader{buf: make([]byte, 1500)}
		now := time.Unix(1e9, 0)
		var rtpPkts uint64
		for len(in) >= 2 {
			hdr, n := in[0], int(in[1])
			in = in[2:]
			if n > len(in) {
				n = len(in)
			}
			b := in[:n]
			in = in[n:]
			if hdr&0x40 != 0 {
				if a := (hdr >> 4) & 3; a == 3 {
					s.Update(nil, 0, 101)
				} else {
					s.Update(net.UDPAddrFromAddrPort(fuzzAddrs[a]), 0, 101)
				}
			}
			if hdr&0x80 != 0 {
				s.handleRTCP(b)
				continue
			}
			var probe rtpHeaderProbe
			valid := probe.ok(b)
			if valid {
				rtpPkts++
			}
			from := fuzzAddrs[hdr&3]
			unmapped := netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
			// Strict RTP: once locked, a stranger with another SSRC never
			// gets through.
			stranger := valid && s.src.locked && unmapped != s.src.source && probe.r.pkt.SSRC != s.src.ssrc
			before := h.n.Load()
			now = now.Add(20 * time.Millisecond)
			s.process(r, b, from, now)
			if stranger && h.n.Load() != before {
				t.Fatalf("packet from %v (SSRC %x) accepted while locked to %v (SSRC %x)", from, probe.r.pkt.SSRC, s.src.source, s.src.ssrc)
			}
		}
		st := s.Stats()
		if st.SourceDropped > rtpPkts {
			t.Fatalf("%d dropped of %d packets", st.SourceDropped, rtpPkts)
		}
		if got := s.Remote(); got != nil {
			ap := netip.AddrPortFrom(got.AddrPort().Addr().Unmap(), got.AddrPort().Port())
			known := false
			for _, a := range fuzzAddrs {
				known = known || ap == netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
			}
			if !known {
				t.Fatalf("sending to %v", got)
			}
		}
	})
}

// rtpHeaderProbe tells whether process will parse b as RTP version 2.
type rtpHeaderProbe struct{ r reader }

func (p *rtpHeaderProbe) ok(b []byte) bool {
	return p.r.pkt.Unmarshal(b) == nil && p.r.pkt.Version == 2
}

// TestWriteFuzzCorpus (re)writes testdata/fuzz/FuzzSession from fuzzSeeds
// when TAPEDECK_WRITE_CORPUS is set.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("TAPEDECK_WRITE_CORPUS") == "" {
		t.Skip("set TAPEDECK_WRITE_CORPUS=1 to rewrite the seed corpus")
	}
	for name, seed := range fuzzSeeds() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", seed)
		if err := os.WriteFile(filepath.Join("testdata", "fuzz", "FuzzSession", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
