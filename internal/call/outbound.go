package call

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tapedeck/tapedeck/internal/contain"
	"github.com/tapedeck/tapedeck/internal/sdp"
	"github.com/tapedeck/tapedeck/internal/sip"
)

// Dialer places outgoing SIP calls (the SIP endpoint).
type Dialer interface {
	Dial(ctx context.Context, o sip.DialOptions) (*sip.OutDialog, error)
}

// OriginateOptions are the parameters of POST /channels and
// /channels/create.
type OriginateOptions struct {
	Endpoint  string // PJSIP/alice@127.0.0.1:5090, SIP/..., or a sip: URI
	App       string
	AppArgs   string
	Extension string
	Context   string
	CallerID  string
	Timeout   time.Duration
	ChannelID ChannelID // the client's id for the new channel; generated when empty
	Variables map[string]string
	// Priority and Label say where in the extension's route the dialplan
	// starts once answered (priority 1 when both are empty); tapedeck's
	// routes have one application, at priority 1, and no labels.
	Priority int64
	Label    string
	// Formats restrict the codecs offered (Asterisk's format names: ulaw,
	// alaw); empty: all of the node's.
	Formats []string
	// OtherChannelID is the id of a Local channel's second half; tapedeck
	// has no Local channels, but an id in use is refused as Asterisk does.
	OtherChannelID ChannelID
	// Originator is the channel this call is made for: the new leg shares
	// its CallSid and account.
	Originator ChannelID
	// Controlled: no application and no dialplan; once answered the call
	// stays up, driven by third-party commands (the command API), until it
	// is hung up.
	Controlled bool
}

// ParseEndpoint turns an ARI endpoint into a SIP URI: "PJSIP/alice@host:port",
// "SIP/alice@host", "PJSIP/sip:alice@host;transport=tcp". The user part is
// returned for the channel name.
func ParseEndpoint(ep string) (uri, user string, err error) {
	tech, rest, ok := strings.Cut(ep, "/")
	if !ok || rest == "" {
		return "", "", errf(ErrInvalidArgument, "Endpoint %q: want TECH/resource, e.g. PJSIP/alice@127.0.0.1:5060", ep)
	}
	switch strings.ToUpper(tech) {
	case "PJSIP", "SIP":
	default:
		return "", "", errf(ErrInvalidArgument, "Endpoint technology %q is not supported (PJSIP, SIP)", tech)
	}
	if strings.HasPrefix(rest, "sip:") {
		uri = rest
		rest = strings.TrimPrefix(rest, "sip:")
	} else {
		uri = "sip:" + rest
	}
	u, host, ok := strings.Cut(rest, "@")
	if !ok || u == "" || host == "" {
		return "", "", errf(ErrInvalidArgument, "Endpoint %q has no host: use PJSIP/user@host[:port] (tapedeck has no registrar)", ep)
	}
	if strings.ContainsAny(u, " <>\"") || strings.ContainsAny(host, " <>\"") {
		return "", "", errf(ErrInvalidArgument, "Endpoint %q is malformed", ep)
	}
	return uri, u, nil
}

// parseCallerID reads "Name <number>" or "number".
func parseCallerID(s string) CallerID {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '<'); i >= 0 && strings.HasSuffix(s, ">") {
		return CallerID{Name: strings.Trim(strings.TrimSpace(s[:i]), `"`), Number: s[i+1 : len(s)-1]}
	}
	return CallerID{Number: s}
}

// sipToCause maps a final SIP response to a hangup cause, as chan_pjsip does.
func sipToCause(code int) Cause {
	switch code {
	case 401, 403, 407, 603:
		return CauseCallRejected
	case 404, 485, 604:
		return CauseUnallocated
	case 408:
		return CauseNoUserResponse
	case 480, 483:
		return CauseNoAnswer
	case 484:
		return CauseInvalidNumber
	case 486, 600:
		return CauseUserBusy
	case 488, 606:
		return CauseBearerNotAvail
	case 500:
		return CauseFailure
	case 503:
		return CauseCongestion
	}
	if code >= 400 && code < 500 {
		return CauseInterworking
	}
	return CauseNormalClearing
}

