package sip

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Transfers, as chan_pjsip does them for Asterisk's redirect: a call not
// answered yet is answered 302 Moved Temporarily with the target as its
// Contact; an answered one gets a REFER (RFC 3515) and the peer reports
// how its call to the target goes in NOTIFYs carrying a message/sipfrag.
// Calls tapedeck placed are transferred with a REFER to the callee.

// TargetURI is the SIP URI a transfer target names: a sip:, sips: or tel:
// URI as it is; anything else is a user at this endpoint (an extension of
// tapedeck's dialplan), over the dialog's transport.
func (d *Dialog) TargetURI(target string) (string, error) {
	return d.ep.targetURI(target, d.invite.Transport())
}

// TargetURI is Dialog.TargetURI for a call tapedeck placed.
func (od *OutDialog) TargetURI(target string) (string, error) {
	return od.ep.targetURI(target, od.d.InviteRequest.Transport())
}

func (e *Endpoint) targetURI(target, transport string) (string, error) {
	t := strings.TrimSpace(target)
	t = strings.TrimSuffix(strings.TrimPrefix(t, "<"), ">")
	low := lower(t)
	if strings.HasPrefix(low, "sip:") || strings.HasPrefix(low, "sips:") || strings.HasPrefix(low, "tel:") {
		var u sip.Uri
		if err := sip.ParseUri(t, &u); err != nil || strings.ContainsAny(t, " <>\"\r\n") {
			return "", fmt.Errorf("sip: transfer target %q is not a valid URI", target)
		}
		return t, nil
	}
	if t == "" || strings.ContainsAny(t, " <>\"@;:?\r\n/") {
		return "", fmt.Errorf("sip: transfer target %q is neither a URI nor an extension", target)
	}
	c := e.contact(transport)
	c.Address.User = t
	return c.Address.String(), nil
}

// Redirect answers the unanswered INVITE with 302 Moved Temporarily and a
// Contact of uri; the dialog then ends.
func (d *Dialog) Redirect(uri string) error {
	d.mu.Lock()
	if d.final != 0 {
		d.mu.Unlock()
		return ErrFinalSent
	}
	d.final = 302
	d.mu.Unlock()
	res := sip.NewResponseFromRequest(d.invite, 302, "Moved Temporarily", nil)
	res.AppendHeader(sip.NewHeader("Contact", "<"+uri+">"))
	err := d.tx.Respond(res)
	d.finalOnce.Do(func() { close(d.finalSent) })
	d.end(EndLocal)
	return err
}

// Refer asks the peer of the answered dialog to call uri instead (a blind
// transfer). It returns once the peer accepted the REFER (202); the
// statuses of the peer's call to the target then arrive on the channel,
// from the NOTIFYs' sipfrag bodies, which closes after a final status, a
// terminated subscription or the end of the dialog. A refused REFER is an
// error that names the response.
func (d *Dialog) Refer(ctx context.Context, uri string) (<-chan int, error) {
	if !d.Answered() {
		return nil, ErrNotAnswered
	}
	select {
	case <-d.acked:
	case <-d.ended:
		return nil, ErrTerminated
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	progress, err := d.xfer.begin()
	if err != nil {
		return nil, err
	}
	req := d.inDialogRequest(sip.REFER)
	req.AppendHeader(sip.NewHeader("Refer-To", "<"+uri+">"))
	req.AppendHeader(sip.NewHeader("Referred-By", "<"+d.invite.To().Address.String()+">"))
	req.AppendHeader(sip.NewHeader("Event", "refer"))
	res, err := d.request(ctx, req)
	if err == nil && !res.IsSuccess() {
		err = fmt.Errorf("sip: REFER answered %d %s", res.StatusCode, res.Reason)
	}
	if err != nil {
		d.xfer.end()
		return nil, err
	}
	d.ep.goSafe("call", func() {
		<-d.ended
		d.xfer.end()
	}, nil)
	return progress, nil
}

// Refer is Dialog.Refer for a call tapedeck placed: the REFER goes to the
// callee.
func (od *OutDialog) Refer(ctx context.Context, uri string) (<-chan int, error) {
	select {
	case <-od.ended:
		return nil, ErrTerminated
	default:
	}
	progress, err := od.xfer.begin()
	if err != nil {
		return nil, err
	}
	req := sip.NewRequest(sip.REFER, od.d.InviteResponse.Contact().Address)
	req.AppendHeader(sip.NewHeader("Refer-To", "<"+uri+">"))
	req.AppendHeader(sip.NewHeader("Referred-By", "<"+od.d.InviteRequest.From().Address.String()+">"))
	req.AppendHeader(sip.NewHeader("Event", "refer"))
	res, err := od.d.Do(ctx, req)
	if err == nil && !res.IsSuccess() {
		err = fmt.Errorf("sip: REFER answered %d %s", res.StatusCode, res.Reason)
	}
	if err != nil {
		od.xfer.end()
		return nil, err
	}
	od.ep.goSafe("call", func() {
		<-od.ended
		od.xfer.end()
	}, nil)
	return progress, nil
}

// referState is a dialog's transfer in progress: the statuses its NOTIFYs
// report go to progress, which is closed at the end. Sends and the close
// happen under mu: NOTIFYs may be handled concurrently, and the dialog's
// end closes it too.
type referState struct {
	mu       sync.Mutex
	progress chan int
}

func (s *referState) begin() (chan int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.progress != nil {
		return nil, fmt.Errorf("sip: a transfer is already in progress")
	}
	s.progress = make(chan int, 8)
	return s.progress, nil
}

// end closes the transfer's progress channel once.
func (s *referState) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.progress != nil {
		close(s.progress)
		s.progress = nil
	}
}

