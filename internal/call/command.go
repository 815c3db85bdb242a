package call

import (
	"context"
	"strings"
	"time"

	"github.com/tapedeck/tapedeck/internal/catalog"
)

// Third-party call control: what the command API (Ozeki's HTTP API) and
// OzML scripts do to any call, whatever application it is in. Unlike the
// ARI operations these do not require the channel to be in a Stasis
// application; they go through the same channel code and events.

// StopFinishDigit is the StopReason of a call recording ended by one of
// its finish digits.
const StopFinishDigit = "finish-digit"

// Why a call recording ended (CallRecordResult.Reason).
const (
	EndHangup   = "hangup"  // the call ended
	EndStopped  = "stopped" // stopped by a command
	EndDuration = "duration"
	EndSilence  = "inactivity"
	EndDigit    = "finish-digit"
	EndFailed   = "failed"
	// EndInterrupted: its node stopped or was lost while it recorded
	// (only a settled catalog row has it).
	EndInterrupted = catalog.EndInterrupted
)

// maxDurationGrace: how long after its MaxDuration of wall-clock time a
// call recording is stopped when its audio has not reached the limit.
const maxDurationGrace = 500 * time.Millisecond

// CallRecordOptions are a call recording's parameters: RecordOptions plus
// the digits that end it and what to run when it has ended.
type CallRecordOptions struct {
	RecordOptions
	// FinishDigits: a digit among these (received as RFC 4733) ends the
	// recording; the call goes on. The digit still reaches the call.
	FinishDigits string
	// OnFinish, if set, runs once (on its own goroutine) when the
	// recording has ended in any way.
	OnFinish func(CallRecordResult)
	// Stereo records a bridged call with each party on its own channel
	// (the bridge's stereo recording); a call that is not bridged with
	// Track TrackBoth gets what its party sends on the first channel and
	// what tapedeck sends it on the second; other tracks answer
	// ErrUnsupported.
	Stereo bool
	// RowFirst: the recording's first catalog row (in progress, with its
	// Callback) is written before it starts and RecordCall returns, so a
	// crash after RecordCall cannot lose the notification of its end; a
	// row the catalog refuses is RecordCall's error (ErrUnavailable) and
	// nothing records. Without it the row is written once the file is open.
	RowFirst bool
}

// CallLegs returns the account and the live channels of a call (its
// CallSid, shared by the legs), bridged ones first; none when the call is
// unknown or has ended.
func (m *Manager) CallLegs(callSid string) (accountSid string, ids []ChannelID) {
	if callSid == "" {
		return "", nil
	}
	m.mu.RLock()
	var bridged, alone []ChannelID
	for _, ch := range m.chans {
		if ch.callSid != callSid {
			continue
		}
		ch.mu.Lock()
		br, gone := ch.bridge, ch.hangingUp
		ch.mu.Unlock()
		if gone {
			continue
		}
		accountSid = ch.accountSid
		if br != nil {
			bridged = append(bridged, ChannelID(ch.id))
		} else {
			alone = append(alone, ChannelID(ch.id))
		}
	}
	m.mu.RUnlock()
	return accountSid, append(bridged, alone...)
}

// CallRecordResult is how a call recording ended.
type CallRecordResult struct {
	Recording LiveRecordingJSON
	ChannelID ChannelID
	// Path is the file (with extension).
	Path string
	// Reason is one of the End* constants.
	Reason string
	// Began: the recording's file was opened. A canceled recording that
	// did not begin ended before it began (stopped, or its call hung up,
	// while it was queued).
	Began bool
}

