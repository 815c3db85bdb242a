package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/sipua"
)

// badRequest builds a request of method (REINVITE: an INVITE with a To-tag)
// to tapedeck with every mandatory header but omit.
func badRequest(method, omit, srvAddr, via string, n int) string {
	callID := fmt.Sprintf("fault-%d@127.0.0.1", n)
	toTag := ""
	if method == "BYE" || method == "ACK" || method == "REINVITE" {
		toTag = ";tag=t" + fmt.Sprint(n)
	}
	m := method
	if method == "REINVITE" {
		m = "INVITE"
	}
	hs := []struct{ name, value string }{
		{"Via", fmt.Sprintf("SIP/2.0/%s;branch=z9hG4bK-fault%d;rport", via, n)},
		{"From", fmt.Sprintf("<sip:mallory@127.0.0.1>;tag=f%d", n)},
		{"To", fmt.Sprintf("<sip:301@%s>%s", srvAddr, toTag)},
		{"Call-ID", callID},
		{"CSeq", "1 " + m},
		{"Contact", "<sip:mallory@" + strings.Fields(via)[1] + ">"},
		{"Max-Forwards", "70"},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s sip:301@%s SIP/2.0\r\n", m, srvAddr)
	for _, h := range hs {
		if h.name != omit {
			b.WriteString(h.name + ": " + h.value + "\r\n")
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

// status reads messages until a final response (or the deadline) and
// returns its status line; "" when nothing final came.
func (r *rawSIP) status(timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 65535)
	for {
		r.conn.SetReadDeadline(deadline)
		n, _, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			return ""
		}
		first, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		if strings.HasPrefix(first, "SIP/2.0 1") || !strings.HasPrefix(first, "SIP/2.0 ") {
			continue
		}
		return first
	}
}

// tcpStatus sends msg on a new TCP connection and returns the status line
// of the first final response.
func tcpStatus(t *testing.T, addr, msg string, timeout time.Duration) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(c)
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return ""
		}
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, "SIP/2.0 ") && !strings.HasPrefix(line, "SIP/2.0 1") {
			return line
		}
	}
}

// upCall places a call to 301 from a phone on transport and answers it.
func upCall(t *testing.T, n *node, events *ariEvents, transport string) (*sipua.Call, string) {
	t.Helper()
	phone := newPhone(t, transport)
	res := dialAsync(phone, n.target("301"), sipua.CallOptions{})
	id := channelID(events.skipTo("StasisStart", 5*time.Second))
	n.mustDo("POST", "/channels/"+id+"/answer", 204)
	r := wait(t, res, 10*time.Second, "answer")
	if r.err != nil {
		t.Fatalf("dial %s: %v", transport, r.err)
	}
	return r.call, id
}

// TestMalformedRequestsKeepCallsUp: an INVITE without To once killed the
// process (nil dereference in newDialog). Every method with each mandatory
// header missing, over UDP, and the no-To INVITE over TCP too, is answered
// 400 (or, without Via or for an ACK, dropped), and two calls that are up
// meanwhile stay up.
func TestMalformedRequestsKeepCallsUp(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	udpCall, udpID := upCall(t, n, events, "udp")
	tcpCall, tcpID := upCall(t, n, events, "tcp")
	srvAddr := n.srv.SIPAddr()

	i := 0
	for _, method := range []string{"INVITE", "REINVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO"} {
		for _, omit := range []string{"Via", "From", "To", "Call-ID", "CSeq", "Contact"} {
			i++
			t.Run(method+"-no-"+omit, func(t *testing.T) {
				raw := newRawSIP(t)
				via := fmt.Sprintf("UDP 127.0.0.1:%d", raw.port())
				msg := badRequest(method, omit, srvAddr, via, i)
				raw.send(srvAddr, strings.ReplaceAll(msg, "\r\n", "\n"))
				want := "SIP/2.0 400"
				switch {
				case method == "ACK" || omit == "Via":
					want = "" // an ACK is never answered; without Via there is nowhere to answer
				case omit == "Contact" && method != "INVITE" && method != "REINVITE":
					want = "" // not mandatory: answered as usual
				}
				wait := 2 * time.Second
				if want == "" && (method == "ACK" || omit == "Via") {
					wait = 300 * time.Millisecond // nothing is expected: only that the server lives
				}
				got := raw.status(wait)
				if want == "" {
					if method != "ACK" && omit == "Contact" && got == "" {
						t.Fatalf("no answer to a %s without Contact", method)
					}
					return
				}
				if !strings.HasPrefix(got, want) {
					t.Fatalf("%s without %s answered %q, want %s", method, omit, got, want)
				}
			})
		}
	}
	t.Run("tcp-INVITE-no-To", func(t *testing.T) {
		msg := badRequest("INVITE", "To", srvAddr, "TCP 127.0.0.1:5081", 1000)
		if got := tcpStatus(t, srvAddr, msg, 5*time.Second); !strings.HasPrefix(got, "SIP/2.0 400") {
			t.Fatalf("answered %q, want 400", got)
		}
	})

	// Both calls are still up, on the server and at the phones.
	for _, c := range []*sipua.Call{udpCall, tcpCall} {
		select {
		case <-c.Ended():
			t.Fatal("a call in progress was hung up")
		default:
		}
	}
	for _, id := range []string{udpID, tcpID} {
		n.mustDo("GET", "/channels/"+id, 200)
	}
	if got := n.srv.Calls().Count(); got != 2 {
		t.Fatalf("%d channels, want 2", got)
	}
	st := n.srv.SIPStats()
	if st.PanicsRecovered != 0 {
		t.Fatalf("%d panics recovered: a header was used before it was checked", st.PanicsRecovered)
	}
	if st.InvalidRejected == 0 {
		t.Fatal("no rejected request was counted")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := udpCall.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tcpCall.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRequestLineAndHeaderErrors: item 9 of issue 12: a SIP/3.0 request,
// an INVITE whose CSeq says BYE, an INVITE with Contact * and an offer
// whose only stream has port 0 were answered 200 OK; RFC 3261 and 3264
// want 505, 400, 400 and 488.
func TestRequestLineAndHeaderErrors(t *testing.T) {
	n := startNode(t)
	srvAddr := n.srv.SIPAddr()
	for i, tc := range []struct {
		name string
		edit func(string) string
		want string
	}{
		{"SIP/3.0", func(m string) string { return strings.Replace(m, "SIP/2.0\r\n", "SIP/3.0\r\n", 1) }, "SIP/2.0 505"},
		{"CSeq BYE on INVITE", func(m string) string { return strings.Replace(m, "CSeq: 1 INVITE", "CSeq: 1 BYE", 1) }, "SIP/2.0 400"},
		{"SDP with port 0 only", func(m string) string {
			body := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
			m = strings.Replace(m, "Content-Length: 0\r\n", fmt.Sprintf("Content-Type: application/sdp\r\nContent-Length: %d\r\n", len(body)), 1)
			return m + body
		}, "SIP/2.0 488"},
		{"Contact *", func(m string) string {
			return strings.Replace(m, "Contact: <sip:mallory@", "Contact: *\r\nX-Was: <sip:mallory@", 1)
		}, "SIP/2.0 400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := newRawSIP(t)
			msg := tc.edit(badRequest("INVITE", "", srvAddr, fmt.Sprintf("UDP 127.0.0.1:%d", raw.port()), 2000+i))
			raw.send(srvAddr, strings.ReplaceAll(msg, "\r\n", "\n"))
			if got := raw.status(3 * time.Second); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("answered %q, want %s", got, tc.want)
			}
		})
	}
}
