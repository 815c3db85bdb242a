package call

import (
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/gopool"
	"github.com/tapedeck/tapedeck/internal/media/audio"
	"github.com/tapedeck/tapedeck/internal/media/mix"
	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/rtp"
)

// BridgeJSON is ARI's Bridge model.
type BridgeJSON struct {
	ID           BridgeID   `json:"id"`
	Technology   string     `json:"technology"`
	BridgeType   string     `json:"bridge_type"`
	BridgeClass  string     `json:"bridge_class"`
	Creator      string     `json:"creator"`
	Name         string     `json:"name"`
	Channels     []string   `json:"channels"`
	VideoMode    string     `json:"video_mode"`
	Creationtime event.Time `json:"creationtime"`
	// Bridgevars are the bridge variables set with report_events.
	Bridgevars map[string]string `json:"bridgevars,omitempty"`
}

// BridgeEvent is BridgeCreated or BridgeDestroyed.
type BridgeEvent struct {
	eventBase
	Bridge BridgeJSON `json:"bridge"`
}

// BridgeChannelEvent is ChannelEnteredBridge or ChannelLeftBridge.
type BridgeChannelEvent struct {
	eventBase
	Bridge  BridgeJSON  `json:"bridge"`
	Channel ChannelJSON `json:"channel"`
}

// member is a channel in a bridge with its mixer participant.
type member struct {
	ch   *Channel
	part *mix.Participant
	// overlay holds playback frames meant for this channel only.
	overlay *frameFIFO
	// tap feeds the channel's audio to part and its digits to the others.
	tap *tapEntry
	// muted: the channel joined with mute (its audio is not mixed).
	muted bool
}

// participantTap is a bridged channel's tap: its received audio goes to
// its mixer participant, and each digit that no earlier tap consumed is
// sent (RFC 4733) to the other parties, as Asterisk's bridges pass DTMF.
type participantTap struct {
	b    *Bridge
	ch   *Channel
	part *mix.Participant
	// absorb keeps the channel's digits from the others (absorbDTMF).
	absorb bool
	// out is the encode buffer of a frame forwarded directly (the
	// channel's own media goroutine: one frame at a time).
	out []byte
	// last is the party's meter in the recording that counted its last
	// packet (partyPacket; the channel's media goroutine only).
	last partyCache
}

func (t *participantTap) Audio(f *Frame) {
	if t.b.direct.Load() {
		if cap(t.out) < len(f.PCM) {
			t.out = make([]byte, len(f.PCM))
		}
		for _, mb := range *t.b.snap.Load() {
			if mb.ch != t.ch {
				mb.ch.sendBridged(f.PCM, t.out)
			}
		}
		return
	}
	t.part.Push(f.SSRC, f.Timestamp, f.PCM)
	t.count(f.SSRC, f.Seq, f.Timestamp, f.At)
}

// pushG711 is Audio for a G.711 packet (A-law when alaw) of a channel
// whose only tap this is (OnAudio): its payload is decoded straight into
// the participant's play-out buffer, which then holds what Audio of the
// decoded frame would have left there. It reports false, doing nothing,
// while the bridge forwards directly (Audio does that, decoded).
func (t *participantTap) pushG711(ssrc uint32, seq uint16, ts uint32, payload []byte, alaw bool, at time.Time) bool {
	if t.b.direct.Load() {
		return false
	}
	t.part.PushG711(ssrc, ts, payload, alaw)
	t.count(ssrc, seq, ts, at)
	return true
}

// count counts a packet for the bridge's recordings (completeness per
// party).
func (t *participantTap) count(ssrc uint32, seq uint16, ts uint32, at time.Time) {
	if p := t.b.recSnap.Load(); p != nil {
		for _, r := range *p {
			if r.br == t.b {
				r.partyPacket(t.ch, t.part, &t.last, ssrc, seq, ts, at)
			}
		}
	}
}

func (t *participantTap) Digit(d Digit) bool {
	if d.End && t.b.typ != "holding" && !t.absorb {
		for _, mb := range *t.b.snap.Load() {
			if mb.ch != t.ch {
				go mb.ch.sendDigit(d)
			}
		}
	}
	return false
}

