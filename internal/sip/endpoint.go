// Package sip is tapedeck's SIP user agent on top of sipgo: it listens on
// UDP and TCP, keeps UAS dialogs (To-tags, Contact, Record-Route route sets,
// 2xx retransmission until ACK, in-dialog BYE and re-INVITE, CANCEL) and
// hands new calls to a Handler. It knows nothing of media: SDP bodies pass
// through as bytes.
package sip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/tapedeck/tapedeck/internal/gopool"
	"github.com/tapedeck/tapedeck/internal/rawsock"
)

// Handler receives new inbound calls.
type Handler interface {
	// Invite is called for each new INVITE, in a goroutine of its own. The
	// handler answers or rejects the dialog, now or later, and sets its
	// DialogHandler with SetHandler before returning.
	Invite(d *Dialog)
}

// Options configure an Endpoint.
type Options struct {
	Listen       string   // host:port; port 0 picks a free port shared by UDP and TCP
	Transports   []string // "udp", "tcp"
	ExternalHost string   // host for Contact; defaults to the listen host
	UserAgent    string
	Logger       *slog.Logger
	// MalformedLogLevel is the level of the (rate-limited, truncated) log
	// line for a message that cannot be parsed; the default is Info.
	MalformedLogLevel slog.Level

	// TCPIdleTimeout closes an accepted TCP connection after this long
	// without traffic, unless a dialog uses it: 0 means
	// DefaultTCPIdleTimeout, a negative value never.
	TCPIdleTimeout time.Duration
	// TCPMaxConns caps accepted TCP connections: 0 means half the
	// descriptor limit (at least 16, at most 10,000: each connection holds
	// a 32 KB read buffer), so that UDP, RTP and HTTP keep descriptors when
	// the cap is reached.
	TCPMaxConns int
	// TCPMaxPerSource caps accepted TCP connections from one IP address: 0
	// means DefaultTCPMaxPerSource, a negative value no cap.
	TCPMaxPerSource int
	// SessionExpires is the session interval (RFC 4028) offered to callers
	// that support timer without asking for one: 0 means
	// DefaultSessionExpires, a negative value turns session timers off.
	SessionExpires time.Duration
	// SessionMinSE is the smallest interval accepted (422 below it): 0
	// means DefaultMinSE.
	SessionMinSE time.Duration
}

// Endpoint is the SIP stack of one node.
type Endpoint struct {
	opts    Options
	log     *slog.Logger
	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	client  *sipgo.Client
	handler Handler
	// registrar answers REGISTER (nil: 405, as before there was one).
	registrar atomic.Pointer[Registrar]

	host string
	port int

	dialogs   sync.Map // dialog id -> *Dialog (UAS)
	outs      sync.Map // dialog id -> *OutDialog (UAC)
	uac       *sipgo.DialogClientCache
	libLog    *slog.Logger // for sipgo
	accepting atomic.Bool
	// unready is why the node is not ready (SetUnready; nil or "": ready).
	unready atomic.Pointer[string]
	active  sync.WaitGroup

	listeners []func() error
	closeOnce sync.Once

	stats counters
}

// New builds an endpoint; Start binds its sockets.
func New(opts Options, h Handler) (*Endpoint, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "tapedeck"
	}
	if len(opts.Transports) == 0 {
		opts.Transports = []string{"udp", "tcp"}
	}
	host, _, err := net.SplitHostPort(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("sip: listen address: %w", err)
	}
	if opts.ExternalHost == "" {
		opts.ExternalHost = host
	}
	// sipgo's own records go through libLog: counted, truncated,
	// rate-limited, and below ERROR only when debugging.
	setLibraryLogger.Do(func() {
		sip.SetDefaultLogger(slog.New(newLibLog(opts.Logger.Handler(), nil, opts.MalformedLogLevel)))
	})
	e := &Endpoint{opts: opts, log: opts.Logger, host: host, handler: h}
	libLogger := slog.New(newLibLog(opts.Logger.Handler(), e, opts.MalformedLogLevel))
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(opts.UserAgent), sipgo.WithUserAgentHostname(opts.ExternalHost),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(libLogger)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(libLogger)))
	if err != nil {
		return nil, err
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(libLogger))
	if err != nil {
		return nil, err
	}
	e.ua, e.srv, e.libLog = ua, srv, libLogger
	e.accepting.Store(true)
	srv.OnInvite(e.route(sip.INVITE))
	srv.OnAck(e.route(sip.ACK))
	srv.OnBye(e.route(sip.BYE))
	srv.OnCancel(e.route(sip.CANCEL))
	srv.OnOptions(e.route(sip.OPTIONS))
	srv.OnUpdate(e.route(sip.UPDATE))
	srv.OnNotify(e.route(sip.NOTIFY))
	srv.OnRegister(e.route(sip.REGISTER))
	srv.OnNoRoute(e.route(""))
	return e, nil
}

