package rtp

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/tapedeck/tapedeck/internal/dtmf"
)

// ErrClosed is returned by operations on a closed session.
var ErrClosed = errors.New("rtp: session closed")

// Handler receives media from a session's reader goroutine. Calls are
// sequential. pkt and its payload are only valid during the call: copy what
// must outlive it.
type Handler interface {
	// OnAudio is called for each non-duplicate audio packet, with its
	// extended (64-bit) sequence number.
	OnAudio(pkt *rtp.Packet, extSeq uint64)
	// OnDTMF is called once when an RFC 4733 event starts (end=false) and
	// once when it ends (end=true, with its duration).
	OnDTMF(digit rune, durationMs int, end bool)
}

// Config describes a session. Its sockets are either Conn and RTCPConn, each
// read by a goroutine of the session (packets handled the moment they
// arrive), or Socket and RTCPSocket read in batches by Poller.
type Config struct {
	Conn, RTCPConn *net.UDPConn
	Socket         *Socket
	RTCPSocket     *Socket
	Poller         *Poller
	// Remote is the address from SDP. Packets are accepted from it at once;
	// another source (a phone behind NAT) is learned from a run of
	// Probation sequential packets, and audio is sent where they come from
	// (symmetric RTP). Once a source is locked, packets from any other are
	// dropped and counted (strict RTP, as Asterisk's strictrtp=yes).
	Remote          *net.UDPAddr
	PayloadType     uint8
	DTMFPayloadType uint8 // 0: no telephone-event negotiated
	ClockRate       uint32
	Handler         Handler
}

// Session is one RTP stream pair (receive and send) with its sockets.
type Session struct {
	conn, rtcpConn *net.UDPConn
	sock, rtcpSock *Socket
	poller         *Poller
	regs           []*Registration
	rd             *reader // poller mode: the reader state, used by the poller's worker
	clockRate      uint32
	handler        Handler

	pt     atomic.Uint32        // audio payload type
	dtmfPT atomic.Uint32        // telephone-event payload type, 0 = none
	remote atomic.Pointer[peer] // where audio is sent; nil: nowhere (hold)
	hold   atomic.Bool          // signalling stopped sending: learning does not resume it

	// procMu is held by the reading goroutine (without a Poller) while it
	// handles a packet, from the statistics to the Handler's return, so
	// that Flush can wait for a packet already counted. readerID is that
	// goroutine's id: Flush from the Handler itself must not wait.
	procMu   sync.Mutex
	readerID atomic.Int64

	// arrival is the arrival time of the packet being handled: set and read
	// only on the reading goroutine (or the poller worker), see Arrival.
	arrival time.Time

	statsMu sync.Mutex
	seq     seqTracker
	stats   Stats
	src     strict // guarded by statsMu

	sendMu   sync.Mutex
	ssrc     uint32
	sendSeq  uint16
	sendTS   uint32
	lastSend time.Time
	marker   bool
	sendBuf  []byte
	sendPkt  rtp.Packet

	closeOnce sync.Once
	closed    chan struct{}
	isClosed  atomic.Bool // set with closed: a load, where the send path needs no channel
	done      sync.WaitGroup
	start     time.Time
}

// NewSession makes a session; Start begins reading.
func NewSession(c Config) *Session {
	s := &Session{
		conn:      c.Conn,
		rtcpConn:  c.RTCPConn,
		sock:      c.Socket,
		rtcpSock:  c.RTCPSocket,
		poller:    c.Poller,
		clockRate: c.ClockRate,
		handler:   c.Handler,
		ssrc:      rand.Uint32(),
		sendSeq:   uint16(rand.Uint32()),
		sendTS:    rand.Uint32(),
		marker:    true,
		sendBuf:   make([]byte, 1500),
		closed:    make(chan struct{}),
		start:     time.Now(),
	}
	if s.clockRate == 0 {
		s.clockRate = 8000
	}
	s.pt.Store(uint32(c.PayloadType))
	s.dtmfPT.Store(uint32(c.DTMFPayloadType))
	if c.Remote != nil && !c.Remote.IP.IsUnspecified() && c.Remote.Port != 0 {
		p := newPeer(c.Remote)
		s.remote.Store(p)
		s.src.expected = p.ap
	}
	return s
}

// RTCPReadInterval is how often a Poller reads a session's RTCP socket.
const RTCPReadInterval = time.Second