// exchangeConnectedLocked gives the two parties of a bridge each other's
// identity as connected line, as Asterisk does when a bridge becomes a
// two-party bridge (ChannelConnectedLine for each channel whose connected
// line changed); inhibit keeps the joiner's identity from first.
func (b *Bridge) exchangeConnectedLocked(first, joiner *Channel, inhibit bool) {
	first.mu.Lock()
	firstCaller := first.caller
	first.mu.Unlock()
	joiner.mu.Lock()
	joinerCaller := joiner.caller
	if joiner.connected != firstCaller && !joiner.hangingUp {
		joiner.connected = firstCaller
		joiner.publishLocked(&ChannelEvent{Base: b.m.base("ChannelConnectedLine"), Channel: joiner.jsonLocked()})
	}
	joiner.mu.Unlock()
	if inhibit {
		return
	}
	first.mu.Lock()
	if first.connected != joinerCaller && !first.hangingUp {
		first.connected = joinerCaller
		first.publishLocked(&ChannelEvent{Base: b.m.base("ChannelConnectedLine"), Channel: first.jsonLocked()})
	}
	first.mu.Unlock()
}

// sendDigit sends a digit passed on by a bridge.
func (ch *Channel) sendDigit(d Digit) {
	select {
	case <-ch.done:
		return
	default:
	}
	dur := time.Duration(max(d.DurationMs, 40)) * time.Millisecond
	if err := ch.sendOneDigit(d.Digit, dur); err != nil {
		ch.log.Debug("passing DTMF to a bridged party failed", "err", err)
	}
}

// sendOneDigit sends one RFC 4733 event; digits from the API and from a
// bridge take turns rather than interleave their packets.
func (ch *Channel) sendOneDigit(digit rune, d time.Duration) error {
	ch.dtmfOut.Lock()
	defer ch.dtmfOut.Unlock()
	return ch.media.SendDigit(digit, d)
}

// Bridge is a mixing (or holding) bridge driven by one 20 ms clock.
type Bridge struct {
	// First, in one cache line, what a party's packet (participantTap)
	// and the clock's tick (stepper) read: m, direct, recSnap, snap, mixer
	// and outBuf.
	m *Manager
	// direct: a two-party bridge of an external media channel and a snoop
	// channel or a call (a transcription app's snoop, a voice bot talking
	// with the caller), or of two channels that are not calls: each
	// party's frames go to the other as they come, as Asterisk's
	// simple_bridge forwards them, and the mixer's clock does nothing. Off
	// while the bridge has anything to mix: a recording, a playback or
	// music on hold, a playback to one party (overlayUsed, for good), a
	// muted party, a third party (updateDirectLocked, with mu held).
	direct atomic.Bool
	// recSnap is recs for the media path (the parties' packets feed the
	// bridge recordings' counters) without b.mu.
	recSnap atomic.Pointer[[]*LiveRecording]
	// snap is the members list read by the ticker without the lock.
	snap  atomic.Pointer[[]*member]
	mixer *mix.Mixer
	// outBuf is the ticker goroutine's encode buffer.
	outBuf []byte

	id      string
	name    string
	typ     string
	created time.Time
	done    chan struct{}
	ops     chan func()

	mu        sync.Mutex // guards members, recs, destroyed, ticking; events are published under it
	members   []*member
	recs      []*LiveRecording
	destroyed bool
	ticking   bool
	clock     *rtp.Tick // the Manager's Poller drives the mixer (nil: a ticker goroutine)
	// announce carries the bridge's playbacks, music its music on hold:
	// both heard by everyone, mixed (bridge.announcer).
	announce *frameFIFO
	music    *frameFIFO
	// draining counts parties leaving the mix once their audio played out.
	draining sync.WaitGroup
	// sides are the parties of a stereo recording's left and right
	// channels: the first two to join, each until it has left the mix (a
	// channel never switches to the other party).
	sides [2]atomic.Pointer[mix.Participant]
	// moh stops the bridge's music on hold (moh.go; guarded by mu; nil:
	// none).
	moh chan struct{}
	// vars are the bridge variables, reported those shown in its events
	// (bridgevars); guarded by mu.
	vars        map[string]string
	reported    []string
	overlayUsed atomic.Bool
	// live are the channels this bridge holds read on arrival while
	// direct (liveref.go; guarded by mu).
	live []*Channel
}

// updateDirectLocked decides whether the bridge forwards directly.
func (b *Bridge) updateDirectLocked() {
	d := b.typ == "mixing" && len(b.members) == 2 && len(b.recs) == 0 && b.announce == nil && !b.overlayUsed.Load() && !b.destroyed
	if d {
		x, y := b.members[0], b.members[1]
		d = !x.muted && !y.muted && (notCall(x.ch) && notCall(y.ch) || x.ch.external || y.ch.external)
	}
	b.direct.Store(d)
	if b.clock != nil {
		// Direct, the clock has nothing to do: paused, it does not make
		// the Poller's worker wake every interval for it.
		b.clock.SetPaused(d)
	}
	b.updateLiveLocked()
}

