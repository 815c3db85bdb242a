package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/tapedeck/tapedeck/internal/rtp"
)

// streamReceiver is scenario e's external media program: an AudioSocket
// server (TCP; each connection's first message is the stream's UUID, then
// audio messages) and an RTP receiver (UDP; each stream is the address it
// comes from) that count the audio bytes of every stream.
type streamReceiver struct {
	ln    net.Listener
	udp   *rtp.Socket
	reg   *rtp.Registration
	mu    sync.Mutex
	bytes map[uuid.UUID]int64
	rtp   map[netip.AddrPort]int64
	bad   []string
	wg    sync.WaitGroup
}

// StreamReport is what the receiver got.
type StreamReport struct {
	Encap    string   `json:"encap"` // AudioSocket or RTP
	Format   string   `json:"format"`
	Expected int      `json:"expected"` // streams the app started
	Received int      `json:"received"` // streams that connected and sent audio
	Short    int      `json:"short"`    // with under 80 % of the caller's audio
	MinPct   int      `json:"min_pct"`  // the shortest stream, % of the caller's audio
	Problems []string `json:"problems,omitempty"`
}

// newStreamReceiver starts the receivers. The RTP one is read in batches
// by loadgen's Poller, like the phones: a socket in Go's network poller
// would wake loadgen for every packet, and on loopback the server's
// sendto pays for the receiver's wake-up, which a far end on another host
// would not charge it.
func newStreamReceiver(poller *rtp.Poller) (*streamReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	udp, err := rtp.ListenSocket(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		ln.Close()
		return nil, err
	}
	// 100 streams of 50 packets a second, read every 100 ms: room for a
	// few rounds.
	_ = udp.SetReadBuffer(8 << 20)
	s := &streamReceiver{ln: ln, udp: udp, bytes: map[uuid.UUID]int64{}, rtp: map[netip.AddrPort]int64{}}
	if s.reg, err = poller.Add(udp, s.onRTP); err != nil {
		ln.Close()
		udp.Close()
		return nil, err
	}
	go s.accept()
	return s, nil
}

func (s *streamReceiver) addr() string { return s.ln.Addr().String() }

// rtpAddr is the RTP receiver's address (externalMedia's external_host
// with encapsulation rtp).
func (s *streamReceiver) rtpAddr() string { return s.udp.LocalAddr().String() }

func (s *streamReceiver) close() {
	s.ln.Close()
	s.reg.Drain()
	s.reg.Remove()
	s.udp.Close()
	s.wg.Wait()
}

// onRTP counts the payload bytes of the RTP packets of every source.
func (s *streamReceiver) onRTP(b []byte, from netip.AddrPort, _ time.Time) {
	n := len(b)
	if n < 12 || b[0]>>6 != 2 {
		s.problem(fmt.Sprintf("not RTP: %d bytes from %v", n, from))
		return
	}
	hdr := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 && n >= hdr+4 {
		hdr += 4 + 4*int(binary.BigEndian.Uint16(b[hdr+2:]))
	}
	if n < hdr {
		return
	}
	s.mu.Lock()
	s.rtp[from] += int64(n - hdr)
	s.mu.Unlock()
}

func (s *streamReceiver) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			s.serve(c)
		}()
	}
}

func (s *streamReceiver) serve(c net.Conn) {
	r := bufio.NewReaderSize(c, 8192)
	var hdr [3]byte
	var id uuid.UUID
	first := true
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[1:]))
		if first {
			if hdr[0] != 0x01 || n != 16 {
				s.problem(fmt.Sprintf("first message kind 0x%02x length %d, want the UUID", hdr[0], n))
				return
			}
			if _, err := io.ReadFull(r, id[:]); err != nil {
				return
			}
			first = false
			continue
		}
		if _, err := r.Discard(n); err != nil {
			return
		}
		if hdr[0] >= 0x10 && hdr[0] <= 0x18 {
			s.mu.Lock()
			s.bytes[id] += int64(n)
			s.mu.Unlock()
		}
	}
}

func (s *streamReceiver) problem(p string) {
	s.mu.Lock()
	if len(s.bad) < 10 {
		s.bad = append(s.bad, p)
	}
	s.mu.Unlock()
}

// report sums the streams up: each should hold about the samples the
// caller sent (from the snoop's start, a little after the call's).
func (s *streamReceiver) report(format string, samples, expected int) *StreamReport {
	perSample := map[string]int{"ulaw": 1, "alaw": 1, "slin": 2, "slin12": 3, "slin16": 4, "slin24": 6, "slin32": 8, "slin44": 11, "slin48": 12}[format]
	if perSample == 0 {
		perSample = 2
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rep := &StreamReport{Encap: "AudioSocket", Format: format, Expected: expected, MinPct: 100, Problems: s.bad}
	if len(s.rtp) > 0 {
		rep.Encap = "RTP"
	}
	all := make([]int64, 0, len(s.bytes)+len(s.rtp))
	for _, b := range s.bytes {
		all = append(all, b)
	}
	for _, b := range s.rtp {
		all = append(all, b)
	}
	for _, b := range all {
		if b == 0 {
			continue
		}
		rep.Received++
		pct := int(100 * b / int64(max(samples*perSample, 1)))
		if format == "slin44" {
			pct = int(100 * b / int64(max(samples*2*441/80, 1)))
		}
		rep.MinPct = min(rep.MinPct, pct)
		if pct < 80 {
			rep.Short++
		}
	}
	if rep.Received == 0 {
		rep.MinPct = 0
	}
	return rep
}

// uuidFor is the stream UUID of a caller's channel (stable, so a report
// can name it).
func uuidFor(id string) string {
	h := sha256.Sum256([]byte(id))
	u, _ := uuid.FromBytes(h[:16])
	return u.String()
}
