package rawsock

import (
	"bytes"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil/schedtrace"
)

func listen(t *testing.T, network, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Skipf("no %s socket on %s here: %v", network, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn)
}

func wrap(t *testing.T, c *net.UDPConn) *UDPConn {
	t.Helper()
	r, err := NewUDP(c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// exchange sends a datagram from peer to r and one back, checking the
// bytes and the addresses each side sees.
func exchange(t *testing.T, r *UDPConn, peer *net.UDPConn, rAddr *net.UDPAddr, i int) {
	t.Helper()
	msg := []byte{'p', 'i', 'n', 'g', byte(i)}
	if _, err := peer.WriteTo(msg, rAddr); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	r.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := r.ReadFrom(buf)
	if err != nil {
		t.Fatalf("ReadFrom: %v", err)
	}
	if !bytes.Equal(buf[:n], msg) {
		t.Fatalf("read %q, want %q", buf[:n], msg)
	}
	if from.String() != peer.LocalAddr().String() {
		t.Fatalf("datagram from %s, want the sender %s", from, peer.LocalAddr())
	}
	reply := []byte{'p', 'o', 'n', 'g', byte(i)}
	if n, err := r.WriteTo(reply, from); err != nil || n != len(reply) {
		t.Fatalf("WriteTo: %d, %v", n, err)
	}
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, back, err := peer.ReadFrom(buf)
	if err != nil {
		t.Fatalf("the reply never came: %v", err)
	}
	if !bytes.Equal(buf[:n], reply) {
		t.Fatalf("reply %q, want %q", buf[:n], reply)
	}
	if back.(*net.UDPAddr).Port != rAddr.Port {
		t.Fatalf("reply from %s, want port %d", back, rAddr.Port)
	}
}

func TestConnExchangesDatagrams(t *testing.T) {
	for _, tc := range []struct{ name, network, listen, peer string }{
		{"ipv4", "udp4", "127.0.0.1:0", "127.0.0.1:0"},
		{"ipv6", "udp6", "[::1]:0", "[::1]:0"},
		// A dual-stack socket hears IPv4 senders as v4-mapped: they read
		// as plain IPv4 addresses, and replies to them go out v4-mapped.
		{"dual-stack", "udp", "[::]:0", "127.0.0.1:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := wrap(t, listen(t, tc.network, tc.listen))
			peer := listen(t, "udp", tc.peer)
			rAddr := &net.UDPAddr{IP: peer.LocalAddr().(*net.UDPAddr).IP, Port: r.LocalAddr().(*net.UDPAddr).Port}
			for i := range 3 {
				exchange(t, r, peer, rAddr, i)
			}
		})
	}
}

func TestConnReadTruncatesLikeUDPConn(t *testing.T) {
	r := wrap(t, listen(t, "udp4", "127.0.0.1:0"))
	peer := listen(t, "udp4", "127.0.0.1:0")
	if _, err := peer.WriteTo([]byte("0123456789"), r.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	r.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := r.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "0123" {
		t.Fatalf("read %q, %v; want the first 4 bytes", buf[:n], err)
	}
}

func TestConnReadEndsOnDeadlineAndClose(t *testing.T) {
	r := wrap(t, listen(t, "udp4", "127.0.0.1:0"))
	endsOnDeadlineAndClose(t, r,
		func() error { _, _, err := r.ReadFrom(make([]byte, 16)); return err },
		func() error {
			_, err := r.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9})
			return err
		})
}

// endsOnDeadlineAndClose checks, on c with nothing to read, that read
// returns os.ErrDeadlineExceeded past a read deadline, that Close ends a
// read parked in the network poller with net.ErrClosed (sipgo, pgx and
// nats.go stop their read loops on it), and that write then gives
// net.ErrClosed too.
func endsOnDeadlineAndClose(t *testing.T, c interface {
	SetReadDeadline(time.Time) error
	Close() error
}, read, write func() error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if err := read(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	c.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { done <- read() }()
	// The reader is parked in the network poller (or about to be): Close
	// must end it either way.
	time.Sleep(10 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read on a closed socket: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a blocked read")
	}
	if err := write(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write on a closed socket: %v, want net.ErrClosed", err)
	}
}

func TestConnWriteToRefusesOtherAddresses(t *testing.T) {
	r := wrap(t, listen(t, "udp4", "127.0.0.1:0"))
	if _, err := r.WriteTo([]byte("x"), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); err == nil {
		t.Fatal("WriteTo a TCP address succeeded")
	}
	if _, err := r.WriteTo([]byte("x"), &net.UDPAddr{IP: net.ParseIP("::1"), Port: 9}); !errors.Is(err, ErrFamily) {
		t.Fatalf("WriteTo an IPv6 address on an IPv4 socket: %v, want ErrFamily", err)
	}
}

// TestConnStaysOutOfTheSyscallState is the point of the package: its
// reads and writes never enter the scheduler's syscall state (which wakes
// the runtime's monitor when the process was idle), while the same
// exchange on the net.UDPConn underneath does.
func TestConnStaysOutOfTheSyscallState(t *testing.T) {
	plain := listen(t, "udp4", "127.0.0.1:0")
	r := wrap(t, listen(t, "udp4", "127.0.0.1:0"))
	peer := listen(t, "udp4", "127.0.0.1:0")
	const rounds = 20
	run := func(c net.PacketConn) {
		buf := make([]byte, 64)
		for i := range rounds {
			if _, err := peer.WriteTo([]byte{byte(i)}, c.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, from, err := c.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.WriteTo(buf[:1], from); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The detector sees net.UDPConn's recvfrom and sendto (a read that
	// finds nothing yet is one more recvfrom, so at least two a round).
	if got := schedtrace.Syscalls(t, func() { run(plain) }, "syscall.recvfrom", "syscall.sendto"); len(got) < 2*rounds {
		t.Fatalf("the tracer saw %d recvfrom/sendto of net.UDPConn in %d rounds, want at least %d: the check below would prove nothing", len(got), rounds, 2*rounds)
	}
	if got := schedtrace.Syscalls(t, func() { run(r) }, "rawsock.(*UDPConn)"); len(got) > 0 {
		t.Fatalf("%d of rawsock's UDP system calls went through the syscall state, e.g. %s", len(got), got[0])
	}
}
