package call

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
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
