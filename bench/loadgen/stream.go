package main

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sys/unix"

	"github.com/tapedeck/tapedeck/internal/rtp"
)

// streamReceiver is scenario e's external media program: an AudioSocket
// server (TCP; each connection's first message is the stream's UUID, then
// audio messages) and an RTP receiver (UDP; each stream is the address it
// comes from) that count the audio bytes of every stream.
//
// Both are read in rounds, not as data arrives: the RTP socket by loadgen's
// Poller, the AudioSocket connections by one goroutine every asRound. A
// reader waiting in Go's network poller is woken for every frame of every
// stream, and on loopback the server's send pays for that wake-up, which a
// far end on another host would not charge it.
type streamReceiver struct {
	ln    net.Listener
	udp   *rtp.Socket
	reg   *rtp.Registration
	mu    sync.Mutex // guards bytes, rtp, bad, conns and the connections' state
	bytes map[uuid.UUID]int64
	rtp   map[netip.AddrPort]int64
	bad   []string
	conns []*asConn
	stop  chan struct{}
	wg    sync.WaitGroup
}

// asConn is one AudioSocket connection, out of Go's network poller: a
// non-blocking descriptor read in rounds, and what it holds of a message
// not yet complete.
type asConn struct {
	fd      int
	pending []byte
	id      uuid.UUID
	started bool // the UUID message came
	done    bool // closed: EOF, an error, or a bad first message
}

// asRound is how often the AudioSocket connections are read: like the RTP
// receiver's 100 ms, within what a socket buffer holds of a stream.
const asRound = 100 * time.Millisecond

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
	s := &streamReceiver{ln: ln, udp: udp, bytes: map[uuid.UUID]int64{}, rtp: map[netip.AddrPort]int64{}, stop: make(chan struct{})}
	if s.reg, err = poller.Add(udp, s.onRTP); err != nil {
		ln.Close()
		udp.Close()
		return nil, err
	}
	s.wg.Add(2)
	go s.accept()
	go s.readAudioSockets()
	return s, nil
}

func (s *streamReceiver) addr() string { return s.ln.Addr().String() }

// rtpAddr is the RTP receiver's address (externalMedia's external_host
// with encapsulation rtp).
func (s *streamReceiver) rtpAddr() string { return s.udp.LocalAddr().String() }

func (s *streamReceiver) close() {
	s.ln.Close()
	close(s.stop)
	s.wg.Wait()
	s.reg.Drain()
	s.reg.Remove()
	s.udp.Close()
	s.mu.Lock()
	s.readRoundLocked()
	for _, c := range s.conns {
		if !c.done {
			unix.Close(c.fd)
		}
	}
	s.conns = nil
	s.mu.Unlock()
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

// accept takes each AudioSocket connection out of Go's network poller (a
// duplicate of its descriptor, the original closed, which also removes it
// from the poller) and hands it to the rounds.
func (s *streamReceiver) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		fd := -1
		if rc, err := c.(*net.TCPConn).SyscallConn(); err == nil {
			_ = rc.Control(func(x uintptr) { fd, err = unix.Dup(int(x)) })
			if err != nil {
				fd = -1
			}
		}
		c.Close()
		if fd < 0 {
			s.problem("AudioSocket connection: cannot take its descriptor")
			continue
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fd)
			s.problem("AudioSocket connection: " + err.Error())
			continue
		}
		s.mu.Lock()
		s.conns = append(s.conns, &asConn{fd: fd})
		s.mu.Unlock()
	}
}

// readAudioSockets reads every AudioSocket connection each asRound.
func (s *streamReceiver) readAudioSockets() {
	defer s.wg.Done()
	t := time.NewTicker(asRound)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		s.readRoundLocked()
		s.mu.Unlock()
	}
}

// readRoundLocked reads what each connection holds and counts its audio;
// a connection the server closed is closed here and dropped.
func (s *streamReceiver) readRoundLocked() {
	var buf [16 << 10]byte
	kept := s.conns[:0]
	for _, c := range s.conns {
		for !c.done {
			n, err := unix.Read(c.fd, buf[:])
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				break
			}
			if n > 0 {
				c.pending = append(c.pending, buf[:n]...)
				s.parseLocked(c)
				continue
			}
			c.done = true // EOF or an error
		}
		if c.done {
			unix.Close(c.fd)
			continue
		}
		kept = append(kept, c)
	}
	clear(s.conns[len(kept):])
	s.conns = kept
}

// parseLocked consumes the complete messages in c.pending: the UUID first,
// then audio (counted) and anything else (skipped).
func (s *streamReceiver) parseLocked(c *asConn) {
	p := c.pending
	for len(p) >= 3 && !c.done {
		kind, n := p[0], int(binary.BigEndian.Uint16(p[1:3]))
		if len(p) < 3+n {
			break
		}
		body := p[3 : 3+n]
		p = p[3+n:]
		switch {
		case !c.started:
			if kind != 0x01 || n != 16 {
				s.problemLocked(fmt.Sprintf("first message kind 0x%02x length %d, want the UUID", kind, n))
				c.done = true
				break
			}
			copy(c.id[:], body)
			c.started = true
		case kind >= 0x10 && kind <= 0x18:
			s.bytes[c.id] += int64(n)
		}
	}
	c.pending = append(c.pending[:0], p...)
}

func (s *streamReceiver) problem(p string) {
	s.mu.Lock()
	s.problemLocked(p)
	s.mu.Unlock()
}

func (s *streamReceiver) problemLocked(p string) {
	if len(s.bad) < 10 {
		s.bad = append(s.bad, p)
	}
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
	s.readRoundLocked() // what came since the last round
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
