package call

import (
	"regexp"
	"testing"

	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/rtp"
)

// testManager is a manager with a bus and real RTP ports on loopback.
func testManager(t *testing.T, node string) *Manager {
	t.Helper()
	ports, err := rtp.NewPorts("127.0.0.1", 40000, 40999)
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(Options{Bus: event.NewBus("test"), Ports: ports, NodeID: node})
	t.Cleanup(func() { m.HangupAll(CauseNormalClearing) })
	return m
}

// testChannel makes an outbound-style channel (no SIP dialog) on real
// sockets, registered with the manager.
func testChannel(t *testing.T, m *Manager) *Channel {
	t.Helper()
	cfg, err := m.opts.Ports.ListenConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := m.newChannel(channelSpec{user: "alice", state: StateDown}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// TestIDsCarryNode: channel and bridge ids, and so ${UNIQUEID}, start with
// the node id as Asterisk's start with its system name; without one they
// keep the bare epoch.serial shape.
func TestIDsCarryNode(t *testing.T) {
	m := testManager(t, "node-7")
	ch := testChannel(t, m)
	if !regexp.MustCompile(`^node-7-\d{10}\.1$`).MatchString(ch.ID()) {
		t.Errorf("channel id %q, want node-7-EPOCH.1", ch.ID())
	}
	b, err := m.createBridge("", "mixing", "")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^node-7-[0-9a-f-]{36}$`).MatchString(string(b.JSON().ID)) {
		t.Errorf("bridge id %q, want node-7-UUID", string(b.JSON().ID))
	}
	bare := testChannel(t, testManager(t, ""))
	if !regexp.MustCompile(`^\d{10}\.1$`).MatchString(bare.ID()) {
		t.Errorf("channel id without a node %q, want EPOCH.1", bare.ID())
	}
}
