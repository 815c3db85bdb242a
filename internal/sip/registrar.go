package sip

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Binding is one registered contact of a user (RFC 3261 10.3).
type Binding struct {
	// User is the registered SIP username (the address-of-record's user).
	User string
	// Contact is the contact URI, as the phone wrote it.
	Contact string
	Expires time.Time
	CallID  string
	CSeq    uint32
	// Source is the address the REGISTER came from; Transport its
	// transport (udp, tcp).
	Source    string
	Transport string
	UserAgent string
}

// LocationStore persists bindings (the catalog database, shared by nodes).
type LocationStore interface {
	// ReplaceBindings makes sets[user] each user's bindings (none:
	// unregistered), in one transaction.
	ReplaceBindings(ctx context.Context, sets map[string][]Binding) error
	// LoadBindings returns every binding that has not expired at now.
	LoadBindings(ctx context.Context, now time.Time) ([]Binding, error)
	// PruneBindings deletes the bindings expired at now.
	PruneBindings(ctx context.Context, now time.Time) (int64, error)
}

// RegistrarOptions configure a Registrar.
type RegistrarOptions struct {
	// MinExpires: a shorter non-zero expiry is answered 423 with
	// Min-Expires. Default 60 s.
	MinExpires time.Duration
	// MaxExpires caps the granted expiry. Default 3600 s.
	MaxExpires time.Duration
	// DefaultExpires is granted when the request names none. Default 3600 s.
	DefaultExpires time.Duration
	// MaxContacts bounds the contacts of one user and of one REGISTER
	// (more: 403). Default 10.
	MaxContacts int
	// RatePerSource and BurstPerSource bound REGISTERs from one address
	// (token bucket; more are dropped and counted). Defaults 50/s, 200.
	RatePerSource  float64
	BurstPerSource int
	// Now is the clock (tests).
	Now func() time.Time
}

// Registrar answers REGISTER: digest authentication, then the user's
// bindings are updated in memory (what calls read) and written behind to
// the LocationStore by one goroutine that coalesces updates per user, so
// a REGISTER never waits for the database.
type Registrar struct {
	opts  RegistrarOptions
	auth  *Authenticator
	store LocationStore
	log   *slog.Logger

	mu    sync.RWMutex
	users map[string]*aor

	limMu   sync.Mutex
	buckets map[string]*bucket

	flushMu sync.Mutex // one flush at a time, so Flush waits for the writer's
	dirtyMu sync.Mutex
	dirty   map[string]struct{}
	wake    chan struct{}
	stop    chan struct{}
	stopped chan struct{}

	Registered atomic.Uint64 // successful REGISTERs
	Rejected   atomic.Uint64 // REGISTERs refused (4xx other than 401)
	Flooded    atomic.Uint64 // REGISTERs dropped by the per-source rate limit
	StoreErrs  atomic.Uint64 // failed writes to the location store
}

type aor struct {
	mu       sync.Mutex
	bindings []Binding
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewRegistrar makes a registrar; store may be nil (memory only). Close
// stops its writer.
func NewRegistrar(auth *Authenticator, store LocationStore, o RegistrarOptions, log *slog.Logger) *Registrar {
	if o.MinExpires <= 0 {
		o.MinExpires = 60 * time.Second
	}
	if o.MaxExpires <= 0 {
		o.MaxExpires = 3600 * time.Second
	}
	if o.DefaultExpires <= 0 {
		o.DefaultExpires = min(3600*time.Second, o.MaxExpires)
	}
	if o.MaxContacts <= 0 {
		o.MaxContacts = 10
	}
	if o.RatePerSource <= 0 {
		o.RatePerSource = 50
	}
	if o.BurstPerSource <= 0 {
		o.BurstPerSource = 200
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	r := &Registrar{opts: o, auth: auth, store: store, log: log, users: map[string]*aor{},
		buckets: map[string]*bucket{}, dirty: map[string]struct{}{}, wake: make(chan struct{}, 1),
		stop: make(chan struct{}), stopped: make(chan struct{})}
	go r.writer()
	return r
}

// Load reads the unexpired bindings from the store (at start-up).
func (r *Registrar) Load(ctx context.Context) error {
	if r.store == nil {
		return nil
	}
	bs, err := r.store.LoadBindings(ctx, r.opts.Now())
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range bs {
		a := r.users[b.User]
		if a == nil {
			a = &aor{}
			r.users[b.User] = a
		}
		a.bindings = append(a.bindings, b)
	}
	return nil
}

// Close stops the writer after it wrote what is pending.
func (r *Registrar) Close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.stopped
}

// Auth is the registrar's authenticator (also used for INVITEs).
func (r *Registrar) Auth() *Authenticator { return r.auth }

// Contacts are the user's unexpired bindings, most recent first.
func (r *Registrar) Contacts(user string) []Binding {
	r.mu.RLock()
	a := r.users[user]
	r.mu.RUnlock()
	if a == nil {
		return nil
	}
	now := r.opts.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Binding, 0, len(a.bindings))
	for _, b := range a.bindings {
		if b.Expires.After(now) {
			out = append(out, b)
		}
	}
	slices.SortStableFunc(out, func(x, y Binding) int { return y.Expires.Compare(x.Expires) })
	return out
}