// notCall reports whether a channel is a snoop or a stream (AudioSocket,
// WebSocket) channel.
func notCall(ch *Channel) bool {
	switch ch.media.(type) {
	case *snoopMedia, *streamMedia:
		return true
	}
	return false
}

// createBridge creates a bridge (type mixing, the default, or holding).
func (m *Manager) createBridge(id, typ, name string) (*Bridge, error) {
	switch typ {
	case "", "mixing", "dtmf_events", "proxy_media", "video_sfu", "video_single":
		typ = "mixing"
	case "holding":
	default:
		// Asterisk takes a comma list of flags; anything with holding is one.
		typ = "mixing"
	}
	if id == "" {
		id = m.nodeID(uuid.NewString())
	}
	b := &Bridge{m: m, id: id, name: name, typ: typ, created: m.now(), mixer: mix.New(), done: make(chan struct{}), ops: make(chan func(), 64), outBuf: make([]byte, 1024)}
	empty := []*member{}
	b.snap.Store(&empty)
	m.brMu.Lock()
	if _, dup := m.bridges[id]; dup {
		m.brMu.Unlock()
		return nil, errf(ErrConflict, "Bridge with id %s already exists", id)
	}
	m.bridges[id] = b
	m.brMu.Unlock()
	go b.runOps()
	b.mu.Lock()
	b.publishLocked(&BridgeEvent{eventBase: m.base("BridgeCreated"), Bridge: b.jsonLocked()})
	b.mu.Unlock()
	return b, nil
}

// bridge finds a bridge.
func (m *Manager) bridge(id string) (*Bridge, error) {
	m.brMu.Lock()
	defer m.brMu.Unlock()
	b := m.bridges[id]
	if b == nil {
		return nil, errf(ErrBridgeNotFound, "Bridge not found")
	}
	return b, nil
}

// Bridges lists the bridges, oldest first.
func (m *Manager) Bridges() []BridgeJSON {
	m.brMu.Lock()
	list := make([]*Bridge, 0, len(m.bridges))
	for _, b := range m.bridges {
		list = append(list, b)
	}
	m.brMu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].created.Before(list[j].created) })
	out := make([]BridgeJSON, len(list))
	for i, b := range list {
		out[i] = b.JSON()
	}
	return out
}

// ID is the bridge id.
func (b *Bridge) ID() string { return b.id }

// JSON snapshots the bridge.
func (b *Bridge) JSON() BridgeJSON {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.jsonLocked()
}

func (b *Bridge) jsonLocked() BridgeJSON {
	tech := "simple_bridge"
	if len(b.members) > 2 || len(b.recs) > 0 {
		tech = "softmix"
	}
	if b.typ == "holding" {
		tech = "holding_bridge"
	}
	j := BridgeJSON{ID: BridgeID(b.id), Technology: tech, BridgeType: b.typ, BridgeClass: "stasis", Creator: "Stasis",
		Name: b.name, Channels: []string{}, VideoMode: "none", Creationtime: event.Time(b.created)}
	for _, mb := range b.members {
		j.Channels = append(j.Channels, mb.ch.id)
	}
	if len(b.reported) > 0 {
		j.Bridgevars = make(map[string]string, len(b.reported))
		for _, n := range b.reported {
			j.Bridgevars[n] = b.vars[n]
		}
	}
	return j
}

