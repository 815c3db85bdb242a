// Package testutil holds small helpers shared by tapedeck's tests: finding
// outside tools (with the CI skip/fail rule), picking free loopback ports,
// polling with a deadline, and generating test audio.
//
// It is stdlib only and is imported only from _test.go files.
package testutil

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// InCI reports whether the tests run under CI (CI=true). There, missing
// tools are failures, never skips.
func InCI() bool { return os.Getenv("CI") == "true" }

// SkipOrFail skips the test with the formatted reason, or fails it when
// running under CI (CI=true).
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (CI=true: missing test dependencies are an error)", msg)
	}
	t.Skip(msg)
}

// RequireTool returns the path of the executable name. When it is not
// installed the test is skipped, or fails when CI=true.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		SkipOrFail(t, "%s not installed; run scripts/test-deps.sh", name)
	}
	return p
}

// RepoRoot returns the repository root: the nearest directory at or above
// the working directory that holds go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod found above the working directory")
		}
		dir = parent
	}
}

// Port picking. Ports handed out in this process are remembered, until the
// test that asked for them ends, so that two helpers in one test binary
// never get the same port; across processes (go test runs packages in
// parallel, and other checkouts run their tests) the random start makes
// clashes rare, and callers that start outside programs should retry on
// "address in use". RTP ranges come from here too (FreeUDPPortRange), not
// fixed: processes sharing a fixed range hand each other the ports their
// peers may still be sending to.

var (
	portsMu sync.Mutex
	used    = map[int]bool{}
)

const (
	rangeLo = 20000 // below Linux' default ephemeral range (32768-60999)
	rangeHi = 32000
)

func udpFree(port int) bool {
	c, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func tcpFree(port int) bool {
	l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// pick returns a port p in [rangeLo, rangeHi) such that ok(p) and none of
// p..p+span-1 was handed out before; it marks them used.
func pick(t testing.TB, what string, span int, ok func(p int) bool) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 500 {
		p := rangeLo + rand.IntN(rangeHi-rangeLo-span)
		if span > 1 && p%2 == 1 {
			p++ // RTP ranges start even
		}
		clash := false
		for q := p; q < p+span; q++ {
			if used[q] {
				clash = true
				break
			}
		}
		if clash || !ok(p) {
			continue
		}
		for q := p; q < p+span; q++ {
			used[q] = true
		}
		// Handed out again once the test ends: a binary that runs many
		// tests would otherwise run out of ports in the window.
		t.Cleanup(func() {
			portsMu.Lock()
			defer portsMu.Unlock()
			for q := p; q < p+span; q++ {
				delete(used, q)
			}
		})
		return p
	}
	t.Fatalf("no free %s found on 127.0.0.1", what)
	return 0
}

// FreeUDPPort returns a UDP port on 127.0.0.1 that is free right now.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	return pick(t, "UDP port", 1, udpFree)
}

// FreeTCPPort returns a TCP port on 127.0.0.1 that is free right now.
func FreeTCPPort(t testing.TB) int {
	t.Helper()
	return pick(t, "TCP port", 1, tcpFree)
}

// FreeSIPPort returns a port P such that UDP P, TCP P and TCP P+1 are free
// on 127.0.0.1: what a SIP user agent listening on P needs (baresip binds
// UDP+TCP on sip_listen and TLS on TCP P+1).
func FreeSIPPort(t testing.TB) int {
	t.Helper()
	return pick(t, "SIP port", 2, func(p int) bool {
		return udpFree(p) && tcpFree(p) && tcpFree(p+1)
	})
}

// FreeUDPPortRange returns a contiguous range lo..hi (inclusive, n ports,
// lo even) of UDP ports free on 127.0.0.1, e.g. for RTP/RTCP.
func FreeUDPPortRange(t testing.TB, n int) (lo, hi int) {
	t.Helper()
	if n < 1 {
		t.Fatalf("FreeUDPPortRange: n=%d", n)
	}
	lo = pick(t, fmt.Sprintf("range of %d UDP ports", n), n, func(p int) bool {
		for q := p; q < p+n; q++ {
			if !udpFree(q) {
				return false
			}
		}
		return true
	})
	return lo, lo + n - 1
}

