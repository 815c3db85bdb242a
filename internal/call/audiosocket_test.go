package call

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// AudioSocket framing: kind, big-endian length, payload; messages read
// back one by one from a stream, a truncated one is an error, and the
// end of the stream between messages is io.EOF.
func TestAudioSocketFraming(t *testing.T) {
	uuid := []byte{0x5a, 0x1d, 0x2c, 0x3b, 0x4a, 0x59, 0x68, 0x77, 0x86, 0x95, 0xa4, 0xb3, 0xc2, 0xd1, 0xe0, 0xff}
	audio := bytes.Repeat([]byte{0x01, 0x02}, 320)
	var b []byte
	b = appendASMessage(b, asKindUUID, uuid)
	b = appendASMessage(b, 0x12, audio)
	b = appendASMessage(b, asKindDTMF, []byte{'5'})
	b = appendASMessage(b, asKindHangup, nil)
	if !bytes.Equal(b[:3], []byte{0x01, 0x00, 0x10}) || !bytes.Equal(b[19:22], []byte{0x12, 0x02, 0x80}) {
		t.Fatalf("headers % x / % x", b[:3], b[19:22])
	}
	if !bytes.Equal(b[len(b)-3:], []byte{0, 0, 0}) {
		t.Errorf("hangup is % x, want 00 00 00", b[len(b)-3:])
	}
	r := bufio.NewReader(bytes.NewReader(b))
	var buf []byte
	for _, want := range []struct {
		kind    byte
		payload []byte
	}{{asKindUUID, uuid}, {0x12, audio}, {asKindDTMF, []byte{'5'}}, {asKindHangup, []byte{}}} {
		kind, p, grown, err := readASMessage(r, buf)
		buf = grown
		if err != nil || kind != want.kind || !bytes.Equal(p, want.payload) {
			t.Fatalf("read kind 0x%02x %d bytes %v, want 0x%02x %d bytes", kind, len(p), err, want.kind, len(want.payload))
		}
	}
	if _, _, _, err := readASMessage(r, buf); err != io.EOF {
		t.Errorf("after the last message: %v, want EOF", err)
	}
	trunc := appendASMessage(nil, 0x10, audio)[:100]
	if _, _, _, err := readASMessage(bufio.NewReader(bytes.NewReader(trunc)), nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated payload: %v, want unexpected EOF", err)
	}
	if _, _, _, err := readASMessage(bufio.NewReader(bytes.NewReader([]byte{0x10, 0x01})), nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated header: %v, want unexpected EOF", err)
	}
}

// Every slin kind names its rate, as res_audiosocket.h.
func TestAudioSocketKinds(t *testing.T) {
	for kind, rate := range map[byte]int{0x10: 8000, 0x11: 12000, 0x12: 16000, 0x13: 24000, 0x14: 32000, 0x15: 44100, 0x16: 48000, 0x17: 96000, 0x18: 192000} {
		if got, ok := slinRateOfKind(kind); !ok || got != rate {
			t.Errorf("kind 0x%02x: %d %v, want %d", kind, got, ok, rate)
		}
	}
	if _, ok := slinRateOfKind(0x19); ok {
		t.Error("kind 0x19 is not audio")
	}
	for name, bytes := range map[string]int{"slin": 320, "slin16": 640, "slin44": 1764, "slin48": 1920, "ulaw": 160, "alaw": 160} {
		if got := streamFormats[name].frameBytes(); got != bytes {
			t.Errorf("%s: optimal frame %d bytes, want %d", name, got, bytes)
		}
	}
}