// Var reads a bridge variable (ErrVariableNotFound when unset).
func (b *Bridge) Var(name string) (string, error) {
	if name == "" {
		return "", errf(ErrInvalidArgument, "Variable name is required")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.destroyed {
		return "", errf(ErrBridgeNotFound, "Bridge not found")
	}
	v, ok := b.vars[name]
	if !ok {
		return "", errf(ErrVariableNotFound, "Provided variable was not found")
	}
	return v, nil
}

// SetVar sets (or, with unset, removes) a bridge variable; report makes it
// part of the bridge's events (bridgevars) from now on.
func (b *Bridge) SetVar(name, value string, unset, report bool) error {
	if name == "" {
		return errf(ErrInvalidArgument, "Variable name is required")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.destroyed {
		return errf(ErrBridgeNotFound, "Bridge not found")
	}
	if b.vars == nil {
		b.vars = map[string]string{}
	}
	if unset {
		delete(b.vars, name)
	} else {
		b.vars[name] = value
	}
	if report && !slices.Contains(b.reported, name) {
		b.reported = append(b.reported, name)
	}
	return nil
}

// publishLocked sends a bridge event to the apps of its channels and to
// subscribers of the bridge.
func (b *Bridge) publishLocked(body any) {
	ev := eventOf("", body)
	ev.Sources = []string{"bridge:" + b.id}
	for _, mb := range b.members {
		mb.ch.mu.Lock()
		if mb.ch.app != "" {
			ev.Apps = append(ev.Apps, mb.ch.app)
		}
		mb.ch.mu.Unlock()
	}
	b.m.bus.Publish(ev)
}

func (b *Bridge) publish(body any) {
	b.mu.Lock()
	b.publishLocked(body)
	b.mu.Unlock()
}

// JoinOptions are addChannel's per-channel options.
type JoinOptions struct {
	// Mute keeps the channel's audio out of the mix.
	Mute bool
	// AbsorbDTMF keeps the channel's digits from the other parties (the
	// application still gets ChannelDtmfReceived).
	AbsorbDTMF bool
	// Role is the channel's role: in a holding bridge an "announcer" is
	// heard by everyone, the other roles (participants) by no one.
	Role string
	// InhibitConnectedLine: the other party is not given the channel's
	// identity as its connected line.
	InhibitConnectedLine bool
}

// AddChannel puts a channel into the bridge (moving it from another one).
func (b *Bridge) AddChannel(ch *Channel, mute bool) error {
	return b.addChannelWith(ch, JoinOptions{Mute: mute}, true)
}

// addChannel is AddChannel; third-party control (ConnectCalls) bridges
// channels that are in no application (inStasis false).
func (b *Bridge) addChannel(ch *Channel, mute, inStasis bool) error {
	return b.addChannelWith(ch, JoinOptions{Mute: mute}, inStasis)
}

func (b *Bridge) addChannelWith(ch *Channel, o JoinOptions, inStasis bool) error {
	ch.mu.Lock()
	if ch.hangingUp {
		ch.mu.Unlock()
		return errf(ErrChannelNotFound, "Channel not found")
	}
	if inStasis && !ch.inStasis {
		ch.mu.Unlock()
		return errf(ErrNotInApplication, "Channel not in Stasis application")
	}
	// ARI's rule: a recording channel cannot join a bridge. Third-party
	// control (a Forward after a Record) moves the channel's recordings
	// onto the bridge's mix instead, so that they hold both parties.
	if inStasis && ch.recording() {
		ch.mu.Unlock()
		return errf(ErrConflict, "Channel is recording")
	}
	old := ch.bridge
	ch.mu.Unlock()
	if old == b {
		return nil
	}
	if old != nil {
		old.RemoveChannel(ch)
	}
	b.mu.Lock()
	if b.destroyed {
		b.mu.Unlock()
		return errf(ErrBridgeNotFound, "Bridge not found")
	}
	// Audio queued before the join is not the bridge's: hand it out now;
	// from here on the bridge reads the channel right before each mix.
	ch.media.Flush()
	ch.media.SetOwned(true)
	mb := &member{ch: ch, part: b.mixer.Add(ch.id), overlay: newFrameFIFO(), muted: o.Mute}
	for i := range b.sides {
		if b.sides[i].CompareAndSwap(nil, mb.part) {
			break
		}
	}
	mb.part.SetMuteIn(o.Mute || (b.typ == "holding" && o.Role != "announcer"))
	b.members = append(b.members, mb)
	b.storeSnapLocked()
	ch.mu.Lock()
	ch.bridge = b
	mb.tap = ch.addTapLocked(&participantTap{b: b, ch: ch, part: mb.part, absorb: o.AbsorbDTMF}, StageSink)
	ch.mu.Unlock()
	overlay := func(pcm []int16) {
		if !b.overlayUsed.Load() {
			b.mu.Lock()
			b.overlayUsed.Store(true) // the mixer puts it into the channel's mix from now on
			b.updateDirectLocked()
			b.mu.Unlock()
		}
		mb.overlay.push(pcm)
		if !mb.part.HasOverlay() {
			// Attached at the first frame, not at the join: until a
			// playback to the channel, the tick has no overlay to ask
			// (its FIFO, empty, would answer Idle for every party at
			// every tick).
			mb.part.SetOverlay(mb.overlay.source)
		}
	}
	ch.bridgeOverlay.Store(&overlay)
	if ch.app != "" {
		b.m.bus.Subscribe(ch.app, "bridge:"+b.id)
	}
	b.publishLocked(&BridgeChannelEvent{eventBase: b.m.base("ChannelEnteredBridge"), Bridge: b.jsonLocked(), Channel: ch.JSON()})
	if len(b.members) == 2 {
		b.exchangeConnectedLocked(b.members[0].ch, ch, o.InhibitConnectedLine)
	}
	b.startTickerLocked()
	b.mu.Unlock()
	if !inStasis {
		for _, r := range ch.recordings() {
			if r.opts.Track != TrackInbound { // one direction stays the channel's
				r.mixFrom(b)
			}
		}
	}
	return nil
}

// RemoveChannel takes a channel out of the bridge (422 if not in it).
func (b *Bridge) RemoveChannel(ch *Channel) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	idx := -1
	for i, mb := range b.members {
		if mb.ch == ch {
			idx = i
		}
	}
	if idx < 0 {
		return errf(ErrInvalidState, "Channel not in this bridge")
	}
	mb := b.members[idx]
	ch.media.Flush() // what arrived before the removal is the bridge's
	ch.media.SetOwned(false)
	b.members = append(b.members[:idx:idx], b.members[idx+1:]...)
	b.storeSnapLocked()
	b.updateDirectLocked()
	// The party's play-out buffer still holds its last 40-120 ms: keep it
	// in the mix (and the recordings) until it has played out.
	b.draining.Add(1)
	go b.drainAndRemove(mb.part)
	ch.removeTap(mb.tap)
	ch.bridgeOverlay.Store(nil)
	for _, r := range ch.recordings() {
		r.unmixLocked(b, true) // the channel's own audio feeds it again
	}
	for _, r := range b.recs {
		r.partyLeft(ch) // its packet figures end here
	}
	ch.mu.Lock()
	if ch.bridge == b {
		ch.bridge = nil
	}
	ch.mu.Unlock()
	b.publishLocked(&BridgeChannelEvent{eventBase: b.m.base("ChannelLeftBridge"), Bridge: b.jsonLocked(), Channel: ch.JSON()})
	return nil
}

// drainAndRemove takes a departing party out of the mixer once its buffered
// audio has been mixed: at most 6 frames, one a tick, so about 120 ms; the
// deadline is for a clock starved on a busy host, whose ticks come late.
func (b *Bridge) drainAndRemove(p *mix.Participant) {
	defer b.draining.Done()
	p.Drain() // a last frame below the priming depth plays too
	defer func() {
		// What the play-out buffer dropped is missing from the bridge's
		// recordings too: say so (a busy host, a bursty or late sender).
		if st := p.Stats(); st.OverflowDrops+st.Trimmed+st.LateDrops > 0 {
			b.m.log.Info("bridge party left the mix with audio dropped", "bridge", b.id, "channel", p.ID(),
				"overflow_frames", st.OverflowDrops, "trimmed_frames", st.Trimmed, "late_packets", st.LateDrops,
				"packets", st.Packets, "underruns", st.Underruns)
		}
	}()
	deadline := time.NewTimer(time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for p.Stats().Depth > 0 {
		select {
		case <-deadline.C:
			b.removePart(p)
			return
		case <-b.done:
			b.removePart(p)
			return
		case <-tick.C:
		}
	}
	b.removePart(p)
}

// removePart takes a party out of the mixer and of its stereo side, once
// the tick in progress (which may have just pulled its last frame: the
// buffer is empty from then on) has given that frame to the recordings;
// removed from its side before, the frame was missing from a stereo
// recording's channel, and at Destroy the recordings finished without it.
func (b *Bridge) removePart(p *mix.Participant) {
	b.mixer.Sync()
	b.mixer.Remove(p)
	for i := range b.sides {
		b.sides[i].CompareAndSwap(p, nil)
	}
}

func (b *Bridge) storeSnapLocked() {
	s := append([]*member(nil), b.members...)
	b.snap.Store(&s)
}

// Destroy removes every channel, stops the bridge's recordings and
// playbacks and publishes BridgeDestroyed.
func (b *Bridge) Destroy() {
	b.mu.Lock()
	if b.destroyed {
		b.mu.Unlock()
		return
	}
	chans := make([]*Channel, 0, len(b.members))
	for _, mb := range b.members {
		chans = append(chans, mb.ch)
	}
	recs := append([]*LiveRecording(nil), b.recs...)
	b.mu.Unlock()
	for _, ch := range chans {
		b.RemoveChannel(ch)
	}
	// Let departing parties' last audio reach the recordings.
	b.draining.Wait()
	for _, r := range recs {
		if r.ch == nil { // (a channel's recording fed by the mix went back to its channel)
			r.finish(RecDone)
		}
	}
	b.m.recMu.Lock()
	var queued []*LiveRecording
	for _, r := range b.m.live {
		if r.br == b {
			queued = append(queued, r)
		}
	}
	b.m.recMu.Unlock()
	for _, r := range queued {
		r.finish(RecDone)
	}
	b.mu.Lock()
	b.destroyed = true
	b.publishLocked(&BridgeEvent{eventBase: b.m.base("BridgeDestroyed"), Bridge: b.jsonLocked()})
	close(b.done)
	clock := b.clock
	b.mu.Unlock()
	if clock != nil {
		clock.Remove() // outside b.mu: a tick in progress takes it
	}
	b.m.brMu.Lock()
	delete(b.m.bridges, b.id)
	b.m.brMu.Unlock()
	b.m.bus.ForgetSource("bridge:" + b.id)
}

// startTickerLocked starts the bridge's single 20 ms clock once: a tick of
// the Manager's Poller, right after it reads the parties' audio, or a
// ticker goroutine of its own.
func (b *Bridge) startTickerLocked() {
	b.updateDirectLocked()
	if b.ticking || b.destroyed {
		return
	}
	b.ticking = true
	step := b.stepper()
	if p := b.m.opts.Poller; p != nil {
		b.clock = p.AddTick(20*time.Millisecond, step)
		b.clock.SetPaused(b.direct.Load())
		return
	}
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-b.done:
				return
			case <-t.C:
				step()
			}
		}
	}()
}

