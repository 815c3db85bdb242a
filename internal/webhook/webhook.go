// Package webhook sends tapedeck's outgoing notifications (Ozeki's
// RecordCompleted to a FinishedUrl, OzML applications' notifications, and
// whatever later features need) through one sender:
//
//   - Every notification is first a row of the outbox in the catalog
//     database (meta.Outbox), so a receiver that is down or a tapedeck
//     restart loses nothing; it is removed from the queue when delivered or
//     given up.
//
//   - Delivery is a POST with a per-request timeout; a failure (no
//     connection, a timeout, a status other than 2xx) is retried with
//     exponential back-off (Options.Backoff doubling to MaxBackoff) until
//     Options.MaxAttempts attempts, then given up with a log line.
//
//   - Targets are checked against an allow-list (internal/netguard) when a
//     notification is accepted (CheckTarget, so a command can refuse it)
//     and again on the address each connection dials; an attempt the
//     allow-list refuses is given up at once. A host name whose lookup
//     fails for a reason that passes (a timeout, a server failure:
//     ErrUnresolved) does not lose a notification: Notify queues it, and
//     its address is checked when it is dialled.
//
//   - Each request carries a signature header when a secret is configured:
//
//     X-Tapedeck-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
//     A receiver recomputes the HMAC over the timestamp, a dot and the raw
//     body, compares in constant time and rejects old timestamps.
//
//   - Across nodes (a shared PostgreSQL outbox), each notification is
//     delivered once even when the node that queued it dies: a node claims
//     the rows it delivers for Options.Lease (a claim that has not expired
//     is never taken by another node, and a delivery is settled before its
//     claim ends), and it says it is alive every NodeDeadAfter/3. The
//     pending rows of a node not seen for NodeDeadAfter are claimed and
//     delivered by the others. A node killed between a receiver's 2xx and
//     the settling write can still cause that one notification to be sent
//     again by its successor (at least once at that instant); each request
//     carries X-Tapedeck-Delivery (the outbox row id, the same at every
//     attempt) so a receiver can drop the repeat.
//
//   - Figures: tapedeck_webhook_delivered_total, _failed_total (given up),
//     _retried_total, _taken_over_total and the gauge
//     tapedeck_webhook_queue_depth; of the notifications Notify keeps in
//     memory: the gauge tapedeck_webhook_unqueued, _queue_retries_total
//     and _lost_total.
//
//   - A notification the catalog does not take in time (Notify: the
//     caller's deadline, a busy or locked database, a lost connection) is
//     kept in memory and its insert retried with back-off until it
//     commits; Close tries once more and logs each one it could not keep.
//
// Send only writes the row and hands it to the sender: it never waits for
// the network, so a call or the media path is never blocked by a receiver.
//
// The common case costs one statement per notification and a share of
// another: Send stores the row already claimed (by the node's direct
// claimant, Node+"/direct", for Lease, and not due before the claim ends)
// and hands it to a delivery worker from memory, with no claim that
// re-reads it; the deliveries are marked delivered in batches (one UPDATE
// per SettleEvery or maxBatch deliveries). A failed attempt is settled as
// before and retried by the outbox loop. A row whose node dies before it is
// settled is due when its claim ends (taken over by another node then, as
// any claim), and a sender that starts again releases what its node's
// direct claimant held (ReleaseClaims), so a restart delivers it at once.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/tapedeck/tapedeck/internal/contain"
	"github.com/tapedeck/tapedeck/internal/metrics"
	"github.com/tapedeck/tapedeck/internal/netguard"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/wakegrid"
)

// SignatureHeader is the header of the request signature.
const SignatureHeader = "X-Tapedeck-Signature"

// DeliveryHeader carries a notification's id, the same at every attempt
// and on every node: a receiver can drop a repeat.
const DeliveryHeader = "X-Tapedeck-Delivery"

// MaxBackoff caps the delay between two attempts.
const MaxBackoff = 10 * time.Minute

// MaxReply bounds the reply body kept for OnReply.
const MaxReply = 1 << 20