// transport_data as chan_websocket's dial string options.
func TestWSOptions(t *testing.T) {
	o, err := parseWSOptions("f(json)v(nonce=abc,x=1)n")
	if err != nil || !o.json || o.uriParams != "nonce=abc,x=1" || !o.noAnswer || o.passthrough || o.dir != wsDirBoth {
		t.Errorf("%+v %v", o, err)
	}
	if o, err := parseWSOptions(""); err != nil || o.json || o.noAnswer || o.passthrough || o.dir != wsDirBoth {
		t.Errorf("empty: %+v %v", o, err)
	}
	for in, dir := range map[string]int32{"d(in)p": wsDirIn, "pd(out)": wsDirOut, "d(both)p": wsDirBoth} {
		if o, err := parseWSOptions(in); err != nil || o.dir != dir || !o.passthrough || o.noAnswer {
			t.Errorf("%s: %+v %v", in, o, err)
		}
	}
	for _, bad := range []string{"f(xml)", "v(a=b", "z", "d(sideways)", "d()"} {
		if _, err := parseWSOptions(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// asPair is an AudioSocket transport connected to a loopback far end
// whose UUID message has been read.
func asPair(t *testing.T, batch int) (*audioSocket, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := dialAudioSocket(ln.Addr().String(), [16]byte{7}, asKindAudio, batch, 160)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	far, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { far.Close() })
	far.SetReadDeadline(time.Now().Add(5 * time.Second))
	var uuid [19]byte
	if _, err := io.ReadFull(far, uuid[:]); err != nil || uuid[0] != asKindUUID || uuid[3] != 7 {
		t.Fatalf("UUID message % x: %v", uuid, err)
	}
	return a, far
}

// readFrames reads n audio messages of 160 bytes and returns the byte
// each is filled with.
func readFrames(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	var fills []byte
	for range n {
		var m [163]byte
		if _, err := io.ReadFull(r, m[:]); err != nil {
			t.Fatalf("after %d frames: %v", len(fills), err)
		}
		if m[0] != asKindAudio || m[1] != 0 || m[2] != 160 || !bytes.Equal(m[3:], bytes.Repeat(m[3:4], 160)) {
			t.Fatalf("message %d is torn: % x…", len(fills), m[:8])
		}
		fills = append(fills, m[3])
	}
	return fills
}

func fill(b byte) []byte { return bytes.Repeat([]byte{b}, 160) }

// With a batch of 5 (ari.audiosocket_batch_ms 100) nothing reaches the
// far end until the fifth frame, then the five together; closing the
// stream writes what a batch still holds before the end of the stream.
func TestAudioSocketBatchWrites(t *testing.T) {
	a, far := asPair(t, 5)
	for i := range 4 {
		if err := a.writeAudio(fill(byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	// A loopback write is in the far end's buffer when it returns: had a
	// frame been written, this read would get it.
	far.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := far.Read(make([]byte, 1)); n != 0 || !os.IsTimeout(err) {
		t.Fatalf("read %d bytes (%v) before the batch was complete", n, err)
	}
	if err := a.writeAudio(fill(4)); err != nil {
		t.Fatal(err)
	}
	far.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got := readFrames(t, far, 5); !bytes.Equal(got, []byte{0, 1, 2, 3, 4}) {
		t.Fatalf("frames %v, want 0 … 4", got)
	}
	for i := 5; i < 8; i++ {
		if err := a.writeAudio(fill(byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	a.close()
	if got := readFrames(t, far, 3); !bytes.Equal(got, []byte{5, 6, 7}) {
		t.Fatalf("frames %v, want 5 6 7", got)
	}
	if n, err := far.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the last frame: %d bytes, %v; want EOF", n, err)
	}
}

// A far end that does not read never holds up the sender (a bridge's
// clock): writes return at once, the frames the socket does not take
// queue (about 1 s) and then drop, and once the far end reads it gets
// every frame not dropped, whole and in order, the partly written
// messages included.
func TestAudioSocketSlowFarEnd(t *testing.T) {
	a, far := asPair(t, 1)
	if err := a.conn.(*net.TCPConn).SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	if err := far.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	const frames = 4000 // 650 KB: more than loopback buffers hold unread
	dropped := 0
	done := make(chan error, 1)
	go func() {
		for i := range frames {
			switch err := a.writeAudio(fill(byte(i))); err {
			case nil:
			case errStreamFull:
				dropped++
			default:
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("writeAudio blocked on a far end that does not read")
	}
	if dropped == 0 {
		t.Fatal("no frame dropped: the far end's buffers took 650 KB")
	}
	far.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := readFrames(t, bufio.NewReader(far), frames-dropped)
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			t.Fatalf("frame %d repeats frame %d's fill %d", i, i-1, got[i])
		}
	}
}
