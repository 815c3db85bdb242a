package call

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// FeatureCodes are the PBX's feature extensions (Wazo's
// /extensions/features), offered by a Directory that has them.
type FeatureCodes interface {
	// FeatureByExten is the name of the enabled feature dialled as exten
	// ("callrecord" for *26); ErrNoFeature when none, or it is disabled.
	FeatureByExten(ctx context.Context, exten string) (string, error)
	// ToggleCallRecord flips the user's four call_record_*_enabled flags
	// (all on unless all were on) and returns the new state.
	ToggleCallRecord(ctx context.Context, userUUID string) (bool, error)
}

// ErrNoFeature: no enabled feature has that extension.
var ErrNoFeature = errors.New("no such feature")

// FeatureCallRecord is the feature that toggles a user's call recording.
const FeatureCallRecord = "callrecord"

// Tones confirming *26: two high beeps when recording is now on, one low
// tone when off.
const (
	toneRecordOn  = "tone:!1400/200,!0/100,!1400/200"
	toneRecordOff = "tone:!400/600"
)

// featureRoute is the route of a feature code, when exten is one.
func (m *Manager) featureApp(ctx context.Context, exten string) (string, bool) {
	fc, ok := m.opts.Directory.(FeatureCodes)
	if !ok {
		return "", false
	}
	name, err := fc.FeatureByExten(ctx, exten)
	if err != nil {
		if !errors.Is(err, ErrNoFeature) {
			m.log.Error("feature codes lookup failed", "exten", exten, "err", err)
		}
		return "", false
	}
	switch name {
	case FeatureCallRecord:
		return callRecordToggleApp.Name, true
	}
	return "", false
}

// CallRecordToggle is what a user's *26 runs: it flips the caller's call
// recording, confirms it with a tone and hangs up.
var callRecordToggleApp = Application{
	Name:         "CallRecordToggle",
	Authenticate: true,
	Check: func(args []string, _ CheckEnv) error {
		if len(args) > 0 {
			return fmt.Errorf("%d arguments: CallRecordToggle takes none", len(args))
		}
		return nil
	},
	Admit: func(inv *Invocation) *Decline {
		if _, ok := inv.manager().opts.Directory.(FeatureCodes); !ok {
			return &Decline{404, "Not Found"}
		}
		return nil
	},
	Run: func(inv *Invocation) { go inv.ch.runCallRecordToggle(inv) },
}

func (ch *Channel) runCallRecordToggle(inv *Invocation) {
	m := ch.m
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u, err := m.opts.Directory.UserBySIPUsername(ctx, inv.CallerUser)
	if err != nil {
		inv.Log.Warn("*26: the caller is no user", "sip_username", inv.CallerUser, "err", err)
		ch.hangup(CauseUnallocated, false)
		return
	}
	on, err := m.opts.Directory.(FeatureCodes).ToggleCallRecord(ctx, u.UUID)
	if err != nil {
		inv.Log.Error("*26: toggling call recording failed", "user", u.UUID, "err", err)
		ch.hangup(CauseFailure, false)
		return
	}
	inv.Log.Info("*26: call recording toggled", "user", u.UUID, "exten", u.Exten, "enabled", on)
	if err := ch.answer(); err != nil {
		return
	}
	tone := toneRecordOff
	if on {
		tone = toneRecordOn
	}
	if p, err := ch.play(PlayOptions{Media: []string{tone}}); err == nil {
		select {
		case <-p.Done():
		case <-ch.done:
			return
		case <-time.After(5 * time.Second):
		}
	}
	ch.hangup(CauseNormalClearing, false)
}

// onlineRecorder is the *3 detector of one party of a Dial: a control tap
// that consumes "*3" (start and end events of both digits), so the other
// party neither hears nor receives them, and starts or stops an
// on-demand recording of the bridge.
type onlineRecorder struct {
	NoOpTap
	m     *Manager
	ch    *Channel // the party that dials *3
	peer  *Channel
	br    *Bridge
	since time.Time // when '*' started; zero: not after a '*'
	// passing is the digit after a '*' that did not make *3, held until
	// it ends to be sent after the '*'.
	passing rune

	mu  sync.Mutex
	rec *LiveRecording
}

// starWindow is how long after '*' a '3' makes the feature code.
const starWindow = 3 * time.Second

// Digit implements Tap (on the media path: nothing blocks here).
func (o *onlineRecorder) Digit(d Digit) bool {
	now := o.m.now()
	if o.passing != 0 {
		// The digit after a '*' that was not *3: the peer gets both, in
		// order, from one goroutine.
		if d.Digit == o.passing && d.End {
			o.passing = 0
			go func() {
				o.peer.sendDigit(Digit{Digit: '*', DurationMs: 100, End: true})
				o.peer.sendDigit(d)
			}()
		}
		return true
	}
	switch {
	case d.Digit == '*':
		if !d.End {
			o.since = now
		}
		return true
	case d.Digit == '3' && !o.since.IsZero() && now.Sub(o.since) < starWindow:
		if d.End {
			o.since = time.Time{}
			go o.toggle()
		}
		return true
	case !o.since.IsZero() && !d.End:
		o.since = time.Time{}
		o.passing = d.Digit
		return true
	}
	return false
}

// toggle starts or stops the on-demand recording, named
// auto-<timestamp>-<TOUCH_MIXMONITOR>.<TOUCH_MIXMONITOR_FORMAT or wav>
// from the channel's variables.
func (o *onlineRecorder) toggle() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.rec != nil {
		o.rec.finish(RecDone)
		o.ch.log.Info("*3: on-demand recording stopped", "name", o.rec.name)
		o.rec = nil
		return
	}
	o.ch.mu.Lock()
	suffix, format := o.ch.vars["TOUCH_MIXMONITOR"], o.ch.vars["TOUCH_MIXMONITOR_FORMAT"]
	if suffix == "" {
		suffix = o.ch.caller.Number
	}
	o.ch.mu.Unlock()
	name := "auto-" + strconv.FormatInt(o.m.now().Unix(), 10) + "-" + suffix
	r, err := o.br.record(RecordOptions{Name: name, Format: nonEmpty(format, "wav"), IfExists: "fail"}, false, "policy")
	if err != nil {
		o.ch.log.Warn("*3: on-demand recording not started", "name", name, "err", err)
		return
	}
	o.rec = r
	o.ch.log.Info("*3: on-demand recording started", "name", name, "format", nonEmpty(format, "wav"))
}
