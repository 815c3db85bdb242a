package call

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	rtpsess "github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/sdp"
	"github.com/tapedeck/tapedeck/internal/sip"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// Channel is one call leg.
type Channel struct {
	// First, what the media path reads for each packet (OnAudio), in one
	// cache line: solo, the recording that is the only tap of the
	// channel's received audio, or part, the bridge participant's tap that
	// is (setTapsLocked; nil otherwise), the session, the decode buffer
	// and the mute.
	solo   atomic.Pointer[LiveRecording]
	part   atomic.Pointer[participantTap]
	media  Media
	pcm    []int16 // the media path's buffer, with frame (reader goroutine only)
	muteIn atomic.Bool

	m *Manager
	// log carries the channel's id, SIP Call-ID and CallSid.
	log *slog.Logger
	// callSid is the catalog's id of the call (shared by its legs) and
	// accountSid the account that owns its recordings.
	callSid    string
	accountSid string
	serial     uint64
	id, name   string
	// sources are the event sources of the channel's events: channel:<id>
	// and, for a SIP channel, its endpoint (endpoint:PJSIP/<user>) — in
	// Asterisk chan_pjsip adds the channel to its endpoint, whose topic
	// then carries the channel's messages (set at creation; read only).
	sources []string
	// endpoint is the SIP endpoint (user) whose channels this one is
	// listed with (endpointOf; set at creation; read only).
	endpoint string
	created  time.Time
	callID   string
	caller   CallerID
	language string
	dialplan DialplanCEP
	dialog   Dialog // inbound legs
	local    sdp.Local
	done     chan struct{}
	ops      chan func()
	// opsRunning: a runOps goroutine is running the queued ops (guarded by
	// opsMu); there is none while nothing is queued.
	opsMu      sync.Mutex
	opsRunning bool
	// taps see the channel's received audio and digits (copy on write;
	// tap.go).
	taps atomic.Pointer[[]*tapEntry]
	// sentTaps see the audio the channel sends (copy on write).
	sentTaps atomic.Pointer[[]*tapEntry]
	// frame is the media path's frame, with pcm (reader goroutine only).
	frame   Frame
	dtmfOut sync.Mutex // serializes the digits sent (ARI, bridge): one RFC 4733 event at a time
	// answering serializes answers: a second answer (two recordings
	// started at once each answer) waits for the first's 200 OK and finds
	// the channel Up, instead of sending another final response.
	answering sync.Mutex
	muteOut   atomic.Bool
	// outBuf is the encode buffer of the channel's ops goroutine (playback).
	outBuf []byte
	// outPCMA is set when the negotiated codec is PCMA.
	outPCMA atomic.Bool
	// watch is the RTP watchdog's state (watchdog.go; its goroutine only).
	watch watchState
	// bridgeOverlay, when set, takes playback frames meant for this channel
	// while it is in a bridge.
	bridgeOverlay atomic.Pointer[func([]int16)]

	mu        sync.Mutex // guards the fields below; events are published under it
	state     State
	connected CallerID
	vars      map[string]string
	app       string
	args      []string
	inStasis  bool
	hangingUp bool
	choice    sdp.Choice
	remote    *sdp.Media
	held      bool // held by the peer (re-INVITE sendonly/inactive)
	// answeredAt is when the channel went Up (zero: never answered).
	answeredAt time.Time
	silence    chan struct{}

	// bridge is the bridge the channel is in (guarded by mu).
	bridge *Bridge
	// Outbound legs.
	out        *sip.OutDialog
	originate  *OriginateOptions
	dialTarget string
	dialing    bool
	dialCancel context.CancelFunc
	// dialHook, set before dial starts, hears the dial's progress: 180 or
	// 183 (sdp: with early media), 200 answered, or the final failure
	// (SIP code; 408 timed out, 487 canceled).
	dialHook func(code int, sdp bool)
	// dialUser and dialPassword answer the far end's digest challenge
	// (a trunk's credentials); set before dial starts.
	dialUser, dialPassword string
	// noCallRecord is set on channels that are not calls (snoop, external
	// media): no call record when they end.
	noCallRecord bool
	// external: an external media channel (set at creation).
	external bool
	// liveRefs counts what needs the channel's audio as it arrives (a
	// direct bridge it is in, a snoop of it streamed through one): while
	// positive, its RTP socket is read on arrival (liveref.go).
	liveMu   sync.Mutex
	liveRefs int
	// relaxed: its socket is read every writerTick, as only recordings
	// tap it (relax.go; guarded by mu).
	relaxed bool
	// talk is the TALK_DETECT detector (talkdetect.go; guarded by mu).
	talk *talkDetector
	// l16, set at creation, decodes the L16 RTP of an external media
	// channel in slin (rtpslin.go; the reader goroutine only).
	l16 *l16In
	// moh stops the music on hold playing to the channel (moh.go; guarded
	// by mu; nil: none).
	moh chan struct{}
	// onHold: startMoh was asked and no stopMoh since (Asterisk's
	// AST_FLAG_MOH), mohClass the class asked last; a playback stops the
	// music and, for a bridged channel, onHold starts it again after
	// (guarded by mu).
	onHold   bool
	mohClass string
	// codecs restrict an outbound leg's codecs (originate's formats; set
	// before it dials).
	codecs []string
	// reported are the variables shown in the channel's events
	// (channelvars; guarded by mu).
	reported []string
}

