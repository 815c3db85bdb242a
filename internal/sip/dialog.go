package sip

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
)

// EndReason says why a dialog ended.
type EndReason int

// Reasons a dialog ends.
const (
	EndNone      EndReason = iota
	EndRemoteBye           // the peer sent BYE
	EndCanceled            // the peer sent CANCEL (or the INVITE transaction died)
	EndNoAck               // our 2xx was never acknowledged
	EndLocal               // we hung up
	EndFailed              // an internal error (a recovered panic) ended it
)

func (r EndReason) String() string {
	switch r {
	case EndRemoteBye:
		return "remote-bye"
	case EndCanceled:
		return "canceled"
	case EndNoAck:
		return "no-ack"
	case EndLocal:
		return "local"
	case EndFailed:
		return "failed"
	}
	return "none"
}

// Errors of dialog operations.
var (
	ErrFinalSent   = errors.New("sip: a final response was already sent")
	ErrTerminated  = errors.New("sip: dialog terminated")
	ErrNotAnswered = errors.New("sip: dialog not answered")
)

// DialogHandler receives what happens inside a dialog. Calls may come from
// different goroutines.
type DialogHandler interface {
	// Ended is called once when the dialog ends for a reason other than
	// EndLocal.
	Ended(reason EndReason)
	// Reinvite handles an in-dialog INVITE: it returns the status code and,
	// for 200, the SDP answer.
	Reinvite(offer []byte) (code int, answer []byte)
}

// LateAnswerHandler is a DialogHandler that also takes the SDP answer an
// ACK carries after an offerless re-INVITE (RFC 3261 13.2.1: our 200
// offered, the ACK answers).
type LateAnswerHandler interface {
	ReinviteAnswer(answer []byte)
}

// Dialog is one UAS dialog (an inbound call leg).
type Dialog struct {
	ep     *Endpoint
	ID     string
	invite *sip.Request // the initial INVITE with our To-tag added
	tx     sip.ServerTransaction

	finalSent chan struct{}
	acked     chan struct{}
	ended     chan struct{}

	mu           sync.Mutex
	handler      DialogHandler
	final        int
	answer       *sip.Response
	remoteTarget sip.Uri
	localCSeq    uint32
	ackBody      []byte
	// reofferCSeq is the CSeq of an offerless re-INVITE whose 200
	// carried our offer; its ACK brings the answer. 0: none pending.
	reofferCSeq uint32
	endReason   EndReason
	ackOnce     sync.Once
	endOnce     sync.Once
	finalOnce   sync.Once
	// timer is the negotiated session timer (timer.go), set before the
	// dialog is handed to the handler.
	timer sessionTimer
	// xfer is the transfer in progress (Refer).
	xfer referState
}

func (e *Endpoint) newDialog(req *sip.Request, tx sip.ServerTransaction) (*Dialog, error) {
	inv := req.Clone()
	tag, err := uuid.NewRandom()
	if err != nil {
		return nil, err
	}
	inv.To().Params.Add("tag", tag.String()[:18])
	id, err := sip.DialogIDFromRequestUAS(inv)
	if err != nil {
		return nil, err
	}
	d := &Dialog{
		ep:           e,
		ID:           id,
		invite:       inv,
		tx:           tx,
		finalSent:    make(chan struct{}),
		acked:        make(chan struct{}),
		ended:        make(chan struct{}),
		remoteTarget: req.Contact().Address,
		localCSeq:    1,
	}
	e.dialogs.Store(id, d)
	tx.OnCancel(func(*sip.Request) {
		e.goSafe("call", func() { d.terminate(EndCanceled) }, nil)
	})
	return d, nil
}

// Authenticate checks the INVITE's digest credentials with a. When they
// are missing or wrong the INVITE has been answered (401, 403) or dropped
// and the dialog has ended: the caller stops there.
func (d *Dialog) Authenticate(a *Authenticator) (string, bool) {
	user, res := a.Check(context.Background(), d.invite, d.tx, "")
	if res == AuthOK {
		return user, true
	}
	d.mu.Lock()
	d.final = 401
	d.mu.Unlock()
	d.finalOnce.Do(func() { close(d.finalSent) })
	d.end(EndLocal)
	return "", false
}

// SetHandler sets the receiver of dialog events.
func (d *Dialog) SetHandler(h DialogHandler) {
	d.mu.Lock()
	d.handler = h
	reason := d.endReason
	d.mu.Unlock()
	if reason != EndNone && reason != EndLocal {
		h.Ended(reason) // ended before the handler was set
	}
}

// Request is the initial INVITE (read only).
func (d *Dialog) Request() *sip.Request { return d.invite }

// Offer is the INVITE's body (nil without an offer).
func (d *Dialog) Offer() []byte { return d.invite.Body() }

// Exten is the dialled user part of the Request-URI.
func (d *Dialog) Exten() string { return d.invite.Recipient.User }

// CallerNumber and CallerName come from the From header.
func (d *Dialog) CallerNumber() string { return d.invite.From().Address.User }

// CallerName is the From display name.
func (d *Dialog) CallerName() string { return d.invite.From().DisplayName }