// route is the guarded handler of a method ("" for the others).
func (e *Endpoint) route(m sip.RequestMethod) sipgo.RequestHandler {
	switch m {
	case sip.INVITE:
		return e.handle(e.onInvite)
	case sip.ACK:
		return e.handle(e.onAck)
	case sip.BYE:
		return e.handle(e.onBye)
	case sip.CANCEL:
		return e.handle(e.onCancel)
	case sip.OPTIONS:
		return e.handle(e.onOptions)
	case sip.UPDATE:
		return e.handle(e.onUpdate)
	case sip.REGISTER:
		return e.handle(e.onRegister)
	case sip.NOTIFY:
		return e.handle(e.onNotify)
	}
	return e.handle(e.onOther)
}

// handle wraps a request handler: the request is validated before the
// handler reads any header, and a panic in the handler fails that request
// (500 when it can still be answered) instead of the process.
func (e *Endpoint) handle(h sipgo.RequestHandler) sipgo.RequestHandler {
	serve := e.serve(h)
	return func(req *sip.Request, tx sip.ServerTransaction) {
		// On a kept goroutine: see package gopool.
		gopool.Run(func() { serve(req, tx) })
	}
}

// serve checks a request and hands it to h.
func (e *Endpoint) serve(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		defer e.recovered("request", func() {
			if req.Method != sip.ACK {
				_ = tx.Respond(sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil))
			}
		})
		if code, reason := checkRequest(req); code != 0 {
			e.stats.invalid.Add(1)
			e.log.Debug("sip: request refused", "method", req.Method, "code", code, "reason", reason, "source", req.Source())
			if req.Method != sip.ACK { // an ACK is never answered
				res := sip.NewResponseFromRequest(req, code, reason, nil)
				res.SipVersion = "SIP/2.0" // not the request's: a 505 names the version we speak
				_ = tx.Respond(res)
			}
			return
		}
		h(req, tx)
	}
}

// SetRegistrar makes the endpoint answer REGISTER with r.
func (e *Endpoint) SetRegistrar(r *Registrar) { e.registrar.Store(r) }

// Registrar is the endpoint's registrar (nil without one).
func (e *Endpoint) Registrar() *Registrar { return e.registrar.Load() }

func (e *Endpoint) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	r := e.registrar.Load()
	if r == nil {
		e.onOther(req, tx)
		return
	}
	r.OnRegister(req, tx)
}

// onOther answers the methods tapedeck does not implement.
func (e *Endpoint) onOther(req *sip.Request, tx sip.ServerTransaction) {
	res := sip.NewResponseFromRequest(req, 405, "Method Not Allowed", nil)
	res.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"))
	_ = tx.Respond(res)
}