// ReportVar makes a variable (or function) part of the channel's events
// (channelvars), as setChannelVar's report_events does.
func (ch *Channel) ReportVar(name string) error {
	if name == "" {
		return errf(ErrInvalidArgument, "Variable name is required")
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if err := ch.checkLocked(false); err != nil {
		return err
	}
	for _, n := range ch.reported {
		if n == name {
			return nil
		}
	}
	ch.reported = append(ch.reported, name)
	return nil
}

// ID is the channel's unique id.
func (ch *Channel) ID() string { return ch.id }

// Done is closed when the channel is destroyed.
func (ch *Channel) Done() <-chan struct{} { return ch.done }

// JSON snapshots the channel as ARI's Channel model.
func (ch *Channel) JSON() ChannelJSON {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.jsonLocked()
}

func (ch *Channel) jsonLocked() ChannelJSON {
	return ChannelJSON{
		ID:           ChannelID(ch.id),
		ProtocolID:   ch.callID,
		Name:         ch.name,
		State:        ch.state.String(),
		Caller:       ch.caller,
		Connected:    ch.connected,
		Dialplan:     ch.dialplan,
		Creationtime: eventTime(ch.created),
		Language:     ch.language,
		Channelvars:  ch.channelvarsLocked(),
	}
}

// channelvarsLocked are the reported variables' values (nil: none).
func (ch *Channel) channelvarsLocked() map[string]string {
	if len(ch.reported) == 0 {
		return nil
	}
	out := make(map[string]string, len(ch.reported))
	for _, n := range ch.reported {
		v, ok := ch.builtinLocked(n)
		if !ok {
			v = ch.vars[n]
		}
		out[n] = v
	}
	return out
}

// publishLocked sends an event about this channel; ch.mu must be held so
// that events of one channel keep their order.
func (ch *Channel) publishLocked(body any) {
	typ := ""
	switch b := body.(type) {
	case interface{ EventType() string }:
		typ = b.EventType()
	}
	ev := eventOf(typ, body)
	ev.Sources = ch.sources
	if ch.app != "" {
		ev.Apps = []string{ch.app}
	}
	ch.m.bus.Publish(ev)
}

// publishAppLocked sends an event to the channel's application alone
// (StasisStart, StasisEnd: res_stasis's app_send), not to the channel's
// subscribers nor to those subscribed to everything.
func (ch *Channel) publishAppLocked(body any) {
	if ch.app == "" {
		return
	}
	typ := ""
	if b, ok := body.(interface{ EventType() string }); ok {
		typ = b.EventType()
	}
	ev := eventOf(typ, body)
	ev.Apps, ev.Only = []string{ch.app}, true
	ch.m.bus.Publish(ev)
}

// channelSources are a channel's event sources (Channel.sources).
func channelSources(id, name string) []string {
	if ep := endpointOf(name); ep != "" {
		return []string{"channel:" + id, "endpoint:PJSIP/" + ep}
	}
	return []string{"channel:" + id}
}

// checkStasis returns the error for operations that need the channel to be
// in an application and, if media is true, past the outbound-only states.
func (ch *Channel) checkLocked(media bool) error {
	if ch.hangingUp {
		return errChannelNotFound
	}
	if !ch.inStasis {
		return errNotInStasis
	}
	if media && ch.state.outboundOnly() {
		return errChannelState
	}
	return nil
}

func (ch *Channel) setStateLocked(s State) {
	if ch.state == s {
		return
	}
	ch.state = s
	if s == StateUp {
		ch.answeredAt = ch.m.now()
		observeSetup(ch.created, ch.answeredAt)
		ch.log.Info("call answered", "setup_ms", ch.answeredAt.Sub(ch.created).Milliseconds())
	}
	ch.publishLocked(&ChannelEvent{Base: ch.m.base("ChannelStateChange"), Channel: ch.jsonLocked()})
}

// Answer answers the call (200 OK with SDP).
func (ch *Channel) Answer() error {
	ch.mu.Lock()
	if err := ch.checkLocked(true); err != nil {
		ch.mu.Unlock()
		return err
	}
	ch.mu.Unlock()
	return ch.answer()
}

// answer answers without the Stasis checks (dialplan applications).
func (ch *Channel) answer() error {
	ch.answering.Lock()
	defer ch.answering.Unlock()
	ch.mu.Lock()
	if ch.hangingUp {
		ch.mu.Unlock()
		return errChannelNotFound
	}
	if ch.state == StateUp {
		ch.mu.Unlock()
		return nil
	}
	remote, choice := ch.remote, ch.choice
	if _, ok := ch.media.(*streamMedia); ok && ch.dialog == nil {
		// A websocket channel the application answers (chan_websocket's
		// n option): Up at once.
		ch.setStateLocked(StateUp)
		ch.mu.Unlock()
		return nil
	}
	ch.mu.Unlock()
	if ch.dialog == nil {
		return nil // outbound: the far end answers
	}

	var body []byte
	var err error
	if remote != nil {
		l := ch.local
		l.Direction = remote.Direction.Reverse()
		body, err = sdp.Answer(l, choice)
	} else {
		body, err = sdp.Offer(ch.local, ch.m.opts.Codecs, ch.m.opts.DTMFType)
	}
	if err != nil {
		return fmt.Errorf("building SDP: %w", err)
	}
	if err := ch.dialog.Answer(body); err != nil {
		return errf(ErrInvalidState, "Channel could not be answered: %v", err)
	}
	if remote == nil {
		go ch.awaitAckAnswer()
	}
	ch.mu.Lock()
	ch.setStateLocked(StateUp)
	ch.mu.Unlock()
	return nil
}

// awaitAckAnswer takes the SDP answer from the ACK of a late-offer call.
func (ch *Channel) awaitAckAnswer() {
	select {
	case <-ch.dialog.Acked():
	case <-ch.done:
		return
	}
	m, err := sdp.Parse(ch.dialog.AckBody())
	if err != nil {
		ch.log.Warn("late offer: ACK carries no usable SDP answer; hanging up", "err", err)
		ch.hangup(CauseBearerNotAvail, false)
		return
	}
	choice, err := sdp.Negotiate(m, ch.m.opts.Codecs)
	if err != nil {
		ch.log.Warn("late offer: no common codec in ACK; hanging up", "err", err)
		ch.hangup(CauseBearerNotAvail, false)
		return
	}
	ch.mu.Lock()
	ch.remote, ch.choice = m, choice
	ch.mu.Unlock()
	ch.updateMedia(m, choice)
}

func (ch *Channel) updateMedia(m *sdp.Media, c sdp.Choice) {
	ch.outPCMA.Store(c.Audio.Name == "PCMA")
	var dt uint8
	if c.HasDTMF {
		dt = c.DTMF.PayloadType
	}
	addr := m.Addr
	if m.Hold && m.Direction != sdp.RecvOnly {
		addr = nil // the peer does not want our audio
	}
	if m.Addr.IP.IsUnspecified() {
		addr = nil
	}
	ch.media.Update(addr, c.Audio.PayloadType, dt)
}

// Ring indicates ringing (180 Ringing) to the caller.
func (ch *Channel) Ring() error {
	ch.mu.Lock()
	if err := ch.checkLocked(true); err != nil {
		ch.mu.Unlock()
		return err
	}
	ch.mu.Unlock()
	return ch.ring()
}

// ring sends 180 Ringing without the Stasis checks (dialplan applications).
func (ch *Channel) ring() error {
	ch.mu.Lock()
	up := ch.state == StateUp || ch.hangingUp
	ch.mu.Unlock()
	if up || ch.dialog == nil {
		return nil
	}
	if err := ch.dialog.Progress(180, "Ringing", nil); err != nil && err != sip.ErrFinalSent {
		return fmt.Errorf("sending 180 Ringing: %w", err)
	}
	return nil
}

// RingStop stops ringing indication (nothing to send for SIP).
func (ch *Channel) RingStop() error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.checkLocked(true)
}

