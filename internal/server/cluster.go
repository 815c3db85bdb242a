package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tapedeck/tapedeck/internal/api/ari"
	"github.com/tapedeck/tapedeck/internal/contain"
	"github.com/tapedeck/tapedeck/internal/event"
)

// The cluster makes the nodes sharing a NATS server one Asterisk for ARI
// applications, in CyCoreSystems ari-proxy's subjects and message shapes:
//
//   - ari.announce carries {"node": asterisk_id, "application": app} for
//     each application connected to a node (every announceInterval, and at
//     once on ari.ping); tapedeck adds "tapedeck_node" (the node id that
//     prefixes its resource ids) and announces itself with an empty
//     application so that the nodes without applications are known too.
//   - ari.event.{app}.{node}: the events (natsBridge); a node subscribes to
//     those of the applications connected to it (ari.event.{app}.*) and
//     delivers the other nodes' to them.
//   - ari.get|command|create.{app}.{node}: requests on another node's
//     resources, ari-proxy's Request ({"kind", "key", ...}) answered by its
//     Response ({"error", "data", "key"}). tapedeck's requests carry the ARI
//     HTTP request itself in "http" and its answers the HTTP response, so
//     that every ARI operation travels whole.
//
// An application connected to another node gets a stand-in here
// (event.Bus.RegisterRemote), so that Stasis(app) takes calls for it and
// their events go out on ari.event.{app}.{this node}.

const (
	announceInterval = time.Second
	// peerTTL: a node or application not announced for this long is gone.
	peerTTL = 5 * time.Second
	// relayTimeout bounds a request relayed to another node.
	relayTimeout = 10 * time.Second
	// listTimeout bounds the other nodes' answers to a list.
	listTimeout = 2 * time.Second
	// maxRelayBody bounds a relayed request's body.
	maxRelayBody = 1 << 20
	// maxLocations bounds the remembered resource locations.
	maxLocations = 200000
	// noApp is the {app} token of requests made without an application
	// (lists, resources whose application is not known).
	noApp = "_"
)

// announcement is ari-proxy's proxy.Announcement plus tapedeck's fields.
type announcement struct {
	Node        string `json:"node"`
	Application string `json:"application"`
	// TapedeckNode is the node id prefixing the node's resource ids.
	TapedeckNode string `json:"tapedeck_node,omitempty"`
	// Gone says the application disconnected from the node.
	Gone bool `json:"gone,omitempty"`
}

// proxyKey is ari-proxy's (CyCoreSystems/ari) Key.
type proxyKey struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	Node string `json:"node,omitempty"`
	App  string `json:"app,omitempty"`
}