// stepper returns one 20 ms step of the mixer: read what the parties sent
// since the last step, then each participant gets everyone else's audio;
// recordings get the mix (or the two parties for stereo).
func (b *Bridge) stepper() func() {
	// parties is the members list (snap) as the clock needs it, rebuilt
	// when snap changes: each member's participant, channel and session
	// in one array, so that a tick does not load every member (and its
	// channel's first line) twice, once to read its socket and once to
	// send it the mix.
	type party struct {
		part  *mix.Participant
		ch    *Channel
		media Media
	}
	var (
		partiesOf *[]*member
		parties   []party
	)
	load := func() []party {
		if s := b.snap.Load(); s != partiesOf {
			clear(parties)
			parties = parties[:0]
			for _, mb := range *s {
				parties = append(parties, party{part: mb.part, ch: mb.ch, media: mb.ch.media})
			}
			partiesOf = s
		}
		return parties
	}
	out := func(p *mix.Participant, frame []int16) {
		for _, pt := range load() {
			if pt.part == p {
				pt.ch.sendBridged(frame, b.outBuf)
				return
			}
		}
	}
	rec := func(mixed []int16, parts []mix.Frame) {
		b.mu.Lock()
		recs := b.recs
		b.mu.Unlock()
		if len(recs) == 0 {
			return
		}
		var left, right []int16 // nil: silence
		l, r := b.sides[0].Load(), b.sides[1].Load()
		for i := range parts {
			switch parts[i].P {
			case l:
				left = parts[i].PCM
			case r:
				right = parts[i].PCM
			}
		}
		for _, r := range recs {
			r.pushMixed(mixed, left, right)
		}
	}
	// The clock's wake-ups can come late (a busy host; the Poller and a
	// ticker skip what they missed): each call mixes one frame, and more
	// while real time is ahead of the frames mixed and a party has more
	// audio waiting than the play-out depth (at most maxCatchUp), so the
	// packets that came meanwhile are mixed and recorded rather than
	// dropped when their play-out buffer overflows. When the parties were
	// late too (nothing waiting) the clock just resumes. Called faster than
	// real time (tests), it mixes one frame a call.
	const period = 20 * time.Millisecond
	const maxCatchUp = 10
	var due time.Time // when the next frame is due
	return func() {
		if b.direct.Load() {
			// The parties' sockets are read as packets arrive
			// (updateLiveLocked), forwarded at once: nothing to do here.
			due = time.Time{} // mixing again starts from then
			return
		}
		// The parties' sockets are the bridge's to read (SetOwned): their
		// packets reach the taps here.
		for _, pt := range load() {
			pt.media.Flush()
		}
		now := b.m.now()
		if due.IsZero() {
			due = now
		}
		for n := 0; ; n++ {
			if n > 0 && (due.After(now) || !b.backlog()) {
				break
			}
			if n == maxCatchUp {
				break
			}
			b.mixer.TickRecord(out, rec)
			due = due.Add(period)
		}
		// Caught up: a party's burst beyond the play-out buffer's 120 ms
		// (its packets came at once) is dropped rather than kept as latency.
		b.mixer.Trim()
		if !due.After(now) {
			due = now.Add(period) // nothing more to catch up: resume from now
		}
	}
}

