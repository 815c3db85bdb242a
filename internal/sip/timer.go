package sip

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// SIP session timers (RFC 4028) for inbound dialogs.
//
// An INVITE with Session-Expires below our Min-SE is refused with 422 and
// our Min-SE. Otherwise the 2xx carries Session-Expires with the refresher:
// the one the INVITE asked for; else the caller (uac) when it supports
// "timer", else us (uas). Supported: timer is always sent; Require: timer
// only when the caller supports it. An INVITE without Session-Expires from
// a caller that supports timer gets our default interval.
//
// When the caller refreshes, every re-INVITE or UPDATE restarts the
// interval; if none arrives by the interval minus min(32 s, interval/3)
// (section 10), we send BYE and the call ends with EndSessionExpired.
// When we refresh, we send UPDATE (when the caller allows it) or a
// re-INVITE with our last SDP at half the interval; a refresh that fails
// ends the call the same way.

// Session timer defaults.
const (
	DefaultSessionExpires = 1800 * time.Second
	DefaultMinSE          = 90 * time.Second
)

// EndSessionExpired: the session timer ran out (no refresh, or ours
// failed); BYE has been sent.
const EndSessionExpired EndReason = 100

// sessionTimer is a dialog's negotiated timer (zero interval: none).
type sessionTimer struct {
	interval  time.Duration
	refresher string // "uac" or "uas"
	peerTimer bool   // the caller supports timer
	refreshed chan struct{}
}

// sessionExpires parses a Session-Expires (or x) header value: delta-seconds
// and the refresher parameter.
func sessionExpires(v string) (time.Duration, string, error) {
	parts := strings.Split(v, ";")
	n, err := strconv.ParseUint(strings.TrimSpace(parts[0]), 10, 32)
	if err != nil {
		return 0, "", fmt.Errorf("Session-Expires %q: %w", v, err)
	}
	refresher := ""
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "refresher") {
			refresher = strings.ToLower(strings.TrimSpace(val))
		}
	}
	if refresher != "" && refresher != "uac" && refresher != "uas" {
		return 0, "", fmt.Errorf("Session-Expires %q: refresher must be uac or uas", v)
	}
	return time.Duration(n) * time.Second, refresher, nil
}

func headerValue(req *sip.Request, names ...string) string {
	for _, n := range names {
		if h := req.GetHeader(n); h != nil {
			return h.Value()
		}
	}
	return ""
}

// hasOption reports whether a comma-separated header (Supported, Allow)
// lists opt.
func hasOption(req *sip.Request, opt string, names ...string) bool {
	for _, n := range names {
		for _, h := range req.GetHeaders(n) {
			for _, o := range strings.Split(h.Value(), ",") {
				if strings.EqualFold(strings.TrimSpace(o), opt) {
					return true
				}
			}
		}
	}
	return false
}

// negotiateTimer decides the dialog's session timer from the INVITE; a
// non-zero code is the response to refuse it with (422, 400).
func (e *Endpoint) negotiateTimer(req *sip.Request) (st sessionTimer, code int, reason string) {
	if e.opts.SessionExpires < 0 {
		return st, 0, ""
	}
	st.peerTimer = hasOption(req, "timer", "Supported", "k")
	v := headerValue(req, "Session-Expires", "x")
	if v == "" {
		if !st.peerTimer {
			return st, 0, ""
		}
		st.interval, st.refresher = e.sessionExpires(), "uac"
		if v := headerValue(req, "Min-SE"); v != "" {
			if n, err := strconv.ParseUint(strings.TrimSpace(strings.Split(v, ";")[0]), 10, 32); err == nil {
				st.interval = max(st.interval, time.Duration(n)*time.Second)
			}
		}
	} else {
		d, r, err := sessionExpires(v)
		if err != nil {
			return st, 400, "Bad Request (Session-Expires)"
		}
		if d < e.minSE() {
			return st, 422, "Session Interval Too Small"
		}
		st.interval, st.refresher = d, r
		if r == "" {
			st.refresher = "uas"
			if st.peerTimer {
				st.refresher = "uac"
			}
		}
	}
	if st.refresher == "uac" && !st.peerTimer {
		st.refresher = "uas" // a caller without timer cannot refresh
	}
	st.refreshed = make(chan struct{}, 1)
	return st, 0, ""
}

func (e *Endpoint) sessionExpires() time.Duration {
	if e.opts.SessionExpires == 0 {
		return DefaultSessionExpires
	}
	return max(e.opts.SessionExpires, e.minSE())
}

func (e *Endpoint) minSE() time.Duration {
	if e.opts.SessionMinSE > 0 {
		return e.opts.SessionMinSE
	}
	return DefaultMinSE
}