// Start begins reading: the session's Poller, or reader goroutines. It fails
// only when the poller cannot take the sockets.
func (s *Session) Start() error {
	if s.sock != nil {
		s.rd = &reader{}
		reg, err := s.poller.Add(s.sock, s.onPacket)
		if err != nil {
			return err
		}
		s.regs = append(s.regs, reg)
		if s.rtcpSock != nil {
			// RTCP comes every few seconds and feeds statistics only:
			// read once a second, not every read interval.
			rreg, err := s.poller.AddEvery(s.rtcpSock, s.onRTCP, RTCPReadInterval)
			if err != nil {
				reg.Remove()
				s.regs = nil
				return err
			}
			// On the wall-clock grid of its period, as a relaxed RTP
			// socket: a worker whose RTP sockets are relaxed then has
			// nothing to read between their grid instants, and sleeps
			// through them (a worker with ticks keeps its round-robin
			// phase).
			rreg.SetRelaxed(RTCPReadInterval)
			s.regs = append(s.regs, rreg)
		}
		return nil
	}
	s.done.Add(1)
	go s.readRTP()
	if s.rtcpConn != nil {
		s.done.Add(1)
		go s.readRTCP()
	}
	return nil
}

// LocalAddr is the local RTP address.
func (s *Session) LocalAddr() *net.UDPAddr {
	if s.sock != nil {
		return net.UDPAddrFromAddrPort(s.sock.LocalAddr())
	}
	return s.conn.LocalAddr().(*net.UDPAddr)
}

// Remote is the current remote RTP address (learned or from SDP).
func (s *Session) Remote() *net.UDPAddr {
	if p := s.remote.Load(); p != nil {
		return p.udp
	}
	return nil
}

// peer is the remote address in both forms: the packet path compares and
// sends with ap (no conversion per packet), the API returns udp.
type peer struct {
	udp *net.UDPAddr
	ap  netip.AddrPort
}

func newPeer(a *net.UDPAddr) *peer {
	ap := a.AddrPort()
	return &peer{udp: a, ap: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}
}

// Update changes the negotiated remote address and payload types, e.g. after
// a re-INVITE. A nil or unspecified address stops sending (hold). A new
// address restarts learning, as Asterisk does when the SDP address changes:
// it is accepted at once and another source must earn it again; the same
// address keeps what was learned (a NAT phone's source).
func (s *Session) Update(remote *net.UDPAddr, pt, dtmfPT uint8) {
	s.pt.Store(uint32(pt))
	s.dtmfPT.Store(uint32(dtmfPT))
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if remote == nil || remote.IP.IsUnspecified() || remote.Port == 0 {
		s.hold.Store(true)
		s.remote.Store(nil)
		return
	}
	s.hold.Store(false)
	p := newPeer(remote)
	if p.ap != s.src.expected {
		s.src = strict{expected: p.ap}
		s.remote.Store(p)
		return
	}
	if s.remote.Load() == nil { // off hold: back to the learned source
		if s.src.locked {
			s.remote.Store(&peer{udp: net.UDPAddrFromAddrPort(s.src.source), ap: s.src.source})
		} else {
			s.remote.Store(p)
		}
	}
}

// Arrival is when the packet being handled arrived (the kernel's receive
// time with a Poller, the read time otherwise). Only the Handler may call
// it, during OnAudio or OnDTMF: it is the wall clock a recording measures
// gaps with, free of the delay of batched reads.
func (s *Session) Arrival() time.Time { return s.arrival }

// Stats returns a snapshot of the counters.
func (s *Session) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	st := s.stats
	st.Received = s.seq.received
	st.Duplicates = s.seq.dups
	st.Reordered = s.seq.reorder
	st.Expected = s.seq.expected()
	st.Lost = int64(st.Expected) - int64(st.Received)
	st.MaxSeq = s.seq.max
	st.Jitter = s.seq.jitter
	return st
}

// reader is the state of the one goroutine reading the RTP socket (or of
// the poller worker reading it); its buffers are reused for every packet.
type reader struct {
	buf      []byte
	pkt      rtp.Packet
	det      dtmf.Detector
	ev       dtmf.Event
	lastSSRC uint32
}

