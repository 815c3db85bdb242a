package call

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/tapedeck/tapedeck/internal/recorder"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapedeck/tapedeck/internal/dialplan"
	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/sdp"
	"github.com/tapedeck/tapedeck/internal/sip"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// Options configure a Manager.
type Options struct {
	Logger *slog.Logger
	// MediaWebSocketClients are the websocket client connections external
	// media may dial (transport websocket, connection_type client), by id.
	MediaWebSocketClients map[string]MediaWebSocketClient
	// AudioSocketBatch is the number of 20 ms frames an AudioSocket
	// external media stream writes at once (0 or 1: each frame as it is
	// sent, Asterisk's way; more: fewer write system calls, and up to
	// AudioSocketBatch-1 frames more latency).
	AudioSocketBatch int
	Bus              *event.Bus
	// Plan is the dialplan at start; SIGHUP replaces it (SetPlan), so read
	// it through Manager.dialplan(), never as opts.Plan.
	Plan  *dialplan.Plan
	Ports *rtp.Ports
	// Poller reads the channels' RTP in batches; nil: a goroutine per socket.
	Poller   *rtp.Poller
	Codecs   []string // supported codec names in preference order
	DTMFType uint8    // telephone-event payload type for our offers
	Language string
	Now      func() time.Time
	// RecordingsDir is the root of stored recordings (<data>/recording).
	RecordingsDir string
	// Media resolves playback URIs.
	Media MediaResolver
	// MOHDir holds the music on hold classes (moh.go).
	MOHDir string
	// Dialer places outgoing calls.
	Dialer Dialer
	// Catalog records recordings in the catalog (optional).
	Catalog Catalog
	// MaxRecording caps every recording's length (0: DefaultMaxRecording).
	MaxRecording time.Duration
	// DegradedLossPercent is the packet loss (percent of the packets
	// expected) past which a recording is reported degraded
	// (RecordingDegraded, its quality's Degraded); 0: never.
	DegradedLossPercent float64
	// NodeID names this node; it prefixes the ids of the channels and
	// bridges made here, as Asterisk's system name prefixes its unique ids
	// ("node-1733300000.1"), so ids stay unique across nodes. Empty: bare
	// ids ("1733300000.1").
	NodeID string
	// Clock is the time channels wait on (nil: the wall clock, with Now).
	Clock Clock
	// NewMedia makes a channel's RTP session on cfg's sockets (nil: an
	// rtp.Session; tests pass fakes).
	NewMedia func(cfg rtp.Config) (Media, error)
	// FsyncInterval is how often the file systems that recordings wrote
	// to are synced, one syncfs per file system for all the recordings
	// (0: DefaultFsyncInterval; negative: never).
	FsyncInterval time.Duration
	// RecorderOptions are added to every recording's recorder.Create (a
	// fault-injecting file in tests).
	RecorderOptions []recorder.Option
	// Journal lists the recordings in progress (recorder.WithJournal) in
	// place of a marker file beside each; nil: marker files.
	Journal *recorder.Journal
	// RTPTimeout hangs up answered channels that received no RTP for this
	// long (0: never); see watchdog.go.
	RTPTimeout time.Duration
	// EndpointChannels hears the channels of a SIP endpoint (the user of
	// a channel named PJSIP/<user>-…) each time one joins it, right before
	// its ChannelCreated, or leaves it, right after its ChannelDestroyed,
	// as Asterisk publishes an endpoint's snapshot from
	// ast_endpoint_add_channel and ast_endpoint_remove_channel (ARI's
	// EndpointStateChange). Calls are sequential, in the order of the
	// changes; ids is the endpoint's channels after the change.
	EndpointChannels func(resource string, ids []string)
	// OnCallEnded receives each channel's call record when it ends (the
	// CDR), on the hangup's goroutine; it should not block for long.
	OnCallEnded func(CallRecord)

	// Directory, Locations and Auth are the PBX's users, their registered
	// phones and the digest authenticator of their calls (SetUsers); nil:
	// no user calls.
	Directory Directory
	Locations Locations
	Auth      *sip.Authenticator
	// Policy configures recordings made by users' flags.
	Policy PolicyRecording
	// Trunks are the SIP peers for external calls (SetTrunks).
	Trunks []Trunk
}