// Start binds the listeners and serves them in the background.
func (e *Endpoint) Start() error {
	_, portStr, _ := net.SplitHostPort(e.opts.Listen)
	port, _ := strconv.Atoi(portStr)
	var udp net.PacketConn
	var tcp net.Listener
	var err error
	wantUDP, wantTCP := false, false
	for _, t := range e.opts.Transports {
		switch t {
		case "udp":
			wantUDP = true
		case "tcp":
			wantTCP = true
		}
	}
	for attempt := 0; attempt < 20; attempt++ {
		udp, tcp, err = bindPair(e.host, port, wantUDP, wantTCP)
		if err == nil || port != 0 {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("sip: listen: %w", err)
	}
	// Every call needs descriptors (RTP, RTCP, TCP): raise the soft limit.
	soft, hard, err := raiseNofile()
	if err != nil {
		e.log.Warn("sip: cannot read the descriptor limit", "err", err)
	} else {
		e.log.Info("descriptor limit", "nofile_soft", soft, "nofile_hard", hard)
	}
	if udp != nil {
		e.port = udp.LocalAddr().(*net.UDPAddr).Port
	}
	if tcp != nil {
		e.port = tcp.Addr().(*net.TCPAddr).Port
	}
	// The client and dialog cache exist before the first request is
	// served: handlers (ACK, BYE, re-INVITE) read them.
	client, err := sipgo.NewClient(e.ua, sipgo.WithClientHostname(e.opts.ExternalHost), sipgo.WithClientPort(e.port), sipgo.WithClientLogger(e.libLog))
	if err != nil {
		if udp != nil {
			udp.Close()
		}
		if tcp != nil {
			tcp.Close()
		}
		return err
	}
	e.client = client
	e.uac = sipgo.NewDialogClientCache(client, e.contact("udp"))
	if udp != nil {
		go func() {
			if err := e.srv.ServeUDP(udp); err != nil && !errors.Is(err, net.ErrClosed) {
				e.log.Error("sip udp listener stopped; SIP over UDP is down", "err", err)
			}
		}()
		e.listeners = append(e.listeners, udp.Close)
	}
	if tcp != nil {
		tcp = e.limitTCP(tcp, soft)
		go func() {
			if err := e.srv.ServeTCP(tcp); err != nil && !errors.Is(err, net.ErrClosed) {
				e.log.Error("sip tcp listener stopped; SIP over TCP is down", "err", err)
			}
		}()
		e.listeners = append(e.listeners, tcp.Close)
	}
	return nil
}

// limitTCP wraps the TCP listener in the configured caps; soft is the
// descriptor limit (0 unknown).
func (e *Endpoint) limitTCP(l net.Listener, soft uint64) net.Listener {
	maxConns := e.opts.TCPMaxConns
	if maxConns <= 0 {
		maxConns = min(max(int(min(soft, 1<<30)/2), minTCPMaxConns), maxAutoTCPConns)
		if soft == 0 {
			maxConns = maxAutoTCPConns
		}
	} else if soft > 0 && uint64(maxConns) >= soft {
		e.log.Warn("sip: sip.tcp.max_connections is not below the descriptor limit; running out of descriptors stalls UDP, RTP and HTTP too", "max_connections", maxConns, "nofile", soft)
	}
	perSource := e.opts.TCPMaxPerSource
	if perSource == 0 {
		perSource = DefaultTCPMaxPerSource
	}
	idle := e.opts.TCPIdleTimeout
	if idle == 0 {
		idle = DefaultTCPIdleTimeout
	}
	e.log.Info("sip tcp limits", "max_connections", maxConns, "max_per_source", perSource, "idle_timeout", idle)
	return newTCPListener(l, e, maxConns, perSource, idle)
}

// bindPair binds UDP and TCP on the same port (port 0: UDP picks, TCP follows).
func bindPair(host string, port int, wantUDP, wantTCP bool) (net.PacketConn, net.Listener, error) {
	var udp net.PacketConn
	if wantUDP {
		c, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return nil, nil, err
		}
		// Its reads and writes stay out of the scheduler's syscall
		// state (package rawsock): a dispatcher's OPTIONS probe each
		// second no longer wakes the runtime's monitor.
		raw, err := rawsock.NewUDP(c.(*net.UDPConn))
		if err != nil {
			c.Close()
			return nil, nil, err
		}
		udp = raw
		port = c.LocalAddr().(*net.UDPAddr).Port
	}
	if !wantTCP {
		return udp, nil, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		if udp != nil {
			udp.Close()
		}
		return nil, nil, err
	}
	return udp, l, nil
}

// Port is the bound SIP port.
func (e *Endpoint) Port() int { return e.port }

// Addr is host:port of the SIP listener.
func (e *Endpoint) Addr() string { return net.JoinHostPort(e.host, strconv.Itoa(e.port)) }