// Dial status names of the Dial event.
func dialStatus(cause Cause) string {
	switch cause {
	case CauseUserBusy:
		return "BUSY"
	case CauseNoAnswer, CauseNoUserResponse:
		return "NOANSWER"
	case CauseCongestion:
		return "CONGESTION"
	case CauseCallRejected:
		return "CANCEL"
	}
	return "CHANUNAVAIL"
}

// DialEvent is ARI's Dial event.
type DialEvent struct {
	eventBase
	Peer       ChannelJSON `json:"peer"`
	Dialstring string      `json:"dialstring,omitempty"`
	Dialstatus string      `json:"dialstatus"`
}

func (m *Manager) outboundChannel(o OriginateOptions, state State) (*Channel, string, error) {
	return m.outboundChannelSpec(o, state, false)
}

// outboundChannelSpec makes an outgoing channel; dialed: by originate
// (ast_dial: AppDial2, and the dialplan location is the endpoint's,
// default,s,1, until the callee answers).
func (m *Manager) outboundChannelSpec(o OriginateOptions, state State, dialed bool) (*Channel, string, error) {
	if m.opts.Dialer == nil {
		return nil, "", errf(ErrUnavailable, "outbound calls are not configured")
	}
	uri, user, err := ParseEndpoint(o.Endpoint)
	if err != nil {
		return nil, "", err
	}
	for _, id := range []ChannelID{o.ChannelID, o.OtherChannelID} {
		if id == "" {
			continue
		}
		if _, err := m.channel(string(id)); err == nil {
			return nil, "", errf(ErrConflict, "Channel with id %s already exists", id)
		}
	}
	codecs, err := m.formatCodecs(o)
	if err != nil {
		return nil, "", err
	}
	media, err := m.opts.Ports.ListenConfig(m.opts.Poller)
	if err != nil {
		return nil, "", errf(ErrUnavailable, "no RTP ports: %v", err)
	}
	var callSid, accountSid string
	if o.Originator != "" {
		orig, err := m.channel(string(o.Originator))
		if err != nil {
			media.CloseSockets()
			return nil, "", errf(ErrInvalidArgument, "originator %s not found", o.Originator)
		}
		callSid, accountSid = orig.callSid, orig.accountSid
	} else if c := m.opts.Catalog; c != nil {
		ctx, cancel := catalogCtx()
		accountSid, _ = c.AccountSid(ctx, "")
		cancel()
	}
	cep := DialplanCEP{Context: nonEmpty(o.Context, "default"), Exten: nonEmpty(o.Extension, "s"), Priority: max(o.Priority, 1)}
	if dialed {
		cep = DialplanCEP{Context: "default", Exten: "s", Priority: 1}
	}
	ch, err := m.newChannel(channelSpec{
		callSid:    callSid,
		accountSid: accountSid,
		id:         string(o.ChannelID),
		user:       user,
		caller:     parseCallerID(o.CallerID),
		dialplan:   cep,
		state:      state,
		vars:       o.Variables,
		app:        o.App,
		dialed:     dialed,
	}, media)
	if err != nil {
		return nil, "", errf(ErrUnavailable, "media: %v", err)
	}
	ch.codecs = codecs
	return ch, uri, nil
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// originate creates an outgoing channel and dials it at once. With an app,
// the channel enters it once answered; with an extension, the dialplan
// route of that extension runs. It returns the channel and its JSON in
// state Down, taken before the dial.
func (m *Manager) originate(o OriginateOptions) (*Channel, ChannelJSON, error) {
	if o.App == "" && o.Extension == "" && !o.Controlled {
		return nil, ChannelJSON{}, errf(ErrInvalidArgument, "Application or extension must be specified")
	}
	if o.App != "" && !m.bus.Registered(o.App) {
		return nil, ChannelJSON{}, errf(ErrInvalidArgument, "Stasis application %s is not registered", o.App)
	}
	if o.Label != "" {
		n, err := strconv.ParseInt(o.Label, 10, 64)
		if err != nil {
			return nil, ChannelJSON{}, errf(ErrNotFound, "Requested label can not be found")
		}
		if n == 0 {
			return nil, ChannelJSON{}, errf(ErrInvalidArgument, "Requested priority is illegal")
		}
		o.Priority = n
	}
	ch, uri, err := m.outboundChannelSpec(o, StateDown, true)
	if err != nil {
		return nil, ChannelJSON{}, err
	}
	ch.mu.Lock()
	ch.originate = &o
	ch.dialing = true
	ch.mu.Unlock()
	// The answer shows the channel as created (Down), as Asterisk's does:
	// taken before the dial, whose 180 may otherwise come first.
	js := ch.JSON()
	ch.goDial(uri, o.Timeout, nil, nil)
	return ch, js, nil
}

// create makes an outgoing channel in the application without dialing it
// (POST /channels/create); POST /channels/{id}/dial dials it.
func (m *Manager) create(o OriginateOptions) (*Channel, error) {
	if o.App == "" {
		return nil, errf(ErrInvalidArgument, "app is required")
	}
	ch, uri, err := m.outboundChannel(o, StateDown)
	if err != nil {
		return nil, err
	}
	ch.mu.Lock() // the channel is published: Dial may already be looking
	ch.dialTarget = uri
	ch.mu.Unlock()
	// Asterisk runs Stasis on the created channel (pbx_exec): it has an
	// application now, and the application, subscribed, hears
	// ChannelDialplan before StasisStart.
	ch.execStasis(o.App, o.AppArgs)
	return ch, nil
}

func splitArgs(s string) []string {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// Dial dials a channel made by Create; timeout 0 waits without limit.
func (ch *Channel) Dial(caller string, timeout time.Duration) error {
	ch.mu.Lock()
	if ch.hangingUp {
		ch.mu.Unlock()
		return errChannelNotFound
	}
	if ch.dialTarget == "" || ch.dialing || ch.state != StateDown {
		ch.mu.Unlock()
		return errf(ErrInvalidState, "Channel is not dialable")
	}
	ch.dialing = true
	target := ch.dialTarget
	ch.mu.Unlock()
	var callerCh *Channel
	if caller != "" {
		callerCh, _ = ch.m.channel(caller)
	}
	ch.goDial(target, timeout, callerCh, nil)
	return nil
}

// goDial runs dial on a goroutine of its own: a panic there fails this
// outgoing call only (hung up with cause 38, failed), logged, counted as
// tapedeck_panics_total{site="dial"}; failed (may be nil) then tells whoever
// waits for the call's outcome.
func (ch *Channel) goDial(target string, timeout time.Duration, caller *Channel, failed func()) {
	contain.Go(ch.log, "dial", func() { ch.dial(target, timeout, caller) }, func() {
		ch.hangup(CauseFailure, false)
		if failed != nil {
			failed()
		}
	})
}

var errDialPanicked = errors.New("dialing failed (an internal error, logged with its stack)")

// dial sends the INVITE and follows it: Ringing, Up, or a failure cause.
func (ch *Channel) dial(target string, timeout time.Duration, caller *Channel) {
	ctx, cancel := context.WithCancel(context.Background())
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), timeout)
	}
	ch.mu.Lock()
	ch.dialCancel = cancel
	callerID := ch.caller // SetVar(CALLERID(...)) writes it
	ch.mu.Unlock()
	defer cancel()
	offer, err := sdp.Offer(ch.local, ch.offerCodecs(), ch.m.opts.DTMFType)
	if err != nil {
		ch.hangup(CauseFailure, true)
		return
	}
	dialEvent := func(status string) {
		ch.mu.Lock()
		ev := &DialEvent{eventBase: ch.m.base("Dial"), Peer: ch.jsonLocked(), Dialstring: target, Dialstatus: status}
		ch.publishLocked(ev)
		ch.mu.Unlock()
	}
	dialEvent("")
	type result struct {
		out *sip.OutDialog
		err error
	}
	results := make(chan result, 1)
	opts := sip.DialOptions{
		Target:   target,
		FromUser: nonEmpty(callerID.Number, "tapedeck"),
		FromName: callerID.Name,
		Offer:    offer,
		Username: ch.dialUser,
		Password: ch.dialPassword,
		OnProvisional: func(code int, reason string, body []byte) {
			if code == 180 || code == 183 {
				ch.mu.Lock()
				ch.setStateLocked(StateRinging)
				ch.mu.Unlock()
				if len(body) > 0 {
					ch.applyAnswer(body)
				}
				if ch.dialHook != nil {
					ch.dialHook(code, len(body) > 0)
				}
			}
		},
	}
	go func() {
		// (A panic in the SIP dialer fails this call as any dial error.)
		defer contain.Recover(ch.log, "dial", func() { results <- result{nil, errDialPanicked} })
		out, err := ch.m.opts.Dialer.Dial(ctx, opts)
		results <- result{out, err}
	}()
	var out *sip.OutDialog

	select {
	case r := <-results:
		out, err = r.out, r.err
	case <-ctx.Done():
		// Timed out or hung up while dialing. A CANCEL needs a provisional
		// response first; the transaction winds down in the background, and
		// a late answer is hung up at once.
		err = ctx.Err()
		go func() {
			if r := <-results; r.out != nil {
				bye, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = r.out.Hangup(bye)
			}
		}()
	}
	if err != nil {
		cause := CauseNoUserResponse
		var rej *sip.RejectedError
		switch {
		case errors.As(err, &rej):
			cause = sipToCause(rej.Code)
		case errors.Is(err, context.DeadlineExceeded):
			cause = CauseNoAnswer
		case errors.Is(err, context.Canceled):
			cause = CauseNormalClearing
		case errors.Is(err, errDialPanicked):
			cause = CauseFailure
		}
		ch.log.Info("outbound call failed", "target", target, "cause", cause, "err", err)
		dialEvent(dialStatus(cause))
		if ch.dialHook != nil {
			code := 500
			switch {
			case rej != nil:
				code = rej.Code
			case errors.Is(err, context.DeadlineExceeded):
				code = 408
			case errors.Is(err, context.Canceled):
				code = 487
			}
			ch.dialHook(code, false)
		}
		ch.hangup(cause, true)
		return
	}
	ch.mu.Lock()
	ch.out = out
	ch.callID = out.CallID()
	ch.mu.Unlock()
	out.SetHandler(ch)
	ch.applyAnswer(out.Answer())
	// Asterisk's order: the channel goes Up when the answer is read, then
	// the dial reports ANSWER, then the channel enters the application.
	ch.mu.Lock()
	ch.setStateLocked(StateUp)
	ch.mu.Unlock()
	dialEvent("ANSWER")
	if ch.dialHook != nil {
		ch.dialHook(200, true)
	}
	if o := ch.originate; o != nil {
		ch.afterAnswer(o)
	}
}