// Progress sends 183 Session Progress with SDP (early media).
func (ch *Channel) Progress() error {
	ch.mu.Lock()
	if err := ch.checkLocked(true); err != nil {
		ch.mu.Unlock()
		return err
	}
	ch.mu.Unlock()
	return ch.progress()
}

// progress sends 183 with SDP without the Stasis checks (dialplan
// applications).
func (ch *Channel) progress() error {
	ch.mu.Lock()
	up := ch.state == StateUp || ch.hangingUp
	remote, choice := ch.remote, ch.choice
	ch.mu.Unlock()
	if up || ch.dialog == nil {
		return nil
	}
	var body []byte
	if remote != nil {
		l := ch.local
		l.Direction = remote.Direction.Reverse()
		b, err := sdp.Answer(l, choice)
		if err != nil {
			return fmt.Errorf("building SDP: %w", err)
		}
		body = b
	}
	if err := ch.dialog.Progress(183, "Session Progress", body); err != nil && err != sip.ErrFinalSent {
		return fmt.Errorf("sending 183: %w", err)
	}
	return nil
}

// Hangup starts hanging the channel up with a cause; the teardown events
// follow asynchronously, as with Asterisk.
func (ch *Channel) Hangup(cause Cause) error {
	ch.mu.Lock()
	if ch.hangingUp {
		ch.mu.Unlock()
		return errChannelNotFound
	}
	ch.mu.Unlock()
	go ch.hangup(cause, false)
	return nil
}