func (s *Session) readRTP() {
	defer s.done.Done()
	r := &reader{buf: make([]byte, 1500)}
	s.readerID.Store(goid())
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(r.buf)
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ICMP errors and the like: keep reading
		}
		s.procMu.Lock()
		s.process(r, r.buf[:n], from, time.Now())
		s.procMu.Unlock()
	}
}

// SetOwned takes the reading of the RTP socket from the Poller (on): the
// caller then calls Flush whenever it wants the audio, as a bridge does
// right before each mix. Off hands it back to the Poller's schedule. Without
// a Poller it does nothing: goroutines read at once.
func (s *Session) SetOwned(on bool) {
	if len(s.regs) > 0 {
		s.regs[0].SetOwned(on)
	}
}

// SetLive reads the RTP socket as each packet arrives (on), for a session
// whose audio feeds a live stream, instead of on the Poller's schedule
// (Registration.SetLive); off hands it back. Without a Poller it does
// nothing: goroutines read at once.
func (s *Session) SetLive(on bool) {
	if len(s.regs) > 0 {
		_ = s.regs[0].SetLive(on)
	}
}

// SetRelaxed reads the RTP socket every period instead of every read
// interval (Registration.SetRelaxed; 0: every read interval), for a session
// whose packets nobody needs sooner than a job on that period's grid takes
// them. Without a Poller it does nothing: goroutines read at once.
func (s *Session) SetRelaxed(period time.Duration) {
	if len(s.regs) > 0 {
		s.regs[0].SetRelaxed(period)
	}
}

// Relaxed is the period set by SetRelaxed (0: none, or no Poller).
func (s *Session) Relaxed() time.Duration {
	if len(s.regs) > 0 {
		return s.regs[0].Relaxed()
	}
	return 0
}

// Live reports whether the RTP socket is read on arrival (SetLive).
func (s *Session) Live() bool { return len(s.regs) > 0 && s.regs[0].Live() }

// Flush hands the handler what the RTP socket holds now, so that an action
// taken at this moment (stopping or pausing a recording, a hangup) sees
// every packet that arrived before it: a packet already being handled (its
// statistics counted, its Handler call not yet returned) is waited for, and
// with a Poller the socket's queue is drained. Safe from any goroutine,
// including the Handler (then it does nothing).
func (s *Session) Flush() {
	if len(s.regs) > 0 {
		s.regs[0].TryDrain()
		return
	}
	if s.conn == nil {
		return
	}
	if s.procMu.TryLock() { // nothing being handled: the usual case
		s.procMu.Unlock()
		return
	}
	if s.readerID.Load() == goid() {
		return // called from the Handler
	}
	s.procMu.Lock() // wait for the packet being handled
	s.procMu.Unlock()
}

// onPacket is the Poller's handler for the RTP socket.
func (s *Session) onPacket(b []byte, from netip.AddrPort, at time.Time) {
	s.process(s.rd, b, from, at)
}

// process handles one received datagram: parse, latch, statistics, then
// DTMF detection or the audio handler. It does not allocate.
func (s *Session) process(r *reader, b []byte, from netip.AddrPort, now time.Time) {
	pkt := &r.pkt
	if err := pkt.Unmarshal(b); err != nil || pkt.Version != 2 {
		return
	}
	pt := uint32(pkt.PayloadType)
	isDTMF := pt == s.dtmfPT.Load() && pt != 0
	if pt != s.pt.Load() && !isDTMF {
		return // not a negotiated format (e.g. comfort noise)
	}
	arrival := int64(now.Sub(s.start) * time.Duration(s.clockRate) / time.Second)
	s.statsMu.Lock()
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if st := &s.src; st.locked && from == st.source {
		st.ssrc, st.seq = pkt.SSRC, pkt.SequenceNumber // the steady state, inline
	} else if !s.admit(from, pkt.SSRC, pkt.SequenceNumber) {
		s.stats.SourceDropped++
		s.statsMu.Unlock()
		return
	}
	if s.seq.started && pkt.SSRC != r.lastSSRC {
		// A new source (e.g. after a re-INVITE): restart sequence state.
		s.seq = seqTracker{}
		s.stats.SSRCChanges++
		r.det.Reset()
	}
	r.lastSSRC = pkt.SSRC
	ext, dup := s.seq.update(pkt.SequenceNumber, pkt.Timestamp, arrival)
	if !dup {
		s.stats.Bytes += uint64(len(pkt.Payload))
	}
	s.stats.SSRC = pkt.SSRC
	s.stats.LastPacketAt = now
	if s.stats.FirstPacketAt.IsZero() {
		s.stats.FirstPacketAt = now
	}
	s.statsMu.Unlock()
	if dup || s.handler == nil {
		return
	}
	s.arrival = now
	if isDTMF {
		if r.ev.Unmarshal(pkt.Payload) != nil {
			return
		}
		digit, ms, begin, done := r.det.Push(pkt.Timestamp, pkt.Marker, r.ev, s.clockRate)
		if begin {
			s.deliverDTMF(digit, 0, false)
		}
		if done {
			s.deliverDTMF(digit, ms, true)
		}
		return
	}
	s.deliverAudio(pkt, ext)
}

