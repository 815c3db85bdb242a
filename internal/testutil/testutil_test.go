package testutil_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil"
)

// Run by TestRequireToolSkipOrFail in a child process.
func TestHelperMissingTool(t *testing.T) {
	if os.Getenv("TESTUTIL_HELPER") != "1" {
		t.Skip("helper for TestRequireToolSkipOrFail")
	}
	testutil.RequireTool(t, "no-such-tool-tapedeck")
	t.Log("NOT REACHED")
}

func TestRequireToolSkipOrFail(t *testing.T) {
	if p := testutil.RequireTool(t, "sh"); !filepath.IsAbs(p) {
		t.Fatalf("RequireTool(sh) = %q", p)
	}
	for _, ci := range []string{"", "true"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperMissingTool$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTUTIL_HELPER=1", "CI="+ci)
		out, err := cmd.CombinedOutput()
		s := string(out)
		if strings.Contains(s, "NOT REACHED") || !strings.Contains(s, "no-such-tool-tapedeck not installed; run scripts/test-deps.sh") {
			t.Fatalf("CI=%q: output:\n%s", ci, s)
		}
		if ci == "true" {
			if err == nil || !strings.Contains(s, "--- FAIL") {
				t.Fatalf("CI=true: want a failure, got err=%v:\n%s", err, s)
			}
		} else if err != nil || !strings.Contains(s, "--- SKIP") {
			t.Fatalf("CI unset: want a skip, got err=%v:\n%s", err, s)
		}
	}
}

func TestFreePorts(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		for _, p := range []int{testutil.FreeUDPPort(t), testutil.FreeTCPPort(t), testutil.FreeSIPPort(t)} {
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
		}
	}
	lo, hi := testutil.FreeUDPPortRange(t, 10)
	if hi-lo != 9 || lo%2 != 0 {
		t.Fatalf("range %d-%d", lo, hi)
	}
	for p := lo; p <= hi; p++ {
		if seen[p] {
			t.Fatalf("range %d-%d overlaps port %d", lo, hi, p)
		}
		c, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d of the range is not free: %v", p, err)
		}
		c.Close()
	}
	sip := testutil.FreeSIPPort(t)
	for _, l := range []string{"tcp4", "tcp4+1"} {
		port := sip
		if l == "tcp4+1" {
			port++
		}
		ln, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatalf("SIP port %d: %v", port, err)
		}
		ln.Close()
	}
}

func TestPoll(t *testing.T) {
	n := 0
	testutil.Eventually(t, time.Second, time.Millisecond, func() bool { n++; return n == 5 }, "n=%d", n)
	start := time.Now()
	if err := testutil.Poll(50*time.Millisecond, 10*time.Millisecond, func() bool { return false }); err != testutil.ErrTimeout {
		t.Fatalf("Poll = %v", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > time.Second {
		t.Fatalf("Poll took %v", d)
	}
}

func TestWriteToneWAV(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tone.wav")
	if err := testutil.WriteToneWAV(path, 8000, 440, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 44+2*16000 || !bytes.Equal(data[:4], []byte("RIFF")) || !bytes.Equal(data[8:16], []byte("WAVEfmt ")) {
		t.Fatalf("bad WAV header / size %d", len(data))
	}
	if rate := binary.LittleEndian.Uint32(data[24:]); rate != 8000 {
		t.Fatalf("rate %d", rate)
	}
	// 440 Hz at 8 kHz: the signal crosses zero upwards 440 times a second.
	ups := 0
	prev := int16(0)
	for i := 44; i+1 < len(data); i += 2 {
		v := int16(binary.LittleEndian.Uint16(data[i:]))
		if prev < 0 && v >= 0 {
			ups++
		}
		prev = v
	}
	if ups < 870 || ups > 890 {
		t.Fatalf("%d upward zero crossings in 2 s, want ~880", ups)
	}
	if sox, err := exec.LookPath("soxi"); err == nil {
		out, err := exec.Command(sox, path).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "8000") {
			t.Fatalf("soxi: %v\n%s", err, out)
		}
	}
}
