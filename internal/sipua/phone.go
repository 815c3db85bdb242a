// Package sipua is a small SIP phone (UAC) built on sipgo and tapedeck's RTP
// session: it places calls with real G.711 RTP, sends RFC 4733 DTMF and
// audio, re-INVITEs for hold, and hangs up. Tests use it as a real peer;
// the load generator builds on it.
package sipua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/tapedeck/tapedeck/internal/codec"
	"github.com/tapedeck/tapedeck/internal/dtmf"
	rtpsess "github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/sdp"
)

// Options configure a Phone.
type Options struct {
	User      string // From user
	Host      string // local address, default 127.0.0.1
	Transport string // "udp" (default) or "tcp"
	RTPMin    int    // RTP port range for calls (default 30000-39999)
	RTPMax    int
	Logger    *slog.Logger
	// AutoAnswer answers incoming calls with 200 OK (else 486 Busy Here);
	// answered calls are delivered on Incoming().
	AutoAnswer bool
	// IncomingHandler makes the media handler of each incoming call.
	IncomingHandler func() rtpsess.Handler
	// RingFor delays the answer of incoming calls (180 Ringing first).
	RingFor time.Duration
	// Reject, when not 0, answers incoming calls with this final code.
	Reject int
	// Poller, when set, reads the calls' RTP in batches (the load
	// generator: cheap on the CPU it shares with the server); otherwise
	// each call's sockets are read by goroutines at once.
	Poller *rtpsess.Poller
}

// Phone is a user agent that can hold many calls.
type Phone struct {
	opts   Options
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	dc     *sipgo.DialogClientCache
	ports  *rtpsess.Ports
	port   int
	laddr  string // the UDP listener's address (its key in sipgo's pool)
	closer []func() error

	mu    sync.Mutex
	calls map[string]*Call // by Call-ID

	ds       *sipgo.DialogServerCache
	incoming chan *Call
	refers   chan Refer
	serve    func()
}

// New starts a phone listening on an ephemeral port.
func New(o Options) (*Phone, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.User == "" {
		o.User = "alice"
	}
	if o.Transport == "" {
		o.Transport = "udp"
	}
	if o.RTPMin == 0 {
		o.RTPMin, o.RTPMax = 30000, 39999
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("tapedeck-sipua"), sipgo.WithUserAgentHostname(o.Host))
	if err != nil {
		return nil, err
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(o.Logger))
	if err != nil {
		return nil, err
	}
	p := &Phone{opts: o, ua: ua, srv: srv, calls: map[string]*Call{}}
	p.ports, err = rtpsess.NewPorts(o.Host, o.RTPMin, o.RTPMax)
	if err != nil {
		return nil, err
	}
	switch o.Transport {
	case "udp":
		conn, err := net.ListenPacket("udp", net.JoinHostPort(o.Host, "0"))
		if err != nil {
			return nil, err
		}
		p.port = conn.LocalAddr().(*net.UDPAddr).Port
		p.laddr = conn.LocalAddr().String()
		p.closer = append(p.closer, conn.Close)
		p.serve = func() { go srv.ServeUDP(conn) }
	case "tcp":
		l, err := net.Listen("tcp", net.JoinHostPort(o.Host, "0"))
		if err != nil {
			return nil, err
		}
		p.port = l.Addr().(*net.TCPAddr).Port
		p.closer = append(p.closer, l.Close)
		p.serve = func() { go srv.ServeTCP(l) }
	default:
		return nil, fmt.Errorf("sipua: unknown transport %q", o.Transport)
	}
	copts := []sipgo.ClientOption{sipgo.WithClientHostname(o.Host), sipgo.WithClientPort(p.port)}
	if o.Transport == "udp" {
		// Every request leaves from the listening socket, the address the
		// Via and Contact name (a trunk is matched by source address).
		// Without this sipgo sends from a fresh socket until the far end
		// has sent something to the listener.
		copts = append(copts, sipgo.WithClientConnectionAddr(p.laddr))
	}
	p.client, err = sipgo.NewClient(ua, copts...)
	if err != nil {
		return nil, err
	}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: o.User, Host: o.Host, Port: p.port}}
	if o.Transport == "tcp" {
		contact.Address.UriParams = sip.NewParams()
		contact.Address.UriParams.Add("transport", "tcp")
	}
	p.dc = sipgo.NewDialogClientCache(p.client, contact)
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := p.dc.ReadBye(req, tx); err != nil {
			if err := p.ds.ReadBye(req, tx); err != nil {
				_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
				return
			}
		}
		p.mu.Lock()
		c := p.calls[req.CallID().Value()]
		p.mu.Unlock()
		if c != nil {
			c.remoteHangup()
		}
	})
	p.ds = sipgo.NewDialogServerCache(p.client, contact)
	p.incoming = make(chan *Call, 64)
	p.refers = make(chan Refer, 16)
	srv.OnInvite(p.onInvite)
	srv.OnRefer(p.onRefer)
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = p.ds.ReadAck(req, tx)
	})
	// Serve only once every handler is registered.
	p.serve()
	if o.Transport == "udp" {
		// ServeUDP puts the listener into the transport's pool on its own
		// goroutine; a request sent before that would find no socket for
		// its local address. New returns once requests can use it.
		if err := p.waitListener(); err != nil {
			p.Close()
			return nil, err
		}
	}
	return p, nil
}

