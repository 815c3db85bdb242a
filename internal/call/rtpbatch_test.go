package call

import (
	"net"
	"testing"
	"time"

	pionrtp "github.com/pion/rtp"

	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/sdp"
)

// TestSnoopRTPStreamBatched: a recorded call's socket, read by the Poller
// every 100 ms, gives its frames five at a time; a snoop of the call
// (spy=in) bridged with an RTP external media channel forwards them, and
// the external channel queues them on that read's send batch, so they
// leave together in one sendmmsg when the read ends (SentBatched) instead
// of a sendto each. The far end gets every frame, in order, unchanged.
func TestSnoopRTPStreamBatched(t *testing.T) {
	poller, err := rtp.NewPoller(10*time.Millisecond, 100*time.Millisecond, 1)
	if err != nil {
		t.Skip("no Poller here:", err)
	}
	t.Cleanup(poller.Close)
	ports, err := rtp.NewPorts("127.0.0.1", 46000, 46999)
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(Options{Bus: event.NewBus("test"), Ports: ports, RecordingsDir: t.TempDir(), Poller: poller})
	t.Cleanup(func() { m.HangupAll(CauseNormalClearing) })
	m.opts.Bus.Register(event.NewSubscriber("test", 1000, false), nil)

	phone, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	far, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer far.Close()

	ulaw := sdp.Format{PayloadType: 0, Name: "PCMU", ClockRate: 8000}
	cfg, err := ports.ListenConfig(poller)
	if err != nil {
		t.Fatal(err)
	}
	call, err := m.newChannel(channelSpec{user: "alice", callID: "c1", dialplan: DialplanCEP{Context: "default", Exten: "300"},
		state: StateUp, dialog: newFakeDialog(), choice: sdp.Choice{Audio: ulaw},
		remote: &sdp.Media{Addr: phone.LocalAddr().(*net.UDPAddr), Formats: []sdp.Format{ulaw}, Direction: sdp.SendRecv, Ptime: 20}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	call.enterStasis("test", nil)
	if _, err := call.Record(RecordOptions{Name: "batched", Format: "wav", IfExists: "overwrite"}); err != nil {
		t.Fatal(err)
	}
	j, err := m.Snoop(ChannelID(call.id), SnoopOptions{Spy: "in", App: "test"})
	if err != nil {
		t.Fatal(err)
	}
	snoop, err := m.channel(string(j.ID))
	if err != nil {
		t.Fatal(err)
	}
	ej, err := m.ExternalMedia(ExternalMediaOptions{App: "test", ExternalHost: far.LocalAddr().String(), Encapsulation: "rtp", Transport: "udp", Format: "ulaw"})
	if err != nil {
		t.Fatal(err)
	}
	ext, err := m.channel(string(ej.ID))
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.createBridge("", "mixing", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []*Channel{snoop, ext} {
		if err := b.AddChannel(ch, false); err != nil {
			t.Fatal(err)
		}
	}
	if !b.direct.Load() {
		t.Fatal("a bridge of a snoop and an external media channel mixes")
	}

	// 50 frames at the real pace: the Poller reads them five at a time.
	const frames = 50
	to := call.media.LocalAddr()
	go func() {
		var pkt pionrtp.Packet
		pkt.Version, pkt.SSRC = 2, 42
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := range frames {
			pkt.SequenceNumber, pkt.Timestamp = uint16(i), uint32(i*160)
			pkt.Payload = make([]byte, 160)
			for k := range pkt.Payload {
				pkt.Payload[k] = byte(0x10 + i) // µ-law codes that survive decoding and encoding unchanged
			}
			raw, _ := pkt.Marshal()
			if _, err := phone.WriteToUDP(raw, to); err != nil {
				return
			}
			<-tick.C
		}
	}()
	_ = far.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1500)
	for i := range frames {
		n, _, err := far.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		var p pionrtp.Packet
		if err := p.Unmarshal(buf[:n]); err != nil {
			t.Fatal(err)
		}
		if len(p.Payload) != 160 || p.Payload[0] != byte(0x10+i) || p.Payload[159] != byte(0x10+i) {
			t.Fatalf("frame %d: %d bytes holding 0x%02x, want 160 of 0x%02x", i, len(p.Payload), p.Payload[0], 0x10+i)
		}
	}
	st := ext.media.Stats()
	if st.Sent != frames || st.SentBatched != frames {
		t.Errorf("the external channel sent %d packets, %d of them batched; want %d and %d", st.Sent, st.SentBatched, frames, frames)
	}
}
