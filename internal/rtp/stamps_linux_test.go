package rtp

import (
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// awaitArrivalStamps waits until the kernel stamps datagrams when they
// arrive. Linux turns receive timestamps on for the whole system when the
// first socket asks for them, and may do so a moment later (a deferred static
// key); until then a SO_TIMESTAMPNS stamp is taken when the datagram is read.
// In a fresh test process the session's socket can be that first one, and a
// packet that arrived in that moment then looks as late as its read.
func awaitArrivalStamps(t *testing.T) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	self, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	buf, oob := make([]byte, 16), make([]byte, 128)
	const hold = 5 * time.Millisecond
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if err := unix.Sendto(fd, []byte("x"), 0, self); err != nil {
			t.Fatal(err)
		}
		time.Sleep(hold) // the probe: a datagram left unread for a while
		_, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, 0)
		read := time.Now()
		if err != nil {
			t.Fatal(err)
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
				ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
				if read.Sub(time.Unix(ts.Unix())) >= hold {
					return // stamped on arrival, not on read
				}
			}
		}
	}
	t.Fatal("the kernel never stamped a datagram on arrival")
}
