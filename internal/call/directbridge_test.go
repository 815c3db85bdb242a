package call

import (
	"bufio"
	"bytes"
	"net"
	"testing"
	"time"

	pionrtp "github.com/pion/rtp"
)

// streamRig is an AudioSocket external media channel (ulaw) in
// application "test", connected to a loopback far end.
func streamRig(t *testing.T, m *Manager) (*Channel, *bufio.Reader, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f := streamFormats["ulaw"]
	conn, err := dialAudioSocket(ln.Addr().String(), [16]byte{9}, f.kind, 1, f.frameBytes())
	if err != nil {
		t.Fatal(err)
	}
	far, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { far.Close() })
	ch, sm, err := m.newStreamChannel(ExternalMediaOptions{App: "test"}, "AudioSocket/test", StateUp, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	sm.connect(conn)
	go conn.run(sm)
	ch.enterStasis("test", nil)
	r := bufio.NewReader(far)
	far.SetReadDeadline(time.Now().Add(5 * time.Second))
	if kind, _, _, err := readASMessage(r, nil); err != nil || kind != asKindUUID {
		t.Fatalf("first message 0x%02x, %v; want the UUID", kind, err)
	}
	return ch, r, far
}

// A bridge of a snoop channel (spy=in) and an external media channel, a
// transcription app's way of streaming a caller, forwards each frame the
// caller sends to the stream as it comes, with no mixer clock, as
// Asterisk's simple_bridge: a burst of 50 frames fed faster than real
// time reaches the far end whole, bit-exact and in order (a mixing
// bridge plays one frame per 20 ms tick out of a 120 ms play-out buffer
// and drops the rest of such a burst). A recording, a playback or a
// third party in the bridge brings the mixer back.
func TestSnoopStreamBridgeForwardsDirectly(t *testing.T) {
	r := newRig(t)
	m := r.m
	target, _, _ := r.inbound("app", offer(t, 5000, ""))
	if err := target.Answer(); err != nil {
		t.Fatal(err)
	}
	j, err := m.Snoop(ChannelID(target.ID()), SnoopOptions{Spy: "in", App: "test"})
	if err != nil {
		t.Fatal(err)
	}
	snoop, err := m.channel(string(j.ID))
	if err != nil {
		t.Fatal(err)
	}
	ext, far, conn := streamRig(t, m)
	b := r.newBridge("")
	for _, ch := range []*Channel{snoop, ext} {
		if err := b.AddChannel(ch, false); err != nil {
			t.Fatal(err)
		}
	}
	if !b.direct.Load() {
		t.Fatal("a bridge of a snoop and an external media channel mixes")
	}
	const frames = 50
	var pkt pionrtp.Packet
	for i := range frames {
		pkt.SequenceNumber, pkt.Timestamp = uint16(i), uint32(i*160)
		pkt.Payload = make([]byte, 160)
		for k := range pkt.Payload {
			pkt.Payload[k] = byte(0x10 + i) // µ-law codes that survive decoding and encoding unchanged
		}
		target.OnAudio(&pkt, 0)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range frames {
		kind, p, _, err := readASMessage(far, nil)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if kind != asKindAudio || len(p) != 160 {
			t.Fatalf("frame %d: kind 0x%02x, %d bytes", i, kind, len(p))
		}
		for _, c := range p {
			if c != byte(0x10+i) {
				t.Fatalf("frame %d holds 0x%02x, want 0x%02x: frames were mixed, dropped or reordered", i, c, 0x10+i)
			}
		}
	}

	// A recording of the bridge needs the mix; when it ends, direct again.
	rec, err := b.Record(RecordOptions{Name: "direct-off", Format: "wav"}, false)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the bridge mixes for its recording", func() bool { return !b.direct.Load() })
	rec.Stop()
	eventually(t, "the bridge forwards directly again", func() bool { return b.direct.Load() })

	// A third party (here a SIP call) makes it a mixing bridge for good.
	third, _, _ := r.inbound("app", offer(t, 5002, ""))
	if err := third.Answer(); err != nil {
		t.Fatal(err)
	}
	if err := b.AddChannel(third, false); err != nil {
		t.Fatal(err)
	}
	if b.direct.Load() {
		t.Fatal("a three-party bridge forwards directly")
	}
	if err := b.RemoveChannel(third); err != nil {
		t.Fatal(err)
	}
	if !b.direct.Load() {
		t.Fatal("back to two parties, the bridge still mixes")
	}
	// A playback to one party is mixed into what that party hears.
	ext.writeFrame(make([]int16, 160))
	if b.direct.Load() {
		t.Fatal("a playback to one party left the bridge forwarding directly")
	}
}

// A SIP call bridged with an external media channel (a voice bot talking
// with the caller) forwards directly too, both ways: a burst of the
// caller's frames reaches the stream whole, bit-exact and in order, and
// the frames the far end sends reach the call as they were sent (the
// mixer would have mixed them on its 20 ms clock and dropped most of the
// burst). The bridge is still a simple_bridge with its events; a
// recording of it brings the mixer back.
func TestCallStreamBridgeForwardsDirectly(t *testing.T) {
	r := newRig(t)
	m := r.m
	caller, _, fm := r.inbound("app", offer(t, 5000, ""))
	if err := caller.Answer(); err != nil {
		t.Fatal(err)
	}
	ext, far, conn := streamRig(t, m)
	b := r.newBridge("")
	for _, ch := range []*Channel{caller, ext} {
		if err := b.AddChannel(ch, false); err != nil {
			t.Fatal(err)
		}
	}
	if !b.direct.Load() {
		t.Fatal("a bridge of a call and an external media channel mixes")
	}
	if j := b.JSON(); j.Technology != "simple_bridge" || len(j.Channels) != 2 {
		t.Errorf("bridge %+v", j)
	}
	const frames = 50
	var pkt pionrtp.Packet
	for i := range frames {
		pkt.SequenceNumber, pkt.Timestamp = uint16(i), uint32(i*160)
		pkt.Payload = bytes.Repeat([]byte{byte(0x10 + i)}, 160) // µ-law codes that survive decoding and encoding unchanged
		caller.OnAudio(&pkt, 0)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range frames {
		kind, p, _, err := readASMessage(far, nil)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if kind != asKindAudio || !bytes.Equal(p, bytes.Repeat([]byte{byte(0x10 + i)}, 160)) {
			t.Fatalf("frame %d: kind 0x%02x, %d bytes starting 0x%02x: frames were mixed, dropped or reordered", i, kind, len(p), p[0])
		}
	}

	// The far end's frames, paced as a bot sends them, reach the caller
	// as sent.
	fm.keepSent()
	const back = 10
	for i := range back {
		msg := append([]byte{asKindAudio, 0, 160}, bytes.Repeat([]byte{byte(0x60 + i)}, 160)...)
		if _, err := conn.Write(msg); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the caller sent the far end's frame", func() bool { return len(fm.sentFrames()) > i })
	}
	sent := fm.sentFrames()
	if len(sent) != back {
		t.Fatalf("the caller sent %d frames, want %d", len(sent), back)
	}
	for i, p := range sent {
		if !bytes.Equal(p, bytes.Repeat([]byte{byte(0x60 + i)}, 160)) {
			t.Fatalf("frame %d to the caller starts 0x%02x, want 0x%02x", i, p[0], 0x60+i)
		}
	}

	rec, err := b.Record(RecordOptions{Name: "call-direct-off", Format: "wav"}, false)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the bridge mixes for its recording", func() bool { return !b.direct.Load() })
	rec.Stop()
	eventually(t, "the bridge forwards directly again", func() bool { return b.direct.Load() })
}
