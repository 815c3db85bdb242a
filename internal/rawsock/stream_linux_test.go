package rawsock

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil/schedtrace"
)

// tcpPair is a Stream-wrapped client connection and the plain server end
// of one loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	dial := WrapDial((&net.Dialer{}).DialContext)
	c, err := dial(context.Background(), "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, ok := c.(*StreamConn); !ok {
		t.Fatalf("WrapDial gave a %T, want a *StreamConn", c)
	}
	s, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { s.Close() })
	return c, s
}

func TestStreamCarriesBytesBothWays(t *testing.T) {
	c, s := tcpPair(t)
	// More than the socket buffers hold while nobody reads: the writer
	// must wait for room (EAGAIN, then the poller) and still send it all.
	want := make([]byte, 16<<20)
	for i := range want {
		want[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(50 * time.Millisecond) // let the buffers fill
		b, _ := io.ReadAll(io.LimitReader(s, int64(len(want))))
		got <- b
	}()
	n, err := c.Write(want)
	if err != nil || n != len(want) {
		t.Fatalf("Write: %d, %v; want %d, nil", n, err, len(want))
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, want) {
			t.Fatalf("the server read %d bytes, not the %d written", len(b), len(want))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server never read it all")
	}
	// And back, then end of stream.
	if _, err := s.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "pong" {
		t.Fatalf("read %q, %v; want \"pong\" then io.EOF", b, err)
	}
	if n, err := c.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("a read after the peer closed: %d, %v; want 0, io.EOF", n, err)
	}
}

func TestStreamReadEndsOnDeadlineAndClose(t *testing.T) {
	c, _ := tcpPair(t)
	endsOnDeadlineAndClose(t, c,
		func() error { _, err := c.Read(make([]byte, 8)); return err },
		func() error { _, err := c.Write([]byte("x")); return err })
}

func TestStreamLeavesOtherConnsAlone(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if c := Stream(a); c != a {
		t.Fatalf("Stream wrapped a %T, which is no socket", a)
	}
}

// TestStreamStaysOutOfTheSyscallState: Stream's reads and writes make no
// syscall-state entry, where the same exchange on the TCP connection
// underneath makes two or more a round.
func TestStreamStaysOutOfTheSyscallState(t *testing.T) {
	c, s := tcpPair(t)
	const rounds = 20
	run := func(c net.Conn) {
		buf := make([]byte, 8)
		for i := range rounds {
			if _, err := s.Write([]byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf[:1]); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write(buf[:1]); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(s, buf[:1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	plain := c.(*StreamConn).Conn
	if got := schedtrace.Syscalls(t, func() { run(plain) }, "syscall.read", "syscall.write"); len(got) < 2*rounds {
		t.Fatalf("the tracer saw %d reads/writes of net.TCPConn in %d rounds, want at least %d: the check below would prove nothing", len(got), rounds, 2*rounds)
	}
	if got := schedtrace.Syscalls(t, func() { run(c) }, "rawsock.(*StreamConn)"); len(got) > 0 {
		t.Fatalf("%d of Stream's system calls went through the syscall state, e.g. %s", len(got), got[0])
	}
}