// applyAnswer takes the far end's SDP answer (183 or 200).
func (ch *Channel) applyAnswer(body []byte) {
	m, err := sdp.Parse(body)
	if err != nil {
		ch.log.Warn("outbound call: unusable SDP answer", "err", err)
		return
	}
	c, err := sdp.Negotiate(m, ch.offerCodecs())
	if err != nil {
		ch.log.Warn("outbound call: no common codec in answer", "err", err)
		return
	}
	ch.mu.Lock()
	ch.remote, ch.choice = m, c
	ch.mu.Unlock()
	ch.updateMedia(m, c)
}

// afterAnswer runs what the originate asked for once the callee answered.
func (ch *Channel) afterAnswer(o *OriginateOptions) {
	if o.App != "" {
		// Stasis runs where the channel is, after AppDial2: no
		// ChannelDialplan, the location does not change.
		ch.execStasis(o.App, o.AppArgs)
		return
	}
	if o.Controlled && o.Extension == "" {
		return
	}
	route, app, err := ch.m.dialplan().MatchIn(nonEmpty(o.Context, "default"), o.Extension)
	if err == nil && max(o.Priority, 1) != 1 {
		err = errf(ErrNotFound, "no priority %d", o.Priority) // a route runs one application, at priority 1
	}
	var application *Application
	var inv *Invocation
	if err == nil {
		application, _ = LookupApp(app.Name)
		inv = &Invocation{Args: app.Args, Route: route, Log: ch.log.With("exten", o.Extension), Calls: ch.m}
	}
	if application == nil || !application.OnOriginate || !admitOriginated(application, inv) {
		ch.log.Warn("originate: extension has no usable route; hanging up", "exten", o.Extension)
		ch.hangup(CauseNormalClearing, false)
		return
	}
	ch.mu.Lock()
	ch.setDialplanLocked(DialplanCEP{Context: nonEmpty(o.Context, "default"), Exten: o.Extension, Priority: max(o.Priority, 1), AppName: app.Name, AppData: app.Data()})
	ch.mu.Unlock()
	application.start(ch, inv)
}