// reject422 answers an INVITE whose interval is below our Min-SE.
func (e *Endpoint) reject422(req *sip.Request, tx sip.ServerTransaction) {
	res := sip.NewResponseFromRequest(req, 422, "Session Interval Too Small", nil)
	res.AppendHeader(sip.NewHeader("Min-SE", strconv.Itoa(int(e.minSE()/time.Second))))
	_ = tx.Respond(res)
}

// timerHeaders adds the session timer's headers to a 2xx.
func (d *Dialog) timerHeaders(res *sip.Response) {
	res.AppendHeader(sip.NewHeader("Supported", "timer"))
	if d.timer.interval == 0 {
		return
	}
	res.AppendHeader(sip.NewHeader("Session-Expires", fmt.Sprintf("%d;refresher=%s", int(d.timer.interval/time.Second), d.timer.refresher)))
	if d.timer.peerTimer {
		res.AppendHeader(sip.NewHeader("Require", "timer"))
	}
}

// refreshedByPeer restarts the interval (a re-INVITE or UPDATE arrived).
func (d *Dialog) refreshedByPeer() {
	if d.timer.refreshed == nil {
		return
	}
	select {
	case d.timer.refreshed <- struct{}{}:
	default:
	}
}

// runTimer runs the dialog's session timer from the ACK to the end.
func (d *Dialog) runTimer() {
	if d.timer.interval == 0 {
		return
	}
	select {
	case <-d.acked:
	case <-d.ended:
		return
	}
	wait := d.timer.interval / 2
	if d.timer.refresher == "uac" {
		wait = d.timer.interval - min(32*time.Second, d.timer.interval/3)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-d.ended:
			return
		case <-d.timer.refreshed:
			t.Reset(wait)
			continue
		case <-t.C:
		}
		if d.timer.refresher == "uas" {
			if err := d.refresh(); err == nil {
				t.Reset(wait)
				continue
			} else {
				d.ep.log.Info("session refresh failed; hanging up", "call_id", d.CallID(), "err", err)
			}
		} else {
			d.ep.log.Info("session timer expired without a refresh; hanging up", "call_id", d.CallID(), "interval", d.timer.interval.String())
		}
		d.expire()
		return
	}
}

// expire ends the dialog: BYE, then the handler hears EndSessionExpired.
func (d *Dialog) expire() {
	if !d.end(EndSessionExpired) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	if err := d.sendBye(ctx); err != nil {
		d.ep.log.Debug("BYE after session expiry failed", "err", err)
	}
	d.mu.Lock()
	h := d.handler
	d.mu.Unlock()
	if h != nil {
		h.Ended(EndSessionExpired)
	}
}

// refresh sends our session refresh: UPDATE when the caller allows it,
// else a re-INVITE with our last SDP (and its ACK).
func (d *Dialog) refresh() error {
	method := sip.INVITE
	if hasOption(d.invite, "UPDATE", "Allow") {
		method = sip.UPDATE
	}
	req := d.inDialogRequest(method)
	req.AppendHeader(sip.NewHeader("Session-Expires", fmt.Sprintf("%d;refresher=uas", int(d.timer.interval/time.Second))))
	req.AppendHeader(sip.NewHeader("Supported", "timer"))
	if method == sip.INVITE {
		d.mu.Lock()
		body := d.answer.Body()
		d.mu.Unlock()
		req.SetBody(body)
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	tx, err := d.ep.client.TransactionRequest(ctx, req, sipgo.ClientRequestAddVia)
	if err != nil {
		return err
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			if method == sip.INVITE && res.IsSuccess() {
				ack := d.inDialogRequest(sip.ACK)
				ack.CSeq().SeqNo = req.CSeq().SeqNo
				_ = d.ep.client.WriteRequest(ack)
			}
			if !res.IsSuccess() {
				return fmt.Errorf("%s refresh answered %d %s", method, res.StatusCode, res.Reason)
			}
			return nil
		case <-tx.Done():
			return fmt.Errorf("%s refresh: %w", method, tx.Err())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// onUpdate handles an in-dialog UPDATE: a session refresh, with or without
// a new offer (handled as a re-INVITE's).
func (e *Endpoint) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	d := e.lookup(req)
	if d == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	d.mu.Lock()
	h := d.handler
	d.mu.Unlock()
	var body []byte
	if len(req.Body()) > 0 && h != nil {
		code, answer := h.Reinvite(req.Body())
		if code != 200 {
			_ = tx.Respond(sip.NewResponseFromRequest(req, code, statusText(code), nil))
			return
		}
		body = answer
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", body)
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	c := e.contact(req.Transport())
	res.AppendHeader(&c)
	d.timerHeaders(res)
	d.refreshedByPeer()
	if err := tx.Respond(res); err != nil {
		e.log.Debug("UPDATE response failed", "err", err)
	}
}