// backlog reports whether a party has more audio waiting than the play-out
// depth (40 ms): the clock is behind its packets.
func (b *Bridge) backlog() bool {
	for _, p := range b.mixer.Participants() {
		if p.Stats().Depth > 2*mix.FrameSamples {
			return true
		}
	}
	return false
}

// sendBridged sends a mixed frame to the channel (the bridge's buffer).
func (ch *Channel) sendBridged(pcm []int16, buf []byte) {
	if ch.muteOut.Load() {
		return
	}
	ch.tapSent(pcm)
	buf = buf[:len(pcm)]
	if ch.outPCMA.Load() {
		encodeAlaw(buf, pcm)
	} else {
		encodeMulaw(buf, pcm)
	}
	_ = ch.media.WriteAudio(buf, uint32(len(pcm)))
}

// Record records the bridge: the mix, or with stereo the first two parties
// one per channel (wav only).
func (b *Bridge) Record(o RecordOptions, stereo bool) (*LiveRecording, error) {
	return b.record(o, stereo, "")
}

// record is Record with the catalog source ("": ari).
func (b *Bridge) record(o RecordOptions, stereo bool, source string) (*LiveRecording, error) {
	b.mu.Lock()
	destroyed := b.destroyed
	b.mu.Unlock()
	if destroyed {
		return nil, errf(ErrBridgeNotFound, "Bridge not found")
	}
	mode, err := ifExistsMode(o.IfExists)
	if err != nil {
		return nil, err
	}
	switch o.TerminateOn {
	case "", "none", "any", "*", "#":
	default:
		return nil, errf(ErrInvalidArgument, "terminateOn invalid")
	}
	f, err := recorder.Lookup(o.Format)
	if err != nil {
		return nil, errf(ErrUnsupported, "%v", err)
	}
	if stereo && f.Name != "wav" {
		return nil, errf(ErrInvalidArgument, "Stereo recording needs format wav")
	}
	if mode == recorder.Append && !f.AppendOK {
		return nil, errf(ErrUnsupported, "format %s cannot be appended to", f.Name)
	}
	base, err := recorder.ResolveName(nonEmpty(o.Root, b.m.opts.RecordingsDir), o.Name)
	if err != nil {
		return nil, errf(ErrInvalidArgument, "Recording name invalid")
	}
	o.MaxDuration = b.m.capDuration(o.MaxDuration)
	rec := &LiveRecording{m: b.m, br: b, name: o.Name, format: f, target: "bridge:" + b.id,
		path: base + "." + f.Ext, state: RecQueued, stereo: stereo, done: make(chan struct{}), source: source,
		attached: make(chan struct{}), firstMember: o.first}
	rec.setOpts(o)
	m := b.m
	m.recMu.Lock()
	if err := m.nameBusyLocked(o.Name); err != nil {
		m.recMu.Unlock()
		return nil, err
	}
	if mode == recorder.Fail && len(m.storedFormats(base)) > 0 {
		m.recMu.Unlock()
		return nil, errf(ErrConflict, "Recording already exists")
	}
	m.live[o.Name] = rec
	m.recMu.Unlock()
	if err := m.claimName(rec, mode); err != nil {
		return nil, err
	}
	if err := rec.firstRow(); err != nil {
		return nil, err
	}
	gopool.Go(func() { rec.start(mode) }) // kept goroutine: see package gopool
	return rec, nil
}

