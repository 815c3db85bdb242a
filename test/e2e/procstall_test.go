package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/tapedeck/tapedeck/internal/codec"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// TestRecordingSurvivesProcessStall: a tapedeck process frozen (SIGSTOP:
// a paused VM, a long host stall) for 4 s while the phone goes on sending
// reads the freeze's audio from its socket's buffer at once when it is let
// go (SIGCONT). Its disk and writer are fine, so the recording takes the
// burst and completes with every frame at its place: the file is the
// audio sent from the recording's start, sample for sample. Before, the
// burst (over 2 s of audio) overflowed the recording's queue and failed
// the recording ("Recording queue overflow"), losing the rest of the call.
func TestRecordingSurvivesProcessStall(t *testing.T) {
	dataDir := t.TempDir()
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 20)
	p, sipPort, httpPort := startProcReady(t, 30*time.Second, func(sipPort, httpPort int) string {
		return testutil.NodeYAML("", dataDir, sipPort, httpPort, rtpLo, rtpHi) + `dialplan:
  - exten: "2001"
    app: Record(calls/stall,wav)
`
	})
	t.Cleanup(func() { _ = p.cmd.Process.Signal(syscall.SIGCONT) })
	phone := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	call, err := phone.Dial(ctx, sipua.Target("2001", fmt.Sprintf("127.0.0.1:%d", sipPort)), sipua.CallOptions{})
	must(t, err)

	// 2 s of audio, 4 s while the process is stopped, 2 s after: 20 ms
	// PCMU packets paced in real time, one stream.
	const seconds, stopAt, stopFor = 8, 2, 4
	src := sweep(8000 * seconds)
	frames := len(src) / 160
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := range frames {
		<-tick.C
		switch i {
		case stopAt * 50:
			must(t, p.cmd.Process.Signal(syscall.SIGSTOP))
		case (stopAt + stopFor) * 50:
			must(t, p.cmd.Process.Signal(syscall.SIGCONT))
		}
		payload := make([]byte, 160)
		codec.EncodeMulaw(payload, src[i*160:(i+1)*160])
		must(t, call.Media().WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(1000 + i),
			Timestamp: uint32(90000 + i*160), SSRC: 0x5757, Marker: i == 0}, Payload: payload}))
	}
	// Every packet is at the server before the hangup ends the recording.
	ari := func(path string, v any) bool {
		code, _, body := rawRequest(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/ari%s", httpPort, path), "", "", func(r *http.Request) { r.SetBasicAuth("asterisk", "asterisk") })
		return code == 200 && json.Unmarshal([]byte(body), v) == nil
	}
	pollFor(t, 10*time.Second, func() bool {
		var chans []struct{ ID string }
		var st struct {
			Rx int `json:"rxcount"`
		}
		return ari("/channels", &chans) && len(chans) == 1 && ari("/channels/"+chans[0].ID+"/rtp_statistics", &st) && st.Rx >= frames
	}, "every packet at the server")
	hctx, hcancel := context.WithTimeout(ctx, 10*time.Second)
	must(t, call.Hangup(hctx))
	hcancel()

	var path string
	pollFor(t, 10*time.Second, func() bool {
		_ = filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Name() == "stall.wav" {
				path = p
			}
			return nil
		})
		return path != ""
	}, "the recording's file")
	want := g711(src)
	var got []int16
	pollFor(t, 10*time.Second, func() bool {
		// The header is rewritten when the recording closes, after its
		// last data: read the file once its RIFF size covers it.
		if !wavHeaderCurrent(path) {
			return false
		}
		_, got = readWAV(t, path)
		return len(got) > 0 && len(got)%160 == 0 && len(got) >= len(want)-8000
	}, "the recording's file written")
	if f := p.output(); contains(f, "overflow") {
		t.Fatalf("the recording overflowed:\n%s", grepLines(f, "overflow"))
	}
	// The recording starts when Record answers, a little after the first
	// packet: it is the rest of the audio sent, exactly.
	off := len(want) - len(got)
	if off < 0 {
		t.Fatalf("the recording holds %d samples, more than the %d sent", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[off+i] {
			t.Fatalf("sample %d of %d (%.3f s into the call) = %d, want %d", i, len(got), float64(off+i)/8000, got[i], want[off+i])
		}
	}
}
