package sdp

import (
	"errors"
	"net"
	"strings"
	"testing"
)

const baresipOffer = "v=0\r\n" +
	"o=- 1234 5678 IN IP4 127.0.0.1\r\n" +
	"s=-\r\n" +
	"c=IN IP4 127.0.0.1\r\n" +
	"t=0 0\r\n" +
	"m=audio 40000 RTP/AVP 8 0 101\r\n" +
	"a=rtpmap:8 PCMA/8000\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:101 telephone-event/8000\r\n" +
	"a=fmtp:101 0-15\r\n" +
	"a=ptime:20\r\n" +
	"a=sendrecv\r\n"

func TestParseAndNegotiate(t *testing.T) {
	m, err := Parse([]byte(baresipOffer))
	if err != nil {
		t.Fatal(err)
	}
	if m.Addr.String() != "127.0.0.1:40000" || m.Ptime != 20 || m.Direction != SendRecv || m.Hold {
		t.Fatalf("parsed %+v", m)
	}
	c, err := Negotiate(m, []string{"PCMU", "PCMA"})
	if err != nil {
		t.Fatal(err)
	}
	// The offerer's order wins: PCMA first.
	if c.Audio.Name != "PCMA" || c.Audio.PayloadType != 8 || !c.HasDTMF || c.DTMF.PayloadType != 101 {
		t.Fatalf("choice %+v", c)
	}
	ans, err := Answer(Local{IP: net.ParseIP("127.0.0.1"), Port: 10002, SessionID: 9, Version: 1, Direction: SendRecv}, c)
	if err != nil {
		t.Fatal(err)
	}
	s := string(ans)
	for _, want := range []string{"m=audio 10002 RTP/AVP 8 101\r\n", "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "c=IN IP4 127.0.0.1", "a=sendrecv"} {
		if !strings.Contains(s, want) {
			t.Errorf("answer lacks %q:\n%s", want, s)
		}
	}
	// The answer parses back.
	back, err := Parse(ans)
	if err != nil || back.Addr.Port != 10002 || len(back.Formats) != 2 {
		t.Fatalf("answer does not round-trip: %v %+v", err, back)
	}
}

func TestStaticPayloadWithoutRtpmap(t *testing.T) {
	offer := strings.Replace(baresipOffer, "a=rtpmap:0 PCMU/8000\r\n", "", 1)
	offer = strings.Replace(offer, "RTP/AVP 8 0 101", "RTP/AVP 0 101", 1)
	m, err := Parse([]byte(offer))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Negotiate(m, []string{"PCMA", "PCMU"})
	if err != nil || c.Audio.Name != "PCMU" {
		t.Fatalf("got %+v %v", c, err)
	}
}

func TestNoCommonCodec(t *testing.T) {
	offer := strings.Replace(baresipOffer, "RTP/AVP 8 0 101", "RTP/AVP 9 101", 1)
	offer = strings.Replace(offer, "a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n", "a=rtpmap:9 G722/8000\r\n", 1)
	m, err := Parse([]byte(offer))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Negotiate(m, []string{"PCMU", "PCMA"}); !errors.Is(err, ErrNoCommonCodec) {
		t.Fatalf("err = %v, want ErrNoCommonCodec", err)
	}
	// Secure RTP is not supported either.
	srtp := strings.Replace(baresipOffer, "RTP/AVP", "RTP/SAVP", 1)
	if _, err := Parse([]byte(srtp)); !errors.Is(err, ErrNoCommonCodec) {
		t.Fatalf("RTP/SAVP err = %v", err)
	}
}

func TestMalformed(t *testing.T) {
	for name, body := range map[string]string{
		"garbage":       "this is not sdp",
		"no c=":         strings.Replace(baresipOffer, "c=IN IP4 127.0.0.1\r\n", "", 1),
		"bad rtpmap":    strings.Replace(baresipOffer, "a=rtpmap:8 PCMA/8000", "a=rtpmap:8 PCMA", 1),
		"bad pt":        strings.Replace(baresipOffer, "RTP/AVP 8 0 101", "RTP/AVP 8 x 101", 1),
		"hostname addr": strings.Replace(baresipOffer, "c=IN IP4 127.0.0.1", "c=IN IP4 example.invalid", 1),
	} {
		if _, err := Parse([]byte(body)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	noAudio := strings.Replace(baresipOffer, "m=audio", "m=video", 1)
	if _, err := Parse([]byte(noAudio)); !errors.Is(err, ErrNoAudio) {
		t.Errorf("video only: err = %v", err)
	}
}

func TestHold(t *testing.T) {
	for _, mod := range []func(string) string{
		func(s string) string { return strings.Replace(s, "a=sendrecv", "a=sendonly", 1) },
		func(s string) string { return strings.Replace(s, "a=sendrecv", "a=inactive", 1) },
		func(s string) string { return strings.Replace(s, "c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0", 1) },
	} {
		m, err := Parse([]byte(mod(baresipOffer)))
		if err != nil {
			t.Fatal(err)
		}
		if !m.Hold {
			t.Errorf("not seen as hold: %+v", m)
		}
	}
	if SendOnly.Reverse() != RecvOnly || Inactive.Reverse() != Inactive || SendRecv.Reverse() != SendRecv {
		t.Error("Reverse")
	}
}

func TestOffer(t *testing.T) {
	o, err := Offer(Local{IP: net.ParseIP("127.0.0.1"), Port: 4000, SessionID: 1, Version: 1}, []string{"PCMU", "PCMA"}, 101)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Formats) != 3 || m.Formats[0].Name != "PCMU" || m.Formats[1].Name != "PCMA" || m.Formats[2].Name != "TELEPHONE-EVENT" {
		t.Fatalf("offer formats %+v", m.Formats)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(baresipOffer))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		_, _ = Negotiate(m, []string{"PCMU", "PCMA"})
	})
}

// TestDisabledStream: an offer whose only audio stream has port 0 was
// answered 200 OK; nothing can be negotiated (RFC 3264 5.1, 488). A later
// audio stream that is enabled is taken instead.
func TestDisabledStream(t *testing.T) {
	only := strings.Replace(baresipOffer, "m=audio 40000", "m=audio 0", 1)
	m, err := Parse([]byte(only))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Negotiate(m, []string{"PCMU", "PCMA"}); !errors.Is(err, ErrNoCommonCodec) {
		t.Fatalf("Negotiate of a port 0 stream: %v, want ErrNoCommonCodec", err)
	}
	two := only + "m=audio 40002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	m, err = Parse([]byte(two))
	if err != nil {
		t.Fatal(err)
	}
	if m.Addr.Port != 40002 {
		t.Fatalf("took the stream on port %d, want the enabled one on 40002", m.Addr.Port)
	}
	if _, err := Negotiate(m, []string{"PCMU"}); err != nil {
		t.Fatal(err)
	}
}
