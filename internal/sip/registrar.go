package sip

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
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

// BindingChange is what REGISTERs of one user changed on this node: the
// contacts bound or refreshed and those removed (by contact URI as
// stored). Nodes write changes, never a user's whole set, so that the
// contacts other nodes took for the same user survive.
type BindingChange struct {
	User string
	// ClearAll removes every contact of the user, whichever node holds
	// it, before the rest (Contact: *).
	ClearAll bool
	Upsert   []Binding
	Remove   []string
}

// LocationStore persists bindings (the catalog database, shared by nodes).
type LocationStore interface {
	// ApplyBindings applies the changes, in one transaction.
	ApplyBindings(ctx context.Context, changes []BindingChange) error
	// LoadBindings returns every binding that has not expired at now.
	LoadBindings(ctx context.Context, now time.Time) ([]Binding, error)
	// UserBindings returns one user's bindings that have not expired at
	// now, whichever node took them.
	UserBindings(ctx context.Context, user string, now time.Time) ([]Binding, error)
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
	// MaxContacts bounds the contacts of one user (more: 403). Default 10.
	MaxContacts int
	// MaxRequestContacts bounds the Contact headers of one REGISTER
	// (more: 403, before authentication). Default MaxContacts.
	MaxRequestContacts int
	// RatePerSource and BurstPerSource bound REGISTERs from one address
	// (token bucket; more are dropped and counted). Defaults 50/s, 200.
	RatePerSource  float64
	BurstPerSource int
	// Now is the clock (tests).
	Now func() time.Time
}

// Registrar answers REGISTER: digest authentication, then the user's
// bindings are updated in memory and the change is written behind to the
// LocationStore by one goroutine that coalesces changes per user, so a
// REGISTER never waits for the database. Contacts (what calls read) asks
// the store, so a node routes to phones registered through any node, and
// overlays the changes not written yet.
type Registrar struct {
	opts  RegistrarOptions
	auth  *Authenticator
	store LocationStore
	log   *slog.Logger
	// onChange hears the users whose bindings a REGISTER or a prune
	// changed (SetOnChange).
	onChange atomic.Pointer[func(user string)]

	mu    sync.RWMutex
	users map[string]*aor

	limMu   sync.Mutex
	buckets map[string]*bucket

	flushMu  sync.Mutex // one flush at a time, so Flush waits for the writer's
	dirtyMu  sync.Mutex
	dirty    map[string]*pendingChange // not written yet
	inflight map[string]*pendingChange // being written
	wake     chan struct{}
	failed   chan struct{} // a write failed: the writer arms its retry
	retry    time.Duration // registrarRetry when made
	stop     chan struct{}
	stopped  chan struct{}

	Registered atomic.Uint64 // successful REGISTERs
	Rejected   atomic.Uint64 // REGISTERs refused (4xx other than 401)
	Flooded    atomic.Uint64 // REGISTERs dropped by the per-source rate limit
	StoreErrs  atomic.Uint64 // failed writes to (or reads of) the location store

	writerPasses atomic.Uint64 // the writer's flushes (tests: none while idle)
}

// pendingChange is a user's coalesced change: clear first (Contact: *),
// then ops by contact URI (nil: removed).
type pendingChange struct {
	clear bool
	ops   map[string]*Binding
}

// merge applies later on top of p.
func (p *pendingChange) merge(later *pendingChange) {
	if later.clear {
		p.clear, p.ops = true, map[string]*Binding{}
	}
	for c, b := range later.ops {
		p.ops[c] = b
	}
}

// overlay applies p to bindings read from the store.
func (p *pendingChange) overlay(bs []Binding) []Binding {
	if p.clear {
		bs = nil
	}
	for c, b := range p.ops {
		bs = slices.DeleteFunc(bs, func(x Binding) bool { return sameContact(x.Contact, c) })
		if b != nil {
			bs = append(bs, *b)
		}
	}
	return bs
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
	if o.MaxRequestContacts <= 0 {
		o.MaxRequestContacts = o.MaxContacts
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
		buckets: map[string]*bucket{}, dirty: map[string]*pendingChange{}, wake: make(chan struct{}, 1),
		failed: make(chan struct{}, 1), retry: registrarRetry, stop: make(chan struct{}), stopped: make(chan struct{})}
	go r.writer()
	return r
}