// Users lists the users with at least one binding (expired or not).
func (r *Registrar) Users() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.users))
	for u := range r.users {
		out = append(out, u)
	}
	return out
}

// Prune drops expired bindings from memory and the store.
func (r *Registrar) Prune(ctx context.Context) error {
	now := r.opts.Now()
	r.mu.Lock()
	for u, a := range r.users {
		a.mu.Lock()
		a.bindings = slices.DeleteFunc(a.bindings, func(b Binding) bool { return !b.Expires.After(now) })
		if len(a.bindings) == 0 {
			delete(r.users, u)
		}
		a.mu.Unlock()
	}
	r.mu.Unlock()
	if r.store == nil {
		return nil
	}
	_, err := r.store.PruneBindings(ctx, now)
	return err
}

// allow takes a token of src's bucket.
func (r *Registrar) allow(src string) bool {
	r.limMu.Lock()
	defer r.limMu.Unlock()
	now := r.opts.Now()
	b := r.buckets[src]
	if b == nil {
		if len(r.buckets) >= maxFailSources {
			clear(r.buckets) // spoofed-source flood: forget, stay bounded
		}
		b = &bucket{tokens: float64(r.opts.BurstPerSource), last: now}
		r.buckets[src] = b
	}
	b.tokens = min(float64(r.opts.BurstPerSource), b.tokens+now.Sub(b.last).Seconds()*r.opts.RatePerSource)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (r *Registrar) reject(req *sip.Request, tx sip.ServerTransaction, code int, reason string, hdrs ...sip.Header) {
	r.Rejected.Add(1)
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
}

// OnRegister handles one REGISTER request.
func (r *Registrar) OnRegister(req *sip.Request, tx sip.ServerTransaction) {
	if !r.allow(sourceIP(req.Source())) {
		r.Flooded.Add(1)
		return
	}
	user := req.To().Address.User
	if user == "" {
		r.reject(req, tx, 404, "Not Found")
		return
	}
	contacts := req.GetHeaders("Contact")
	if len(contacts) > r.opts.MaxContacts {
		r.reject(req, tx, 403, "Forbidden (too many contacts)")
		return
	}
	if _, res := r.auth.Check(context.Background(), req, tx, user); res != AuthOK {
		return
	}
	now := r.opts.Now()
	headerExpires := -1
	if h := req.GetHeader("Expires"); h != nil {
		v, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || v < 0 {
			r.reject(req, tx, 400, "Bad Request (Expires)")
			return
		}
		headerExpires = v
	}
	callID, cseq := req.CallID().Value(), req.CSeq().SeqNo

	type change struct {
		contact string
		expires time.Duration
	}
	var changes []change
	wildcard := false
	for _, h := range contacts {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			r.reject(req, tx, 400, "Bad Request (Contact)")
			return
		}
		if c.Address.Wildcard {
			wildcard = true
			continue
		}
		exp := headerExpires
		if v, ok := c.Params.Get("expires"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				r.reject(req, tx, 400, "Bad Request (Contact expires)")
				return
			}
			exp = n
		}
		d := r.opts.DefaultExpires
		if exp >= 0 {
			d = time.Duration(exp) * time.Second
		}
		if d > 0 && d < r.opts.MinExpires {
			r.reject(req, tx, 423, "Interval Too Brief",
				sip.NewHeader("Min-Expires", strconv.Itoa(int(r.opts.MinExpires/time.Second))))
			return
		}
		changes = append(changes, change{contact: c.Address.String(), expires: min(d, r.opts.MaxExpires)})
	}
	if wildcard && (len(contacts) != 1 || headerExpires != 0) {
		r.reject(req, tx, 400, "Bad Request (Contact * needs Expires: 0 and no other contact)")
		return
	}

	r.mu.Lock()
	a := r.users[user]
	if a == nil {
		a = &aor{}
		r.users[user] = a
	}
	r.mu.Unlock()

	a.mu.Lock()
	cur := slices.DeleteFunc(slices.Clone(a.bindings), func(b Binding) bool { return !b.Expires.After(now) })
	if wildcard {
		for _, b := range cur {
			if b.CallID == callID && cseq <= b.CSeq {
				a.mu.Unlock()
				r.reject(req, tx, 500, "Server Internal Error (out of order REGISTER)")
				return
			}
		}
		cur = nil
	}
	for _, ch := range changes {
		i := slices.IndexFunc(cur, func(b Binding) bool { return sameContact(b.Contact, ch.contact) })
		if i >= 0 && cur[i].CallID == callID && cseq <= cur[i].CSeq {
			a.mu.Unlock()
			r.reject(req, tx, 500, "Server Internal Error (out of order REGISTER)")
			return
		}
		if ch.expires == 0 {
			if i >= 0 {
				cur = slices.Delete(cur, i, i+1)
			}
			continue
		}
		b := Binding{User: user, Contact: ch.contact, Expires: now.Add(ch.expires), CallID: callID, CSeq: cseq,
			Source: req.Source(), Transport: lower(req.Transport())}
		if ua := req.GetHeader("User-Agent"); ua != nil {
			b.UserAgent = truncStr(ua.Value(), 200)
		}
		if i >= 0 {
			cur[i] = b
		} else {
			cur = append(cur, b)
		}
	}
	if len(cur) > r.opts.MaxContacts {
		a.mu.Unlock()
		r.reject(req, tx, 403, "Forbidden (too many contacts)")
		return
	}
	a.bindings = cur
	a.mu.Unlock()
	if len(changes) > 0 || wildcard {
		r.markDirty(user)
	}

	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	for _, b := range cur {
		var u sip.Uri
		if err := sip.ParseUri(b.Contact, &u); err != nil {
			continue
		}
		c := &sip.ContactHeader{Address: u, Params: sip.NewParams()}
		c.Params.Add("expires", strconv.Itoa(int(b.Expires.Sub(now).Round(time.Second)/time.Second)))
		res.AppendHeader(c)
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format(http1123)))
	r.Registered.Add(1)
	_ = tx.Respond(res)
}

