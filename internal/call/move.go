package call

import "strings"

// ApplicationMoveFailed tells a channel's application that a move to
// another application failed: the channel stays where it is.
type ApplicationMoveFailed struct {
	eventBase
	Channel     ChannelJSON `json:"channel"`
	Destination string      `json:"destination"`
	Args        []string    `json:"args"`
}

// Move hands a channel in an application to another one (ARI
// POST /channels/{id}/move): StasisEnd to the application it leaves, then
// StasisStart with the new arguments to the one it enters. As in Asterisk
// the request is accepted whatever the destination; when no application
// of that name is registered the channel stays in its application, which
// alone is sent ApplicationMoveFailed with the destination and the
// arguments.
func (m *Manager) Move(id ChannelID, app, appArgs string) error {
	if app == "" {
		return errf(ErrInvalidArgument, "app is required")
	}
	ch, err := m.channel(string(id))
	if err != nil {
		return err
	}
	args := moveArgs(appArgs)
	ch.mu.Lock()
	if err := ch.checkLocked(false); err != nil {
		ch.mu.Unlock()
		return err
	}
	if !m.bus.Registered(app) {
		ch.log.Warn("Could not move to Stasis app '" + app + "' - not registered")
		ev := eventOf("ApplicationMoveFailed", &ApplicationMoveFailed{
			eventBase: m.base("ApplicationMoveFailed"), Channel: ch.jsonLocked(), Destination: app, Args: args,
		})
		ev.Apps, ev.Only = []string{ch.app}, true // to the application only, not to the channel's subscribers
		m.bus.Publish(ev)
		ch.mu.Unlock()
		return nil
	}
	ch.publishAppLocked(&ChannelEvent{Base: m.base("StasisEnd"), Channel: ch.jsonLocked()})
	old := ch.app
	ch.inStasis = false
	ch.mu.Unlock()
	if old != app {
		m.bus.Unsubscribe(old, "channel:"+ch.id)
	}
	ch.enterStasis(app, args)
	return nil
}

// moveArgs splits a move's appArgs as Asterisk does (strtok on commas):
// empty arguments are dropped, spaces kept.
func moveArgs(s string) []string {
	args := []string{}
	for a := range strings.SplitSeq(s, ",") {
		if a != "" {
			args = append(args, a)
		}
	}
	return args
}