// RecordCall records a call from now on: a bridged channel's bridge mix
// (both parties), or else the channel's audio. The recording ends when the
// call ends, when a limit of o is reached or a finish digit is pressed; the
// call goes on. A call not answered yet is answered by the recording, and
// RecordCall returns once the recording is attached (at most 2 s), so its
// first packet is in the file whoever answers next.
func (m *Manager) RecordCall(id ChannelID, o CallRecordOptions) (LiveRecordingJSON, error) {
	ch, err := m.channel(string(id))
	if err != nil {
		return LiveRecordingJSON{}, err
	}
	for _, d := range o.FinishDigits {
		if !strings.ContainsRune("0123456789*#ABCDabcd", d) {
			return LiveRecordingJSON{}, errf(ErrInvalidArgument, "Invalid finish digit %q", d)
		}
	}
	ch.mu.Lock()
	br, gone := ch.bridge, ch.hangingUp
	ch.mu.Unlock()
	if gone {
		return LiveRecordingJSON{}, errChannelNotFound
	}
	// A call not answered yet is answered by its recording once the
	// recording hears it; RecordCall returns then, so that whoever answers
	// next (a script's next verb) cannot answer before it and lose the
	// caller's first words.
	unanswered := ch.State() != StateUp
	var r *LiveRecording
	if br != nil && (o.Track == TrackInbound || o.Track == TrackOutbound) {
		ro := o.RecordOptions
		ro.rowFirst = o.RowFirst
		r, err = ch.record(ro, "command") // one direction of this party
	} else if br != nil {
		ro := o.RecordOptions
		ro.rowFirst = o.RowFirst
		r, err = br.record(ro, o.Stereo, "command")
	} else if o.Stereo && o.Track != TrackBoth {
		return LiveRecordingJSON{}, errf(ErrUnsupported, "A dual-channel recording of a call that is not bridged records both directions (TrackBoth)")
	} else {
		// TrackBoth: what the party sends and what it hears (prompts,
		// playbacks), aligned by time; dual puts them on two channels.
		ro := o.RecordOptions
		ro.dual, ro.rowFirst = o.Stereo, o.RowFirst
		r, err = ch.record(ro, "command")
	}
	if err != nil {
		return LiveRecordingJSON{}, err
	}
	if unanswered {
		r.waitAttached(2 * time.Second)
	}
	// The call's hangup ends the recording (EndHangup), even when its
	// bridge ends it first.
	r.mu.Lock()
	r.endCh = ch
	r.mu.Unlock()
	if o.FinishDigits != "" {
		digits := strings.ToUpper(o.FinishDigits)
		detach, ok := ch.AttachTap(DigitFunc(func(d Digit) bool {
			if d.End && strings.ContainsRune(digits, d.Digit) {
				go r.stopBy(StopFinishDigit)
			}
			return false
		}), StageControl)
		if ok {
			go func() { <-r.done; detach() }()
		}
	}
	go func() {
		// A bridge recording outlives the channel: the call recording ends
		// with the call. Its length is counted in audio; a call that sends
		// none (a muted phone) is also stopped by the clock, shortly after.
		var limit <-chan time.Time
		if o.MaxDuration > 0 {
			t := time.NewTimer(o.MaxDuration + maxDurationGrace)
			defer t.Stop()
			limit = t.C
		}
		// Silence by absence: the voice detector only hears frames that
		// arrive, so a call that sends no RTP at all (or stops sending) is
		// also watched by the clock.
		var absentTick <-chan time.Time
		var absent absenceWatch
		if o.MaxSilence > 0 {
			t := time.NewTicker(absenceTick)
			defer t.Stop()
			absentTick = t.C
		}
	wait:
		for {
			select {
			case <-ch.done:
				r.hangup.Store(true)
				r.finish(RecDone)
			case <-limit:
				r.stopBy(StopMaxDuration)
			case now := <-absentTick:
				if !absent.silent(r, now, o.MaxSilence) {
					continue
				}
				r.logger().Info("recording: no audio for its inactivity limit; stopping", "name", r.name,
					"max_silence_s", o.MaxSilence.Seconds())
				r.stopBy(StopMaxSilence)
			case <-r.done:
			}
			break wait
		}
		if o.OnFinish == nil {
			return
		}
		<-r.done
		// The reason the catalog's final row has (finish).
		res := CallRecordResult{Recording: r.JSON(), ChannelID: id, Path: r.path, Reason: r.EndReason(), Began: r.began()}
		o.OnFinish(res)
	}()
	return r.JSON(), nil
}

// absenceTick is how often a call recording with an inactivity limit looks
// for audio that does not arrive.
const absenceTick = 200 * time.Millisecond

// absenceWatch counts silence by absence for a call recording: the time
// since the recording last received audio, added to the silence the
// voice detector had counted until then.
type absenceWatch struct {
	lastWritten int64
	since       time.Time // when written last changed (or recording began)
	silBefore   time.Duration
}