// Figures, on the process-wide registry.
var (
	mDelivered = promauto.With(metrics.Registry).NewCounter(prometheus.CounterOpts{
		Name: "tapedeck_webhook_delivered_total", Help: "Notifications delivered (2xx answer)."})
	mFailed = promauto.With(metrics.Registry).NewCounter(prometheus.CounterOpts{
		Name: "tapedeck_webhook_failed_total", Help: "Notifications given up after the last attempt."})
	mRetried = promauto.With(metrics.Registry).NewCounter(prometheus.CounterOpts{
		Name: "tapedeck_webhook_retried_total", Help: "Failed attempts that will be retried."})
	mDepth = promauto.With(metrics.Registry).NewGauge(prometheus.GaugeOpts{
		Name: "tapedeck_webhook_queue_depth", Help: "Notifications waiting in the outbox."})
	mTakenOver = promauto.With(metrics.Registry).NewCounter(prometheus.CounterOpts{
		Name: "tapedeck_webhook_taken_over_total", Help: "Notifications of a node not seen for node_dead_seconds claimed by this one."})
)

// Options configure a Sender.
type Options struct {
	Outbox meta.Outbox
	// Node is this node's id: a node sends its own rows only.
	Node string
	// Allow is the allow-list of non-public targets (nil: public only).
	Allow *netguard.Policy
	// Secret signs requests (SignatureHeader); empty: unsigned.
	Secret []byte
	// Timeout bounds one attempt (default 10 s).
	Timeout time.Duration
	// MaxAttempts before giving up (default 8).
	MaxAttempts int
	// Backoff is the first retry delay (default 2 s).
	Backoff time.Duration
	// Workers deliver in parallel (default 4).
	Workers int
	// Lease is how long a claimed notification is this node's alone
	// (default five times Timeout plus 10 s: a claimed batch is attempted and
	// settled within it).
	Lease time.Duration
	// NodeDeadAfter: the pending notifications of a node not seen for this
	// long are taken over by the others (default 30 s; heartbeats every
	// third of it).
	NodeDeadAfter time.Duration
	Log           *slog.Logger
	// OnReply, if set, gets the body of each delivered notification whose
	// answer has one (e.g. an OzML document for the call). It runs on its
	// own goroutine.
	OnReply func(Reply)
	// SettleEvery bounds how long a delivery waits to be marked
	// delivered with others in one write (default 100 ms). A crash in that
	// window sends those notifications again (X-Tapedeck-Delivery lets a
	// receiver drop the repeat).
	SettleEvery time.Duration
	// Signers sign the notifications of a kind in their own way (e.g.
	// Twilio's X-Twilio-Signature for recording status callbacks) instead
	// of with SignatureHeader. A signer runs at each attempt, from the
	// stored row, so that a notification sent after a restart is signed.
	Signers map[string]Signer
}

// Signer sets the signature headers of one attempt of a notification.
type Signer func(ctx context.Context, it meta.OutboxItem, req *http.Request) error

// Notification is what a feature sends.
type Notification struct {
	// Kind names it (RecordCompleted, IncomingCall, ...).
	Kind   string
	CallID string
	URL    string
	// Form is sent as application/x-www-form-urlencoded, or in the
	// query string with Method GET.
	Form url.Values
	// Method is POST (default, "") or GET: the form's parameters are then
	// added to the URL's query and the request has no body.
	Method string
	// Order, when set, delivers the notifications of one key one at a
	// time, in the order they were queued (meta.OutboxItem.OrderKey): the
	// next waits until the one before is delivered or given up. They go
	// through the outbox loop, never the direct path.
	Order string
}

// Reply is a delivered notification's answer.
type Reply struct {
	Kind, CallID, URL string
	ContentType       string
	Body              []byte
}

// Sender delivers the outbox.
type Sender struct {
	o      Options
	client *http.Client
	wake   chan struct{}
	stop   context.CancelFunc
	done   chan struct{}
	once   sync.Once
	now    func() time.Time

	beatDone chan struct{}

	// The direct path: rows stored claimed by Send, delivered from memory.
	running  atomic.Bool
	slots    chan struct{}        // a slot per row in direct or in flight
	direct   chan meta.OutboxItem // rows for the direct workers
	settle   chan int64           // delivered ids waiting to be marked
	workers  sync.WaitGroup       // the direct workers
	settled  chan struct{}        // closed when the settler has returned
	claimant string

	keeper // what Notify could not store yet (keep.go)
}