// CallRecord is what a channel leaves when it ends.
type CallRecord struct {
	CallSid, AccountSid, CallID, ChannelID string
	From, To                               string
	Direction                              string // inbound, outbound-api
	Status                                 string // completed, no-answer, busy, failed, canceled
	Created, Answered, Ended               time.Time
	Cause                                  Cause
	RTP                                    rtp.Stats
	// Stored: the record went to the catalog with the final row of one of
	// the channel's recordings, in one transaction (catalog.Info.CDR), and
	// need not be written again.
	Stored bool
}

// CDR is the record as the catalog stores it (an empty AccountSid: the
// default account's; Node is left to the writer).
func (r CallRecord) CDR() meta.CDR {
	billsec := 0.0
	if !r.Answered.IsZero() {
		billsec = r.Ended.Sub(r.Answered).Seconds()
	}
	return meta.CDR{
		Sid: r.CallSid, AccountSid: r.AccountSid, CallID: r.CallID, ChannelID: r.ChannelID,
		From: r.From, To: r.To, Direction: r.Direction, Status: r.Status,
		StartTime: r.Created, AnswerTime: r.Answered, EndTime: r.Ended,
		Duration: r.Ended.Sub(r.Created).Seconds(), Billsec: billsec,
		Cause: int(r.Cause), CauseText: CauseText(r.Cause),
		RTPReceived: int64(r.RTP.Received), RTPLost: max(r.RTP.Lost, 0), JitterMs: r.RTP.Jitter / 8,
	}
}

// callStatus is Restcomm's status of an ended call.
func callStatus(answered bool, cause Cause, remote bool) string {
	switch {
	case answered:
		return "completed"
	case cause == CauseUserBusy:
		return "busy"
	case cause == CauseNoAnswer || cause == CauseNoUserResponse:
		return "no-answer"
	case cause == CauseNormalClearing && remote:
		return "canceled"
	}
	return "failed"
}

// DefaultMaxRecording is the recording length cap when none is configured.
const DefaultMaxRecording = 4 * time.Hour

// Manager owns every channel of the node and is what the APIs call.
type Manager struct {
	// epMu serialises the changes of byEndpoint and their
	// EndpointChannels calls; byEndpoint is each SIP endpoint's channels.
	epMu       sync.Mutex
	byEndpoint map[string][]string

	opts  Options
	log   *slog.Logger
	bus   *event.Bus
	now   func() time.Time
	clock Clock

	seq atomic.Uint64

	mu    sync.RWMutex
	chans map[string]*Channel
	// wsPending are websocket server external media channels waiting for
	// the application to connect, by connection id (guarded by mu).
	wsPending map[string]wsPending
	// gone is closed and replaced whenever a channel is removed, so Drain
	// can wait without polling.
	gone chan struct{}

	recMu sync.Mutex
	live  map[string]*LiveRecording
	// finishing holds the names of ended recordings from their removal
	// from live until their catalog end (the final row) is done — past
	// the hangup's wait for it when the database stalls
	// (catalogEndBounded): a new recording of the name would share the
	// row that end finishes.
	finishing map[string]*LiveRecording
	// catalogWait, when set (tests), replaces stopCatalogWait.
	catalogWait time.Duration
	// syncer makes the recordings' written audio durable (fsync policy).
	syncer recSyncer
	// writers signals every recording's writer step on one tick.
	writers writerClock
	// relaxPeriod is how often the socket of a channel that only
	// recordings tap is read (relax.go); 0: every read interval.
	relaxPeriod time.Duration

	pbMu      sync.Mutex
	playbacks map[string]*Playback

	brMu    sync.Mutex
	bridges map[string]*Bridge

	// watching is set while the RTP watchdog runs (watchdog.go).
	watching atomic.Bool
	// watchLooked, set by tests before the first channel, is called at
	// each of the watchdog's looks.
	watchLooked func(time.Time)
	// plan is the dialplan (Options.Plan until SetPlan).
	plan atomic.Pointer[dialplan.Plan]
}