const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"

// sameContact compares contact URIs as RFC 3261 19.1.4 does for what
// matters here: scheme, user, host and port (case-insensitive host).
func sameContact(a, b string) bool {
	if a == b {
		return true
	}
	var ua, ub sip.Uri
	if sip.ParseUri(a, &ua) != nil || sip.ParseUri(b, &ub) != nil {
		return false
	}
	return ua.Scheme == ub.Scheme && ua.User == ub.User && strings.EqualFold(ua.Host, ub.Host) && ua.Port == ub.Port
}

func truncStr(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (r *Registrar) markDirty(user string) {
	if r.store == nil {
		return
	}
	r.dirtyMu.Lock()
	r.dirty[user] = struct{}{}
	r.dirtyMu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// writer writes the dirty users' bindings to the store; updates of one
// user coalesce, so its queue is bounded by the number of users.
func (r *Registrar) writer() {
	defer close(r.stopped)
	for {
		select {
		case <-r.wake:
		case <-r.stop:
			r.flush()
			return
		}
		r.flush()
	}
}

func (r *Registrar) flush() {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.dirtyMu.Lock()
	users := r.dirty
	r.dirty = map[string]struct{}{}
	r.dirtyMu.Unlock()
	if len(users) == 0 {
		return
	}
	sets := make(map[string][]Binding, len(users))
	for u := range users {
		r.mu.RLock()
		a := r.users[u]
		r.mu.RUnlock()
		var bs []Binding
		if a != nil {
			a.mu.Lock()
			bs = slices.Clone(a.bindings)
			a.mu.Unlock()
		}
		sets[u] = bs
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := r.store.ReplaceBindings(ctx, sets)
	cancel()
	if err != nil {
		r.StoreErrs.Add(1)
		r.log.Error("registrar: location store write failed; retrying", "users", len(sets), "err", err)
		r.dirtyMu.Lock()
		for u := range sets {
			r.dirty[u] = struct{}{}
		}
		r.dirtyMu.Unlock()
	}
}

// Flush writes pending bindings now (tests, shutdown).
func (r *Registrar) Flush() { r.flush() }

// ContactTarget is the URI to send a request to a binding: its contact,
// with the transport it registered over.
func (b Binding) ContactTarget() string {
	var u sip.Uri
	if err := sip.ParseUri(b.Contact, &u); err != nil {
		return b.Contact
	}
	if b.Transport != "" && b.Transport != "udp" && !u.UriParams.Has("transport") {
		if u.UriParams == nil {
			u.UriParams = sip.NewParams()
		}
		u.UriParams.Add("transport", b.Transport)
	}
	return u.String()
}

// String is for logs.
func (b Binding) String() string {
	return fmt.Sprintf("%s -> %s (until %s)", b.User, b.Contact, b.Expires.Format(time.RFC3339))
}
