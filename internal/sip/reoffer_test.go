package sip

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil"
)

// lateAnswers answers every call and records the SDP answers the
// endpoint hands it from ACKs of offerless re-INVITEs.
type lateAnswers struct {
	mu      sync.Mutex
	answers []string
}

func (l *lateAnswers) Invite(d *Dialog) {
	d.SetHandler(l)
	_ = d.Answer(fuzzSDP)
}
func (l *lateAnswers) Ended(EndReason)                     {}
func (l *lateAnswers) Reinvite(offer []byte) (int, []byte) { return 200, fuzzSDP }
func (l *lateAnswers) ReinviteAnswer(answer []byte) {
	l.mu.Lock()
	l.answers = append(l.answers, string(answer))
	l.mu.Unlock()
}
func (l *lateAnswers) got() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.answers...)
}

// TestReinviteAnswerInACK: after an offerless re-INVITE our 200 carries
// the offer and the ACK the answer (RFC 3261 14.2); that answer reaches
// the handler. The ACK of the initial INVITE, a retransmitted ACK and the
// ACK of a re-INVITE that carried its own offer do not.
func TestReinviteAnswerInACK(t *testing.T) {
	h := &lateAnswers{}
	_, c, to := udpEndpoint(t, h, slog.New(slog.NewTextHandler(io.Discard, nil)))
	port := c.LocalAddr().(*net.UDPAddr).Port
	toTag := ""
	send := func(method string, cseq int, branch, body string) {
		t.Helper()
		toHdr := fmt.Sprintf("<sip:301@%s>", to)
		if toTag != "" {
			toHdr += ";tag=" + toTag
		}
		ctype := ""
		if body != "" {
			ctype = "Content-Type: application/sdp\r\n"
		}
		msg := fmt.Sprintf("%s sip:301@%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-%s\r\nFrom: <sip:a@127.0.0.1>;tag=late\r\nTo: %s\r\nCall-ID: late-answer\r\nCSeq: %d %s\r\nContact: <sip:a@127.0.0.1:%d>\r\nMax-Forwards: 70\r\n%sContent-Length: %d\r\n\r\n%s",
			method, to, port, branch, toHdr, cseq, method, port, ctype, len(body), body)
		if _, err := c.WriteToUDP([]byte(msg), to); err != nil {
			t.Fatal(err)
		}
	}
	final := func(what string) string {
		t.Helper()
		buf := make([]byte, 65535)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			k, _, err := c.ReadFromUDP(buf)
			if err != nil {
				t.Fatalf("no final response to the %s: %v", what, err)
			}
			if m := string(buf[:k]); !strings.HasPrefix(m, "SIP/2.0 1") {
				if !strings.HasPrefix(m, "SIP/2.0 200") {
					t.Fatalf("%s: %q", what, m)
				}
				return m
			}
		}
	}
	offer := string(fuzzSDP)
	send("INVITE", 1, "i1", offer)
	res := final("INVITE")
	tag := regexp.MustCompile(`(?im)^To:.*;tag=([^;\s]+)`).FindStringSubmatch(res)
	if tag == nil {
		t.Fatalf("no To-tag in %q", res)
	}
	toTag = tag[1]
	send("ACK", 1, "a1", "")

	answer := strings.Replace(offer, "m=audio 4000", "m=audio 4010", 1)
	send("INVITE", 2, "i2", "")
	if res := final("offerless re-INVITE"); !strings.Contains(res, "m=audio") {
		t.Fatalf("the 200 of an offerless re-INVITE carries no offer: %q", res)
	}
	send("ACK", 2, "a2", answer)
	testutil.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool { return len(h.got()) == 1 }, "the ACK's answer never reached the handler")
	if got := h.got(); got[0] != answer {
		t.Fatalf("answer %q, want %q", got[0], answer)
	}
	send("ACK", 2, "a2", answer) // a retransmission
	send("INVITE", 3, "i3", offer)
	final("re-INVITE with an offer")
	send("ACK", 3, "a3", answer) // not an answer: the re-INVITE offered
	// An OPTIONS round trip: the ACKs sent before it have been read.
	send("OPTIONS", 4, "o4", "")
	final("OPTIONS")
	if got := h.got(); len(got) != 1 {
		t.Fatalf("answers %q, want only the offerless re-INVITE's", got)
	}
}

// TestReinviteAnswerInACKOutbound: the same for a dialog we placed: the
// callee's offerless re-INVITE gets our offer, and the answer in its ACK
// reaches the handler.
func TestReinviteAnswerInACKOutbound(t *testing.T) {
	// The test's UDP socket plays the callee.
	e, callee, _ := udpEndpoint(t, &lateAnswers{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	read := func(what string) (string, *net.UDPAddr) {
		t.Helper()
		buf := make([]byte, 65535)
		callee.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, from, err := callee.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("callee: no %s: %v", what, err)
		}
		return string(buf[:k]), from
	}
	header := func(msg, name string) string {
		m := regexp.MustCompile(`(?im)^` + name + `:\s*(.*?)\r$`).FindStringSubmatch(msg)
		if m == nil {
			t.Fatalf("no %s in %q", name, msg)
		}
		return m[1]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type dialed struct {
		od  *OutDialog
		err error
	}
	done := make(chan dialed, 1)
	go func() {
		od, err := e.Dial(ctx, DialOptions{Target: "sip:bob@" + callee.LocalAddr().String(), Offer: fuzzSDP})
		done <- dialed{od, err}
	}()
	inv, from := read("INVITE")
	via, fromHdr, toHdr, callID, cseq := header(inv, "Via"), header(inv, "From"), header(inv, "To"), header(inv, "Call-ID"), header(inv, "CSeq")
	toHdr += ";tag=callee"
	contact := fmt.Sprintf("<sip:bob@%s>", callee.LocalAddr())
	ok := fmt.Sprintf("SIP/2.0 200 OK\r\nVia: %s\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\nContact: %s\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		via, fromHdr, toHdr, callID, cseq, contact, len(fuzzSDP), fuzzSDP)
	callee.WriteToUDP([]byte(ok), from)
	d := <-done
	if d.err != nil {
		t.Fatal(d.err)
	}
	h := &lateAnswers{}
	d.od.SetHandler(h)
	read("ACK")

	// The callee's re-INVITE, without an offer: From/To swap.
	port := callee.LocalAddr().(*net.UDPAddr).Port
	send := func(method string, n int, branch, body string) {
		ctype := ""
		if body != "" {
			ctype = "Content-Type: application/sdp\r\n"
		}
		msg := fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-%s\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContact: %s\r\nMax-Forwards: 70\r\n%sContent-Length: %d\r\n\r\n%s",
			method, "sip:tapedeck@"+e.Addr(), port, branch, toHdr, fromHdr, callID, n, method, contact, ctype, len(body), body)
		callee.WriteToUDP([]byte(msg), from)
	}
	send("INVITE", 1, "r1", "")
	for {
		res, _ := read("200 to the re-INVITE")
		if strings.HasPrefix(res, "SIP/2.0 1") {
			continue
		}
		if !strings.HasPrefix(res, "SIP/2.0 200") || !strings.Contains(res, "m=audio") {
			t.Fatalf("re-INVITE answered %q", res)
		}
		break
	}
	answer := strings.Replace(string(fuzzSDP), "m=audio 4000", "m=audio 4020", 1)
	send("ACK", 1, "r1a", answer)
	testutil.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool { return len(h.got()) == 1 }, "the ACK's answer never reached the outbound dialog's handler")
	if got := h.got(); got[0] != answer {
		t.Fatalf("answer %q, want %q", got[0], answer)
	}
}