// SetPlan replaces the dialplan (configuration reload): calls that arrive
// from now on are routed by it; calls in progress are not touched.
func (m *Manager) SetPlan(p *dialplan.Plan) { m.plan.Store(p) }

// dialplan is the current dialplan.
func (m *Manager) dialplan() *dialplan.Plan {
	if p := m.plan.Load(); p != nil {
		return p
	}
	return m.opts.Plan
}

// NewManager makes a manager.
func NewManager(o Options) *Manager {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Language == "" {
		o.Language = "en"
	}
	if len(o.Codecs) == 0 {
		o.Codecs = []string{"PCMU", "PCMA"}
	}
	if o.MaxRecording <= 0 {
		o.MaxRecording = DefaultMaxRecording
	}
	if o.Clock == nil {
		o.Clock = wallClock{now: o.Now}
	}
	o.Now = o.Clock.Now
	if o.NewMedia == nil {
		o.NewMedia = newRTPSession
	}
	m := &Manager{opts: o, log: o.Logger, bus: o.Bus, now: o.Now, clock: o.Clock, chans: map[string]*Channel{}, wsPending: map[string]wsPending{}, gone: make(chan struct{}), live: map[string]*LiveRecording{}, playbacks: map[string]*Playback{}, bridges: map[string]*Bridge{}}
	m.syncer = recSyncer{interval: m.fsyncInterval(), log: o.Logger, syncFS: syncFS}
	m.writers.poller = o.Poller
	m.relaxPeriod = relaxPeriod(o.Poller)
	m.writers.aligned = o.Poller != nil && m.relaxPeriod == writerTick
	rtpFigures.track(m)
	return m
}

// nodeID prefixes a generated id with the node's id.
func (m *Manager) nodeID(id string) string {
	if m.opts.NodeID == "" {
		return id
	}
	return m.opts.NodeID + "-" + id
}

// NodeID is the node's id ("" when none is configured).
func (m *Manager) NodeID() string { return m.opts.NodeID }

// SetDialer sets the SIP endpoint used for outgoing calls (before use).
func (m *Manager) SetDialer(d Dialer) { m.opts.Dialer = d }

// Bus is the manager's event bus.
func (m *Manager) Bus() *event.Bus { return m.bus }

func (m *Manager) base(typ string) event.Base {
	return event.Base{Type: typ, Timestamp: event.Time(m.now()), AsteriskID: m.bus.EntityID()}
}

// channel finds a channel.
func (m *Manager) channel(id string) (*Channel, error) {
	m.mu.RLock()
	ch := m.chans[id]
	m.mu.RUnlock()
	if ch == nil {
		return nil, errChannelNotFound
	}
	return ch, nil
}

// Channels snapshots every channel, oldest first.
func (m *Manager) Channels() []ChannelJSON {
	m.mu.RLock()
	chans := make([]*Channel, 0, len(m.chans))
	for _, ch := range m.chans {
		chans = append(chans, ch)
	}
	m.mu.RUnlock()
	slices.SortFunc(chans, func(a, b *Channel) int { return cmp.Compare(a.serial, b.serial) })
	out := make([]ChannelJSON, len(chans))
	for i, ch := range chans {
		out[i] = ch.JSON()
	}
	return out
}

// CallSummary is what a list of calls (the command API's
// ListActiveCalls) shows of a channel. Its strings are the channel's own:
// a summary copies no values and allocates nothing.
type CallSummary struct {
	ID      ChannelID
	State   State
	Caller  CallerID
	Exten   string
	Created time.Time
}

// chanRef is a channel and its serial, sorted without a pointer chase.
type chanRef struct {
	serial uint64
	ch     *Channel
}

// chanRefs are AppendCallSummaries' scratch lists, reused.
var chanRefs = sync.Pool{New: func() any { return new([]chanRef) }}

