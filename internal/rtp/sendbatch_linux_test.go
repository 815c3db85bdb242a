package rtp

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"golang.org/x/sys/unix"
)

// forwardHandler forwards every packet a Poller delivers to out, through
// the delivering drain's send batch (as a bridge forwards a recorded call's
// frames to an external media channel), and notes, for each, whether one
// forwarded before it had already reached the receiver.
type forwardHandler struct {
	in, out *Session
	rcv     int // the receiver's descriptor, peeked without reading
	mu      sync.Mutex
	arrived []int
}

func (h *forwardHandler) OnAudio(pkt *rtp.Packet, _ uint64) {
	h.mu.Lock()
	h.arrived = append(h.arrived, pending(h.rcv))
	in := h.in
	h.mu.Unlock()
	_ = h.out.WriteAudioBatched(pkt.Payload, 160, in.SendBatch())
}

func (*forwardHandler) OnDTMF(rune, int, bool) {}

// pending is 1 when a datagram is queued on fd, 0 when none is (it peeks,
// reading nothing).
func pending(fd int) int {
	var buf [1]byte
	if _, _, err := unix.Recvfrom(fd, buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT); err != nil {
		return 0
	}
	return 1
}

// TestSendBatchOnePerDrain: packets that a Poller delivers five at a time
// and whose handler forwards them with WriteAudioBatched leave when the
// drain ends, together (none has reached the receiver while the drain is
// still handing packets over), all of them, in order, counted as
// SentBatched; a WriteAudio at the same time goes out at once.
func TestSendBatchOnePerDrain(t *testing.T) {
	p, err := NewPoller(5*time.Millisecond, 100*time.Millisecond, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	ports, err := NewPorts("127.0.0.1", 47000, 47999)
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	raw, err := rcv.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var rfd int
	_ = raw.Control(func(fd uintptr) { rfd = int(fd) })
	sender := listenLoopback(t)

	h := &forwardHandler{rcv: rfd}
	newSession := func(remote *net.UDPAddr, hd Handler) *Session {
		cfg, err := ports.ListenConfig(p)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Remote, cfg.Handler = remote, hd
		s := NewSession(cfg)
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	h.out = newSession(rcv.LocalAddr().(*net.UDPAddr), nopHandler{})
	in := newSession(net.UDPAddrFromAddrPort(sender.LocalAddr()), h)
	h.mu.Lock()
	h.in = in
	h.mu.Unlock()

	const n = 5
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 7}, Payload: make([]byte, 160)}
	to := in.sock.LocalAddr()
	for i := range n {
		pkt.SequenceNumber, pkt.Timestamp = uint16(100+i), uint32(160*i)
		pkt.Payload[0] = byte(i)
		b, _ := pkt.Marshal()
		if _, err := sender.WriteTo(b, to); err != nil {
			t.Fatal(err)
		}
	}
	// The receiver is read only once all five were handed over, so that
	// each handler's peek sees what left before it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.mu.Lock()
		k := len(h.arrived)
		h.mu.Unlock()
		if k == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d packets handed over", k, n)
		}
		time.Sleep(time.Millisecond)
	}
	_ = rcv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	var first uint16
	for i := range n {
		k, _, err := rcv.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		var got rtp.Packet
		if err := got.Unmarshal(buf[:k]); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = got.SequenceNumber
		}
		if got.SequenceNumber != first+uint16(i) || got.Payload[0] != byte(i) {
			t.Errorf("packet %d: seq %d payload %d, want seq %d payload %d", i, got.SequenceNumber, got.Payload[0], first+uint16(i), i)
		}
	}
	h.mu.Lock()
	arrived := h.arrived
	h.mu.Unlock()
	for i, a := range arrived {
		if a != 0 {
			t.Errorf("while handing over packet %d, a forwarded packet had already reached the receiver: sent one by one, not at the drain's end", i)
		}
	}
	if st := h.out.Stats(); st.Sent != n || st.SentBatched != n {
		t.Errorf("sent %d, batched %d; want %d and %d", st.Sent, st.SentBatched, n, n)
	}
	// Outside a drain, at once.
	if err := h.out.WriteAudioBatched(make([]byte, 160), 160, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := rcv.ReadFromUDPAddrPort(buf); err != nil {
		t.Fatalf("a send outside a drain: %v", err)
	}
	if st := h.out.Stats(); st.Sent != n+1 || st.SentBatched != n {
		t.Errorf("after a direct send: sent %d, batched %d", st.Sent, st.SentBatched)
	}
}

// TestSendBatchFlushGroupsSockets: a batch holding datagrams of two sockets
// to two receivers, interleaved and more than it holds at once, delivers
// every one in order per receiver, from its own socket; a closed socket's
// datagrams are dropped without harm to the others.
func TestSendBatchFlushGroupsSockets(t *testing.T) {
	a, b, c := listenLoopback(t), listenLoopback(t), listenLoopback(t)
	ra, rb := listenLoopback(t), listenLoopback(t)
	q := newSendBatch()
	const n = 50 // more than sendBatchMax: flushes on the way
	for i := range n {
		_ = q.queue(a, []byte{byte(i)}, ra.LocalAddr())
		_ = q.queue(a, []byte{byte(i), 0}, ra.LocalAddr())
		_ = q.queue(b, []byte{byte(i)}, rb.LocalAddr())
		if i == 10 {
			_ = q.queue(c, []byte{9}, rb.LocalAddr())
			c.Close()
		}
	}
	q.Flush()
	if q.Len() != 0 {
		t.Fatalf("%d left after Flush", q.Len())
	}
	read := func(s *Socket, want int, from netip.AddrPort) []got {
		t.Helper()
		sk := &sink{}
		deadline := time.Now().Add(5 * time.Second)
		for sk.len() < want && time.Now().Before(deadline) {
			b := newBatch()
			b.read(&member{sock: s, fn: sk.fn})
			time.Sleep(time.Millisecond)
		}
		if sk.len() != want {
			t.Fatalf("%d datagrams, want %d", sk.len(), want)
		}
		for _, g := range sk.pkts {
			if g.from != from {
				t.Fatalf("a datagram from %v, want %v", g.from, from)
			}
		}
		return sk.pkts
	}
	ga := read(ra, 2*n, a.LocalAddr())
	for i := range n {
		if len(ga[2*i].data) != 1 || ga[2*i].data[0] != byte(i) || len(ga[2*i+1].data) != 2 || ga[2*i+1].data[0] != byte(i) {
			t.Fatalf("datagrams %d, %d of a: %v %v", 2*i, 2*i+1, ga[2*i].data, ga[2*i+1].data)
		}
	}
	gb := read(rb, n, b.LocalAddr())
	for i := range n {
		if gb[i].data[0] != byte(i) {
			t.Fatalf("datagram %d of b: %v", i, gb[i].data)
		}
	}
}