// hangup tears the channel down once: ChannelHangupRequest, SIP BYE or
// final response, StasisEnd, ChannelDestroyed.
func (ch *Channel) hangup(cause Cause, remote bool) {
	ch.mu.Lock()
	if ch.hangingUp {
		ch.mu.Unlock()
		<-ch.done
		return
	}
	ch.hangingUp = true
	ch.publishLocked(&ChannelHangupRequest{Base: ch.m.base("ChannelHangupRequest"), Cause: cause, Channel: ch.jsonLocked()})
	if ch.silence != nil {
		close(ch.silence)
		ch.silence = nil
	}
	ch.stopTalkLocked()
	ch.stopMOHLocked()
	ch.mu.Unlock()

	ch.mu.Lock()
	out, dialCancel := ch.out, ch.dialCancel
	ch.mu.Unlock()
	if !remote {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		switch {
		case ch.dialog != nil:
			code, reason := CauseToSIP(cause)
			if err := ch.dialog.Hangup(ctx, code, reason); err != nil {
				ch.log.Debug("hangup signalling failed", "err", err)
			}
		case out != nil:
			if err := out.Hangup(ctx); err != nil {
				ch.log.Debug("BYE failed", "err", err)
			}
		case dialCancel != nil:
			dialCancel() // CANCEL the INVITE in progress
		}
		cancel()
	}
	ch.media.Close()
	st := ch.media.Stats()
	if st.SourceDropped > 0 {
		ch.log.Warn("dropped RTP from sources other than the call's (strict RTP)",
			"dropped", st.SourceDropped, "source", ch.media.Remote())
	}
	// The channel's live recordings stop and are stored (not canceled);
	// the call's record goes to the catalog with the first one's final
	// row, in one transaction.
	ch.mu.Lock()
	answeredAt := ch.answeredAt
	ch.mu.Unlock()
	now := ch.m.now()
	var rec *CallRecord
	var cdr *meta.CDR
	if ch.m.opts.OnCallEnded != nil && !ch.noCallRecord {
		dir := "inbound"
		if ch.dialog == nil {
			dir = "outbound-api"
		}
		rec = &CallRecord{CallSid: ch.callSid, AccountSid: ch.accountSid, CallID: ch.callID, ChannelID: ch.id,
			From: ch.caller.Number, To: ch.dialplan.Exten, Direction: dir, Status: callStatus(!answeredAt.IsZero(), cause, remote),
			Created: ch.created, Answered: answeredAt, Ended: now, Cause: cause, RTP: st}
		c := rec.CDR()
		cdr = &c
	}
	stored := ch.finishRecordings(cdr)
	ch.mu.Lock()
	br := ch.bridge
	ch.mu.Unlock()
	if br != nil {
		br.RemoveChannel(ch)
	}

	ch.m.unlist(ch, st)
	ch.mu.Lock()
	if ch.inStasis {
		ch.publishAppLocked(&ChannelEvent{Base: ch.m.base("StasisEnd"), Channel: ch.jsonLocked()})
		ch.inStasis = false
	}
	ch.publishLocked(&ChannelDestroyed{Base: ch.m.base("ChannelDestroyed"), Cause: cause, CauseTxt: CauseText(cause), Channel: ch.jsonLocked()})
	ch.mu.Unlock()
	close(ch.done)
	ch.m.remove(ch)
	channelEnded(cause, !answeredAt.IsZero(), st)
	billsec := 0.0
	if !answeredAt.IsZero() {
		billsec = now.Sub(answeredAt).Seconds()
	}
	if rec != nil {
		rec.Stored = stored
		ch.m.opts.OnCallEnded(*rec)
	}
	ch.log.Info("channel destroyed", "cause", int(cause), "cause_txt", CauseText(cause), "remote", remote,
		"duration_s", round3(now.Sub(ch.created).Seconds()), "billsec_s", round3(billsec),
		"rtp_received", st.Received, "rtp_lost", max(st.Lost, 0), "rtp_late", st.Reordered,
		"rtp_jitter_ms", round3(st.Jitter/8), "rtp_sent", st.Sent)
}

