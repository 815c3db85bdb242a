package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/tapedeck/tapedeck/internal/codec"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil/nodeari"
)

// rtpPeer is the test's external media program: a real UDP socket that
// keeps the audio it receives and answers with a tone to the address the
// stream comes from.
type rtpPeer struct {
	conn *net.UDPConn
	mu   sync.Mutex
	pcm  []int16
	from *net.UDPAddr
	pt   uint8
}

func (p *rtpPeer) read() {
	buf := make([]byte, 1500)
	for {
		n, from, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		var pkt rtp.Packet
		if pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		pcm := make([]int16, len(pkt.Payload))
		codec.DecodeMulaw(pcm, pkt.Payload)
		p.mu.Lock()
		p.pcm = append(p.pcm, pcm...)
		p.from, p.pt = from, pkt.PayloadType
		p.mu.Unlock()
	}
}

func (p *rtpPeer) received() ([]int16, *net.UDPAddr, uint8) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int16(nil), p.pcm...), p.from, p.pt
}

// send streams pcm as µ-law RTP to addr in real time.
func (p *rtpPeer) send(ctx context.Context, addr *net.UDPAddr, pcm []int16) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	payload := make([]byte, 160)
	for i, off := 0, 0; off+160 <= len(pcm); i, off = i+1, off+160 {
		codec.EncodeMulaw(payload, pcm[off:off+160])
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(i), Timestamp: uint32(off), SSRC: 0x0b0b0b0b}, Payload: payload}
		b, err := pkt.Marshal()
		if err != nil {
			return err
		}
		if _, err := p.conn.WriteToUDP(b, addr); err != nil {
			return err
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// TestAriExternalMediaVoiceBot: an npm ari-client voice-bot app bridges a
// caller with an external media channel (RTP, ulaw, client) aimed at the
// test's UDP socket. The socket receives the caller's 440 Hz from the
// address the channel variables name; the 1000 Hz it sends back is what the
// caller hears.
func TestAriExternalMediaVoiceBot(t *testing.T) {
	n := startNode(t, withRoute("_3XX", "Stasis(voicebot)"))
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	peer := &rtpPeer{conn: conn}
	go peer.read()

	app := nodeari.Start(t, "voicebot.js", map[string]string{
		"ARI_URL": n.baseURL(), "ARI_APP": "voicebot", "EXTERNAL_HOST": conn.LocalAddr().String(),
	})
	if _, err := app.WaitLine("READY", 20*time.Second); err != nil {
		t.Fatalf("voicebot did not start: %v\n%s", err, app.Output())
	}
	for _, q := range []string{"app=voicebot&format=ulaw", "app=voicebot&format=ulaw&external_host=127.0.0.1:9&encapsulation=audiosocket",
		"app=voicebot&format=g729&external_host=127.0.0.1:9", "app=nobody&format=ulaw&external_host=127.0.0.1:9"} {
		if code, body := n.do("POST", "/channels/externalMedia?"+q, nil); code != 400 || strings.Contains(string(body), "endpoint") {
			t.Errorf("externalMedia?%s = %d %s, want 400 of its own", q, code, body)
		}
	}
	callerSink := &audioSink{}
	caller := newPhone(t, "udp")
	res := dialAsync(caller, n.target("300"), sipua.CallOptions{Handler: callerSink})
	rc := wait(t, res, 15*time.Second, "caller answered")
	must(t, rc.err)
	ext, err := app.WaitLine("EXTERNAL", 10*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, app.Output())
	}
	vars, _ := ext["channelvars"].(map[string]any)
	if vars["UNICASTRTP_LOCAL_ADDRESS"] == nil || vars["UNICASTRTP_LOCAL_PORT"] == nil {
		t.Fatalf("external media channel vars: %v", ext)
	}
	if _, err := app.WaitLine("BRIDGED", 10*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, app.Output())
	}
	callerSink.reset()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The caller talks, and the bot answers once the call's audio reaches
	// it: the bridge forwards what the caller sends (Asterisk's
	// simple_bridge), nothing while the caller sends nothing.
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = rc.call.SendAudio(ctx, sine(440, 8000*2, 8000)) }()
	deadline := time.Now().Add(10 * time.Second)
	var from *net.UDPAddr
	for from == nil {
		if time.Now().After(deadline) {
			t.Fatal("no RTP reached the external host")
		}
		_, from, _ = peer.received()
		if from == nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if want := fmt.Sprintf("%v:%v", vars["UNICASTRTP_LOCAL_ADDRESS"], vars["UNICASTRTP_LOCAL_PORT"]); from.String() != want {
		t.Errorf("RTP comes from %s, channel vars say %s", from, want)
	}
	go func() { defer wg.Done(); _ = peer.send(ctx, from, sine(1000, 8000*2, 8000)) }()
	wg.Wait()

	got, _, pt := peer.received()
	if pt != 0 {
		t.Errorf("payload type %d, want 0 (ulaw)", pt)
	}
	if len(got) < 8000 || !dominant(got, 440, 1000) {
		t.Errorf("the external host does not get the caller's 440 Hz: %d samples, 440 %.0f, 1000 %.0f", len(got), goertzel(got, 440), goertzel(got, 1000))
	}
	heard := callerSink.samples()
	if len(heard) < 8000 || !dominant(heard, 1000, 440) {
		t.Errorf("the caller does not hear the external host's 1000 Hz: %d samples, 1000 %.0f, 440 %.0f", len(heard), goertzel(heard, 1000), goertzel(heard, 440))
	}
	must(t, rc.call.Hangup(ctx))
	if err := app.Wait(10 * time.Second); err != nil {
		t.Fatalf("voicebot: %v\n%s", err, app.Output())
	}
}