// relayedHTTP is the ARI request or response a tapedeck node relays.
type relayedHTTP struct {
	Method      string `json:"method,omitempty"`
	Path        string `json:"path,omitempty"` // escaped, under /ari
	Query       string `json:"query,omitempty"`
	Status      int    `json:"status,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Body        []byte `json:"body,omitempty"`
}

// proxyRequest is ari-proxy's proxy.Request (the fields tapedeck uses).
type proxyRequest struct {
	Kind string       `json:"kind"`
	Key  *proxyKey    `json:"key"`
	HTTP *relayedHTTP `json:"http,omitempty"`
}

// proxyResponse is ari-proxy's proxy.Response.
type proxyResponse struct {
	Error string                     `json:"error"`
	Data  map[string]json.RawMessage `json:"data,omitempty"`
	Key   *proxyKey                  `json:"key,omitempty"`
	HTTP  *relayedHTTP               `json:"http,omitempty"`
}

type peer struct {
	nodeID string
	seen   time.Time
}

type location struct {
	entity, app string
}

// trustedARI runs relayed requests (ari.Server.ServeTrusted).
type trustedARI interface {
	ServeTrusted(w http.ResponseWriter, r *http.Request)
}

type cluster struct {
	nc     *nats.Conn
	prefix string // "ari." by default
	bus    *event.Bus
	entity string
	nodeID string
	local  trustedARI
	log    *slog.Logger
	// refuse says why the node takes no creates ("" when it does).
	refuse func() string

	mu    sync.Mutex
	peers map[string]*peer                // entity → node
	apps  map[string]map[string]time.Time // app → entity → last announced
	stubs map[string]*event.Subscriber    // stand-ins of remote applications
	where map[string]location             // "channel:<id>" ... → owner
	ids   map[string]string               // node id → entity, as announced (kept after the node is gone)
	// announced are the local applications of the last announcement;
	// eventSubs their subscriptions to the other nodes' events (both only
	// touched by run, then close).
	announced map[string]bool
	eventSubs map[string]*nats.Subscription

	subs []*nats.Subscription
	kick chan struct{}
	// changed: a local application connected or left; beats: the
	// readiness loop's tick (beat).
	changed, beats chan struct{}
	stop           chan struct{}
	wg             sync.WaitGroup
	once           sync.Once
	// rounds counts announcement rounds, changes those run because the bus
	// said a local application connected or left (tests).
	rounds, changes atomic.Int64
}

func startCluster(nc *nats.Conn, prefix string, bus *event.Bus, entity, nodeID string, local trustedARI, refuse func() string, log *slog.Logger) (*cluster, error) {
	entity = subjectToken(entity) // as natsBridge publishes it
	c := &cluster{nc: nc, prefix: prefix, bus: bus, entity: entity, nodeID: nodeID, local: local, refuse: refuse, log: log,
		peers: map[string]*peer{}, apps: map[string]map[string]time.Time{}, stubs: map[string]*event.Subscriber{},
		where: map[string]location{}, ids: map[string]string{}, announced: map[string]bool{}, eventSubs: map[string]*nats.Subscription{},
		kick: make(chan struct{}, 1), changed: make(chan struct{}, 1), beats: make(chan struct{}, 1), stop: make(chan struct{})}
	handlers := []struct {
		subject string
		h       nats.MsgHandler
	}{
		{prefix + "announce", c.onAnnounce},
		{prefix + "ping", func(*nats.Msg) { c.poke() }},
		{prefix + "get.*." + entity, c.onRequest},
		{prefix + "command.*." + entity, c.onRequest},
		{prefix + "create.*." + entity, c.onRequest},
		{lostSubject(prefix), c.onLost},
	}
	for _, h := range handlers {
		sub, err := nc.Subscribe(h.subject, h.h)
		if err != nil {
			c.unsubscribe()
			return nil, fmt.Errorf("subscribe %s: %w", h.subject, err)
		}
		_ = sub.SetPendingLimits(65536, 256<<20)
		c.subs = append(c.subs, sub)
	}
	bus.SetOnLocalChange(c.localChanged)
	c.wg.Add(1)
	go c.run()
	// The others announce themselves at once instead of within a second.
	_ = nc.Publish(prefix+"ping", nil)
	return c, nil
}

func (c *cluster) unsubscribe() {
	for _, s := range c.subs {
		_ = s.Unsubscribe()
	}
}

func (c *cluster) close() {
	c.once.Do(func() {
		c.bus.SetOnLocalChange(nil)
		close(c.stop)
		c.wg.Wait()
		c.unsubscribe()
		for app, sub := range c.eventSubs {
			_ = sub.Unsubscribe()
			delete(c.eventSubs, app)
		}
		// The other nodes drop this node's applications at once.
		if c.connected() {
			for app := range c.announced {
				c.publishAnnounce(app, true)
			}
			_ = c.nc.FlushTimeout(time.Second)
		}
		c.mu.Lock()
		for app, sub := range c.stubs {
			c.bus.Unregister(sub)
			sub.Close(errors.New("cluster stopped"))
			delete(c.stubs, app)
		}
		c.mu.Unlock()
	})
}

// poke runs an announcement round now (ari.ping).
func (c *cluster) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// localChanged runs a round for the local applications now (the bus calls
// it when one connects or leaves): a new one is announced, a gone one
// withdrawn, at once.
func (c *cluster) localChanged() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// beat runs the every-second announcement now: the readiness loop calls it
// on its own tick, so that an idle node wakes once a second for both
// instead of once for each (every wake-up of an idle Go process costs the
// runtime a few dozen syscalls, whatever the work).
func (c *cluster) beat() {
	select {
	case c.beats <- struct{}{}:
	default:
	}
}

// run announces every second (on beat, or on its own timer when no beat
// comes: the readiness loop can wait up to 2 s on the database), at once on
// poke, and the local applications' changes as they happen (localChanged).
// The bus tells it of those, so nothing polls.
func (c *cluster) run() {
	defer c.wg.Done()
	// Half an interval of slack: the beat comes first while the readiness
	// loop keeps time.
	const fallback = announceInterval * 3 / 2
	t := time.NewTimer(fallback)
	defer t.Stop()
	full := func() {
		c.round(true)
		t.Reset(fallback)
	}
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
			full()
		case <-c.beats:
			full()
		case <-t.C:
			full()
		case <-c.changed:
			c.changes.Add(1)
			c.round(false)
		}
	}
}

// round announces the local applications (all of them when full, else
// only the new and the gone) and reconciles the stand-ins.
func (c *cluster) round(full bool) {
	c.rounds.Add(1)
	local := c.bus.Local()
	now := map[string]bool{}
	for _, app := range local {
		now[app] = true
		if c.eventSubs[app] == nil {
			// Subscribed before it is announced: no other node sends the
			// application a call before this node hears its events.
			subject := c.prefix + "event." + subjectToken(app) + ".*"
			sub, err := c.nc.Subscribe(subject, func(m *nats.Msg) { c.onEvent(app, m) })
			if err != nil {
				c.log.Warn("cluster: subscribing to the other nodes' events failed", "subject", subject, "err", err)
				continue
			}
			_ = sub.SetPendingLimits(65536, 256<<20)
			c.eventSubs[app] = sub
		}
		if full || !c.announced[app] {
			c.publishAnnounce(app, false)
		}
	}
	for app := range c.announced {
		if !now[app] {
			c.publishAnnounce(app, true)
		}
	}
	for app, sub := range c.eventSubs {
		if !now[app] {
			_ = sub.Unsubscribe()
			delete(c.eventSubs, app)
		}
	}
	if full {
		c.publishAnnounce("", false)
	}
	c.announced = now
	c.reconcile()
}

func (c *cluster) publishAnnounce(app string, gone bool) {
	b, _ := json.Marshal(announcement{Node: c.entity, Application: app, TapedeckNode: c.nodeID, Gone: gone})
	_ = c.nc.Publish(c.prefix+"announce", b)
}

func (c *cluster) onAnnounce(m *nats.Msg) {
	var a announcement
	if json.Unmarshal(m.Data, &a) != nil || a.Node == "" || a.Node == c.entity {
		return
	}
	now := time.Now()
	c.mu.Lock()
	p := c.peers[a.Node]
	if p == nil {
		p = &peer{}
		c.peers[a.Node] = p
	}
	p.seen = now
	if a.TapedeckNode != "" {
		p.nodeID = a.TapedeckNode
		c.rememberID(a.TapedeckNode, a.Node)
	}
	changed := false
	if a.Application != "" {
		if a.Gone {
			if c.apps[a.Application] != nil {
				delete(c.apps[a.Application], a.Node)
				changed = true
			}
		} else {
			if c.apps[a.Application] == nil {
				c.apps[a.Application] = map[string]time.Time{}
			}
			if _, ok := c.apps[a.Application][a.Node]; !ok {
				changed = true
			}
			c.apps[a.Application][a.Node] = now
		}
	}
	c.mu.Unlock()
	if changed {
		c.reconcile()
	}
}

// reconcile expires silent nodes and applications and keeps a stand-in
// registered for every application connected elsewhere but not here.
func (c *cluster) reconcile() {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for e, p := range c.peers {
		if now.Sub(p.seen) > peerTTL {
			delete(c.peers, e)
		}
	}
	for app, nodes := range c.apps {
		for e, seen := range nodes {
			if now.Sub(seen) > peerTTL {
				delete(nodes, e)
			}
		}
		if len(nodes) == 0 {
			delete(c.apps, app)
		}
	}
	for app, sub := range c.stubs {
		select {
		case <-sub.Dropped(): // replaced by a connection here
			delete(c.stubs, app)
			continue
		default:
		}
		if len(c.apps[app]) == 0 {
			c.bus.Unregister(sub)
			sub.Close(errors.New("application gone from the cluster"))
			delete(c.stubs, app)
		}
	}
	for app := range c.apps {
		if c.stubs[app] != nil {
			continue
		}
		sub := event.NewSubscriber(app, 4096, false)
		if !c.bus.RegisterRemote(sub) {
			continue // connected here
		}
		c.stubs[app] = sub
		go func() {
			// The stand-in's events went out through the tap; its queue is
			// only emptied.
			for sub.Next(c.stop) != nil {
			}
		}()
	}
}

// onEvent delivers another node's event (ari.event.{app}.{node}) to the
// application connected here.
func (c *cluster) onEvent(app string, m *nats.Msg) {
	from := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	if from == c.entity || !c.bus.Connected(app) {
		return
	}
	// Learnt before the application sees the event: its next request may
	// name the resource.
	c.learn(app, from, m.Data)
	c.bus.Deliver(app, m.Data)
}

// learn remembers which node holds the resources an event names, for the
// requests on them (ids without a node prefix: playbacks, recordings,
// ids chosen by clients).
func (c *cluster) learn(app, from string, data []byte) {
	var ev struct {
		Type    string `json:"type"`
		Channel *struct {
			ID string `json:"id"`
		} `json:"channel"`
		Bridge *struct {
			ID string `json:"id"`
		} `json:"bridge"`
		Playback *struct {
			ID string `json:"id"`
		} `json:"playback"`
		Recording *struct {
			Name string `json:"name"`
		} `json:"recording"`
	}
	if json.Unmarshal(data, &ev) != nil {
		return
	}
	var keys []string
	if ev.Channel != nil && ev.Channel.ID != "" {
		keys = append(keys, "channels:"+ev.Channel.ID)
	}
	if ev.Bridge != nil && ev.Bridge.ID != "" {
		keys = append(keys, "bridges:"+ev.Bridge.ID)
	}
	if ev.Playback != nil && ev.Playback.ID != "" {
		keys = append(keys, "playbacks:"+ev.Playback.ID)
	}
	if ev.Recording != nil && ev.Recording.Name != "" {
		keys = append(keys, "recordings:"+ev.Recording.Name)
	}
	gone := map[string]string{"ChannelDestroyed": "channels:", "BridgeDestroyed": "bridges:",
		"PlaybackFinished": "playbacks:", "RecordingFinished": "recordings:", "RecordingFailed": "recordings:"}[ev.Type]
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.where) >= maxLocations {
		clear(c.where)
	}
	for _, k := range keys {
		if gone != "" && strings.HasPrefix(k, gone) {
			delete(c.where, k)
			continue
		}
		if l, ok := c.where[k]; ok && l.entity == from {
			continue // the first application seen keeps naming it (the Stasis one)
		}
		c.where[k] = location{entity: from, app: app}
	}
}

// owner says which other node holds a resource: the node whose id
// prefixes the resource's id ("<node_id>-..."), else the node whose events
// named it. ok is false for this node's resources and unknown ones.
func (c *cluster) owner(resource, id string) (location, bool) {
	if resource == "applications" { // "channels:<id>" (remoteSources)
		resource, id, _ = strings.Cut(id, ":")
	}
	self := c.nodeID != "" && strings.HasPrefix(id, c.nodeID+"-")
	best, bestLen := "", 0
	if self {
		bestLen = len(c.nodeID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for e, p := range c.peers {
		if p.nodeID != "" && len(p.nodeID) > bestLen && strings.HasPrefix(id, p.nodeID+"-") {
			best, bestLen = e, len(p.nodeID)
		}
	}
	if best != "" {
		loc := location{entity: best, app: noApp}
		if l, ok := c.where[resource+":"+id]; ok && l.entity == best {
			loc.app = l.app
		}
		return loc, true
	}
	if self {
		return location{}, false
	}
	l, ok := c.where[resource+":"+id]
	return l, ok
}

// livePeers lists the other nodes announced recently.
func (c *cluster) livePeers() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.peers))
	for e, p := range c.peers {
		if time.Since(p.seen) <= peerTTL {
			out = append(out, e)
		}
	}
	sort.Strings(out)
	return out
}

// requestClass is ari-proxy's class of an ARI operation: get (reads),
// create (new channels and bridges) or command.
func requestClass(method string, rt ari.Route) string {
	switch {
	case isCreate(rt):
		return "create"
	case method == http.MethodGet:
		return "get"
	}
	return "command"
}

// isCreate: the operations that make a channel or a bridge.
func isCreate(rt ari.Route) bool {
	switch rt.Resource {
	case "channels":
		switch rt.Nickname {
		case "originate", "originateWithId", "create", "externalMedia", "snoopChannel", "snoopChannelWithId":
			return true
		}
	case "bridges":
		return rt.Nickname == "create" || rt.Nickname == "createWithId"
	}
	return false
}

// proxyKind is ari-proxy's request kind of an operation: ChannelAnswer,
// BridgeAddChannel, PlaybackControl, LiveRecordingStop, ChannelList...
func proxyKind(rt ari.Route) (kind, keyKind string) {
	switch rt.Resource {
	case "channels":
		keyKind = "channel"
	case "bridges":
		keyKind = "bridge"
	case "playbacks":
		keyKind = "playback"
	case "recordings":
		keyKind = "liverecording"
		if strings.Contains(strings.ToLower(rt.Nickname), "stored") {
			keyKind = "storedrecording"
		}
	default:
		keyKind = strings.TrimSuffix(rt.Resource, "s")
	}
	prefix := map[string]string{"liverecording": "LiveRecording", "storedrecording": "StoredRecording"}[keyKind]
	if prefix == "" && keyKind != "" {
		prefix = strings.ToUpper(keyKind[:1]) + keyKind[1:]
	}
	nick := rt.Nickname
	if nick != "" {
		nick = strings.ToUpper(nick[:1]) + nick[1:]
	}
	return prefix + nick, keyKind
}

// resourceID is the path parameter naming the resource an operation acts
// on, or "" (lists, creates without an id, stored recordings: shared).
func resourceID(rt ari.Route) string {
	switch rt.Resource {
	case "channels":
		if rt.Nickname == "originateWithId" {
			return ""
		}
		return rt.Params["channelId"]
	case "bridges":
		return rt.Params["bridgeId"]
	case "playbacks":
		return rt.Params["playbackId"]
	case "recordings":
		if strings.Contains(strings.ToLower(rt.Nickname), "stored") {
			return ""
		}
		return rt.Params["recordingName"]
	}
	return ""
}

// connected says whether the NATS connection is up.
func (c *cluster) connected() bool { return c.nc.Status() == nats.CONNECTED }

// relay sends an ARI request to another node and returns its answer.
func (c *cluster) relay(ctx context.Context, entity, app string, rt ari.Route, id string, method, escapedPath, query string, body []byte, contentType string, timeout time.Duration) (*proxyResponse, error) {
	kind, keyKind := proxyKind(rt)
	req := proxyRequest{Kind: kind, Key: &proxyKey{Kind: keyKind, ID: id, Node: entity, App: app},
		HTTP: &relayedHTTP{Method: method, Path: escapedPath, Query: query, ContentType: contentType, Body: body}}
	if app == "" {
		app = noApp
	}
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := c.nc.RequestWithContext(ctx, c.prefix+requestClass(method, rt)+"."+subjectToken(app)+"."+entity, data)
	if err != nil {
		return nil, err
	}
	var res proxyResponse
	if err := json.Unmarshal(msg.Data, &res); err != nil {
		return nil, fmt.Errorf("answer of node %s: %w", entity, err)
	}
	return &res, nil
}

// onRequest runs another node's request here (ari.get|command|create.*.{this node}).
func (c *cluster) onRequest(m *nats.Msg) {
	go c.answer(m)
}

func (c *cluster) answer(m *nats.Msg) {
	reply := func(res proxyResponse) {
		b, _ := json.Marshal(res)
		_ = m.Respond(b)
	}
	// The handler runs here, not under net/http's per-connection recover:
	// a panic fails this request (500), never the node.
	defer contain.Recover(c.log, "cluster request", func() {
		reply(proxyResponse{Error: "Internal Server Error", HTTP: &relayedHTTP{Status: 500}})
	})
	var req proxyRequest
	if err := json.Unmarshal(m.Data, &req); err != nil {
		reply(proxyResponse{Error: "bad request: " + err.Error(), HTTP: &relayedHTTP{Status: 400}})
		return
	}
	h := req.HTTP
	if h == nil {
		h = nativeRequest(req)
		if h == nil {
			reply(proxyResponse{Error: "request kind " + req.Kind + " is not supported here; send the ARI request in \"http\"", Key: req.Key, HTTP: &relayedHTTP{Status: 501}})
			return
		}
	}
	if !strings.HasPrefix(h.Path, "/ari/") {
		reply(proxyResponse{Error: "bad request: path " + h.Path, Key: req.Key, HTTP: &relayedHTTP{Status: 400}})
		return
	}
	if strings.HasPrefix(m.Subject, c.prefix+"create.") && c.refuse != nil {
		if why := c.refuse(); why != "" {
			b, _ := json.Marshal(map[string]string{"message": why})
			reply(proxyResponse{Error: why, Key: req.Key, HTTP: &relayedHTTP{Status: 503, ContentType: "application/json", Body: b}})
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), relayTimeout)
	defer cancel()
	u := h.Path
	if h.Query != "" {
		u += "?" + h.Query
	}
	r, err := http.NewRequestWithContext(ctx, h.Method, u, bytes.NewReader(h.Body))
	if err != nil {
		reply(proxyResponse{Error: "bad request: " + err.Error(), Key: req.Key, HTTP: &relayedHTTP{Status: 400}})
		return
	}
	r.RemoteAddr = "nats:" + m.Subject
	if h.ContentType != "" {
		r.Header.Set("Content-Type", h.ContentType)
	}
	if c.local == nil {
		reply(proxyResponse{Error: "this node serves no ARI requests", Key: req.Key, HTTP: &relayedHTTP{Status: 503}})
		return
	}
	rec := &relayRecorder{header: http.Header{}, status: 200}
	c.local.ServeTrusted(rec, r)
	res := proxyResponse{Key: req.Key, HTTP: &relayedHTTP{Status: rec.status, ContentType: rec.header.Get("Content-Type"), Body: rec.body.Bytes()}}
	if rec.status >= 400 {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(rec.body.Bytes(), &e)
		res.Error = e.Message
		if res.Error == "" {
			res.Error = http.StatusText(rec.status)
		}
		if rec.status == 404 {
			res.Error = "Not found" // ari-proxy's ErrNotFound
		}
	} else if b := bytes.TrimSpace(rec.body.Bytes()); len(b) > 0 && b[0] == '{' && req.Key != nil {
		field := map[string]string{"channel": "channel", "bridge": "bridge", "playback": "playback",
			"liverecording": "live_recording"}[req.Key.Kind]
		if field != "" {
			res.Data = map[string]json.RawMessage{field: b}
		}
	}
	reply(res)
}

// nativeRequest turns the ari-proxy requests that need no payload beyond
// their key into the ARI request (tooling speaking ari-proxy's protocol).
func nativeRequest(req proxyRequest) *relayedHTTP {
	if req.Key == nil || req.Key.ID == "" && !strings.HasSuffix(req.Kind, "List") {
		return nil
	}
	id := url.PathEscape(req.Key.ID)
	table := map[string]relayedHTTP{
		"ChannelList":       {Method: "GET", Path: "/ari/channels"},
		"ChannelData":       {Method: "GET", Path: "/ari/channels/" + id},
		"ChannelGet":        {Method: "GET", Path: "/ari/channels/" + id},
		"ChannelAnswer":     {Method: "POST", Path: "/ari/channels/" + id + "/answer"},
		"ChannelHangup":     {Method: "DELETE", Path: "/ari/channels/" + id},
		"ChannelRing":       {Method: "POST", Path: "/ari/channels/" + id + "/ring"},
		"BridgeList":        {Method: "GET", Path: "/ari/bridges"},
		"BridgeData":        {Method: "GET", Path: "/ari/bridges/" + id},
		"BridgeDelete":      {Method: "DELETE", Path: "/ari/bridges/" + id},
		"PlaybackData":      {Method: "GET", Path: "/ari/playbacks/" + id},
		"PlaybackStop":      {Method: "DELETE", Path: "/ari/playbacks/" + id},
		"RecordingLiveData": {Method: "GET", Path: "/ari/recordings/live/" + id},
		"RecordingLiveStop": {Method: "POST", Path: "/ari/recordings/live/" + id + "/stop"},
	}
	h, ok := table[req.Kind]
	if !ok {
		return nil
	}
	return &h
}

// relayRecorder is the http.ResponseWriter of a relayed request.
type relayRecorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (r *relayRecorder) Header() http.Header { return r.header }
func (r *relayRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
}
func (r *relayRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}

// ariHandler is the ARI HTTP handler of a clustered node: requests on other
// nodes' resources are relayed to them, lists of channels and bridges
// merge every node's, and creates are refused while the node drains or has
// lost NATS.
func (s *Server) ariHandler(c *cluster) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions || !s.ari.Authenticated(r) {
			s.ari.ServeHTTP(w, r)
			return
		}
		rt, ok := s.ari.Match(r.URL.EscapedPath(), r.Method)
		if !ok {
			s.ari.ServeHTTP(w, r)
			return
		}
		if isCreate(rt) {
			if why := s.refuseCreates(); why != "" {
				ari.WriteError(w, http.StatusServiceUnavailable, why)
				return
			}
		}
		if r.Method == http.MethodGet && rt.Nickname == "list" && (rt.Resource == "channels" || rt.Resource == "bridges") {
			s.mergedList(w, r, c, rt)
			return
		}
		id := resourceID(rt)
		if rt.Resource == "applications" && (rt.Nickname == "subscribe" || rt.Nickname == "unsubscribe") {
			// Subscribing to another node's channels or bridges is that
			// node's business: its stand-in of the application subscribes.
			rt.Resource, id = "applications", remoteSources(c, r.URL.Query()["eventSource"])
		}
		if id == "" {
			s.ari.ServeHTTP(w, r)
			return
		}
		loc, remote := c.owner(rt.Resource, id)
		if !remote {
			s.ari.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRelayBody+1))
		if err != nil || len(body) > maxRelayBody {
			ari.WriteError(w, http.StatusRequestEntityTooLarge, "request body too large to relay to another node")
			return
		}
		keyID := id
		if rt.Resource == "applications" { // ari-proxy's ApplicationSubscribe key: the application
			keyID = rt.Params["applicationName"]
			loc.app = keyID
		}
		res, err := c.relay(r.Context(), loc.entity, loc.app, rt, keyID, r.Method, r.URL.EscapedPath(), relayQuery(r.URL), body, r.Header.Get("Content-Type"), relayTimeout)
		if err != nil {
			s.log.Warn("ari: request to another node failed", "node", loc.entity, "path", r.URL.Path, "err", err)
			code := http.StatusBadGateway
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
				code = http.StatusGatewayTimeout
			}
			ari.WriteError(w, code, fmt.Sprintf("node %s holding %s %s did not answer: %v", loc.entity, rt.Resource, id, err))
			return
		}
		writeRelayed(w, res)
	})
}

// remoteSources returns, when every event source of a subscription
// request is a channel or bridge of one same other node, an id of one of
// them prefixed with its kind ("channels:<id>"), which owner resolves for
// "applications"; else "" (served here).
func remoteSources(c *cluster, params []string) string {
	var first string
	var node string
	n := 0
	for _, p := range params {
		for _, src := range strings.Split(p, ",") {
			scheme, id, _ := strings.Cut(strings.TrimSpace(src), ":")
			kind := map[string]string{"channel": "channels", "bridge": "bridges"}[scheme]
			if kind == "" || id == "" {
				return ""
			}
			loc, ok := c.owner(kind, id)
			if !ok || (node != "" && loc.entity != node) {
				return ""
			}
			node = loc.entity
			if first == "" {
				first = kind + ":" + id
			}
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return first
}

// relayQuery is the request's query without its credentials (the node that
// relays checked them).
func relayQuery(u *url.URL) string {
	q := u.Query()
	if !q.Has("api_key") {
		return u.RawQuery
	}
	q.Del("api_key")
	return q.Encode()
}

func writeRelayed(w http.ResponseWriter, res *proxyResponse) {
	h := res.HTTP
	if h == nil || h.Status == 0 {
		code := http.StatusBadGateway
		if res.Error == "" {
			code = http.StatusNoContent
		}
		if code == http.StatusNoContent {
			w.WriteHeader(code)
			return
		}
		ari.WriteError(w, code, res.Error)
		return
	}
	if h.ContentType != "" {
		w.Header().Set("Content-Type", h.ContentType)
	}
	w.Header().Set("Cache-Control", "no-cache, no-store")
	w.WriteHeader(h.Status)
	_, _ = w.Write(h.Body)
}

// mergedList answers GET /channels or /bridges with every node's.
func (s *Server) mergedList(w http.ResponseWriter, r *http.Request, c *cluster, rt ari.Route) {
	rec := &relayRecorder{header: http.Header{}, status: 200}
	s.ari.ServeHTTP(rec, r)
	if rec.status != 200 {
		writeRelayed(w, &proxyResponse{HTTP: &relayedHTTP{Status: rec.status, ContentType: rec.header.Get("Content-Type"), Body: rec.body.Bytes()}})
		return
	}
	var all []json.RawMessage
	if err := json.Unmarshal(rec.body.Bytes(), &all); err != nil {
		ari.WriteError(w, http.StatusInternalServerError, "list: "+err.Error())
		return
	}
	peers := c.livePeers()
	parts := make([][]json.RawMessage, len(peers))
	var wg sync.WaitGroup
	for i, e := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.relay(r.Context(), e, noApp, rt, "", r.Method, r.URL.EscapedPath(), relayQuery(r.URL), nil, "", listTimeout)
			if err != nil || res.HTTP == nil || res.HTTP.Status != 200 {
				s.log.Warn("ari: a node's list is missing", "node", e, "resource", rt.Resource, "err", err)
				return
			}
			_ = json.Unmarshal(res.HTTP.Body, &parts[i])
		}()
	}
	wg.Wait()
	for _, p := range parts {
		all = append(all, p...)
	}
	if all == nil {
		all = []json.RawMessage{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache, no-store")
	b, _ := json.Marshal(all)
	_, _ = w.Write(append(b, '\n'))
}

// refuseCreates says why the node takes no new channels or bridges: it is
// draining, or it is clustered and has lost its NATS connection (its
// resources would be out of the other nodes' reach). "" when it takes them.
func (s *Server) refuseCreates() string {
	if s.draining.Load() {
		return "node " + s.cfg.NodeID + " is draining: it takes no new channels or bridges; use another node"
	}
	if s.nats != nil && !s.nats.connected() {
		return "node " + s.cfg.NodeID + " has lost its NATS connection: it takes no new channels or bridges until it is back"
	}
	return ""
}