// CallID is the SIP Call-ID.
func (d *Dialog) CallID() string { return d.invite.CallID().Value() }

// Transport is the transport of the INVITE (UDP, TCP).
func (d *Dialog) Transport() string { return d.invite.Transport() }

// Source is the address the INVITE came from.
func (d *Dialog) Source() string { return d.invite.Source() }

// Done is closed when the dialog ends.
func (d *Dialog) Done() <-chan struct{} { return d.ended }

// Answered reports whether a 2xx was sent.
func (d *Dialog) Answered() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.answer != nil
}

func (d *Dialog) response(code int, reason string, body []byte) *sip.Response {
	res := sip.NewResponseFromRequest(d.invite, code, reason, body)
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	if code > 100 && code < 300 {
		c := d.ep.contact(d.invite.Transport())
		res.AppendHeader(&c)
	}
	res.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"))
	return res
}

// Progress sends a provisional response: 180 Ringing, or 183 Session
// Progress with an SDP answer for early media.
func (d *Dialog) Progress(code int, reason string, sdp []byte) error {
	d.mu.Lock()
	final := d.final
	d.mu.Unlock()
	if final != 0 {
		return ErrFinalSent
	}
	select {
	case <-d.ended:
		return ErrTerminated
	default:
	}
	return d.tx.Respond(d.response(code, reason, sdp))
}

// Answer sends 200 OK with the SDP answer and retransmits it until the ACK
// arrives (RFC 3261 13.3.1.4). Without an ACK after 64*T1 the dialog ends
// with EndNoAck.
func (d *Dialog) Answer(sdp []byte) error {
	d.mu.Lock()
	if d.final != 0 {
		d.mu.Unlock()
		return ErrFinalSent
	}
	select {
	case <-d.ended:
		d.mu.Unlock()
		return ErrTerminated
	default:
	}
	res := d.response(200, "OK", sdp)
	d.timerHeaders(res)
	d.final = 200
	d.answer = res
	d.mu.Unlock()
	if err := d.tx.Respond(res); err != nil {
		d.terminate(EndCanceled)
		return fmt.Errorf("sip: sending 200 OK: %w", err)
	}
	d.finalOnce.Do(func() { close(d.finalSent) })
	d.ep.goSafe("call", func() { d.retransmit(res) }, d.fail)
	if d.timer.interval > 0 {
		d.ep.goSafe("call", d.runTimer, nil)
	}
	return nil
}

// fail ends a dialog whose handling panicked: 500 if it was not answered
// yet, BYE if it was; the handler, if any, hears EndFailed so it can
// release what it holds.
func (d *Dialog) fail() {
	d.mu.Lock()
	answered, final, h := d.answer != nil, d.final, d.handler
	d.mu.Unlock()
	switch {
	case answered:
		d.ep.goSafe("call", func() {
			ctx, cancel := context.WithTimeout(context.Background(), 64*sip.T1)
			defer cancel()
			select { // no BYE before the ACK (RFC 3261 15)
			case <-d.acked:
			case <-ctx.Done():
				return
			}
			_ = d.sendBye(ctx)
		}, nil)
	case final == 0:
		d.mu.Lock()
		d.final = 500
		d.mu.Unlock()
		_ = d.tx.Respond(d.response(500, "Server Internal Error", nil))
		d.finalOnce.Do(func() { close(d.finalSent) })
	}
	if d.end(EndFailed) && h != nil {
		h.Ended(EndFailed)
	}
}

func (d *Dialog) retransmit(res *sip.Response) {
	reliable := sip.IsReliable(d.invite.Transport())
	interval := sip.T1
	deadline := time.NewTimer(64 * sip.T1)
	defer deadline.Stop()
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-d.acked:
			return
		case <-d.ended:
			return
		case <-deadline.C:
			d.ep.log.Warn("no ACK for 200 OK, ending call", "call_id", d.CallID())
			d.terminate(EndNoAck)
			return
		case <-t.C:
			if !reliable {
				_ = d.ep.srv.WriteResponse(res)
			}
			interval = min(interval*2, sip.T2)
			t.Reset(interval)
		}
	}
}

// Reject sends a final error response (e.g. 404, 486, 488, 603). The
// dialog then ends.
func (d *Dialog) Reject(code int, reason string) error {
	d.mu.Lock()
	if d.final != 0 {
		d.mu.Unlock()
		return ErrFinalSent
	}
	d.final = code
	d.mu.Unlock()
	err := d.tx.Respond(d.response(code, reason, nil))
	d.finalOnce.Do(func() { close(d.finalSent) })
	d.end(EndLocal)
	return err
}

func (d *Dialog) ack(req *sip.Request) {
	d.mu.Lock()
	late := lateAnswer(&d.reofferCSeq, req)
	h := d.handler
	d.mu.Unlock()
	if late {
		deliverLateAnswer(h, req)
		return
	}
	d.ackOnce.Do(func() {
		d.mu.Lock()
		d.ackBody = req.Body()
		d.mu.Unlock()
		close(d.acked)
	})
}