// waitListener waits until the UDP listener is in sipgo's connection pool.
func (p *Phone) waitListener() error {
	addr := p.laddr
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, err := p.ua.TransportLayer().GetConnection("udp", addr); err == nil {
			_, _ = c.TryClose() // (GetConnection took a reference; a listener stays open)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sipua: the UDP listener %s did not start", addr)
		}
		time.Sleep(time.Millisecond)
	}
}

// Incoming delivers answered incoming calls (AutoAnswer).
func (p *Phone) Incoming() <-chan *Call { return p.incoming }

// URI is the phone's SIP address (sip:user@host:port).
func (p *Phone) URI() string {
	return fmt.Sprintf("sip:%s@%s:%d", p.opts.User, p.opts.Host, p.port)
}

func (p *Phone) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil {
		if _, ok := to.Params.Get("tag"); ok {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
			return
		}
	}
	if !p.opts.AutoAnswer && p.opts.Reject == 0 {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 486, "Busy Here", nil))
		return
	}
	d, err := p.ds.ReadInvite(req, tx)
	if err != nil {
		return
	}
	if p.opts.RingFor > 0 {
		_ = d.Respond(180, "Ringing", nil)
		select {
		case <-time.After(p.opts.RingFor):
		case <-tx.Done():
			return
		}
	}
	if p.opts.Reject != 0 {
		_ = d.Respond(p.opts.Reject, "Rejected", nil)
		return
	}
	remote, err := sdp.Parse(req.Body())
	if err != nil {
		_ = d.Respond(400, "Bad Request", nil)
		return
	}
	choice, err := sdp.Negotiate(remote, []string{"PCMU", "PCMA"})
	if err != nil {
		_ = d.Respond(488, "Not Acceptable Here", nil)
		return
	}
	mcfg, err := p.ports.ListenConfig(p.opts.Poller)
	if err != nil {
		_ = d.Respond(503, "Service Unavailable", nil)
		return
	}
	c := &Call{p: p, in: d, ended: make(chan struct{}), sdpVer: 1, Answer: remote, choice: choice}
	c.local = sdp.Local{IP: p.ports.IP(), Port: mcfg.LocalPort(), SessionID: sdp.NewSessionID(), Version: 1}
	var h rtpsess.Handler
	if p.opts.IncomingHandler != nil {
		h = p.opts.IncomingHandler()
	}
	var dt uint8
	if choice.HasDTMF {
		dt = choice.DTMF.PayloadType
	}
	mcfg.Handler, mcfg.Remote, mcfg.PayloadType, mcfg.DTMFPayloadType = h, remote.Addr, choice.Audio.PayloadType, dt
	c.media = rtpsess.NewSession(mcfg)
	if err := c.media.Start(); err != nil {
		c.media.Close()
		_ = d.Respond(503, "Service Unavailable", nil)
		return
	}
	c.codec, _ = codec.ByName(choice.Audio.Name)
	body, err := sdp.Answer(c.local, choice)
	if err != nil {
		c.closeMedia()
		_ = d.Respond(500, "Server Internal Error", nil)
		return
	}
	p.mu.Lock()
	p.calls[req.CallID().Value()] = c
	c.established = true
	p.mu.Unlock()
	go func() {
		select {
		case <-d.Context().Done():
			c.remoteHangup()
		case <-c.ended:
		}
	}()
	if err := d.RespondSDP(body); err != nil { // blocks until the ACK
		c.remoteHangup()
		return
	}
	select {
	case p.incoming <- c:
	default:
	}
}