// directQueue bounds the notifications waiting for a direct worker: beyond
// it Send stores rows unclaimed, for the outbox loop.
const directQueue = 1024

// maxBatch bounds the deliveries marked in one write.
const maxBatch = 128

// ErrTarget: the URL may not be notified (scheme, credentials, or a host
// outside the allow-list).
var ErrTarget = errors.New("webhook: target not allowed")

// ErrUnresolved: the target's host name could not be resolved for a
// reason that passes (the lookup timed out, the DNS server failed). The
// error is also ErrTarget, so that a command refuses such a URL (it
// cannot be checked now); Notify queues the notification anyway, and the
// address is checked when each attempt dials it. A name that does not
// exist (NXDOMAIN) is plain ErrTarget.
var ErrUnresolved = errors.New("webhook: target's host name not resolved now")

// lookupTimeout bounds the DNS lookup of CheckTarget.
const lookupTimeout = 2 * time.Second

// unresolvedError is ErrTarget and ErrUnresolved.
type unresolvedError struct {
	host string
	err  error
}

func (e *unresolvedError) Error() string {
	return fmt.Sprintf("%v: %s could not be resolved now (%v); try again", ErrTarget, e.host, e.err)
}

func (e *unresolvedError) Is(target error) bool {
	return target == ErrTarget || target == ErrUnresolved
}

func (e *unresolvedError) Unwrap() error { return e.err }

// transientLookup reports whether a failed lookup may succeed later: a
// timeout or a server failure, not a name that does not exist.
func transientLookup(err error) bool {
	var de *net.DNSError
	if errors.As(err, &de) {
		return !de.IsNotFound && (de.IsTimeout || de.IsTemporary)
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// New makes a sender; Start runs it.
func New(o Options) *Sender {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.Backoff <= 0 {
		o.Backoff = 2 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Lease <= 0 {
		o.Lease = 5*o.Timeout + 10*time.Second
	}
	if o.NodeDeadAfter <= 0 {
		o.NodeDeadAfter = 30 * time.Second
	}
	if o.SettleEvery <= 0 {
		o.SettleEvery = 100 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	c := o.Allow.Client()
	c.Timeout = o.Timeout
	// Notifications are POSTs: a redirect is not followed (it would turn
	// into a GET); the receiver's 3xx is a failed attempt.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s := &Sender{o: o, client: c, wake: make(chan struct{}, 1), done: make(chan struct{}), now: time.Now,
		slots: make(chan struct{}, directQueue), direct: make(chan meta.OutboxItem, directQueue),
		settle: make(chan int64, directQueue), claimant: o.Node + "/direct"}
	s.keepDefaults()
	return s
}

// Client is the HTTP client with the sender's guard (for requests that
// need an answer at once, such as an OzML application's document).
func (s *Sender) Client() *http.Client { return s.client }

// Allow is the sender's allow-list.
func (s *Sender) Allow() *netguard.Policy { return s.o.Allow }

// Secret is the signing secret (empty: unsigned).
func (s *Sender) Secret() []byte { return s.o.Secret }

// Start runs delivery in the background until Close.
func (s *Sender) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.beat(ctx) // alive before the first claim
	// What this node's direct claimant held when it stopped or died is due
	// now (one sender per node: nothing of it is in flight).
	s.release(ctx)
	s.beatDone = make(chan struct{})
	go s.heartbeats(ctx)
	s.workers.Add(s.o.Workers)
	s.settled = make(chan struct{})
	go s.settler()
	for range s.o.Workers {
		go s.directWorker(ctx)
	}
	s.running.Store(true)
	go s.run(ctx)
}

func (s *Sender) release(ctx context.Context) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if n, err := s.o.Outbox.ReleaseClaims(rctx, s.claimant, s.now()); err != nil {
		s.o.Log.Warn("webhook: releasing this node's claims", "err", err)
	} else if n > 0 {
		s.o.Log.Info("webhook: notifications claimed before a stop are due again", "count", n)
	}
}

// heartbeats says this node is alive every NodeDeadAfter/3 until ctx ends.
func (s *Sender) heartbeats(ctx context.Context) {
	defer close(s.beatDone)
	// On the node's wake-up grid (wakegrid), as the outbox's look in run:
	// both fall on the same instants, RTP poller reads and readiness
	// checks, instead of two wake-ups of the process of their own.
	every := s.o.NodeDeadAfter / 3
	t := time.NewTimer(wakegrid.Until(every))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			func() {
				defer contain.Recover(s.o.Log, "webhook", nil)
				s.beat(ctx)
			}()
			t.Reset(wakegrid.Until(every))
		}
	}
}

