package call

import (
	"context"
	"strings"
	"time"
)

// referTimeout bounds a REFER transfer: the REFER's answer and the
// peer's call to the target.
const referTimeout = 60 * time.Second

// Redirect transfers a channel in an application to another endpoint
// (ARI's redirect), as chan_pjsip does: a call not answered yet is
// answered 302 Moved Temporarily, an answered one is sent a REFER. The
// endpoint is TECH/resource with the channel's technology; the resource is
// a registered user (whose phone becomes the target), a SIP URI, or an
// extension of this node. The request returns at once; when the transfer
// succeeds the channel is hung up (ChannelLeftBridge if it was bridged,
// StasisEnd, ChannelDestroyed); when it fails the channel stays, in its
// application.
func (m *Manager) Redirect(id ChannelID, endpoint string) error {
	if endpoint == "" {
		return errf(ErrInvalidArgument, "Required parameter 'endpoint' not provided.")
	}
	ch, err := m.channel(string(id))
	if err != nil {
		return err
	}
	ch.mu.Lock()
	err = ch.checkLocked(true)
	state := ch.state
	ch.mu.Unlock()
	if err != nil {
		return err
	}
	tech, resource, ok := strings.Cut(endpoint, "/")
	if !ok {
		return errf(ErrInvalidArgument, "Endpoint parameter '%s' does not contain tech/resource", endpoint)
	}
	chTech, _, _ := strings.Cut(ch.name, "/")
	if !strings.EqualFold(tech, chTech) {
		return errf(ErrUnsupported, "Endpoint technology '%s' does not match channel technology '%s'", tech, chTech)
	}
	if resource == "" {
		return errf(ErrInvalidArgument, "No resource provided in endpoint parameter")
	}
	ch.mu.Lock()
	out := ch.out
	ch.mu.Unlock()
	var tr transferer
	switch {
	case ch.dialog != nil:
		tr = ch.dialog
	case out != nil:
		tr = out // a call tapedeck placed, answered: REFER to the callee
	default:
		// Snoop and external media channels have no SIP dialog.
		return errf(ErrUnsupported, "Channel %s has no SIP dialog to redirect", ch.id)
	}
	target := resource
	if m.opts.Locations != nil {
		if contacts := m.opts.Locations.Contacts(resource); len(contacts) > 0 {
			target = contacts[0].ContactTarget()
		}
	}
	uri, err := tr.TargetURI(target)
	if err != nil {
		return errf(ErrInvalidArgument, "Endpoint parameter '%s': %v", endpoint, err)
	}
	go ch.transfer(tr, uri, state != StateUp && ch.dialog != nil)
	return nil
}

// transferer is what a transfer needs from a dialog (an inbound Dialog or
// an outbound *sip.OutDialog).
type transferer interface {
	TargetURI(target string) (string, error)
	Refer(ctx context.Context, uri string) (<-chan int, error)
}

// transfer redirects (302, unanswered) or refers (REFER, answered) the
// channel's caller to uri; a successful transfer hangs the channel up.
func (ch *Channel) transfer(tr transferer, uri string, unanswered bool) {
	if unanswered {
		if err := ch.dialog.Redirect(uri); err != nil {
			ch.log.Warn("redirect: 302 failed; the channel stays", "target", uri, "err", err)
			return
		}
		ch.log.Info("redirect: call moved (302)", "target", uri)
		ch.hangup(CauseNormalClearing, false)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), referTimeout)
	defer cancel()
	progress, err := tr.Refer(ctx, uri)
	if err != nil {
		ch.log.Warn("redirect: REFER refused; the channel stays", "target", uri, "err", err)
		return
	}
	last := 0
	for {
		select {
		case code, ok := <-progress:
			if ok {
				last = code
				continue
			}
		case <-ctx.Done():
		case <-ch.done:
			return
		}
		break
	}
	if last < 200 || last >= 300 {
		ch.log.Warn("redirect: the transfer failed; the channel stays", "target", uri, "status", last)
		return
	}
	ch.log.Info("redirect: call transferred (REFER)", "target", uri, "status", last)
	ch.hangup(CauseNormalClearing, false)
}