// Probation is the number of sequential packets a new source must send
// before it is accepted: Asterisk's default probation (rtp_learning).
const Probation = 4

// strict is the source filter (Asterisk's strictrtp=yes with learning).
// Learning: packets from the SDP address (expected) are accepted, and a run
// of Probation sequential ones locks it; another source is a candidate that
// is dropped until it has sent Probation sequential packets, then locked
// (a phone behind NAT). Locked: only the locked source is accepted; a new
// address is accepted only when it continues the locked stream (same SSRC,
// the sequence numbers that follow) for Probation packets: a NAT rebinding.
// New SDP (Update with another address) restarts learning. Before any SDP
// address is known, the first source is taken as the expected one.
type strict struct {
	expected netip.AddrPort // from SDP; zero: none yet
	locked   bool
	source   netip.AddrPort // locked source
	ssrc     uint32         // last accepted packet's SSRC and sequence number
	seq      uint16
	run      int // sequential packets from expected while learning
	cand     netip.AddrPort
	candSeq  uint16
	candRun  int
}

// admit applies the source filter to one packet from from (unmapped);
// statsMu is held. It allocates only when a source is locked or changes.
func (s *Session) admit(from netip.AddrPort, ssrc uint32, seq uint16) bool {
	st := &s.src
	switch {
	case st.locked && from == st.source:
	case !st.locked && st.expected.IsValid() && from == st.expected:
		if st.run > 0 && seq == st.seq+1 && ssrc == st.ssrc {
			st.run++
		} else {
			st.run = 1
		}
		if st.run >= Probation {
			st.locked, st.source = true, from
		}
	case !st.locked && !st.expected.IsValid():
		// No SDP address yet (a call set up without an offer, or early
		// media that arrives before the answer's SDP is read): the first
		// source is the expected one, as symmetric RTP takes it, and its
		// packets are not thrown away while it earns the lock.
		st.expected, st.run = from, 1
		if s.remote.Load() == nil && !s.hold.Load() {
			s.remote.Store(&peer{udp: net.UDPAddrFromAddrPort(from), ap: from})
		}
	default:
		if st.locked && (ssrc != st.ssrc || int16(seq-st.seq) <= 0 || int16(seq-st.seq) > 100) {
			return false // not the locked stream's continuation
		}
		if from == st.cand && seq == st.candSeq+1 {
			st.candRun++
		} else {
			st.cand, st.candRun = from, 1
		}
		st.candSeq = seq
		if st.candRun < Probation {
			return false
		}
		if st.locked {
			s.stats.SourceChanges++
		}
		st.locked, st.source, st.cand, st.candRun = true, from, netip.AddrPort{}, 0
		if !s.hold.Load() {
			s.remote.Store(&peer{udp: net.UDPAddrFromAddrPort(from), ap: from})
		}
	}
	st.ssrc, st.seq = ssrc, seq
	return true
}

func (s *Session) readRTCP() {
	defer s.done.Done()
	buf := make([]byte, 1500)
	for {
		n, _, err := s.rtcpConn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-s.closed:
				return
			default:
				continue
			}
		}
		s.handleRTCP(buf[:n])
	}
}

// onRTCP is the Poller's handler for the RTCP socket.
func (s *Session) onRTCP(b []byte, _ netip.AddrPort, _ time.Time) { s.handleRTCP(b) }

func (s *Session) handleRTCP(b []byte) {
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return
	}
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	s.stats.RTCPReceived++
	for _, p := range pkts {
		switch r := p.(type) {
		case *rtcp.SenderReport:
			s.stats.LastSRNTP = r.NTPTime
			s.remoteReports(r.Reports)
		case *rtcp.ReceiverReport:
			s.remoteReports(r.Reports)
		}
	}
}