func (b *Bridge) attachRecording(r *LiveRecording) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.destroyed {
		return false
	}
	b.recs = append(append([]*LiveRecording(nil), b.recs...), r)
	snap := b.recs
	b.recSnap.Store(&snap)
	b.startTickerLocked()
	return true
}

func (b *Bridge) detachRecording(r *LiveRecording) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dropRecordingLocked(r)
}

func (b *Bridge) dropRecordingLocked(r *LiveRecording) {
	list := make([]*LiveRecording, 0, len(b.recs))
	for _, x := range b.recs {
		if x != r {
			list = append(list, x)
		}
	}
	b.recs = list
	b.recSnap.Store(&list)
	b.updateDirectLocked()
}

// Play queues a playback heard by everyone in the bridge.
func (b *Bridge) Play(o PlayOptions) (*Playback, error) {
	b.mu.Lock()
	if b.destroyed {
		b.mu.Unlock()
		return nil, errf(ErrBridgeNotFound, "Bridge not found")
	}
	b.announcerLocked()
	b.startTickerLocked()
	b.mu.Unlock()
	p, err := b.m.newPlayback(b, o, b.m.opts.Language)
	if err != nil {
		return nil, err
	}
	res := b.m.opts.Media
	if res == nil {
		res = nopResolver{}
	}
	select {
	case b.ops <- func() { p.runContained(res) }:
	default:
		b.m.forgetPlayback(p)
		return nil, errf(ErrConflict, "Too many queued playbacks on bridge")
	}
	go func() {
		select {
		case <-b.done:
			p.Stop()
			p.mu.Lock()
			st := p.state
			p.mu.Unlock()
			if st == PbQueued {
				p.finish(PbDone, false)
			}
		case <-p.done:
		}
	}()
	return p, nil
}