func (s *referState) active() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.progress != nil
}

// notify hands on a NOTIFY's status; a final one, or a terminated
// subscription, ends the transfer. accept (the NOTIFY's 200) runs first,
// under the lock; false: the transfer had ended, nothing accepted.
func (s *referState) notify(code int, terminated bool, accept func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	progress := s.progress
	if progress == nil {
		return false // ended meanwhile
	}
	accept()
	select {
	case progress <- code:
	default:
		// The reader is behind: a final status replaces the oldest
		// provisional one, which matters less.
		if code >= 200 {
			select {
			case <-progress:
			default:
			}
			select {
			case progress <- code:
			default:
			}
		}
	}
	if code >= 200 || terminated {
		close(progress)
		s.progress = nil
	}
	return true
}

// request sends an in-dialog request and waits for its final response.
func (d *Dialog) request(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	tx, err := d.ep.client.TransactionRequest(ctx, req, sipgo.ClientRequestAddVia)
	if err != nil {
		return nil, fmt.Errorf("sip: sending %s: %w", req.Method, err)
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			if err := tx.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("sip: %s transaction ended without a response", req.Method)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// onNotify takes the NOTIFYs of a transfer in progress (Event: refer) on
// a dialog of either side; others are refused, as are NOTIFYs outside a
// known dialog.
func (e *Endpoint) onNotify(req *sip.Request, tx sip.ServerTransaction) {
	var xfer *referState
	if d := e.lookup(req); d != nil {
		xfer = &d.xfer
	} else if id, err := sip.DialogIDFromRequestUAC(req); err == nil {
		if v, ok := e.outs.Load(id); ok {
			xfer = &v.(*OutDialog).xfer
		}
	}
	if xfer == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	ev := req.GetHeader("Event")
	if ev == nil || !strings.EqualFold(strings.TrimSpace(strings.Split(ev.Value(), ";")[0]), "refer") {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 489, "Bad Event", nil))
		return
	}
	if !xfer.active() {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Subscription Does Not Exist", nil))
		return
	}
	code, ok := sipfragStatus(req.Body())
	if !ok {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request (no sipfrag status line)", nil))
		return
	}
	terminated := false
	if st := req.GetHeader("Subscription-State"); st != nil {
		terminated = strings.HasPrefix(lower(strings.TrimSpace(st.Value())), "terminated")
	}
	// The 200 goes out with the transfer's state updated under the same
	// lock: a NOTIFY the sender sends on receiving it finds a final one's
	// transfer ended (481), never still in progress.
	if !xfer.notify(code, terminated, func() { _ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil)) }) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Subscription Does Not Exist", nil))
	}
}

// sipfragStatus reads the status code of a message/sipfrag body's status
// line ("SIP/2.0 200 OK").
func sipfragStatus(body []byte) (int, bool) {
	line, _, _ := strings.Cut(string(body), "\n")
	f := strings.Fields(strings.TrimSpace(line))
	if len(f) < 2 || !strings.HasPrefix(f[0], "SIP/") {
		return 0, false
	}
	code, err := strconv.Atoi(f[1])
	if err != nil || code < 100 || code > 699 {
		return 0, false
	}
	return code, true
}