func (s *Sender) beat(ctx context.Context) {
	bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.o.Outbox.Heartbeat(bctx, s.o.Node, s.now()); err != nil && ctx.Err() == nil {
		s.o.Log.Warn("webhook: heartbeat not recorded", "err", err)
	}
}

// Close stops delivering (what is queued stays in the outbox for the next
// start) and waits for the attempts in flight. It first tries once more
// to store what Notify kept in memory, and logs as an error each
// notification it could not.
func (s *Sender) Close() {
	s.once.Do(func() {
		s.closeKept()
		if s.stop == nil {
			close(s.done)
			return
		}
		s.running.Store(false)
		s.stop()
		<-s.done
		<-s.beatDone
		// The direct workers stop (what they had not attempted stays
		// claimed, released below) and the settler writes what was
		// delivered.
		s.workers.Wait()
		close(s.settle)
		<-s.settled
		s.release(context.Background())
	})
}

// CheckTarget refuses a URL that is not plain http(s), carries
// credentials, or whose host is (or resolves to) an address the
// allow-list does not allow.
func (s *Sender) CheckTarget(ctx context.Context, raw string) error {
	return CheckTarget(ctx, s.o.Allow, raw)
}

// CheckTarget is Sender.CheckTarget for a policy.
func CheckTarget(ctx context.Context, allow *netguard.Policy, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return fmt.Errorf("%w: %q is not an absolute URL", ErrTarget, raw)
	}
	if err := netguard.CheckURL(u); err != nil {
		return fmt.Errorf("%w: %v", ErrTarget, err)
	}
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("%w: bad port %q", ErrTarget, port)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		defer cancel()
		addrs, err = allow.LookupNetIP(ctx, "ip", host)
		if err != nil {
			if transientLookup(err) {
				return &unresolvedError{host: host, err: err}
			}
			return fmt.Errorf("%w: %s does not resolve: %v", ErrTarget, host, err)
		}
	}
	for _, a := range addrs {
		if !allow.Allows(host, a, uint16(p)) {
			return fmt.Errorf("%w: %s (%s) is not a public address and not in webhook.allow", ErrTarget, host, a)
		}
	}
	return nil
}

// Send queues a notification in the outbox and wakes the sender; it
// returns once the row is stored, never waiting for the receiver. A
// failure to store it is the caller's: Notify keeps what a slow catalog
// could not store.
func (s *Sender) Send(ctx context.Context, n Notification) (int64, error) {
	it, err := s.prepare(ctx, n)
	if err != nil {
		return 0, err
	}
	return s.store(ctx, it)
}

// Prepare checks a notification's target and method and makes its outbox
// row, unclaimed, for a caller that stores it in a transaction of its own
// with the change it tells of (meta.NodeLiveness.SettleLost): both are
// stored or neither. Wake the sender once that transaction commits; the
// outbox loop delivers the row (any node's, once, as every row). A host
// name that cannot be resolved now (ErrUnresolved) makes its row anyway,
// as Notify does: its address is checked when it is dialled.
func (s *Sender) Prepare(ctx context.Context, n Notification) (meta.OutboxItem, error) {
	it, err := s.prepare(ctx, n)
	if errors.Is(err, ErrUnresolved) {
		return s.row(n)
	}
	return it, err
}

