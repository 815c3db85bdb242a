package sip

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// DialOptions describe an outgoing INVITE.
type DialOptions struct {
	// Target is the Request-URI, e.g. sip:alice@127.0.0.1:5090.
	Target   string
	FromUser string
	FromName string
	// Offer is the SDP offer.
	Offer []byte
	// OnProvisional sees 1xx responses (180, 183 with early media SDP).
	OnProvisional func(code int, reason string, body []byte)
	// Username and Password answer a 401/407 digest challenge (sipgo
	// retries the INVITE with credentials).
	Username, Password string
}

// RejectedError is a final non-2xx answer to our INVITE.
type RejectedError struct {
	Code   int
	Reason string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("sip: call rejected: %d %s", e.Code, e.Reason)
}

// OutDialog is a UAC dialog: a call tapedeck placed.
type OutDialog struct {
	ep *Endpoint
	d  *sipgo.DialogClientSession

	mu      sync.Mutex
	handler DialogHandler
	ended   chan struct{}
	once    sync.Once
	reason  EndReason
	// reofferCSeq: as Dialog's, for re-INVITEs the callee sends.
	reofferCSeq uint32
	// xfer is the transfer in progress (Refer).
	xfer referState
}

// Dial sends an INVITE and waits for the final response (ctx cancels with
// CANCEL). On success the ACK has been sent and Answer returns the SDP.
func (e *Endpoint) Dial(ctx context.Context, o DialOptions) (*OutDialog, error) {
	var uri sip.Uri
	if err := sip.ParseUri(o.Target, &uri); err != nil {
		return nil, fmt.Errorf("sip: bad target %q: %w", o.Target, err)
	}
	req := sip.NewRequest(sip.INVITE, uri)
	user := o.FromUser
	if user == "" {
		user = "tapedeck"
	}
	from := sip.FromHeader{DisplayName: o.FromName, Address: sip.Uri{Scheme: "sip", User: user, Host: e.opts.ExternalHost}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(&from)
	if o.Offer != nil {
		req.SetBody(o.Offer)
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	if t, ok := uri.UriParams.Get("transport"); ok && t != "" {
		req.SetTransport(t)
	}
	c := e.contact(req.Transport())
	req.AppendHeader(&c)
	req.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS"))
	d, err := e.uac.WriteInvite(ctx, req)
	if err != nil {
		return nil, err
	}
	err = d.WaitAnswer(ctx, sipgo.AnswerOptions{Username: o.Username, Password: o.Password, OnResponse: func(res *sip.Response) error {
		if res.IsProvisional() && o.OnProvisional != nil && res.StatusCode > 100 {
			o.OnProvisional(res.StatusCode, res.Reason, res.Body())
		}
		return nil
	}})
	if err != nil {
		var de *sipgo.ErrDialogResponse
		if errors.As(err, &de) {
			return nil, &RejectedError{Code: de.Res.StatusCode, Reason: de.Res.Reason}
		}
		return nil, err
	}
	if err := d.Ack(ctx); err != nil {
		return nil, fmt.Errorf("sip: ACK: %w", err)
	}
	od := &OutDialog{ep: e, d: d, ended: make(chan struct{})}
	e.outs.Store(d.ID, od)
	e.goSafe("call", func() {
		<-d.Context().Done()
		od.terminate(EndRemoteBye)
	}, nil)
	return od, nil
}

// Answer is the SDP of the 200 OK.
func (od *OutDialog) Answer() []byte { return od.d.InviteResponse.Body() }

// CallID is the dialog's Call-ID.
func (od *OutDialog) CallID() string { return od.d.InviteRequest.CallID().Value() }

// SetHandler sets the receiver of dialog events.
func (od *OutDialog) SetHandler(h DialogHandler) {
	od.mu.Lock()
	od.handler = h
	reason := od.reason
	od.mu.Unlock()
	if reason != EndNone && reason != EndLocal {
		h.Ended(reason)
	}
}

// Done is closed when the dialog ends.
func (od *OutDialog) Done() <-chan struct{} { return od.ended }

// Hangup sends BYE.
func (od *OutDialog) Hangup(ctx context.Context) error {
	if !od.end(EndLocal) {
		return nil
	}
	return od.d.Bye(ctx)
}

func (od *OutDialog) end(r EndReason) bool {
	first := false
	od.once.Do(func() {
		first = true
		od.mu.Lock()
		od.reason = r
		od.mu.Unlock()
		close(od.ended)
		od.ep.outs.Delete(od.d.ID)
	})
	return first
}

func (od *OutDialog) terminate(r EndReason) {
	if !od.end(r) {
		return
	}
	od.mu.Lock()
	h := od.handler
	od.mu.Unlock()
	if h != nil {
		h.Ended(r)
	}
}

// onUACBye handles a BYE for a dialog we placed; it reports whether it did.
func (e *Endpoint) onUACBye(req *sip.Request, tx sip.ServerTransaction) bool {
	if err := e.uac.ReadBye(req, tx); err != nil {
		return false
	}
	id, err := sip.DialogIDFromRequestUAC(req)
	if err == nil {
		if v, ok := e.outs.Load(id); ok {
			v.(*OutDialog).terminate(EndRemoteBye)
		}
	}
	return true
}

// onUACReinvite answers a re-INVITE within a dialog we placed.
func (e *Endpoint) onUACReinvite(req *sip.Request, tx sip.ServerTransaction) bool {
	id, err := sip.DialogIDFromRequestUAC(req)
	if err != nil {
		return false
	}
	v, ok := e.outs.Load(id)
	if !ok {
		return false
	}
	od := v.(*OutDialog)
	od.mu.Lock()
	h := od.handler
	od.mu.Unlock()
	if h == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 491, "Request Pending", nil))
		return true
	}
	code, body := h.Reinvite(req.Body())
	reason := "OK"
	if code != 200 {
		body, reason = nil, statusText(code)
	}
	if cs := req.CSeq(); cs != nil && code == 200 && len(req.Body()) == 0 && body != nil {
		od.mu.Lock()
		od.reofferCSeq = cs.SeqNo
		od.mu.Unlock()
	}
	res := sip.NewResponseFromRequest(req, code, reason, body)
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	c := e.contact(req.Transport())
	res.AppendHeader(&c)
	_ = tx.Respond(res)
	return true
}

// onUACAck takes the ACK of a re-INVITE the callee of a dialog we placed
// sent: when that re-INVITE had no offer, the ACK answers ours.
func (e *Endpoint) onUACAck(req *sip.Request) {
	id, err := sip.DialogIDFromRequestUAC(req)
	if err != nil {
		return
	}
	v, ok := e.outs.Load(id)
	if !ok {
		return
	}
	od := v.(*OutDialog)
	od.mu.Lock()
	pending := &od.reofferCSeq
	h := od.handler
	late := lateAnswer(pending, req)
	od.mu.Unlock()
	if late {
		deliverLateAnswer(h, req)
	}
}

// lateAnswer reports whether req is the ACK of the offerless re-INVITE
// whose CSeq *pending holds, and clears it (a retransmitted ACK answers
// nothing new). Called under the dialog's lock.
func lateAnswer(pending *uint32, req *sip.Request) bool {
	cs := req.CSeq()
	if cs == nil || *pending == 0 || cs.SeqNo != *pending {
		return false
	}
	*pending = 0
	return true
}

// deliverLateAnswer hands an ACK's SDP answer to a handler that takes it.
func deliverLateAnswer(h DialogHandler, req *sip.Request) {
	if lh, ok := h.(LateAnswerHandler); ok && len(req.Body()) > 0 {
		lh.ReinviteAnswer(req.Body())
	}
}