// SetOnChange sets a function told the user whose bindings changed, after
// a REGISTER that changed them was answered and after a prune removed
// expired ones (ARI's EndpointStateChange); it must not block.
func (r *Registrar) SetOnChange(f func(user string)) { r.onChange.Store(&f) }

func (r *Registrar) changed(user string) {
	if f := r.onChange.Load(); f != nil && *f != nil {
		(*f)(user)
	}
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

// Contacts are the user's unexpired bindings, most recent first: those
// of the location store (taken by any node) with this node's changes not
// written yet on top. Without a store, or when it fails, the bindings this
// node knows.
func (r *Registrar) Contacts(user string) []Binding {
	now := r.opts.Now()
	out, ok := r.storeContacts(user, now)
	if !ok {
		out = r.localContacts(user)
	}
	out = slices.DeleteFunc(out, func(b Binding) bool { return !b.Expires.After(now) })
	slices.SortStableFunc(out, func(x, y Binding) int { return y.Expires.Compare(x.Expires) })
	return out
}

func (r *Registrar) localContacts(user string) []Binding {
	r.mu.RLock()
	a := r.users[user]
	r.mu.RUnlock()
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.bindings)
}

func (r *Registrar) storeContacts(user string, now time.Time) ([]Binding, bool) {
	if r.store == nil {
		return nil, false
	}
	// A change leaves dirty for inflight before it is written and leaves
	// inflight once written, so it is in one of them before the read or
	// after it, or the store has it: overlaying both looks, oldest first,
	// misses none (the changes are final states, applying one twice is
	// harmless).
	before := r.pendingOf(user)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	bs, err := r.store.UserBindings(ctx, user, now)
	if err != nil {
		r.StoreErrs.Add(1)
		r.log.Warn("registrar: location store read failed; using this node's bindings", "user", user, "err", err)
		return nil, false
	}
	for _, p := range append(before, r.pendingOf(user)...) {
		bs = p.overlay(bs)
	}
	return bs, true
}

// pendingOf copies the user's changes not yet written, oldest first.
func (r *Registrar) pendingOf(user string) []*pendingChange {
	r.dirtyMu.Lock()
	defer r.dirtyMu.Unlock()
	var out []*pendingChange
	for _, m := range []map[string]*pendingChange{r.inflight, r.dirty} {
		if p := m[user]; p != nil {
			out = append(out, &pendingChange{clear: p.clear, ops: maps.Clone(p.ops)})
		}
	}
	return out
}