// prepare checks a notification's target and method and makes its row.
func (s *Sender) prepare(ctx context.Context, n Notification) (meta.OutboxItem, error) {
	if err := s.CheckTarget(ctx, n.URL); err != nil {
		return meta.OutboxItem{}, err
	}
	return s.row(n)
}

// row makes a notification's row.
func (s *Sender) row(n Notification) (meta.OutboxItem, error) {
	it := meta.OutboxItem{Node: s.o.Node, Kind: n.Kind, CallID: n.CallID, URL: n.URL,
		ContentType: "application/x-www-form-urlencoded", Body: []byte(n.Form.Encode()), OrderKey: n.Order}
	switch strings.ToUpper(n.Method) {
	case "", http.MethodPost:
	case http.MethodGet:
		// The outbox keeps a GET as a row without a body or content type.
		it.URL, it.ContentType, it.Body = WithQuery(n.URL, n.Form), "", []byte{}
	default:
		return meta.OutboxItem{}, fmt.Errorf("webhook: method %q: GET or POST", n.Method)
	}
	return it, nil
}

// store writes a prepared row (claimed for a direct worker when one is
// free) and hands it on.
func (s *Sender) store(ctx context.Context, it meta.OutboxItem) (int64, error) {
	direct := false
	// An ordered notification waits for the older ones of its key: the
	// outbox loop's claim knows them, a direct worker does not.
	if s.running.Load() && it.OrderKey == "" {
		select {
		case s.slots <- struct{}{}:
			direct = true
		default: // the workers are behind: the loop takes it from the outbox
		}
	}
	if direct {
		it.ClaimedBy, it.ClaimUntil = s.claimant, s.now().Add(s.o.Lease)
	}
	id, err := s.o.Outbox.Enqueue(ctx, it)
	if err != nil {
		if direct {
			<-s.slots
		}
		return 0, err
	}
	mDepth.Inc()
	if direct {
		it.ID = id
		s.direct <- it // a slot is held: never blocks
		return id, nil
	}
	s.Wake()
	return id, nil
}

// directWorker delivers the rows Send stored claimed, until ctx ends.
func (s *Sender) directWorker(ctx context.Context) {
	defer s.workers.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-s.direct:
			s.deliverDirect(ctx, it)
			<-s.slots
		}
	}
}

func (s *Sender) deliverDirect(ctx context.Context, it meta.OutboxItem) {
	defer contain.Recover(s.o.Log, "webhook", func() { s.failed(it, errAttemptPanicked); s.Wake() })
	// The attempt and its settling must end within the claim: one that
	// waited too long here is left to the loop, due when its claim ends.
	if time.Until(it.ClaimUntil) < s.o.Timeout+s.o.SettleEvery+time.Second {
		s.Wake()
		return
	}
	reply, err := s.post(ctx, it)
	if ctx.Err() != nil {
		return // shutting down: Close releases the claim
	}
	if err != nil {
		s.failed(it, err)
		s.Wake() // the loop retries it when due
		return
	}
	s.delivered(it, reply)
	s.settle <- it.ID
}

// settler marks the direct deliveries delivered, up to maxBatch per write,
// a write at most SettleEvery after a delivery; it writes what is left and
// returns when Close closes s.settle.
func (s *Sender) settler() {
	defer close(s.settled)
	var batch []int64
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.o.Outbox.SettleDelivered(sctx, batch, s.now()); err != nil {
			s.o.Log.Error("webhook: delivered but not recorded; they may be sent again", "count", len(batch), "err", err)
		}
		cancel()
		mDepth.Sub(float64(len(batch)))
		batch = batch[:0]
	}
	for {
		select {
		case id, ok := <-s.settle:
			if !ok {
				timer.Stop()
				flush()
				return
			}
			if len(batch) == 0 {
				timer.Reset(s.o.SettleEvery)
			}
			batch = append(batch, id)
			if len(batch) >= maxBatch {
				timer.Stop()
				flush()
			}
		case <-timer.C:
			flush()
		}
	}
}