// Eventually polls cond every `every` until it returns true, and fails the
// test with the formatted message when timeout passes first.
func Eventually(t testing.TB, timeout, every time.Duration, cond func() bool, msgf string, args ...any) {
	t.Helper()
	if err := Poll(timeout, every, cond); err != nil {
		t.Fatalf("after %v: "+msgf, append([]any{timeout}, args...)...)
	}
}

// ErrTimeout is returned by Poll when the condition never held.
var ErrTimeout = errors.New("condition not met before the deadline")

// Poll is Eventually without a testing.TB: it returns ErrTimeout instead of
// failing. cond is always tried at least once, and once more at the deadline.
func Poll(timeout, every time.Duration, cond func() bool) error {
	if every <= 0 {
		every = 10 * time.Millisecond
	}
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return ErrTimeout
		}
		time.Sleep(min(every, left))
	}
}

// ToneWAV is a mono 16-bit PCM WAV file at rate Hz holding a sine tone of
// hz Hz (amplitude about -10 dBFS) lasting d. hz <= 0 is silence.
func ToneWAV(rate int, hz float64, d time.Duration) []byte {
	n := int(int64(rate) * int64(d) / int64(time.Second))
	data := make([]byte, 44+2*n)
	copy(data[0:], "RIFF")
	binary.LittleEndian.PutUint32(data[4:], uint32(36+2*n))
	copy(data[8:], "WAVE")
	copy(data[12:], "fmt ")
	binary.LittleEndian.PutUint32(data[16:], 16)
	binary.LittleEndian.PutUint16(data[20:], 1) // PCM
	binary.LittleEndian.PutUint16(data[22:], 1) // mono
	binary.LittleEndian.PutUint32(data[24:], uint32(rate))
	binary.LittleEndian.PutUint32(data[28:], uint32(rate*2))
	binary.LittleEndian.PutUint16(data[32:], 2)
	binary.LittleEndian.PutUint16(data[34:], 16)
	copy(data[36:], "data")
	binary.LittleEndian.PutUint32(data[40:], uint32(2*n))
	const amp = 10000.0
	for i := range n {
		var v float64
		if hz > 0 {
			v = amp * math.Sin(2*math.Pi*hz*float64(i)/float64(rate))
		}
		binary.LittleEndian.PutUint16(data[44+2*i:], uint16(int16(v)))
	}
	return data
}

// SilentWAV is n samples of silence as an 8 kHz mono 16-bit WAV file.
func SilentWAV(n int) []byte { return ToneWAV(8000, 0, time.Duration(n)*time.Second/8000) }

// WriteToneWAV writes ToneWAV(rate, hz, d) to path.
func WriteToneWAV(path string, rate int, hz float64, d time.Duration) error {
	return os.WriteFile(path, ToneWAV(rate, hz, d), 0o644)
}

// SyncBuffer is an io.Writer that keeps what is written, safe for
// concurrent use: a log handler's output read by a test.
type SyncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// NodeYAML is the start of a tapedeck process's configuration file: its
// node_id (none when id is empty), data directory, SIP and HTTP addresses
// on loopback and RTP port range.
func NodeYAML(id, dataDir string, sipPort, httpPort, rtpLo, rtpHi int) string {
	var head string
	if id != "" {
		head = "node_id: " + id + "\n"
	}
	return head + fmt.Sprintf(`data_dir: %s
sip:
  listen: 127.0.0.1:%d
http:
  listen: 127.0.0.1:%d
rtp:
  port_min: %d
  port_max: %d
`, dataDir, sipPort, httpPort, rtpLo, rtpHi)
}

// GoroutineID is the id runtime.Stack prints for the calling goroutine
// (for tests that check which goroutine ran something).
func GoroutineID() uint64 {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	buf = bytes.TrimPrefix(buf, []byte("goroutine "))
	id, _ := strconv.ParseUint(string(buf[:bytes.IndexByte(buf, ' ')]), 10, 64)
	return id
}
