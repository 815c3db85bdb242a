// Package rtp owns media sockets: port allocation, reading (a Poller that
// drains many sockets in batches on a schedule, or a goroutine per socket),
// symmetric RTP latching, sequence/timestamp unwrapping, receiver
// statistics (RFC 3550 A.3, A.8) and the send path.
package rtp

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
)

// ErrNoPorts is returned when every port pair of the range is in use.
var ErrNoPorts = errors.New("rtp: no free port pair in range")

// Ports hands out even RTP ports (RTCP on port+1) from a range, round robin
// from a random pair, as Asterisk starts its search at a random port: a
// process that starts at the bottom of the range every time hands its
// first calls the ports of the previous run's calls (a restart) or of
// another process sharing the range, whose peers may still be sending
// there, and a session still learning its source (strict RTP) latches onto
// such a stream after a few packets and sends its audio there.
type Ports struct {
	ip       net.IP
	min, max int

	mu   sync.Mutex
	next int
}

// NewPorts makes an allocator for [min, max] on host.
func NewPorts(host string, min, max int) (*Ports, error) {
	ip := net.ParseIP(host)
	if ip == nil {
		addrs, err := net.LookupIP(host)
		if err != nil || len(addrs) == 0 {
			return nil, fmt.Errorf("rtp: bad host %q", host)
		}
		ip = addrs[0]
	}
	if min%2 == 1 {
		min++
	}
	if min <= 0 || max > 65535 || min+1 > max {
		return nil, fmt.Errorf("rtp: bad port range %d-%d", min, max)
	}
	return &Ports{ip: ip, min: min, max: max, next: min + 2*rand.IntN((max-min+1)/2)}, nil
}

// IP is the local media address.
func (p *Ports) IP() net.IP { return p.ip }

// Listen binds an RTP/RTCP socket pair read by goroutines.
func (p *Ports) Listen() (rtpConn, rtcpConn *net.UDPConn, err error) {
	return listenPair(p, func(port int) (*net.UDPConn, error) {
		return net.ListenUDP("udp", &net.UDPAddr{IP: p.ip, Port: port})
	})
}

// ListenSockets binds an RTP/RTCP socket pair for a Poller.
func (p *Ports) ListenSockets() (rtpSock, rtcpSock *Socket, err error) {
	addr, ok := netip.AddrFromSlice(p.ip)
	if !ok {
		return nil, nil, fmt.Errorf("rtp: bad host %v", p.ip)
	}
	addr = addr.Unmap()
	return listenPair(p, func(port int) (*Socket, error) {
		return ListenSocket(netip.AddrPortFrom(addr, uint16(port)))
	})
}

// ListenConfig binds an RTP/RTCP pair and returns a session Config holding
// it (clock rate 8000): Sockets read by poller, or, with a nil poller,
// connections read by the session's goroutines. The caller fills in the
// rest (handler, remote, payload types); CloseSockets undoes it when no
// session is made.
func (p *Ports) ListenConfig(poller *Poller) (Config, error) {
	cfg := Config{ClockRate: 8000}
	var err error
	if poller != nil {
		cfg.Socket, cfg.RTCPSocket, err = p.ListenSockets()
		cfg.Poller = poller
	} else {
		cfg.Conn, cfg.RTCPConn, err = p.Listen()
	}
	return cfg, err
}

// LocalPort is the RTP port of the config's socket.
func (c Config) LocalPort() int {
	if c.Socket != nil {
		return int(c.Socket.LocalAddr().Port())
	}
	return c.Conn.LocalAddr().(*net.UDPAddr).Port
}

// CloseSockets closes the config's sockets, for when no session was made.
func (c Config) CloseSockets() {
	if c.Socket != nil {
		c.Socket.Close()
		c.RTCPSocket.Close()
	}
	if c.Conn != nil {
		c.Conn.Close()
		c.RTCPConn.Close()
	}
}

// listenPair binds the next free even port and the odd one above it.
func listenPair[S io.Closer](p *Ports, listen func(port int) (S, error)) (a, b S, err error) {
	var zero S
	p.mu.Lock()
	start := p.next
	p.mu.Unlock()
	span := (p.max - p.min + 1) / 2
	for i := 0; i < span; i++ {
		port := p.min + ((start-p.min)/2+i)%span*2
		a, err := listen(port)
		if err != nil {
			continue
		}
		b, err := listen(port + 1)
		if err != nil {
			a.Close()
			continue
		}
		p.mu.Lock()
		p.next = port + 2
		if p.next+1 > p.max {
			p.next = p.min
		}
		p.mu.Unlock()
		return a, b, nil
	}
	return zero, zero, ErrNoPorts
}