// Online is the set of users with an unexpired binding (ARI endpoints):
// one read of the store, with this node's pending changes on top.
func (r *Registrar) Online(ctx context.Context) map[string]bool {
	now := r.opts.Now()
	by := map[string][]Binding{}
	var bs []Binding
	var err error
	if r.store != nil {
		bs, err = r.store.LoadBindings(ctx, now)
		if err != nil {
			r.StoreErrs.Add(1)
			r.log.Warn("registrar: location store read failed; using this node's bindings", "err", err)
		}
	}
	if r.store == nil || err != nil {
		r.mu.RLock()
		for u, a := range r.users {
			a.mu.Lock()
			by[u] = slices.Clone(a.bindings)
			a.mu.Unlock()
		}
		r.mu.RUnlock()
	} else {
		for _, b := range bs {
			by[b.User] = append(by[b.User], b)
		}
		r.dirtyMu.Lock()
		for _, m := range []map[string]*pendingChange{r.inflight, r.dirty} {
			for u, p := range m {
				by[u] = p.overlay(by[u])
			}
		}
		r.dirtyMu.Unlock()
	}
	out := map[string]bool{}
	for u, bs := range by {
		for _, b := range bs {
			if b.Expires.After(now) {
				out[u] = true
				break
			}
		}
	}
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
	var pruned []string
	r.mu.Lock()
	for u, a := range r.users {
		a.mu.Lock()
		n := len(a.bindings)
		a.bindings = slices.DeleteFunc(a.bindings, func(b Binding) bool { return !b.Expires.After(now) })
		if len(a.bindings) != n {
			pruned = append(pruned, u)
		}
		if len(a.bindings) == 0 {
			delete(r.users, u)
		}
		a.mu.Unlock()
	}
	r.mu.Unlock()
	for _, u := range pruned {
		r.changed(u)
	}
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
	if len(contacts) > r.opts.MaxRequestContacts {
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
	pc := &pendingChange{clear: wildcard, ops: map[string]*Binding{}}
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
				pc.ops[cur[i].Contact] = nil
				cur = slices.Delete(cur, i, i+1)
			}
			// Maybe bound through another node: removed from the store too.
			pc.ops[ch.contact] = nil
			continue
		}
		b := Binding{User: user, Contact: ch.contact, Expires: now.Add(ch.expires), CallID: callID, CSeq: cseq,
			Source: req.Source(), Transport: lower(req.Transport())}
		if ua := req.GetHeader("User-Agent"); ua != nil {
			b.UserAgent = truncStr(ua.Value(), 200)
		}
		if i >= 0 {
			if cur[i].Contact != b.Contact {
				pc.ops[cur[i].Contact] = nil // the same contact, written differently
			}
			cur[i] = b
		} else {
			cur = append(cur, b)
		}
		bb := b
		pc.ops[b.Contact] = &bb
	}
	if len(cur) > r.opts.MaxContacts {
		a.mu.Unlock()
		r.reject(req, tx, 403, "Forbidden (too many contacts)")
		return
	}
	a.bindings = cur
	a.mu.Unlock()
	if len(changes) > 0 || wildcard {
		r.markDirty(user, pc)
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
	if len(changes) > 0 || wildcard {
		r.changed(user)
	}
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

func (r *Registrar) markDirty(user string, pc *pendingChange) {
	if r.store == nil {
		return
	}
	r.dirtyMu.Lock()
	if p := r.dirty[user]; p != nil {
		p.merge(pc)
	} else {
		r.dirty[user] = pc
	}
	r.dirtyMu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// writer writes the dirty users' changes to the store; changes of one
// user coalesce, so its queue is bounded by the number of users.
//
// A failed write is tried again registrarRetry later (or at the next
// change); only then does a timer run, so that an idle registrar does not
// wake the process every second (a wake-up of its own phase, off the
// node's wake-up grid, for nothing: every node has a registrar).
func (r *Registrar) writer() {
	defer close(r.stopped)
	retry := time.NewTimer(r.retry)
	retry.Stop()
	defer retry.Stop()
	var due <-chan time.Time // retry.C while a failed write waits
	for {
		select {
		case <-r.wake:
		case <-due:
		case <-r.failed:
			retry.Reset(r.retry)
			due = retry.C
			continue
		case <-r.stop:
			r.flush()
			return
		}
		retry.Stop()
		due = nil
		r.writerPasses.Add(1)
		r.flush() // on failure it tells r.failed: the next pass arms the retry
	}
}

// registrarRetry is how long after a failed write the writer tries again.
var registrarRetry = time.Second

func (r *Registrar) flush() {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.dirtyMu.Lock()
	batch := r.dirty
	if len(batch) == 0 {
		r.dirtyMu.Unlock()
		return
	}
	r.dirty = map[string]*pendingChange{}
	r.inflight = batch
	r.dirtyMu.Unlock()
	changes := make([]BindingChange, 0, len(batch))
	for u, p := range batch {
		ch := BindingChange{User: u, ClearAll: p.clear}
		for c, b := range p.ops {
			if b == nil {
				ch.Remove = append(ch.Remove, c)
			} else {
				ch.Upsert = append(ch.Upsert, *b)
			}
		}
		changes = append(changes, ch)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := r.store.ApplyBindings(ctx, changes)
	cancel()
	r.dirtyMu.Lock()
	defer r.dirtyMu.Unlock()
	r.inflight = nil
	if err != nil {
		r.StoreErrs.Add(1)
		r.log.Error("registrar: location store write failed; retrying", "users", len(batch), "err", err)
		// What came in meanwhile goes on top of what failed.
		for u, p := range batch {
			if later := r.dirty[u]; later != nil {
				p.merge(later)
			}
			r.dirty[u] = p
		}
		// The writer tries again in registrarRetry (also after a failed
		// Flush of a test or shutdown).
		select {
		case r.failed <- struct{}{}:
		default:
		}
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