// Close hangs up nothing; it stops the phone's transports.
func (p *Phone) Close() error {
	p.mu.Lock()
	calls := make([]*Call, 0, len(p.calls))
	for _, c := range p.calls {
		if c.established {
			calls = append(calls, c)
		}
	}
	p.mu.Unlock()
	for _, c := range calls {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = c.Hangup(ctx)
		cancel()
	}
	for _, c := range p.closer {
		c()
	}
	p.client.Close()
	p.srv.Close()
	return p.ua.Close()
}

// CallOptions tune one call.
type CallOptions struct {
	// Body replaces the SDP offer (e.g. malformed on purpose); NoOffer sends
	// an INVITE without a body.
	Body    []byte
	NoOffer bool
	Codecs  []string // offered codecs, default PCMU, PCMA
	DTMFPT  uint8    // telephone-event payload type, default 101; 0 keeps the default
	NoDTMF  bool
	// OnProvisional sees 1xx responses.
	OnProvisional func(code int, body []byte)
	// Handler receives the media the far end sends (optional).
	Handler rtpsess.Handler
}

// ErrRejected carries a final non-2xx response.
type ErrRejected struct {
	Code   int
	Reason string
	// Contact is the response's Contact (a 3xx redirection's target).
	Contact string
}

func (e *ErrRejected) Error() string { return fmt.Sprintf("call rejected: %d %s", e.Code, e.Reason) }

// Call is one outgoing call.
type Call struct {
	p           *Phone
	d           *sipgo.DialogClientSession
	in          *sipgo.DialogServerSession // incoming calls
	media       *rtpsess.Session
	local       sdp.Local
	choice      sdp.Choice
	codec       codec.Codec
	ended       chan struct{}
	endOnce     sync.Once
	sdpVer      uint64
	established bool // answered and ACKed; guarded by Phone.mu
	// SetupTime is INVITE → 200 OK.
	SetupTime time.Duration
	// Answer is the far end's SDP.
	Answer *sdp.Media
}

// Dial calls target (e.g. "sip:305@127.0.0.1:5060") and waits until it is
// answered or rejected, or ctx ends (then the call is canceled).
func (p *Phone) Dial(ctx context.Context, target string, o CallOptions) (*Call, error) {
	var uri sip.Uri
	if err := sip.ParseUri(target, &uri); err != nil {
		return nil, fmt.Errorf("sipua: target: %w", err)
	}
	if p.opts.Transport == "tcp" {
		if uri.UriParams == nil {
			uri.UriParams = sip.NewParams()
		}
		uri.UriParams.Add("transport", "tcp")
	}
	if len(o.Codecs) == 0 {
		o.Codecs = []string{"PCMU", "PCMA"}
	}
	dtmfPT := o.DTMFPT
	if dtmfPT == 0 {
		dtmfPT = 101
	}
	if o.NoDTMF {
		dtmfPT = 0
	}
	mcfg, err := p.ports.ListenConfig(p.opts.Poller)
	if err != nil {
		return nil, err
	}
	c := &Call{p: p, ended: make(chan struct{}), sdpVer: 1}
	c.local = sdp.Local{IP: p.ports.IP(), Port: mcfg.LocalPort(), SessionID: sdp.NewSessionID(), Version: 1}
	mcfg.Handler = o.Handler
	c.media = rtpsess.NewSession(mcfg)
	body := o.Body
	if body == nil && !o.NoOffer {
		body, err = sdp.Offer(c.local, o.Codecs, dtmfPT)
		if err != nil {
			c.media.Close()
			return nil, err
		}
	}
	if err := c.media.Start(); err != nil {
		c.media.Close()
		return nil, err
	}

	from := sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: p.opts.User, Host: p.opts.Host}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req := sip.NewRequest(sip.INVITE, uri)
	req.AppendHeader(&from)
	if body != nil {
		req.SetBody(body)
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	if p.opts.Transport == "tcp" {
		req.SetTransport("TCP")
	}
	start := time.Now()
	d, err := p.dc.WriteInvite(ctx, req)
	if err != nil {
		c.media.Close()
		return nil, err
	}
	c.d = d
	p.mu.Lock()
	p.calls[req.CallID().Value()] = c
	p.mu.Unlock()
	err = d.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
		if res.IsProvisional() && o.OnProvisional != nil {
			o.OnProvisional(res.StatusCode, res.Body())
		}
		return nil
	}})
	if err != nil {
		c.closeMedia()
		p.forget(c)
		var de *sipgo.ErrDialogResponse
		if errors.As(err, &de) {
			rej := &ErrRejected{Code: de.Res.StatusCode, Reason: de.Res.Reason}
			if c := de.Res.Contact(); c != nil {
				rej.Contact = c.Address.String()
			}
			return nil, rej
		}
		return nil, err
	}
	c.SetupTime = time.Since(start)
	res := d.InviteResponse
	ackBody := []byte(nil)
	if o.NoOffer {
		// Late offer: the 200 OK carries tapedeck's offer; answer in the ACK.
		remote, err := sdp.Parse(res.Body())
		if err != nil {
			return nil, fmt.Errorf("sipua: offer in 200 OK: %w", err)
		}
		choice, err := sdp.Negotiate(remote, o.Codecs)
		if err != nil {
			return nil, err
		}
		ackBody, _ = sdp.Answer(c.local, choice)
		c.Answer, c.choice = remote, choice
	} else if o.Body == nil {
		remote, err := sdp.Parse(res.Body())
		if err != nil {
			_ = d.Ack(ctx)
			return nil, fmt.Errorf("sipua: answer SDP: %w", err)
		}
		choice, err := sdp.Negotiate(remote, o.Codecs)
		if err != nil {
			return nil, err
		}
		c.Answer, c.choice = remote, choice
	}
	if ackBody != nil {
		ack := sip.NewRequest(sip.ACK, res.Contact().Address)
		ack.SetBody(ackBody)
		ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		err = d.WriteAck(ctx, ack)
	} else {
		err = d.Ack(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("sipua: ACK: %w", err)
	}
	if c.Answer != nil {
		var dt uint8
		if c.choice.HasDTMF {
			dt = c.choice.DTMF.PayloadType
		}
		c.media.Update(c.Answer.Addr, c.choice.Audio.PayloadType, dt)
		c.codec, _ = codec.ByName(c.choice.Audio.Name)
	}
	p.mu.Lock()
	c.established = true
	p.mu.Unlock()
	go func() {
		select {
		case <-d.Context().Done():
			c.remoteHangup()
		case <-c.ended:
		}
	}()
	return c, nil
}