// Ended implements sip.DialogHandler: the peer hung up or canceled.
func (ch *Channel) Ended(reason sip.EndReason) {
	cause := CauseNormalClearing
	remote := true
	if reason == sip.EndNoAck {
		remote = false // we still owe the peer a BYE
	}
	if reason == sip.EndSessionExpired {
		cause = CauseTimerExpiry // the session timer sent the BYE
	}
	ch.hangup(cause, remote)
}

// Reinvite implements sip.DialogHandler: a re-INVITE (hold, unhold, new
// address or codec) never breaks the call; a bad offer is refused and the
// old session kept.
func (ch *Channel) Reinvite(offer []byte) (int, []byte) {
	ch.mu.Lock()
	ch.local.Version++
	l := ch.local
	ch.mu.Unlock()
	if len(offer) == 0 {
		// Offerless re-INVITE: offer our current session again.
		body, err := sdp.Offer(l, ch.m.opts.Codecs, ch.m.opts.DTMFType)
		if err != nil {
			return 500, nil
		}
		return 200, body
	}
	m, err := sdp.Parse(offer)
	if err != nil {
		if errorsIs(err, sdp.ErrMalformed) {
			return 400, nil
		}
		return 488, nil
	}
	choice, err := sdp.Negotiate(m, ch.m.opts.Codecs)
	if err != nil {
		return 488, nil
	}
	l.Direction = m.Direction.Reverse()
	body, err := sdp.Answer(l, choice)
	if err != nil {
		return 500, nil
	}
	ch.applyRemote(m, choice)
	return 200, body
}