func (b *Bridge) runOps() {
	for {
		select {
		case op := <-b.ops:
			op()
		case <-b.done:
			return
		}
	}
}

func (b *Bridge) targetURI() string { return "bridge:" + b.id }

func (b *Bridge) gone() <-chan struct{} { return b.done }

func (b *Bridge) publishPlayback(typ string, pj PlaybackJSON) {
	b.publish(&PlaybackEvent{Base: b.m.base(typ), Playback: pj})
}

func (b *Bridge) writeFrame(pcm []int16) {
	b.mu.Lock()
	a := b.announce
	b.mu.Unlock()
	if a != nil {
		a.push(pcm)
	}
}

// writeMusic sends a frame of the bridge's music on hold.
func (b *Bridge) writeMusic(pcm []int16) {
	b.mu.Lock()
	a := b.music
	b.mu.Unlock()
	if a != nil {
		a.push(pcm)
	}
}

// announcerLocked attaches, once, what everyone in the bridge hears besides
// each other: its playbacks and its music on hold, summed. In Asterisk
// each is a channel of its own in the bridge (an announcer for a playback,
// another for the music), mixed like any party: a playback does not stop
// the bridge's music, and both are heard.
func (b *Bridge) announcerLocked() {
	if b.announce != nil {
		return
	}
	b.announce, b.music = newFrameFIFO(), newFrameFIFO()
	play, music := b.announce, b.music
	var other []int16 // the mixer's goroutine alone calls the source
	b.mixer.SetAnnouncer(func(pcm []int16) int {
		n := play.source(pcm)
		if n == mix.Idle {
			return music.source(pcm)
		}
		if cap(other) < len(pcm) {
			other = make([]int16, len(pcm))
		}
		if music.source(other[:len(pcm)]) != mix.Idle {
			audio.AddInto(pcm, other[:len(pcm)])
		}
		return n
	})
}

// frameFIFO hands playback frames (pushed at 20 ms pace by a playback) to
// the mixer (pulled once per tick). It holds a few frames; when full the
// oldest is dropped.
type frameFIFO struct {
	mu    sync.Mutex
	buf   [6][160]int16
	n     [6]int
	r, w  int
	count int
}

func newFrameFIFO() *frameFIFO { return &frameFIFO{} }

func (f *frameFIFO) push(pcm []int16) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.count == len(f.buf) {
		f.r = (f.r + 1) % len(f.buf)
		f.count--
	}
	f.n[f.w] = copy(f.buf[f.w][:], pcm)
	f.w = (f.w + 1) % len(f.buf)
	f.count++
}

// source is a mix.Source that never finishes: when empty it is Idle, so
// the mixer keeps it attached and mixes nothing from it.
func (f *frameFIFO) source(pcm []int16) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.count == 0 {
		return mix.Idle
	}
	n := copy(pcm, f.buf[f.r][:f.n[f.r]])
	clear(pcm[n:])
	f.r = (f.r + 1) % len(f.buf)
	f.count--
	return len(pcm)
}