func (p *Phone) forget(c *Call) {
	var id string
	if c.in != nil {
		id = c.in.InviteRequest.CallID().Value()
	} else {
		id = c.d.InviteRequest.CallID().Value()
	}
	p.mu.Lock()
	delete(p.calls, id)
	p.mu.Unlock()
}

// Port is the phone's SIP port.
func (p *Phone) Port() int { return p.port }

func (c *Call) remoteHangup() {
	c.endOnce.Do(func() { close(c.ended) })
	c.closeMedia()
}

func (c *Call) closeMedia() { c.media.Close() }

// Ended is closed when the far end hangs up (or Hangup is called).
func (c *Call) Ended() <-chan struct{} { return c.ended }

// Media is the call's RTP session.
func (c *Call) Media() *rtpsess.Session { return c.media }

// Codec is the negotiated audio codec.
func (c *Call) Codec() codec.Codec { return c.codec }

// Hangup sends BYE.
func (c *Call) Hangup(ctx context.Context) error {
	select {
	case <-c.ended:
		return nil
	default:
	}
	c.endOnce.Do(func() { close(c.ended) })
	defer c.p.forget(c)
	defer c.closeMedia()
	if c.in != nil {
		return c.in.Bye(ctx)
	}
	return c.d.Bye(ctx)
}

// SendDTMF sends digits as RFC 4733 events (duration each, gap between).
func (c *Call) SendDTMF(digits string, duration, gap time.Duration) error {
	for i, d := range digits {
		if _, ok := dtmf.DigitToEvent(d); !ok {
			return fmt.Errorf("sipua: bad digit %q", d)
		}
		if err := c.media.SendDigit(d, duration); err != nil {
			return err
		}
		if i < len(digits)-1 {
			time.Sleep(gap)
		}
	}
	return nil
}

// SendAudio sends linear samples as 20 ms packets paced in real time.
func (c *Call) SendAudio(ctx context.Context, samples []int16) error {
	frame := make([]byte, 160)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for off := 0; off+160 <= len(samples); off += 160 {
		n := c.codec.Encode(frame, samples[off:off+160])
		if err := c.media.WriteAudio(frame[:n], 160); err != nil {
			return err
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.ended:
			return nil
		}
	}
	return nil
}

