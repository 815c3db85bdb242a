package call

import (
	"log/slog"
	"strconv"

	"github.com/tapedeck/tapedeck/internal/event"
)

// ContinueOptions say where a channel leaving its application goes in the
// dialplan (ARI's continueInDialplan): empty fields keep the channel's
// current context and extension.
type ContinueOptions struct {
	Context   string
	Extension string
	Priority  int64
	Label     string
}

// ChannelDialplan reports that a channel moved to a dialplan location and
// is about to run an application there.
type ChannelDialplan struct {
	event.Base
	DialplanApp     string      `json:"dialplan_app"`
	DialplanAppData string      `json:"dialplan_app_data"`
	Channel         ChannelJSON `json:"channel"`
}

// Continue takes a channel out of its application and back to the
// dialplan, as Asterisk's continueInDialplan: StasisEnd to the
// application, which is unsubscribed, then the dialplan runs at the
// location asked for. A label must be a number (tapedeck's routes have one
// priority and no labels): any other label is not found. With no location
// at all the channel goes on at its next priority; with a context or an
// extension it starts at priority 1. A location with no route, or a
// priority past the route's one application, ends the dialplan and the
// channel hangs up, as in Asterisk.
func (m *Manager) Continue(id ChannelID, o ContinueOptions) error {
	ch, err := m.channel(string(id))
	if err != nil {
		return err
	}
	ch.mu.Lock()
	if err := ch.checkLocked(true); err != nil {
		ch.mu.Unlock()
		return err
	}
	context := nonEmpty(o.Context, ch.dialplan.Context)
	exten := nonEmpty(o.Extension, ch.dialplan.Exten)
	var pri int64
	switch {
	case o.Label != "":
		n, err := strconv.ParseInt(o.Label, 10, 64)
		if err != nil {
			ch.mu.Unlock()
			return errf(ErrNotFound, "Requested label can not be found")
		}
		if n == 0 {
			ch.mu.Unlock()
			return errf(ErrInvalidArgument, "Requested priority is illegal")
		}
		pri = n
	case o.Priority != 0:
		pri = o.Priority
	case o.Context == "" && o.Extension == "":
		pri = ch.dialplan.Priority + 1
	default:
		pri = 1
	}
	ch.publishAppLocked(&ChannelEvent{Base: m.base("StasisEnd"), Channel: ch.jsonLocked()})
	old := ch.app
	ch.inStasis = false
	ch.app, ch.args = "", nil
	ch.mu.Unlock()
	if old != "" {
		m.bus.Unsubscribe(old, "channel:"+ch.id)
	}
	ch.log.Info("channel continues in the dialplan", "context", context, "exten", exten, "priority", pri)
	go ch.runDialplan(context, exten, pri)
	return nil
}

// runDialplan runs the application of the route at context/exten/priority
// on a channel that left its application; where there is none the
// dialplan ends and the channel is hung up. The channel's application
// stays the one it left until another runs: ChannelDialplan, to those
// still subscribed to the channel (no longer the application it left),
// when the location differs.
func (ch *Channel) runDialplan(context, exten string, pri int64) {
	end := func(why string, args ...any) {
		ch.log.Info("dialplan ended: "+why, append([]any{"context", context, "exten", exten, "priority", pri}, args...)...)
		ch.mu.Lock()
		ch.dialplan.Context, ch.dialplan.Exten, ch.dialplan.Priority = context, exten, pri
		ch.mu.Unlock()
		ch.hangup(CauseNormalClearing, false)
	}
	if pri != 1 {
		end("no such priority (tapedeck routes run one application, at priority 1)")
		return
	}
	route, app, err := ch.m.dialplan().MatchIn(context, exten)
	if err != nil {
		end("no route")
		return
	}
	application, ok := LookupApp(app.Name)
	if !ok {
		end("unknown application", "app", app.Name)
		return
	}
	if application.Authenticate {
		// Its caller is authenticated when the call arrives, not here.
		end("the application needs a caller authenticated on arrival", "app", app.Name)
		return
	}
	inv := &Invocation{Args: app.Args, Route: route, Log: ch.log.With("exten", exten), Calls: ch.m}
	if application.Admit != nil {
		log := inv.Log
		inv.Log = slog.New(slog.DiscardHandler)
		no := application.Admit(inv)
		inv.Log = log
		if no != nil {
			end("the application declined the channel", "app", app.Name, "code", no.Code)
			return
		}
	}
	ch.mu.Lock()
	if ch.hangingUp {
		ch.mu.Unlock()
		return
	}
	for k, v := range route.Variables {
		ch.vars[k] = v
	}
	ch.setDialplanLocked(DialplanCEP{Context: context, Exten: exten, Priority: pri, AppName: app.Name, AppData: app.Data()})
	ch.mu.Unlock()
	application.start(ch, inv)
}