// admitOriginated asks the application whether it takes an answered
// originated channel; its reasons, worded for declining an incoming call,
// are not logged: the caller logs that the route is unusable.
func admitOriginated(a *Application, inv *Invocation) bool {
	if a.Admit == nil {
		return true
	}
	log := inv.Log
	inv.Log = slog.New(slog.DiscardHandler)
	defer func() { inv.Log = log }()
	return a.Admit(inv) == nil
}

// asteriskFormats are the format names Asterisk knows; of these tapedeck
// speaks ulaw and alaw.
var asteriskFormats = map[string]string{
	"ulaw": "PCMU", "alaw": "PCMA",
	"g723": "", "gsm": "", "g726": "", "g726aal2": "", "adpcm": "", "slin": "", "slin12": "", "slin16": "",
	"slin24": "", "slin32": "", "slin44": "", "slin48": "", "slin96": "", "slin192": "", "lpc10": "", "g729": "",
	"speex": "", "speex16": "", "speex32": "", "ilbc": "", "g722": "", "siren7": "", "siren14": "", "testlaw": "",
	"g719": "", "opus": "", "jpeg": "", "png": "", "h261": "", "h263": "", "h263p": "", "h264": "", "h265": "",
	"mpeg4": "", "vp8": "", "vp9": "", "red": "", "t140": "", "t38": "", "silk8": "", "silk12": "", "silk16": "",
	"silk24": "", "codec2": "",
}

