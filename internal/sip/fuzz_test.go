package sip

import (
	"bytes"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// fakeTx is a server transaction that records responses instead of
// sending them.
type fakeTx struct {
	mu        sync.Mutex
	responses []*sip.Response
	done      chan struct{}
	once      sync.Once
}

func newFakeTx() *fakeTx { return &fakeTx{done: make(chan struct{})} }

func (tx *fakeTx) Terminate()                           { tx.once.Do(func() { close(tx.done) }) }
func (tx *fakeTx) OnTerminate(f sip.FnTxTerminate) bool { return true }
func (tx *fakeTx) Done() <-chan struct{}                { return tx.done }
func (tx *fakeTx) Err() error                           { return nil }
func (tx *fakeTx) Acks() <-chan *sip.Request            { return nil }
func (tx *fakeTx) OnCancel(f sip.FnTxCancel) bool       { return true }
func (tx *fakeTx) Respond(res *sip.Response) error {
	// Responses are serialised as they would be on the wire.
	_ = res.String()
	tx.mu.Lock()
	tx.responses = append(tx.responses, res)
	tx.mu.Unlock()
	return nil
}

// fuzzCalls answers every call at once with a fixed SDP and acknowledges
// it on the spot (no transport carries an ACK here); re-INVITEs are
// answered 200 with the same SDP.
type fuzzCalls struct{}

var fuzzSDP = []byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n")

func (fuzzCalls) Invite(d *Dialog) {
	d.SetHandler(fuzzCalls{})
	if d.Exten() == "486" {
		_ = d.Reject(486, "Busy Here")
		return
	}
	_ = d.Progress(180, "Ringing", nil)
	if err := d.Answer(fuzzSDP); err == nil {
		d.ack(d.invite)
	}
}

func (fuzzCalls) Ended(EndReason)                     {}
func (fuzzCalls) Reinvite(offer []byte) (int, []byte) { return 200, fuzzSDP }

// dialogINVITE sets up the dialog that seeds address with To-tag TOTAG.
const dialogINVITE = "INVITE sip:301@127.0.0.1:5060 SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 127.0.0.1:5081;branch=z9hG4bK-dialog\r\n" +
	"From: <sip:alice@127.0.0.1:5081>;tag=ftag\r\n" +
	"To: <sip:301@127.0.0.1:5060>\r\n" +
	"Call-ID: fuzz-dialog@127.0.0.1\r\n" +
	"CSeq: 1 INVITE\r\n" +
	"Contact: <sip:alice@127.0.0.1:5081>\r\n" +
	"Max-Forwards: 70\r\n" +
	"Content-Length: 0\r\n\r\n"

// FuzzHandlers feeds SIP messages through sipgo's parser (datagram and
// stream) and then tapedeck's handlers — INVITE, re-INVITE, ACK, BYE,
// CANCEL, OPTIONS and the rest — on a fake transaction, with a dialog up
// whose To-tag replaces TOTAG in the input; the 200 OK and BYE of every
// dialog an input sets up are built too. A panic anywhere fails the
// target, including one the handlers' guard recovered. The seed corpus in
// testdata/fuzz/FuzzHandlers runs with every go test; scripts/fuzz.sh
// runs the fuzzer for a bounded time.
func FuzzHandlers(f *testing.F) {
	f.Add([]byte(dialogINVITE))
	parser := sip.NewParser()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := New(Options{Listen: "127.0.0.1:0", Logger: log}, fuzzCalls{})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		inv, err := parser.ParseSIP([]byte(dialogINVITE))
		if err != nil {
			t.Fatal(err)
		}
		inv.SetTransport("UDP")
		inv.SetSource("127.0.0.1:5081")
		e.route(sip.INVITE)(inv.(*sip.Request), newFakeTx())
		var d *Dialog
		e.dialogs.Range(func(_, v any) bool { d = v.(*Dialog); return false })
		if d == nil {
			t.Fatal("the seed dialog was not set up")
		}
		tag, _ := d.invite.To().Params.Get("tag")
		data = bytes.ReplaceAll(data, []byte("TOTAG"), []byte(tag))

		var msgs []sip.Message
		if m, err := parser.ParseSIP(data); err == nil {
			msgs = append(msgs, m)
		}
		stream := parser.NewSIPStream()
		_ = stream.ParseSIPStream(data, func(m sip.Message) { msgs = append(msgs, m) })
		for _, m := range msgs {
			req, ok := m.(*sip.Request)
			if !ok {
				continue
			}
			req.SetTransport("UDP")
			req.SetSource("127.0.0.1:5081")
			tx := newFakeTx()
			e.route(req.Method)(req, tx)
			tx.Terminate()
		}
		// What tapedeck sends later in every dialog an input set up: its
		// 200 OK and the BYE when the call is hung up from here.
		e.dialogs.Range(func(_, v any) bool {
			nd := v.(*Dialog)
			_ = nd.response(200, "OK", fuzzSDP).String()
			_ = nd.byeRequest().String()
			return true
		})
		if n := e.Stats().PanicsRecovered; n != 0 {
			t.Fatalf("%d panics recovered handling %q", n, data)
		}
		d.end(EndLocal)
	})
}