// AckBody is the body of the ACK for our 2xx (the SDP answer of a call
// whose INVITE had no offer).
func (d *Dialog) AckBody() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ackBody
}

// Acked is closed when the ACK for our 2xx arrived.
func (d *Dialog) Acked() <-chan struct{} { return d.acked }

// Hangup ends the dialog from our side: BYE when answered, otherwise a
// final response with the given code.
func (d *Dialog) Hangup(ctx context.Context, code int, reason string) error {
	d.mu.Lock()
	answered := d.answer != nil
	final := d.final
	d.mu.Unlock()
	select {
	case <-d.ended:
		return nil
	default:
	}
	if !answered {
		if final != 0 {
			return nil
		}
		return d.Reject(code, reason)
	}
	return d.bye(ctx)
}

func (d *Dialog) bye(ctx context.Context) error {
	// RFC 3261 15: the callee must not send BYE before the ACK arrives or the
	// 2xx retransmissions give up.
	select {
	case <-d.acked:
	case <-d.ended:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	d.end(EndLocal)
	return d.sendBye(ctx)
}

// sendBye sends the BYE of an acknowledged dialog and waits for its answer.
func (d *Dialog) sendBye(ctx context.Context) error {
	req := d.byeRequest()
	tx, err := d.ep.client.TransactionRequest(ctx, req, sipgo.ClientRequestAddVia)
	if err != nil {
		return fmt.Errorf("sip: sending BYE: %w", err)
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			if !res.IsSuccess() {
				return fmt.Errorf("sip: BYE answered %d %s", res.StatusCode, res.Reason)
			}
			return nil
		case <-tx.Done():
			return tx.Err()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// byeRequest builds the dialog's next BYE from what the INVITE carried:
// the route set, the remote target, tags and Call-ID.
func (d *Dialog) byeRequest() *sip.Request { return d.inDialogRequest(sip.BYE) }

// inDialogRequest builds the dialog's next request of a method (BYE,
// UPDATE, re-INVITE, ACK).
func (d *Dialog) inDialogRequest(method sip.RequestMethod) *sip.Request {
	d.mu.Lock()
	d.localCSeq++
	cseq := d.localCSeq
	target := d.remoteTarget
	d.mu.Unlock()

	req := sip.NewRequest(method, target)
	from := d.invite.To().AsFrom()
	to := d.invite.From().AsTo()
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	req.AppendHeader(sip.HeaderClone(d.invite.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	maxfwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxfwd)
	// The route set is the Record-Route list, in order, for the UAS.
	rrs := d.invite.GetHeaders("Record-Route")
	for _, rr := range rrs {
		req.AppendHeader(sip.NewHeader("Route", rr.Value()))
	}
	c := d.ep.contact(d.invite.Transport())
	req.AppendHeader(&c)
	req.SetBody(nil)
	req.SetTransport(d.invite.Transport())
	switch {
	case len(rrs) > 0:
		if r := req.Route(); r != nil {
			req.SetDestination(r.Address.HostPort())
		}
	case sip.IsReliable(d.invite.Transport()):
		// Reuse the caller's connection.
		req.SetDestination(d.invite.Source())
	}
	return req
}

func (d *Dialog) reinvite(req *sip.Request, tx sip.ServerTransaction) {
	d.mu.Lock()
	h := d.handler
	answered := d.answer != nil
	if c := req.Contact(); c != nil {
		d.remoteTarget = c.Address
	}
	d.mu.Unlock()
	if !answered || h == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 491, "Request Pending", nil))
		return
	}
	code, body := h.Reinvite(req.Body())
	reason := "OK"
	if code != 200 {
		body = nil
		reason = statusText(code)
	}
	if cs := req.CSeq(); cs != nil && code == 200 && len(req.Body()) == 0 && body != nil {
		d.mu.Lock()
		d.reofferCSeq = cs.SeqNo
		d.mu.Unlock()
	}
	res := sip.NewResponseFromRequest(req, code, reason, body)
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	c := d.ep.contact(req.Transport())
	res.AppendHeader(&c)
	if code == 200 {
		d.timerHeaders(res)
		d.refreshedByPeer()
	}
	if err := tx.Respond(res); err != nil {
		d.ep.log.Debug("re-INVITE response failed", "err", err)
	}
}

func statusText(code int) string {
	switch code {
	case 400:
		return "Bad Request"
	case 488:
		return "Not Acceptable Here"
	case 491:
		return "Request Pending"
	case 500:
		return "Server Internal Error"
	}
	return "Error"
}

// terminate ends the dialog for a remote reason and tells the handler.
func (d *Dialog) terminate(reason EndReason) {
	if !d.end(reason) {
		return
	}
	d.mu.Lock()
	h := d.handler
	d.mu.Unlock()
	if h != nil {
		h.Ended(reason)
	}
}

// end marks the dialog ended; it reports whether this call ended it.
func (d *Dialog) end(reason EndReason) bool {
	first := false
	d.endOnce.Do(func() {
		first = true
		d.mu.Lock()
		d.endReason = reason
		d.mu.Unlock()
		close(d.ended)
		d.ep.dialogs.Delete(d.ID)
	})
	return first
}