// AppendCallSummaries appends a summary of every channel, oldest first,
// to dst. Unlike Channels it builds no ChannelJSON (and no channelvars
// map) per channel: with a thousand calls up, a list is a sort of their
// serials and a copy of five fields each.
func (m *Manager) AppendCallSummaries(dst []CallSummary) []CallSummary {
	rp := chanRefs.Get().(*[]chanRef)
	refs := (*rp)[:0]
	m.mu.RLock()
	for _, ch := range m.chans {
		refs = append(refs, chanRef{ch.serial, ch})
	}
	m.mu.RUnlock()
	slices.SortFunc(refs, func(a, b chanRef) int { return cmp.Compare(a.serial, b.serial) })
	dst = slices.Grow(dst, len(refs))
	for _, r := range refs {
		ch := r.ch
		ch.mu.Lock()
		dst = append(dst, CallSummary{ID: ChannelID(ch.id), State: ch.state, Caller: ch.caller,
			Exten: ch.dialplan.Exten, Created: ch.created})
		ch.mu.Unlock()
	}
	clear(refs) // (no ended channel kept alive by the pool)
	*rp = refs[:0]
	chanRefs.Put(rp)
	return dst
}

// Count is the number of live channels.
func (m *Manager) Count() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.chans)
}

// remove forgets an ended channel; its final RTP figures st join the
// totals of ended channels at the same moment (metrics.go).
// unlist takes a hung-up channel out of the channels the API finds (and
// its RTP figures into the ended totals), before ChannelDestroyed goes
// out: as in Asterisk, an application that reads the channel on that event
// gets 404.
func (m *Manager) unlist(ch *Channel, st rtp.Stats) {
	rtpFigures.mu.Lock()
	m.mu.Lock()
	delete(m.chans, ch.id)
	rtpFigures.endedLocked(st)
	m.mu.Unlock()
	rtpFigures.mu.Unlock()
}

// remove ends what follows a channel after its ChannelDestroyed: waiters
// for its end, its event source, its endpoint's list.
func (m *Manager) remove(ch *Channel) {
	m.mu.Lock()
	close(m.gone)
	m.gone = make(chan struct{})
	m.mu.Unlock()
	m.bus.ForgetSource("channel:" + ch.id)
	m.endpointChannel(ch.endpoint, ch.id, false)
}

// endpointOf is the SIP endpoint (user) of a channel named
// PJSIP/<user>-<n>, "" for other channels (channelSources).
func endpointOf(name string) string {
	if rest, ok := strings.CutPrefix(name, "PJSIP/"); ok {
		if i := strings.LastIndexByte(rest, '-'); i > 0 {
			return rest[:i]
		}
	}
	return ""
}

// endpointChannel adds the channel id to its endpoint's channels (add) or
// removes it, and tells Options.EndpointChannels.
func (m *Manager) endpointChannel(ep, id string, add bool) {
	if ep == "" {
		return
	}
	m.epMu.Lock()
	defer m.epMu.Unlock()
	if m.byEndpoint == nil {
		m.byEndpoint = map[string][]string{}
	}
	ids := m.byEndpoint[ep]
	if add {
		ids = append(slices.Clone(ids), id)
	} else {
		ids = slices.DeleteFunc(slices.Clone(ids), func(s string) bool { return s == id })
	}
	if len(ids) == 0 {
		delete(m.byEndpoint, ep)
	} else {
		m.byEndpoint[ep] = ids
	}
	if f := m.opts.EndpointChannels; f != nil {
		f(ep, slices.Clone(ids))
	}
}

// Drain waits until every channel has ended or ctx is done; then it hangs
// up what is left and waits for the teardown.
func (m *Manager) Drain(ctx context.Context) {
	for {
		m.mu.RLock()
		n, gone := len(m.chans), m.gone
		m.mu.RUnlock()
		if n == 0 {
			return
		}
		select {
		case <-gone:
		case <-ctx.Done():
			m.HangupAll(CauseNormalClearing)
			return
		}
	}
}

// SyncRecordings syncs at once the file systems that recordings wrote to
// since the syncer's last pass (nothing when fsync is off): the last step
// of a shutdown.
func (m *Manager) SyncRecordings() { m.syncer.flush() }

// HangupAll hangs up every channel and waits for their teardown (bounded).
func (m *Manager) HangupAll(cause Cause) {
	m.mu.RLock()
	chans := make([]*Channel, 0, len(m.chans))
	for _, ch := range m.chans {
		chans = append(chans, ch)
	}
	m.mu.RUnlock()
	var wg sync.WaitGroup
	for _, ch := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch.hangup(cause, false)
		}()
	}
	wg.Wait()
}

