package server

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// runSIPp runs one call of a SIPp scenario from testdata/sipp against the
// server's Record() route 2001 and returns its output; SIPp exits 0 only
// when every message of the scenario came as written (its regexp checks
// included).
func runSIPp(t *testing.T, srv *Server, scenario string) (string, error) {
	t.Helper()
	sipp := testutil.RequireTool(t, "sipp")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sf, err := filepath.Abs(filepath.Join("testdata", "sipp", scenario))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, sipp, srv.SIPAddr(), "-sf", sf,
		"-s", "2001", "-i", "127.0.0.1", "-p", strconv.Itoa(testutil.FreeUDPPort(t)),
		"-mi", "127.0.0.1", "-mp", strconv.Itoa(testutil.FreeUDPPort(t)),
		"-m", "1", "-timeout", "25s", "-timeout_error", "-nostdin", "-trace_err",
		"-error_file", filepath.Join(t.TempDir(), "sipp_errors.log"))
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func timerServer(t *testing.T) *Server {
	return newServer(t, func(c *config.Config) {
		c.SIP.Transports = []string{"udp"}
		c.SIP.MinSESeconds = 2
		c.SIP.SessionExpiresSeconds = 30
	})
}

// TestSessionTimerExpires: a caller that asked to refresh the session
// (refresher=uac, 3 s) and never does gets a BYE before the interval runs
// out; the call ends with "Recovery on timer expiry" and its recording is
// finished.
func TestSessionTimerExpires(t *testing.T) {
	srv := timerServer(t)
	before := scrape(t, srv, "", "")
	start := time.Now()
	if out, err := runSIPp(t, srv, "timer_uac_norefresh.xml"); err != nil {
		t.Fatalf("sipp: %v\n%s", err, out)
	}
	// BYE at 3 s - min(32 s, 3 s / 3) = 2 s after the ACK.
	if d := time.Since(start); d < 1800*time.Millisecond {
		t.Errorf("BYE %v after the call began, before the 2 s the timer allows", d)
	}
	poll(t, 5*time.Second, "the channel gone", func() bool { return srv.Calls().Count() == 0 })
	const series = `tapedeck_call_hangups_total{cause="Recovery on timer expiry"}`
	if after := scrape(t, srv, "", ""); after[series]-before[series] != 1 {
		t.Errorf("%s moved by %v", series, after[series]-before[series])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	row, err := srv.Catalog().Stored(ctx, "calls/drain")
	// SIPp sent no RTP: the finished recording is catalogued "absent" (no
	// audio), not left in progress.
	if err != nil || row.Status != meta.StatusAbsent {
		t.Errorf("recording of the expired call: %+v %v", row.Status, err)
	}
}

// TestSessionTimer422: an interval below sip.min_se_seconds is refused with
// 422 and our Min-SE (checked by the scenario); no channel is made.
func TestSessionTimer422(t *testing.T) {
	srv := timerServer(t)
	if out, err := runSIPp(t, srv, "timer_422.xml"); err != nil {
		t.Fatalf("sipp: %v\n%s", err, out)
	}
	if n := srv.Calls().Count(); n != 0 {
		t.Errorf("%d channels after a 422", n)
	}
}

// TestSessionTimerWeRefresh: with a caller that does not support timer
// but allows UPDATE, tapedeck refreshes the session with UPDATE every half
// interval (the scenario waits for two), and the call lives until the
// caller's BYE.
func TestSessionTimerWeRefresh(t *testing.T) {
	srv := timerServer(t)
	if out, err := runSIPp(t, srv, "timer_uas_refresh.xml"); err != nil {
		t.Fatalf("sipp: %v\n%s", err, out)
	}
	poll(t, 5*time.Second, "the channel gone", func() bool { return srv.Calls().Count() == 0 })
}
