package call

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tapedeck/tapedeck/internal/contain"
	"github.com/tapedeck/tapedeck/internal/dialplan"
	"github.com/tapedeck/tapedeck/internal/sip"
	"github.com/tapedeck/tapedeck/internal/users"
)

// Locations finds users' registered phones (the registrar).
type Locations interface {
	// Contacts are the user's unexpired bindings, most recent first.
	Contacts(sipUsername string) []sip.Binding
}

// SetUsers gives the manager the PBX's users, their registered phones and
// the authenticator of their calls (before use). A dialled number that no
// dialplan route takes and that is a user's extension then runs Dial.
func (m *Manager) SetUsers(dir Directory, loc Locations, auth *sip.Authenticator) {
	m.opts.Directory, m.opts.Locations, m.opts.Auth = dir, loc, auth
}

// DefaultDialTimeout is how long Dial rings the callee's phones.
const DefaultDialTimeout = 30 * time.Second

// route finds the route of a dialled number. From a trunk: the user of a
// DID (Dial, incoming external), else the dialplan. From anyone else: the
// dialplan, else a feature code, a user's extension (an implicit Dial),
// and with trunks any other number goes out (DialTrunk, outgoing
// external).
func (m *Manager) route(exten string, trunk *Trunk) (*dialplan.Route, dialplan.App, error) {
	if trunk != nil {
		if user, ok := trunk.DIDs[exten]; ok && m.opts.Directory != nil {
			app := dialplan.App{Name: dialApp.Name, Args: []string{user}}
			return &dialplan.Route{Exten: exten, Context: "from-extern", App: app}, app, nil
		}
		return m.dialplan().Match(exten)
	}
	route, app, err := m.dialplan().Match(exten)
	if err == nil || m.opts.Directory == nil {
		return route, app, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if name, ok := m.featureApp(ctx, exten); ok {
		app = dialplan.App{Name: name}
		return &dialplan.Route{Exten: exten, Context: "xivo-features", App: app}, app, nil
	}
	u, uerr := m.opts.Directory.UserByExten(ctx, "", exten)
	if uerr == nil {
		app = dialplan.App{Name: dialApp.Name, Args: []string{exten}}
		return &dialplan.Route{Exten: exten, Context: nonEmpty(u.Context, "default"), App: app}, app, nil
	}
	if !errors.Is(uerr, ErrNoUser) {
		m.log.Error("users directory lookup failed", "exten", exten, "err", uerr)
		return nil, dialplan.App{}, err
	}
	if len(m.opts.Trunks) > 0 && trunkNumber(exten) {
		app = dialplan.App{Name: dialTrunkApp.Name, Args: []string{m.opts.Trunks[0].Name, exten}}
		return &dialplan.Route{Exten: exten, Context: "to-extern", App: app}, app, nil
	}
	return nil, dialplan.App{}, err
}

// authenticate checks an INVITE's digest credentials; false: answered.
func (m *Manager) authenticate(d *sip.Dialog) (string, bool) {
	if m.opts.Auth == nil {
		_ = d.Reject(403, "Forbidden")
		return "", false
	}
	return d.Authenticate(m.opts.Auth)
}

// Dial(exten[,timeout]) calls the phones of the user whose extension is
// exten, all at once, and bridges the caller with the first that answers
// (the others are canceled); ringing and early media reach the caller;
// busy, no answer and no phone end the caller's call with 486, 480, 480.
// Either party hanging up ends both. Callers must be authenticated users.
var dialApp = Application{
	Name:         "Dial",
	Authenticate: true,
	Check: func(args []string, _ CheckEnv) error {
		if len(args) == 0 || args[0] == "" {
			return errors.New("no extension: want Dial(exten[,timeout])")
		}
		if len(args) > 2 {
			return fmt.Errorf("%d arguments: want Dial(exten[,timeout])", len(args))
		}
		if len(args) == 2 {
			if _, err := dialTimeout(args); err != nil {
				return err
			}
		}
		return nil
	},
	Admit: func(inv *Invocation) *Decline {
		if inv.manager().opts.Directory == nil || inv.manager().opts.Locations == nil {
			inv.Log.Warn("rejecting call: Dial() without users (no directory or registrar)")
			return &Decline{404, "Not Found"}
		}
		if _, err := dialTimeout(inv.Args); err != nil {
			return &Decline{500, "Server Internal Error"}
		}
		return nil
	},
	Run: func(inv *Invocation) {
		// A panic in the Dial application fails this call only.
		contain.Go(inv.Log, "dial", func() { inv.ch.runDial(inv) }, func() { inv.ch.hangup(CauseFailure, false) })
	},
}

func dialTimeout(args []string) (time.Duration, error) {
	if len(args) < 2 || args[1] == "" {
		return DefaultDialTimeout, nil
	}
	s, err := strconv.Atoi(args[1])
	if err != nil || s <= 0 {
		return 0, fmt.Errorf("timeout %q is not a positive number of seconds", args[1])
	}
	return time.Duration(s) * time.Second, nil
}

type legEvent struct {
	leg  *Channel
	code int
	sdp  bool
}

// runDial is the Dial application on the caller's channel ch: the user
// of exten is called on every registered phone. From a trunk (a DID) the
// call is incoming external, from a user internal.
func (ch *Channel) runDial(inv *Invocation) {
	m := ch.m
	exten := inv.Args[0]
	timeout, _ := dialTimeout(inv.Args)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	callee, err := m.opts.Directory.UserByExten(ctx, "", exten)
	var caller *DirUser
	if err == nil && inv.CallerUser != "" {
		caller, _ = m.opts.Directory.UserBySIPUsername(ctx, inv.CallerUser)
	}
	cancel()
	if err != nil {
		inv.Log.Info("Dial: no such user", "exten", exten, "err", err)
		ch.hangup(CauseUnallocated, false)
		return
	}
	contacts := m.opts.Locations.Contacts(callee.SIPUsername)
	if len(contacts) == 0 {
		inv.Log.Info("Dial: the user has no registered phone", "exten", exten, "user", callee.SIPUsername)
		ch.hangup(CauseNoAnswer, false) // 480 Temporarily Unavailable
		return
	}
	targets := make([]dialTarget, len(contacts))
	for i, b := range contacts {
		targets[i] = dialTarget{endpoint: "PJSIP/" + b.ContactTarget()}
	}
	kind := users.Internal
	if inv.Trunk != nil {
		kind = users.IncomingExternal
	}
	ch.connect(inv, dialSpec{targets: targets, timeout: timeout, kind: kind, caller: caller, callee: callee, dst: exten})
}

// dialTarget is one phone or trunk to call.
type dialTarget struct {
	endpoint           string // PJSIP/sip:...
	username, password string // digest credentials for the far end's challenge
}

// dialSpec is what connect calls and how the call counts.
type dialSpec struct {
	targets        []dialTarget
	timeout        time.Duration
	kind           users.CallKind
	caller, callee *DirUser // nil for a trunk's side
	dst            string   // the dialled number
}

// connect calls every target at once and bridges the caller with the first
// that answers: ringing and early media reach the caller, failures end the
// caller's call with the most telling status, either hangup ends both.
// The connected call is recorded when the users' flags say so.
func (ch *Channel) connect(inv *Invocation, spec dialSpec) {
	m := ch.m
	exten := spec.dst
	callerID := ch.JSON().Caller
	if spec.caller != nil {
		callerID = CallerID{Name: spec.caller.Name(), Number: spec.caller.Exten}
		ch.mu.Lock()
		ch.caller = callerID
		ch.mu.Unlock()
	}
	cid := callerID.Number
	if callerID.Name != "" {
		cid = fmt.Sprintf("%q <%s>", callerID.Name, callerID.Number)
	}

	events := make(chan legEvent, 4*len(spec.targets)+4)
	var legs []*Channel
	for _, t := range spec.targets {
		leg, uri, err := m.outboundChannel(OriginateOptions{Endpoint: t.endpoint, CallerID: cid,
			Extension: exten, Originator: ChannelID(ch.id)}, StateDown)
		if err != nil {
			inv.Log.Warn("Dial: cannot call a target", "endpoint", t.endpoint, "err", err)
			continue
		}
		leg.dialHook = func(code int, sdp bool) { events <- legEvent{leg: leg, code: code, sdp: sdp} }
		leg.dialUser, leg.dialPassword = t.username, t.password
		leg.mu.Lock()
		leg.dialing = true
		// app_dial names the callee's application AppDial (to those
		// subscribed to every channel: no application has this one).
		cep := leg.dialplan
		cep.AppName, cep.AppData = "AppDial", "(Outgoing Line)"
		leg.setDialplanLocked(cep)
		leg.mu.Unlock()
		legs = append(legs, leg)
		hook := leg.dialHook
		leg.goDial(uri, spec.timeout, ch, func() { hook(500, false) }) // (a final failure for the loop below)
	}
	if len(legs) == 0 {
		ch.hangup(CauseCongestion, false)
		return
	}
	var early *Bridge // the caller hears a ringing phone's early media
	var winner *Channel
	ringing := false
	pending := len(legs)
	worst := 0
	for pending > 0 && winner == nil {
		select {
		case ev := <-events:
			switch {
			case ev.code == 180 || ev.code == 183 && !ev.sdp:
				if !ringing && early == nil {
					ringing = true
					_ = ch.ring()
				}
			case ev.code == 183:
				if early == nil {
					if err := ch.progress(); err != nil {
						inv.Log.Debug("Dial: early media not passed on", "err", err)
						break
					}
					if br, err := m.createBridge("", "mixing", "dial-early"); err == nil {
						early = br
						_ = br.addChannel(ch, false, false)
						_ = br.addChannel(ev.leg, false, false)
					}
				}
			case ev.code == 200:
				winner = ev.leg
			default: // a final failure
				pending--
				worst = worseDialCode(worst, ev.code)
			}
		case <-ch.done: // the caller hung up (CANCEL)
			for _, l := range legs {
				go l.hangup(CauseNormalClearing, false)
			}
			if early != nil {
				early.Destroy()
			}
			return
		}
	}
	for _, l := range legs {
		if l != winner {
			go l.hangup(CauseNormalClearing, false) // CANCEL the others
		}
	}
	if winner == nil {
		if early != nil {
			early.Destroy()
		}
		cause := sipToCause(worst)
		if worst == 408 || worst == 487 {
			cause = CauseNoAnswer
		}
		inv.Log.Info("Dial: nobody answered", "exten", exten, "status", worst, "cause", cause)
		ch.hangup(cause, false)
		return
	}
	br := early
	var rec *LiveRecording
	if br == nil {
		var err error
		if br, err = m.createBridge("", "mixing", "dial"); err != nil {
			ch.hangup(CauseCongestion, false)
			winner.hangup(CauseNormalClearing, false)
			return
		}
		// The policy recording is attached before the caller is answered
		// (its file is created here, off the media path): the caller
		// talks from the answer on, and what the bridge mixes before a
		// recording is attached is in no file.
		rec = m.recordByPolicy(br, ch, spec.kind, spec.caller, spec.callee, callerID.Number, exten, inv.Route.Context)
		if rec != nil {
			rec.waitAttached(2 * time.Second)
		}
	}
	if err := ch.answer(); err != nil {
		inv.Log.Info("Dial: the caller is gone", "err", err)
		if rec != nil {
			rec.Cancel() // no call was connected: nothing to keep
		}
		winner.hangup(CauseNormalClearing, false)
		br.Destroy()
		return
	}
	if early == nil {
		_ = br.addChannel(ch, false, false)
	}
	if err := br.addChannel(winner, false, false); err != nil {
		inv.Log.Info("Dial: the callee is gone", "err", err)
	}
	inv.Log.Info("Dial: connected", "exten", exten, "callee_channel", winner.id, "bridge", br.id)
	if early != nil {
		m.recordByPolicy(br, ch, spec.kind, spec.caller, spec.callee, callerID.Number, exten, inv.Route.Context)
	}
	for _, p := range []struct {
		ch, peer *Channel
		u        *DirUser
	}{{ch, winner, spec.caller}, {winner, ch, spec.callee}} {
		if p.u != nil && p.u.OnlineCallRecord {
			p.ch.AttachTap(&onlineRecorder{m: m, ch: p.ch, peer: p.peer, br: br}, StageControl)
		}
	}
	select {
	case <-ch.done:
		winner.hangup(CauseNormalClearing, false)
	case <-winner.done:
		ch.hangup(CauseNormalClearing, false)
	}
	br.Destroy()
}

// worseDialCode keeps the final status that says most about a dial:
// busy, then declined, then not answered, then the rest.
func worseDialCode(a, b int) int {
	rank := func(c int) int {
		switch c {
		case 486, 600:
			return 4
		case 603:
			return 3
		case 408, 480, 487:
			return 2
		case 0:
			return 0
		}
		return 1
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}