// Invite implements sip.Handler: a new inbound call.
func (m *Manager) Invite(d *sip.Dialog) {
	log := m.log.With("call_id", d.CallID(), "exten", d.Exten(), "from", d.CallerNumber())
	accepted := false
	defer func() {
		if !accepted {
			promCalls.WithLabelValues("rejected").Inc()
		}
	}()
	var remote *sdp.Media
	var choice sdp.Choice
	if offer := d.Offer(); len(offer) > 0 {
		var err error
		remote, err = sdp.Parse(offer)
		switch {
		case errors.Is(err, sdp.ErrMalformed):
			log.Info("rejecting call: malformed SDP", "err", err)
			_ = d.Reject(400, "Bad Request (malformed SDP)")
			return
		case err != nil:
			log.Info("rejecting call: no usable audio stream", "err", err)
			_ = d.Reject(488, "Not Acceptable Here")
			return
		}
		choice, err = sdp.Negotiate(remote, m.opts.Codecs)
		if err != nil {
			log.Info("rejecting call: no common codec", "err", err)
			_ = d.Reject(488, "Not Acceptable Here")
			return
		}
	}
	trunk := m.trunkFrom(d.Source())
	route, app, err := m.route(d.Exten(), trunk)
	if err != nil {
		log.Info("rejecting call: no dialplan route", "err", err)
		_ = d.Reject(404, "Not Found")
		return
	}
	application, ok := LookupApp(app.Name)
	if !ok {
		log.Warn("rejecting call: unsupported dialplan application", "app", app.Name)
		_ = d.Reject(404, "Not Found")
		return
	}
	inv := &Invocation{Args: app.Args, Route: route, Log: log, Calls: m, Trunk: trunk}
	if application.Authenticate && trunk == nil {
		user, ok := m.authenticate(d)
		if !ok {
			return // answered 401/403 (or dropped)
		}
		inv.CallerUser = user
	}
	if application.Admit != nil {
		if no := application.Admit(inv); no != nil {
			_ = d.Reject(no.Code, no.Reason)
			return
		}
	}
	media, err := m.opts.Ports.ListenConfig(m.opts.Poller)
	if err != nil {
		log.Error("rejecting call: no RTP ports", "err", err)
		_ = d.Reject(503, "Service Unavailable")
		return
	}
	user := d.CallerNumber()
	if user == "" {
		user = "anonymous"
	}
	var accountSid string
	if m.opts.Catalog != nil {
		ctx, cancel := catalogCtx()
		accountSid, err = m.opts.Catalog.AccountSid(ctx, route.Account)
		cancel()
		if err != nil {
			log.Error("rejecting call: the route's account is unknown", "account", route.Account, "err", err)
			media.CloseSockets()
			_ = d.Reject(500, "Server Internal Error")
			return
		}
	}
	ch, err := m.newChannel(channelSpec{
		accountSid: accountSid,
		user:       user,
		callID:     d.CallID(),
		caller:     CallerID{Name: d.CallerName(), Number: d.CallerNumber()},
		dialplan:   DialplanCEP{Context: route.Context, Exten: d.Exten(), Priority: 1},
		state:      StateRing,
		choice:     choice,
		remote:     remote,
		dialog:     d,
		vars:       route.Variables,
	}, media)
	if err != nil {
		log.Error("rejecting call: media", "err", err)
		_ = d.Reject(503, "Service Unavailable")
		return
	}

	accepted = true
	ch.log.Info("call arrived", "app", app.Name, "source", d.Source())
	ch.mu.Lock()
	ch.setDialplanLocked(DialplanCEP{Context: route.Context, Exten: d.Exten(), Priority: 1, AppName: app.Name, AppData: app.Data()})
	ch.mu.Unlock()
	application.start(ch, inv)
	d.SetHandler(ch)
}