// silent reports whether r has been silent (heard or absent) for limit.
func (w *absenceWatch) silent(r *LiveRecording, now time.Time, limit time.Duration) bool {
	r.mu.Lock()
	st, written := r.state, r.written
	var heard time.Duration
	if r.vad != nil {
		heard = r.vad.SilentFor()
	}
	r.mu.Unlock()
	if st != RecRecording || w.since.IsZero() || written != w.lastWritten {
		// Not recording (queued, paused): the clock starts again.
		w.lastWritten, w.since, w.silBefore = written, now, heard
		return false
	}
	return w.silBefore+now.Sub(w.since) >= limit
}

// stopBy stops the recording for a reason of its own (StopReason).
func (r *LiveRecording) stopBy(reason string) {
	r.mu.Lock()
	if r.stopReason == "" {
		r.stopReason = reason
	}
	r.mu.Unlock()
	r.Stop()
}

// PlayCall starts a playback on any call (PlayOptions.Media as for ARI).
func (m *Manager) PlayCall(id ChannelID, o PlayOptions) (PlaybackJSON, error) {
	ch, err := m.channel(string(id))
	if err != nil {
		return PlaybackJSON{}, err
	}
	p, err := ch.play(o)
	if err != nil {
		return PlaybackJSON{}, err
	}
	return p.JSON(), nil
}

// PlayDone returns a channel closed when the playback has finished (or at
// once when there is no such playback).
func (m *Manager) PlayDone(id PlaybackID) <-chan struct{} {
	p, err := m.playback(string(id))
	if err != nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return p.done
}

// SendDTMFCall sends digits on any call.
func (m *Manager) SendDTMFCall(id ChannelID, o DTMFOptions) error {
	ch, err := m.channel(string(id))
	if err != nil {
		return err
	}
	return ch.sendDTMF(o.Digits, o.Before, o.Between, o.Duration, o.After)
}

// AnswerCall answers any call that is not answered yet.
func (m *Manager) AnswerCall(id ChannelID) error {
	ch, err := m.channel(string(id))
	if err != nil {
		return err
	}
	if ch.State() == StateUp {
		return nil
	}
	return ch.answer()
}

// CallDone returns a channel closed when the call has ended (at once when
// there is no such call).
func (m *Manager) CallDone(id ChannelID) <-chan struct{} {
	ch, err := m.channel(string(id))
	if err != nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return ch.done
}

// CollectDigits gathers up to max digits received on a call (RFC 4733),
// consuming them (they reach neither the application nor a bridge): it
// returns when max digits are in, a digit of finish is pressed (not
// included), timeout passes after the last digit (or the start), ctx ends
// or the call ends (ErrChannelNotFound).
func (m *Manager) CollectDigits(ctx context.Context, id ChannelID, max int, finish string, timeout time.Duration) (string, error) {
	ch, err := m.channel(string(id))
	if err != nil {
		return "", err
	}
	if max <= 0 {
		max = 1
	}
	got := make(chan rune, 64)
	detach, ok := ch.AttachTap(DigitFunc(func(d Digit) bool {
		if d.End {
			select {
			case got <- d.Digit:
			default: // more digits than anyone reads: dropped
			}
		}
		return true
	}), StageControl)
	if !ok {
		return "", errChannelNotFound
	}
	defer detach()
	var digits []rune
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case d := <-got:
			if strings.ContainsRune(strings.ToUpper(finish), d) {
				return string(digits), nil
			}
			digits = append(digits, d)
			if len(digits) >= max {
				return string(digits), nil
			}
			t.Reset(timeout)
		case <-t.C:
			return string(digits), nil
		case <-ctx.Done():
			return string(digits), ctx.Err()
		case <-ch.done:
			return string(digits), errChannelNotFound
		}
	}
}

// ConnectCalls bridges two calls (whatever application they are in) in a
// new mixing bridge, for a Forward: each leaves it when it hangs up, and
// the bridge goes when either leaves. It returns the bridge id.
func (m *Manager) ConnectCalls(a, b ChannelID) (BridgeID, error) {
	ca, err := m.channel(string(a))
	if err != nil {
		return "", err
	}
	cb, err := m.channel(string(b))
	if err != nil {
		return "", err
	}
	br, err := m.createBridge("", "mixing", "forward")
	if err != nil {
		return "", err
	}
	for _, ch := range []*Channel{ca, cb} {
		if err := br.addChannel(ch, false, false); err != nil {
			br.Destroy()
			return "", err
		}
	}
	go func() {
		select {
		case <-ca.done:
		case <-cb.done:
		}
		br.Destroy()
	}()
	return BridgeID(br.id), nil
}
