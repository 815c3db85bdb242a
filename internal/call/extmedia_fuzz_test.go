package call

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzAudioSocketRead: whatever bytes an AudioSocket far end sends, the
// reader returns whole messages (each re-encodes to the bytes it was read
// from) and then an error, never a panic or a payload beyond the length
// field's 64 KiB.
func FuzzAudioSocketRead(f *testing.F) {
	f.Add(appendASMessage(appendASMessage(nil, asKindUUID, make([]byte, 16)), 0x10, make([]byte, 320)))
	f.Add([]byte{0x00, 0x00, 0x00})
	f.Add([]byte{0x10, 0xff, 0xff, 1, 2, 3})
	f.Add([]byte{0x03, 0x00, 0x01, '5'})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(bytes.NewReader(in))
		var buf []byte
		read := 0
		for {
			kind, payload, grown, err := readASMessage(r, buf)
			buf = grown
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(payload) > asMaxPayload {
				t.Fatalf("payload of %d bytes", len(payload))
			}
			msg := appendASMessage(nil, kind, payload)
			if !bytes.Equal(msg, in[read:read+len(msg)]) {
				t.Fatalf("message at %d re-encodes to %x, read from %x", read, msg, in[read:read+len(msg)])
			}
			read += len(msg)
		}
	})
}

// FuzzWSOptions: any transport_data string parses or is refused with an
// error, never a panic; what parses keeps the v(...) parameters whole.
func FuzzWSOptions(f *testing.F) {
	for _, s := range []string{"", "f(json)", "v(a=1,b=2)", "c,n,p", "d(both)", "f(", "x", "v()f(plain-text)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := parseWSOptions(s)
		if err == nil && o.uriParams != "" && !bytes.Contains([]byte(s), []byte("v("+o.uriParams+")")) {
			t.Fatalf("%q: uri parameters %q not taken from a v(...)", s, o.uriParams)
		}
	})
}
