package e2e

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/server"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// startNodeLogging is startNode with the node's log going to sink at level.
func startNodeLogging(t *testing.T, sink *testutil.SyncBuffer, level slog.Level) *node {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.SIP.Listen = "127.0.0.1:0"
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.RTP.PortMin, cfg.RTP.PortMax = testutil.FreeUDPPortRange(t, 200)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(sink, &slog.HandlerOptions{Level: level})))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &node{t: t, srv: srv, cfg: cfg}
}

// TestMalformedFloodLogIsBounded: every unparsable datagram was logged at
// ERROR with up to 32 KB of its content, whatever log.level said: a flood
// grew the log by megabytes a second. Now each is counted, and the log
// grows by a bounded number of truncated lines at the level of
// sip.malformed_log_level (info), so log.level warn silences them.
func TestMalformedFloodLogIsBounded(t *testing.T) {
	junk := []byte("NOT SIP AT ALL\r\n" + strings.Repeat("x", 60000))
	const flood = 200
	for _, tc := range []struct {
		level    slog.Level
		maxBytes int
	}{
		{slog.LevelInfo, 12 << 10}, // a burst of 10 lines of about 500 bytes, then one a second
		{slog.LevelWarn, 0},
	} {
		t.Run(tc.level.String(), func(t *testing.T) {
			sink := &testutil.SyncBuffer{}
			n := startNodeLogging(t, sink, tc.level)
			srvAddr := n.srv.SIPAddr()
			before := len(sink.String())
			raw := newRawSIP(t)
			to, err := resolveUDP(srvAddr)
			if err != nil {
				t.Fatal(err)
			}
			for i := range flood {
				if _, err := raw.conn.WriteToUDP(junk, to); err != nil {
					t.Fatal(err)
				}
				// Paced, so that the socket buffer does not drop most of them.
				waitFor(t, 5*time.Second, "the junk to be read", func() bool { return n.srv.SIPStats().MalformedDropped > uint64(i) })
			}
			// The server still answers.
			raw.send(srvAddr, strings.ReplaceAll(optionsOver(fmt.Sprintf("UDP 127.0.0.1:%d", raw.port()), 7, srvAddr), "\r\n", "\n"))
			if got := raw.status(10 * time.Second); !strings.HasPrefix(got, "SIP/2.0 200") {
				t.Fatalf("OPTIONS after the flood answered %q", got)
			}
			st := n.srv.SIPStats()
			if st.MalformedDropped != flood {
				t.Fatalf("%d malformed messages counted, want %d", st.MalformedDropped, flood)
			}
			grown := sink.String()[before:]
			if len(grown) > tc.maxBytes {
				t.Fatalf("%d junk datagrams (%d counted) grew the log by %d bytes, want at most %d:\n%.2000s", flood, st.MalformedDropped, len(grown), tc.maxBytes, grown)
			}
			if tc.level == slog.LevelInfo && !strings.Contains(grown, "level=INFO msg=\"sip: unparsable message dropped\"") {
				t.Fatalf("no log line for the junk:\n%.2000s", grown)
			}
			t.Logf("%d datagrams counted, log grew %d bytes", st.MalformedDropped, len(grown))
		})
	}
}

func resolveUDP(addr string) (*net.UDPAddr, error) { return net.ResolveUDPAddr("udp", addr) }