// ReinviteAnswer implements sip.LateAnswerHandler: the answer an ACK
// carries after an offerless re-INVITE (our 200 offered the current
// session) is applied like a re-INVITE's offer: new address, codec,
// hold or unhold. An answer that cannot be used keeps the session as it
// was (an ACK cannot be refused).
func (ch *Channel) ReinviteAnswer(answer []byte) {
	m, err := sdp.Parse(answer)
	if err != nil {
		ch.log.Warn("re-INVITE answer in the ACK not usable; session unchanged", "err", err)
		return
	}
	choice, err := sdp.Negotiate(m, ch.m.opts.Codecs)
	if err != nil {
		ch.log.Warn("re-INVITE answer in the ACK has no codec of ours; session unchanged", "err", err)
		return
	}
	ch.applyRemote(m, choice)
}

// applyRemote switches the media to the peer's session description m
// (offer or answer) and publishes ChannelHold/ChannelUnhold when the
// peer's hold state changed.
func (ch *Channel) applyRemote(m *sdp.Media, choice sdp.Choice) {
	ch.updateMedia(m, choice)
	ch.mu.Lock()
	ch.remote, ch.choice = m, choice
	wasHeld := ch.held
	ch.held = m.Hold
	if !ch.hangingUp {
		switch {
		case m.Hold && !wasHeld:
			ch.publishLocked(&ChannelHold{Base: ch.m.base("ChannelHold"), Channel: ch.jsonLocked()})
		case !m.Hold && wasHeld:
			ch.publishLocked(&ChannelEvent{Base: ch.m.base("ChannelUnhold"), Channel: ch.jsonLocked()})
		}
	}
	ch.mu.Unlock()
}

// OnDTMF implements rtp.Handler: the digit goes through the tap chain, and
// unless a tap consumed it its end reaches the application.
func (ch *Channel) OnDTMF(digit rune, durationMs int, end bool) {
	if ch.digitTaps(Digit{Digit: digit, DurationMs: durationMs, End: end}) || !end {
		return
	}
	ch.mu.Lock()
	if !ch.hangingUp {
		ch.publishLocked(&ChannelDtmfReceived{Base: ch.m.base("ChannelDtmfReceived"), Digit: string(digit), DurationMs: durationMs, Channel: ch.jsonLocked()})
	}
	ch.mu.Unlock()
}

// runOps runs queued media operations of this channel one after another,
// until none is left or the channel is gone (later ops are not run). It
// runs only while ops are queued: a call that queues none (a recorded call
// on the dialplan) has no goroutine waiting for them.
func (ch *Channel) runOps() {
	for {
		select {
		case <-ch.done:
			return // opsRunning stays set: no op runs after the hangup
		default:
		}
		select {
		case op := <-ch.ops:
			op()
			continue
		default:
		}
		ch.opsMu.Lock()
		if len(ch.ops) == 0 {
			ch.opsRunning = false
			ch.opsMu.Unlock()
			return
		}
		ch.opsMu.Unlock()
	}
}

// enqueue queues op after the channel's other ops and starts runOps unless
// it is running.
func (ch *Channel) enqueue(op func()) error {
	select {
	case ch.ops <- op:
	default:
		return errf(ErrConflict, "Too many queued operations on channel")
	}
	ch.opsMu.Lock()
	start := !ch.opsRunning
	ch.opsRunning = true
	ch.opsMu.Unlock()
	if start {
		go ch.runOps()
	}
	return nil
}

