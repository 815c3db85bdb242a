package call

// Move hands a channel in an application to another one (ARI
// POST /channels/{id}/move): StasisEnd to the application it leaves, then
// StasisStart with the new arguments to the one it enters, which must be
// registered.
func (m *Manager) Move(id ChannelID, app, appArgs string) error {
	if app == "" {
		return errf(ErrInvalidArgument, "app is required")
	}
	ch, err := m.channel(string(id))
	if err != nil {
		return err
	}
	if !m.bus.Registered(app) {
		return errf(ErrNotFound, "Stasis application %s is not registered", app)
	}
	ch.mu.Lock()
	if err := ch.checkLocked(false); err != nil {
		ch.mu.Unlock()
		return err
	}
	ch.publishLocked(&ChannelEvent{Base: m.base("StasisEnd"), Channel: ch.jsonLocked()})
	old := ch.app
	ch.inStasis = false
	ch.mu.Unlock()
	if old != app {
		m.bus.Unsubscribe(old, "channel:"+ch.id)
	}
	ch.enterStasis(app, splitArgs(appArgs))
	return nil
}