// runRecordApp is the dialplan application Record(name[,format]): answer,
// record the caller until hangup (no ARI application involved). The name
// may use ${EXTEN}, ${UNIQUEID}, ${CALLSID}, ${CALLERID(num)} and ${EPOCH}.
// The recording is capped at maxDuration (0: the global cap); reaching it
// ends the recording and the dialplan, so the call is hung up.
func (ch *Channel) runRecordApp(args []string, maxDuration time.Duration) {
	name := dialplan.Substitute(args[0], recordNameVars(ch))
	format := "wav"
	if len(args) > 1 && args[1] != "" {
		format = args[1]
	}
	// record attaches the recording, then answers: the caller's first
	// packet is in the file.
	rec, err := ch.record(RecordOptions{Name: name, Format: format, IfExists: "overwrite", MaxDuration: maxDuration}, "policy")
	if err != nil {
		ch.log.Error("Record(): cannot record; hanging up", "name", name, "err", err)
		ch.hangup(CauseFailure, false)
		return
	}
	// No goroutine waits for the recording's end: the recording calls back.
	rec.afterDone(func() {
		select {
		case <-ch.done:
			return
		default:
		}
		if rec.StopReason() == StopMaxDuration {
			ch.log.Info("Record(): maximum length reached; hanging up", "name", name)
			go ch.hangup(CauseNormalClearing, false)
		}
	})
}

// channelSpec describes a channel to create.
type channelSpec struct {
	id         string // client-chosen id; generated when empty
	callSid    string // shared by the legs of one call; generated when empty
	accountSid string
	user       string // endpoint user for the name PJSIP/<user>-<serial>
	callID     string
	caller     CallerID
	dialplan   DialplanCEP
	state      State
	choice     sdp.Choice
	remote     *sdp.Media
	dialog     Dialog            // inbound legs
	vars       map[string]string // initial channel variables (copied)
	// app, when set, is subscribed to the channel from its creation (an
	// originate or create into an application): it hears ChannelCreated,
	// Dial and the state changes before StasisStart, as in Asterisk.
	app string
	// name and media, when set, replace the PJSIP name and the RTP session
	// made on cfg (a snoop channel has no sockets).
	name  string
	media Media
	// dialed: the channel is made by a dial of its own (originate,
	// external media: Asterisk's ast_dial), whose dialplan application is
	// AppDial2 "(Outgoing Line)" until it runs another.
	dialed bool
	// noCallRecord: the channel is not a call (snoop, external media):
	// OnCallEnded does not hear of it.
	noCallRecord bool
	// external: an external media channel (RTP, AudioSocket, WebSocket).
	external bool
	// wrapMedia, when set, wraps the RTP session made on cfg (slin over
	// RTP), and l16 decodes what it receives.
	wrapMedia func(Media) Media
	l16       *l16In
}

// newChannel creates, starts and registers a channel with its RTP session
// on cfg's sockets (from Ports.ListenConfig).
func (m *Manager) newChannel(s channelSpec, cfg rtp.Config) (*Channel, error) {
	serial := m.seq.Add(1)
	now := m.now()
	id := s.id
	if id == "" {
		id = m.nodeID(fmt.Sprintf("%d.%d", now.Unix(), serial))
	}
	if s.callSid == "" {
		s.callSid = NewCallSid()
	}
	ch := &Channel{
		m:          m,
		callSid:    s.callSid,
		accountSid: s.accountSid,
		serial:     serial,
		id:         id,
		name:       fmt.Sprintf("PJSIP/%s-%08x", s.user, serial),
		created:    now,
		callID:     s.callID,
		caller:     s.caller,
		language:   m.opts.Language,
		dialplan:   s.dialplan,
		state:      s.state,
		vars:       maps.Clone(s.vars),
		dialog:     s.dialog,
		choice:     s.choice,
		remote:     s.remote,
		done:       make(chan struct{}),
		ops:        make(chan func(), 64),
		outBuf:     make([]byte, 1024),
	}
	ch.log = m.log.With("channel", ch.id, "call_id", ch.callID, "call_sid", ch.callSid, "from", s.caller.Number, "to", s.dialplan.Exten)
	if ch.vars == nil {
		ch.vars = map[string]string{}
	}
	ch.outPCMA.Store(s.choice.Audio.Name == "PCMA")
	if s.name != "" {
		ch.name = s.name
	}
	ch.sources = channelSources(ch.id, ch.name)
	ch.noCallRecord = s.noCallRecord
	ch.external = s.external
	if s.media != nil {
		ch.media = s.media
		return m.register(ch, s), nil
	}
	ch.local = sdp.Local{IP: m.opts.Ports.IP(), Port: cfg.LocalPort(), SessionID: sdp.NewSessionID(), Version: 1}
	cfg.Handler = ch
	if s.remote != nil {
		cfg.Remote = s.remote.Addr
		cfg.PayloadType = s.choice.Audio.PayloadType
		if s.choice.HasDTMF {
			cfg.DTMFPayloadType = s.choice.DTMF.PayloadType
		}
	}
	ch.l16 = s.l16
	media, err := m.opts.NewMedia(cfg)
	if err != nil {
		return nil, err
	}
	if s.wrapMedia != nil {
		media = s.wrapMedia(media)
	}
	ch.media = media
	return m.register(ch, s), nil
}