// SendDTMF sends digits as RFC 4733 events: before, between, duration and
// after are in milliseconds; ',' and 'w' pause 500 ms.
func (ch *Channel) SendDTMF(digits string, before, between, duration, after int) error {
	if err := checkDTMF(digits, before, between, after); err != nil {
		return err
	}
	ch.mu.Lock()
	err := ch.checkLocked(true)
	ch.mu.Unlock()
	if err != nil {
		return err
	}
	return ch.sendDTMF(digits, before, between, duration, after)
}

// checkDTMF checks SendDTMF's digits and timings.
func checkDTMF(digits string, before, between, after int) error {
	if digits == "" {
		return errf(ErrInvalidArgument, "DTMF is required")
	}
	for _, r := range digits {
		if !strings.ContainsRune("0123456789*#ABCDabcd,w", r) {
			return errf(ErrInvalidArgument, "Invalid DTMF digit %q", r)
		}
	}
	if between < 0 || before < 0 || after < 0 {
		return errf(ErrInvalidArgument, "DTMF timings must not be negative")
	}
	return nil
}

// sendDTMF queues the digits without the Stasis check (third-party
// control); the arguments are checked as in SendDTMF.
func (ch *Channel) sendDTMF(digits string, before, between, duration, after int) error {
	if err := checkDTMF(digits, before, between, after); err != nil {
		return err
	}
	if duration <= 0 {
		duration = 100
	}
	ch.mu.Lock()
	gone, outOnly := ch.hangingUp, ch.state.outboundOnly()
	ch.mu.Unlock()
	if gone {
		return errChannelNotFound
	}
	if outOnly {
		return errChannelState
	}
	return ch.enqueue(func() {
		if !ch.sleep(time.Duration(before) * time.Millisecond) {
			return
		}
		for i, r := range digits {
			if r == ',' || r == 'w' {
				if !ch.sleep(500 * time.Millisecond) {
					return
				}
				continue
			}
			if err := ch.sendOneDigit(r, time.Duration(duration)*time.Millisecond); err != nil {
				ch.log.Warn("sending DTMF failed", "err", err)
				return
			}
			if i < len(digits)-1 && !ch.sleep(time.Duration(between)*time.Millisecond) {
				return
			}
		}
		ch.sleep(time.Duration(after) * time.Millisecond)
	})
}

// sleep waits d unless the channel goes away; it reports whether to go on.
func (ch *Channel) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := ch.m.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ch.done:
		return false
	}
}

// Mute mutes audio in a direction: "in" (from the caller), "out" (to the
// caller) or "both".
func (ch *Channel) Mute(direction string, on bool) error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if err := ch.checkLocked(true); err != nil {
		return err
	}
	switch direction {
	case "", "both":
		ch.muteIn.Store(on)
		ch.muteOut.Store(on)
	case "in":
		ch.muteIn.Store(on)
	case "out":
		ch.muteOut.Store(on)
	default:
		return errf(ErrInvalidArgument, "Invalid direction specified")
	}
	return nil
}

// Muted reports the mute state.
func (ch *Channel) Muted() (in, out bool) {
	return ch.muteIn.Load(), ch.muteOut.Load()
}

// Hold places the channel on hold (ChannelHold) or takes it off.
func (ch *Channel) Hold(on bool) error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if err := ch.checkLocked(true); err != nil {
		return err
	}
	if on {
		ch.publishLocked(&ChannelHold{Base: ch.m.base("ChannelHold"), Channel: ch.jsonLocked()})
	} else {
		ch.publishLocked(&ChannelEvent{Base: ch.m.base("ChannelUnhold"), Channel: ch.jsonLocked()})
	}
	return nil
}

// Silence starts or stops sending silence to the channel.
func (ch *Channel) Silence(on bool) error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if err := ch.checkLocked(true); err != nil {
		return err
	}
	if !on {
		if ch.silence != nil {
			close(ch.silence)
			ch.silence = nil
		}
		return nil
	}
	if ch.silence != nil {
		return nil
	}
	stop := make(chan struct{})
	ch.silence = stop
	fill := byte(0xFF) // µ-law silence
	if ch.choice.Audio.Name == "PCMA" {
		fill = 0xD5
	}
	go ch.sendSilence(stop, fill)
	return nil
}