// StopAccepting makes new INVITEs fail with 503 (graceful shutdown).
func (e *Endpoint) StopAccepting() { e.accepting.Store(false) }

// SetUnready says why the node should be sent no new calls ("" when it
// is ready): OPTIONS then answers 503, so that a dispatcher probing with
// OPTIONS (Kamailio's) skips the node, while INVITEs are still taken.
func (e *Endpoint) SetUnready(reason string) { e.unready.Store(&reason) }

// Close stops the listeners and the user agent.
func (e *Endpoint) Close() error {
	e.closeOnce.Do(func() {
		e.accepting.Store(false)
		for _, c := range e.listeners {
			c()
		}
		if e.client != nil {
			e.client.Close()
		}
		e.srv.Close()
		e.ua.Close()
	})
	return nil
}

func (e *Endpoint) contact(transport string) sip.ContactHeader {
	uri := sip.Uri{Scheme: "sip", User: "tapedeck", Host: e.opts.ExternalHost, Port: e.port}
	if t := lower(transport); t != "" && t != "udp" {
		uri.UriParams = sip.NewParams()
		uri.UriParams.Add("transport", t)
	}
	return sip.ContactHeader{Address: uri}
}

// setLibraryLogger sets sipgo's package-level logger once: it is a global
// read by its transports without synchronisation.
var setLibraryLogger sync.Once

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

// onOptions answers keep-alive probes: 200 while calls are accepted, 503
// while draining, so a dispatcher in front (Kamailio's dispatcher, a SIP
// load balancer) takes the node out before it stops.
func (e *Endpoint) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if !e.accepting.Load() {
		res = sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
	} else if r := e.unready.Load(); r != nil && *r != "" {
		res = sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
		res.AppendHeader(sip.NewHeader("Warning", `399 tapedeck "not ready: `+strings.ReplaceAll(*r, `"`, `'`)+`"`))
	}
	res.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"))
	res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	if err := tx.Respond(res); err != nil {
		e.log.Debug("options response failed", "err", err)
	}
}

func (e *Endpoint) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	// CANCELs matching a pending INVITE are handled by the transaction
	// layer (200 + 487); this one matched nothing.
	_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
}

func (e *Endpoint) lookup(req *sip.Request) *Dialog {
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	if v, ok := e.dialogs.Load(id); ok {
		return v.(*Dialog)
	}
	return nil
}

func (e *Endpoint) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if d := e.lookup(req); d != nil {
		d.ack(req)
		return
	}
	if e.uac != nil {
		e.onUACAck(req)
	}
}

func (e *Endpoint) onBye(req *sip.Request, tx sip.ServerTransaction) {
	d := e.lookup(req)
	if d == nil {
		if e.uac != nil && e.onUACBye(req, tx) {
			return
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	if err := tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil)); err != nil {
		e.log.Debug("bye response failed", "err", err)
	}
	d.terminate(EndRemoteBye)
}

func (e *Endpoint) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil {
		if _, ok := to.Params.Get("tag"); ok {
			e.onReinvite(req, tx)
			return
		}
	}
	if !e.accepting.Load() {
		res := sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
		res.AppendHeader(sip.NewHeader("Retry-After", "30"))
		_ = tx.Respond(res)
		return
	}
	timer, code, reason := e.negotiateTimer(req)
	switch code {
	case 0:
	case 422:
		e.reject422(req, tx)
		return
	default:
		_ = tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
		return
	}
	if err := tx.Respond(sip.NewResponseFromRequest(req, 100, "Trying", nil)); err != nil {
		return
	}
	d, err := e.newDialog(req, tx)
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request", nil))
		return
	}
	d.timer = timer
	e.active.Add(1)
	defer e.active.Done()
	func() {
		defer e.recovered("call", d.fail)
		e.handler.Invite(d)
	}()
	// Keep the INVITE transaction's handler alive until a final response
	// is sent or the transaction ends (CANCEL, transport error).
	select {
	case <-d.finalSent:
	case <-tx.Done():
		d.terminate(EndCanceled)
	}
}

func (e *Endpoint) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	d := e.lookup(req)
	if d == nil {
		if e.uac != nil && e.onUACReinvite(req, tx) {
			return
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	d.reinvite(req, tx)
}