// WithQuery adds form's parameters to rawURL's query (after those it has).
func WithQuery(rawURL string, form url.Values) string {
	if len(form) == 0 {
		return rawURL
	}
	frag := ""
	if i := strings.IndexByte(rawURL, '#'); i >= 0 {
		rawURL, frag = rawURL[:i], rawURL[i:]
	}
	sep := "?"
	if strings.Contains(rawURL, "?") {
		sep = "&"
		if strings.HasSuffix(rawURL, "?") || strings.HasSuffix(rawURL, "&") {
			sep = ""
		}
	}
	return rawURL + sep + form.Encode() + frag
}

// Wake makes the sender look at the outbox now.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Sign is the signature header value of body at time t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a signature header against body (maxAge: how old its
// timestamp may be).
func Verify(secret []byte, header string, body []byte, now time.Time, maxAge time.Duration) bool {
	var ts, v1 string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			v1 = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || now.Sub(time.Unix(sec, 0)).Abs() > maxAge {
		return false
	}
	want := Sign(secret, time.Unix(sec, 0), body)
	return hmac.Equal([]byte(want), []byte("t="+ts+",v1="+v1))
}

func (s *Sender) run(ctx context.Context) {
	defer close(s.done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		s.deliverDueContained(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := time.Minute
		if n, err := s.o.Outbox.PendingCount(ctx, s.o.Node); err == nil {
			mDepth.Set(float64(n))
		}
		if t, ok, err := s.o.Outbox.NextClaimable(ctx, s.o.Node, s.deadBefore()); err != nil {
			wait = time.Second
		} else if ok {
			wait = max(t.Sub(s.now()), 0)
		}
		// Another node may die with notifications queued: look again, on
		// the node's wake-up grid (see heartbeats).
		if every := s.o.NodeDeadAfter / 3; wait >= every {
			wait = wakegrid.Until(every)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// deadBefore: a node not seen since then is taken to be dead.
func (s *Sender) deadBefore() time.Time { return s.now().Add(-s.o.NodeDeadAfter) }

// deliverDueContained is deliverDue that survives a panic (the outbox
// store's bug): logged, counted, and the loop goes on at its next wake-up.
func (s *Sender) deliverDueContained(ctx context.Context) {
	defer contain.Recover(s.o.Log, "webhook", nil)
	s.deliverDue(ctx)
}

// deliverDue delivers the due items, Workers at a time, until none is due.
func (s *Sender) deliverDue(ctx context.Context) {
	limit := 4 * s.o.Workers
	for ctx.Err() == nil {
		items, err := s.o.Outbox.Claim(ctx, s.o.Node, s.now(), s.o.Lease, s.deadBefore(), limit)
		if err != nil {
			if ctx.Err() == nil {
				s.o.Log.Error("webhook: reading the outbox", "err", err)
			}
			return
		}
		if len(items) == 0 {
			return
		}
		for _, it := range items {
			if it.Node != s.o.Node {
				mTakenOver.Inc()
				s.o.Log.Info("webhook: taking over a notification of a node not seen for a while", "node", it.Node,
					"kind", it.Kind, "call", it.CallID, "id", it.ID)
			}
		}
		sem := make(chan struct{}, s.o.Workers)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var delivered []int64
		for _, it := range items {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				// A panic in one delivery (a signer's or the client's bug)
				// fails that attempt only: retried or given up as any
				// failed attempt, logged with its stack and counted.
				defer contain.Recover(s.o.Log, "webhook", func() { s.failed(it, errAttemptPanicked) })
				if s.attempt(ctx, it) {
					mu.Lock()
					delivered = append(delivered, it.ID)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		// One write for the batch's deliveries: the outbox database's
		// writes, not the receivers, bound the rate. A crash before it
		// sends them again (at least once).
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.o.Outbox.SettleDelivered(sctx, delivered, s.now()); err != nil {
			s.o.Log.Error("webhook: delivered but not recorded; they may be sent again", "count", len(delivered), "err", err)
		}
		cancel()
		if len(items) < limit {
			// Nothing else was due at the claim: what was queued since
			// woke the loop (Send), and a retry that fell due meanwhile
			// is what the loop's NextClaimable finds; no claim that would
			// come back empty.
			return
		}
	}
}

// attempt delivers one item once; it reports a delivery (settled by the
// caller) and settles failures itself.
func (s *Sender) attempt(ctx context.Context, it meta.OutboxItem) (delivered bool) {
	reply, err := s.post(ctx, it)
	if ctx.Err() != nil {
		return false // shutting down: the row stays pending
	}
	if err == nil {
		s.delivered(it, reply)
		return true
	}
	s.failed(it, err)
	return false
}

// delivered counts and logs a delivery and hands its reply on.
func (s *Sender) delivered(it meta.OutboxItem, reply Reply) {
	mDelivered.Inc()
	s.o.Log.Info("webhook delivered", "kind", it.Kind, "call", it.CallID, "url", redact(it.URL), "attempts", it.Attempts+1)
	if s.o.OnReply != nil && len(bytes.TrimSpace(reply.Body)) > 0 {
		contain.Go(s.o.Log, "webhook-reply", func() { s.o.OnReply(reply) }, nil)
	}
}

var errAttemptPanicked = errors.New("webhook: the attempt failed (an internal error, logged with its stack)")

// failed settles a failed attempt of it: pending again after the back-off,
// or given up after the last attempt.
func (s *Sender) failed(it meta.OutboxItem, err error) {
	attempts := it.Attempts + 1
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// An address the allow-list refuses (a name that now resolves to
	// one) will not be allowed by retrying.
	refused := errors.Is(err, netguard.ErrRefused)
	if attempts >= s.o.MaxAttempts || refused {
		mFailed.Inc()
		s.o.Log.Error("webhook given up", "kind", it.Kind, "call", it.CallID, "url", redact(it.URL), "attempts", attempts,
			"refused", refused, "err", err)
		if serr := s.o.Outbox.Settle(sctx, it.ID, meta.OutboxFailed, attempts, s.now(), err.Error()); serr != nil {
			s.o.Log.Error("webhook: settling", "id", it.ID, "err", serr)
		}
		return
	}
	delay := s.o.Backoff << min(attempts-1, 20)
	if delay > MaxBackoff || delay <= 0 {
		delay = MaxBackoff
	}
	mRetried.Inc()
	s.o.Log.Warn("webhook attempt failed; retrying", "kind", it.Kind, "call", it.CallID, "url", redact(it.URL), "attempts", attempts, "retry_in", delay, "err", err)
	if serr := s.o.Outbox.Settle(sctx, it.ID, meta.OutboxPending, attempts, s.now().Add(delay), err.Error()); serr != nil {
		s.o.Log.Error("webhook: settling", "id", it.ID, "err", serr)
	}
}

func (s *Sender) post(ctx context.Context, it meta.OutboxItem) (Reply, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	method, reqBody := http.MethodPost, io.Reader(bytes.NewReader(it.Body))
	if it.IsGET() {
		method, reqBody = http.MethodGet, nil
	}
	req, err := http.NewRequestWithContext(ctx, method, it.URL, reqBody)
	if err != nil {
		return Reply{}, err
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", it.ContentType)
	}
	req.Header.Set("User-Agent", "tapedeck-webhook")
	req.Header.Set(DeliveryHeader, strconv.FormatInt(it.ID, 10))
	if sign := s.o.Signers[it.Kind]; sign != nil {
		if err := sign(ctx, it, req); err != nil {
			return Reply{}, fmt.Errorf("signing: %w", err)
		}
	} else if len(s.o.Secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(s.o.Secret, s.now(), it.Body))
	}
	res, err := s.client.Do(req)
	if err != nil {
		return Reply{}, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, MaxReply))
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return Reply{}, fmt.Errorf("answered %s", res.Status)
	}
	if err != nil {
		return Reply{}, err
	}
	return Reply{Kind: it.Kind, CallID: it.CallID, URL: it.URL, ContentType: res.Header.Get("Content-Type"), Body: body}, nil
}

// redact drops a URL's query (it may carry tokens) for logs.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(bad url)"
	}
	u.RawQuery, u.User = "", nil
	return u.String()
}