// KnownFormat reports whether Asterisk knows a media format name (ulaw,
// slin16, ...): ARI's recorder_format and announcer_format must be one.
func KnownFormat(name string) bool {
	_, ok := asteriskFormats[name]
	return ok
}

// formatCodecs turns an originate's formats into the codecs to offer, as
// Asterisk's originate reads them: a name Asterisk does not know is 400,
// formats with an originator are 400; names tapedeck does not speak are
// left out, and a list with none it speaks is 400.
func (m *Manager) formatCodecs(o OriginateOptions) ([]string, error) {
	if len(o.Formats) == 0 {
		return nil, nil
	}
	if o.Originator != "" {
		return nil, errf(ErrInvalidArgument, "Originator and formats can't both be specified")
	}
	var out []string
	for _, f := range o.Formats {
		f = strings.TrimSpace(f)
		codec, known := asteriskFormats[f]
		if !known {
			return nil, errf(ErrInvalidArgument, "Provided format (%s) was not found", f)
		}
		if codec != "" && slices.Contains(m.opts.Codecs, codec) && !slices.Contains(out, codec) {
			out = append(out, codec)
		}
	}
	if len(out) == 0 {
		return nil, errf(ErrInvalidArgument, "None of the formats %s can be used (tapedeck: ulaw, alaw)", strings.Join(o.Formats, ","))
	}
	return out, nil
}

// offerCodecs are the codecs an outbound leg offers and accepts.
func (ch *Channel) offerCodecs() []string {
	if len(ch.codecs) > 0 {
		return ch.codecs
	}
	return ch.m.opts.Codecs
}