func (ch *Channel) sendSilence(stop chan struct{}, fill byte) {
	frame := make([]byte, 160)
	for i := range frame {
		frame[i] = fill
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ch.done:
			return
		case <-t.C:
			if !ch.muteOut.Load() {
				ch.tapSent(silence20ms[:])
				_ = ch.media.WriteAudio(frame, 160)
			}
		}
	}
}

// builtin channel variables and dialplan functions readable through ARI.
func (ch *Channel) builtinLocked(name string) (string, bool) {
	switch name {
	case "CALLERID(num)", "CALLERID(number)":
		return ch.caller.Number, true
	case "CALLERID(name)":
		return ch.caller.Name, true
	case "CHANNEL(name)":
		return ch.name, true
	case "CHANNEL(uniqueid)", "UNIQUEID":
		return ch.id, true
	case "CHANNEL(language)":
		return ch.language, true
	case "EXTEN":
		return ch.dialplan.Exten, true
	case "CONTEXT":
		return ch.dialplan.Context, true
	case "CHANNEL(pjsip,call-id)":
		return ch.callID, true
	case "CALLSID":
		return ch.callSid, true
	}
	return "", false
}

// GetVar reads a channel variable.
func (ch *Channel) GetVar(name string) (string, error) {
	if name == "" {
		return "", errf(ErrInvalidArgument, "Variable name is required")
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if err := ch.checkLocked(false); err != nil {
		return "", err
	}
	if v, ok := ch.builtinLocked(name); ok {
		return v, nil
	}
	v, ok := ch.vars[name]
	if !ok {
		return "", errf(ErrVariableNotFound, "Provided variable was not found")
	}
	return v, nil
}

// SetVar sets (or, with unset, removes) a channel variable and publishes
// ChannelVarset.
func (ch *Channel) SetVar(name, value string, unset bool) error {
	if name == "" {
		return errf(ErrInvalidArgument, "Variable name is required")
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if err := ch.checkLocked(false); err != nil {
		return err
	}
	switch name {
	case "CALLERID(num)", "CALLERID(number)", "CALLERID(name)":
		// A function, not a variable: ChannelCallerId, not ChannelVarset
		// (as Asterisk).
		if name == "CALLERID(name)" {
			ch.caller.Name = value
		} else {
			ch.caller.Number = value
		}
		ch.publishLocked(&ChannelCallerID{Base: ch.m.base("ChannelCallerId"), CallerPresentationTxt: "Presentation Allowed, Not Screened", Channel: ch.jsonLocked()})
		return nil
	case "CHANNEL(language)":
		ch.language = value // a function: no event
		return nil
	case "TALK_DETECT(set)", "TALK_DETECT(remove)":
		// A function, not a variable: no ChannelVarset (as Asterisk).
		return ch.talkDetectLocked(strings.TrimSuffix(strings.TrimPrefix(name, "TALK_DETECT("), ")"), value)
	default:
		if strings.ContainsAny(name, "()") {
			return errf(ErrInvalidArgument, "Unsupported dialplan function %s", name)
		}
		if unset {
			delete(ch.vars, name)
		} else {
			ch.vars[name] = value
		}
	}
	j := ch.jsonLocked()
	ch.publishLocked(&ChannelVarset{Base: ch.m.base("ChannelVarset"), Variable: name, Value: value, Channel: &j})
	return nil
}

// RTPStats returns the media statistics.
func (ch *Channel) RTPStats() rtpsess.Stats {
	ch.media.Flush() // count what has arrived, not only what has been read
	return ch.media.Stats()
}

// MediaAddrs returns the local and current remote RTP addresses.
func (ch *Channel) MediaAddrs() (local, remote *net.UDPAddr) {
	return ch.media.LocalAddr(), ch.media.Remote()
}