func (s *Session) remoteReports(reports []rtcp.ReceptionReport) {
	for _, rr := range reports {
		if rr.SSRC == s.ssrc {
			s.stats.RemoteLost = rr.TotalLost
			s.stats.RemoteJitter = rr.Jitter
		}
	}
}

// WriteAudio sends one audio packet carrying samples samples.
func (s *Session) WriteAudio(payload []byte, samples uint32) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	err := s.writeLocked(uint8(s.pt.Load()), s.marker, s.sendTS, payload)
	s.marker = false
	s.sendTS += samples
	return err
}

// SendDigit sends one RFC 4733 event of the given duration, pacing packets
// every 20 ms. It blocks for the duration of the digit.
func (s *Session) SendDigit(digit rune, duration time.Duration) error {
	pt := uint8(s.dtmfPT.Load())
	if pt == 0 {
		return errors.New("rtp: telephone-event was not negotiated")
	}
	events, err := dtmf.NewSenderPackets(digit, duration, s.clockRate, 20)
	if err != nil {
		return err
	}
	s.sendMu.Lock()
	ts := s.sendTS
	s.sendMu.Unlock()
	var payload [4]byte
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i, ev := range events {
		if _, err := ev.MarshalTo(payload[:]); err != nil {
			return err
		}
		s.sendMu.Lock()
		err := s.writeLocked(pt, i == 0, ts, payload[:])
		s.sendMu.Unlock()
		if err != nil && !errors.Is(err, errNoRemote) {
			return err
		}
		if i+1 < len(events) && !(ev.End && events[i+1].End) {
			select {
			case <-tick.C:
			case <-s.closed:
				return ErrClosed
			}
		}
	}
	s.sendMu.Lock()
	s.sendTS = ts + uint32(duration*time.Duration(s.clockRate)/time.Second)
	s.marker = true
	s.sendMu.Unlock()
	return nil
}

// WriteRTP sends a packet exactly as given (sequence number, timestamp,
// SSRC): for load generators and tests that inject loss or reordering.
func (s *Session) WriteRTP(p *rtp.Packet) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	remote := s.remote.Load()
	if remote == nil {
		return errNoRemote
	}
	n, err := p.MarshalTo(s.sendBuf)
	if err != nil {
		return err
	}
	return s.send(s.sendBuf[:n], remote)
}

// send writes one datagram on the RTP socket.
func (s *Session) send(b []byte, to *peer) error {
	if s.sock != nil {
		_, err := s.sock.WriteTo(b, to.ap)
		return err
	}
	_, err := s.conn.WriteToUDP(b, to.udp)
	return err
}

var errNoRemote = errors.New("rtp: no remote address")

func (s *Session) writeLocked(pt uint8, marker bool, ts uint32, payload []byte) error {
	if s.isClosed.Load() {
		return ErrClosed
	}
	remote := s.remote.Load()
	s.sendSeq++
	if remote == nil {
		return errNoRemote
	}
	p := &s.sendPkt
	p.Version = 2
	p.PayloadType = pt
	p.Marker = marker
	p.SequenceNumber = s.sendSeq
	p.Timestamp = ts
	p.SSRC = s.ssrc
	p.Payload = payload
	n, err := p.MarshalTo(s.sendBuf)
	if err != nil {
		return err
	}
	if err := s.send(s.sendBuf[:n], remote); err != nil {
		return err
	}
	s.statsMu.Lock()
	s.stats.Sent++
	s.stats.SentBytes += uint64(len(payload))
	s.statsMu.Unlock()
	return nil
}

// Close stops the readers and closes the sockets. With a Poller, what the
// RTP socket holds is handled first (the packets that arrived before the
// hangup). It is idempotent, and must not be called from the Handler.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		s.isClosed.Store(true)
		close(s.closed)
		for i, r := range s.regs {
			if i == 0 {
				r.Drain()
			}
			r.Remove()
		}
		if s.sock != nil {
			s.sock.Close()
		}
		if s.rtcpSock != nil {
			s.rtcpSock.Close()
		}
		if s.conn != nil {
			s.conn.Close()
		}
		if s.rtcpConn != nil {
			s.rtcpConn.Close()
		}
		s.done.Wait()
	})
	return nil
}
