package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// rawSIP is a UDP socket speaking SIP as text, for checks of the wire
// format that a full user agent would hide.
type rawSIP struct {
	t    *testing.T
	conn *net.UDPConn
}

func newRawSIP(t *testing.T) *rawSIP {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawSIP{t: t, conn: c}
}

func (r *rawSIP) port() int { return r.conn.LocalAddr().(*net.UDPAddr).Port }

func (r *rawSIP) send(to string, msg string) {
	r.t.Helper()
	addr, _ := net.ResolveUDPAddr("udp", to)
	msg = strings.ReplaceAll(msg, "\n", "\r\n")
	if _, err := r.conn.WriteToUDP([]byte(msg), addr); err != nil {
		r.t.Fatal(err)
	}
}

// recv returns the next message whose first line contains match.
func (r *rawSIP) recv(match string, timeout time.Duration) (string, *net.UDPAddr) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 65535)
	for {
		r.conn.SetReadDeadline(deadline)
		n, from, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			r.t.Fatalf("no %q within %v: %v", match, timeout, err)
		}
		msg := string(buf[:n])
		first, _, _ := strings.Cut(msg, "\r\n")
		if strings.Contains(first, match) {
			return msg, from
		}
	}
}

// reply answers a request with its Via, From, To, Call-ID and CSeq.
func (r *rawSIP) reply(req string, to *net.UDPAddr, status string) {
	var b strings.Builder
	b.WriteString("SIP/2.0 " + status + "\r\n")
	for _, h := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
		for _, v := range header(req, h) {
			b.WriteString(h + ": " + v + "\r\n")
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	if _, err := r.conn.WriteToUDP([]byte(b.String()), to); err != nil {
		r.t.Fatal(err)
	}
}

func header(msg, name string) []string {
	var out []string
	for _, line := range strings.Split(msg, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// TestDialogOnTheWire: 100 Trying, 183 with SDP, To-tag on every response
// after 100, Contact, Record-Route copied into the 200 OK, and a BYE from
// tapedeck that follows the route set to the proxy with the caller's
// Contact as Request-URI. Also OPTIONS.
func TestDialogOnTheWire(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	caller := newRawSIP(t)
	proxy := newRawSIP(t) // stands where a Record-Route proxy would be
	srvAddr := n.srv.SIPAddr()
	sdpBody := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n", caller.port()+2)
	invite := fmt.Sprintf(`INVITE sip:314@%s SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-raw1;rport
Record-Route: <sip:127.0.0.1:%d;lr>
From: "Alice" <sip:alice@127.0.0.1>;tag=abc
To: <sip:314@%s>
Call-ID: raw-call-1@127.0.0.1
CSeq: 1 INVITE
Contact: <sip:alice@127.0.0.1:%d>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: %d

`, srvAddr, caller.port(), proxy.port(), srvAddr, caller.port(), len(sdpBody)) + strings.ReplaceAll(sdpBody, "\r\n", "\n")
	caller.send(srvAddr, invite)
	caller.recv("100 Trying", 5*time.Second)
	start := events.expect("StasisStart", 5*time.Second)
	id := channelID(start)
	if caller := start["channel"].(map[string]any)["caller"].(map[string]any); caller["name"] != "Alice" || caller["number"] != "alice" {
		t.Fatalf("caller %v", caller)
	}

	n.mustDo("POST", "/channels/"+id+"/progress", 204)
	prog, _ := caller.recv("183", 5*time.Second)
	to183 := header(prog, "To")
	if len(to183) != 1 || !strings.Contains(to183[0], ";tag=") || !strings.Contains(prog, "m=audio ") {
		t.Fatalf("183 lacks To-tag or SDP:\n%s", prog)
	}
	n.mustDo("POST", "/channels/"+id+"/answer", 204)
	ok, _ := caller.recv("200 OK", 5*time.Second)
	to := header(ok, "To")
	if len(to) != 1 || to[0] != to183[0] {
		t.Fatalf("To of 200 OK %v differs from the 183's %v", to, to183)
	}
	if rr := header(ok, "Record-Route"); len(rr) != 1 || !strings.Contains(rr[0], fmt.Sprintf("127.0.0.1:%d", proxy.port())) {
		t.Fatalf("Record-Route not copied: %v", rr)
	}
	if c := header(ok, "Contact"); len(c) != 1 || !strings.Contains(c[0], srvAddr) {
		t.Fatalf("Contact %v, want tapedeck's address %s", c, srvAddr)
	}
	if ct := header(ok, "Content-Type"); len(ct) != 1 || ct[0] != "application/sdp" {
		t.Fatalf("Content-Type %v", ct)
	}
	ack := fmt.Sprintf(`ACK sip:tapedeck@%s SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-raw2
From: "Alice" <sip:alice@127.0.0.1>;tag=abc
To: %s
Call-ID: raw-call-1@127.0.0.1
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

`, srvAddr, caller.port(), to[0])
	caller.send(srvAddr, ack)
	events.expect("ChannelStateChange", 5*time.Second)

	// OPTIONS is answered 200 with Allow.
	caller.send(srvAddr, fmt.Sprintf(`OPTIONS sip:%s SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-raw3
From: <sip:alice@127.0.0.1>;tag=o1
To: <sip:%s>
Call-ID: raw-options-1
CSeq: 1 OPTIONS
Max-Forwards: 70
Content-Length: 0

`, srvAddr, caller.port(), srvAddr))
	opt, _ := caller.recv("200", 5*time.Second)
	if a := header(opt, "Allow"); len(a) != 1 || !strings.Contains(a[0], "INVITE") {
		t.Fatalf("OPTIONS: %s", opt)
	}

	// tapedeck hangs up: the BYE goes to the proxy (route set), with a Route
	// header and the caller's Contact as Request-URI.
	n.mustDo("DELETE", "/channels/"+id, 204)
	bye, byeFrom := proxy.recv("BYE", 5*time.Second)
	proxy.reply(bye, byeFrom, "200 OK")
	first, _, _ := strings.Cut(bye, "\r\n")
	if !strings.HasPrefix(first, fmt.Sprintf("BYE sip:alice@127.0.0.1:%d", caller.port())) {
		t.Fatalf("BYE Request-URI: %s", first)
	}
	if r := header(bye, "Route"); len(r) != 1 || !strings.Contains(r[0], fmt.Sprintf("127.0.0.1:%d", proxy.port())) {
		t.Fatalf("BYE Route %v", r)
	}
	if f := header(bye, "From"); len(f) != 1 || !strings.Contains(f[0], strings.SplitN(to[0], ";tag=", 2)[1]) {
		t.Fatalf("BYE From %v must carry our tag from %v", f, to)
	}
	if tt := header(bye, "To"); len(tt) != 1 || !strings.Contains(tt[0], "tag=abc") {
		t.Fatalf("BYE To %v", tt)
	}
	events.expect("ChannelHangupRequest", 5*time.Second)
}