// Reinvite sends a re-INVITE with the given direction (sendonly = hold)
// and returns the response code.
func (c *Call) Reinvite(ctx context.Context, dir sdp.Direction) (int, error) {
	c.sdpVer++
	l := c.local
	l.Version = c.sdpVer
	l.Direction = dir
	body, err := sdp.Offer(l, []string{c.choice.Audio.Name}, c.choice.DTMF.PayloadType)
	if err != nil {
		return 0, err
	}
	req := sip.NewRequest(sip.INVITE, c.d.InviteResponse.Contact().Address)
	req.SetBody(body)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res, err := c.d.Do(ctx, req)
	if err != nil {
		return 0, err
	}
	if res.IsSuccess() {
		ack := sip.NewRequest(sip.ACK, c.d.InviteResponse.Contact().Address)
		ack.AppendHeader(sip.HeaderClone(req.CSeq()))
		ack.CSeq().MethodName = sip.ACK
		if err := c.d.WriteRequest(ack); err != nil {
			return res.StatusCode, err
		}
	}
	return res.StatusCode, nil
}

// NoopHandler discards media.
type NoopHandler struct{}

// OnAudio implements rtp.Handler.
func (NoopHandler) OnAudio(*rtp.Packet, uint64) {}

// OnDTMF implements rtp.Handler.
func (NoopHandler) OnDTMF(rune, int, bool) {}

// Target builds a SIP URI for an extension at host:port.
func Target(exten, hostport string) string {
	host, port, _ := net.SplitHostPort(hostport)
	n, _ := strconv.Atoi(port)
	return fmt.Sprintf("sip:%s@%s:%d", exten, host, n)
}

// Options sends an OPTIONS request (a keep-alive probe, as a dispatcher
// sends) to target and returns the final response's status code.
func (p *Phone) Options(ctx context.Context, target string) (int, error) {
	var uri sip.Uri
	if err := sip.ParseUri(target, &uri); err != nil {
		return 0, err
	}
	req := sip.NewRequest(sip.OPTIONS, uri)
	if p.opts.Transport == "tcp" {
		req.SetTransport("TCP")
	}
	res, err := p.client.Do(ctx, req)
	if err != nil {
		return 0, err
	}
	return res.StatusCode, nil
}

// Refer is a transfer request (REFER) one of the phone's calls received:
// the phone accepted it (202); the test places the call to
// Target, as a phone would, and reports how it went with NotifyTransfer.
type Refer struct {
	Call   *Call
	Target string
}

// Refers delivers the REFERs the phone accepted.
func (p *Phone) Refers() <-chan Refer { return p.refers }

func (p *Phone) onRefer(req *sip.Request, tx sip.ServerTransaction) {
	p.mu.Lock()
	c := p.calls[req.CallID().Value()]
	p.mu.Unlock()
	to := req.GetHeader("Refer-To")
	switch {
	case c == nil || (c.d == nil && c.in == nil):
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	case to == nil:
		_ = tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request (no Refer-To)", nil))
		return
	}
	if err := tx.Respond(sip.NewResponseFromRequest(req, 202, "Accepted", nil)); err != nil {
		return
	}
	target := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(to.Value()), "<"), ">")
	select {
	case p.refers <- Refer{Call: c, Target: target}:
	default:
	}
}

// NotifyTransfer reports the progress of a transfer the call was asked
// for (a NOTIFY with a message/sipfrag status line); a final code ends the
// implicit subscription.
func (c *Call) NotifyTransfer(ctx context.Context, code int, reason string) (int, error) {
	var req *sip.Request
	if c.in != nil {
		req = sip.NewRequest(sip.NOTIFY, c.in.InviteRequest.Contact().Address)
	} else {
		req = sip.NewRequest(sip.NOTIFY, c.d.InviteResponse.Contact().Address)
	}
	req.AppendHeader(sip.NewHeader("Event", "refer"))
	state := "active;expires=60"
	if code >= 200 {
		state = "terminated;reason=noresource"
	}
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
	req.SetBody([]byte(fmt.Sprintf("SIP/2.0 %d %s\r\n", code, reason)))
	var res *sip.Response
	var err error
	if c.in != nil {
		res, err = c.in.Do(ctx, req)
	} else {
		res, err = c.d.Do(ctx, req)
	}
	if err != nil {
		return 0, err
	}
	return res.StatusCode, nil
}