// register lists the channel and announces it: ChannelCreated, to s.app
// from the start when set. (Its ops goroutine starts with its first op.)
func (m *Manager) register(ch *Channel, s channelSpec) *Channel {
	m.mu.Lock()
	m.chans[ch.id] = ch
	m.mu.Unlock()
	ch.endpoint = endpointOf(ch.name)
	m.endpointChannel(ch.endpoint, ch.id, true)
	promActive.Inc()
	m.watch()
	ch.mu.Lock()
	ch.app = s.app
	ch.publishLocked(&ChannelEvent{Base: m.base("ChannelCreated"), Channel: ch.jsonLocked()})
	if s.dialed {
		// ast_dial's prerun names the application AppDial2 before the
		// originating application subscribes to the channel: only those
		// subscribed to every channel hear this ChannelDialplan.
		ch.app = ""
		cep := ch.dialplan
		cep.AppName, cep.AppData = "AppDial2", "(Outgoing Line)"
		ch.setDialplanLocked(cep)
		ch.app = s.app
	}
	if s.app != "" {
		m.bus.Subscribe(s.app, "channel:"+ch.id)
	}
	ch.mu.Unlock()
	return ch
}

// setDialplanLocked moves the channel to a dialplan location and
// application and publishes ChannelDialplan where Asterisk does
// (channel_dialplan in res/stasis/app.c): when the channel gets an
// application where it had none, or its context, extension or priority
// changes while it has one. Like every channel event it goes to the
// applications subscribed to the channel (its own application when it
// has one, those subscribed to it or to everything).
func (ch *Channel) setDialplanLocked(cep DialplanCEP) {
	old := ch.dialplan
	ch.dialplan = cep
	if cep.AppName == "" {
		return
	}
	if old.AppName != "" && old.Context == cep.Context && old.Exten == cep.Exten && old.Priority == cep.Priority {
		return
	}
	ch.publishLocked(&ChannelDialplan{Base: ch.m.base("ChannelDialplan"), DialplanApp: cep.AppName, DialplanAppData: cep.AppData, Channel: ch.jsonLocked()})
}

// execStasis runs Stasis(app[,args]) on a channel that tapedeck puts in
// an application itself (create, originate, external media), as Asterisk
// does with pbx_exec: the channel's application becomes Stasis
// (ChannelDialplan where setDialplanLocked says), then StasisStart.
func (ch *Channel) execStasis(app, args string) {
	ch.mu.Lock()
	cep := ch.dialplan
	cep.AppName, cep.AppData = "Stasis", stasisAppData(app, args)
	ch.setDialplanLocked(cep)
	ch.mu.Unlock()
	ch.enterStasis(app, splitArgs(args))
}

// stasisAppData is the data of Stasis(app[,args]) as Asterisk writes it
// for a channel it puts in an application itself (create, originate).
func stasisAppData(app, args string) string {
	if args == "" {
		return app
	}
	return app + "," + args
}

// enterStasis puts the channel into an application: StasisStart.
func (ch *Channel) enterStasis(app string, args []string) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.app = app
	ch.args = args
	ch.inStasis = true
	ch.updateRelaxLocked()
	ch.m.bus.Subscribe(app, "channel:"+ch.id)
	ch.publishAppLocked(&StasisStart{Base: ch.m.base("StasisStart"), Args: nonNil(ch.args), Channel: ch.jsonLocked()})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
