package webhook

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/tapedeck/tapedeck/internal/netguard"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	tu "github.com/tapedeck/tapedeck/internal/testutil"
)

// dnsServer is a real DNS server on a UDP socket of 127.0.0.1 whose
// behaviour the test switches: it does not answer, answers every A query
// with an address, answers NXDOMAIN or SERVFAIL.
type dnsServer struct {
	conn    net.PacketConn
	mode    atomic.Int32
	addr    atomic.Pointer[netip.Addr]
	queries atomic.Int64
}

const (
	dnsSilent = iota
	dnsAnswer
	dnsNXDomain
	dnsServFail
)

func startDNS(t *testing.T) *dnsServer {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &dnsServer{conn: c}
	t.Cleanup(func() { c.Close() })
	go d.serve()
	return d
}

func (d *dnsServer) set(mode int, a string) {
	if a != "" {
		ip := netip.MustParseAddr(a)
		d.addr.Store(&ip)
	}
	d.mode.Store(int32(mode))
}

func (d *dnsServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		d.queries.Add(1)
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		mode := d.mode.Load()
		if mode == dnsSilent {
			continue
		}
		rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
		switch mode {
		case dnsNXDomain:
			rh.RCode = dnsmessage.RCodeNameError
		case dnsServFail:
			rh.RCode = dnsmessage.RCodeServerFailure
		}
		b := dnsmessage.NewBuilder(nil, rh)
		b.EnableCompression()
		if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
			continue
		}
		if a := d.addr.Load(); mode == dnsAnswer && q.Type == dnsmessage.TypeA && a != nil && a.Is4() {
			rrh := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 0}
			if b.AResource(rrh, dnsmessage.AResource{A: a.As4()}) != nil {
				continue
			}
		}
		msg, err := b.Finish()
		if err != nil {
			continue
		}
		d.conn.WriteTo(msg, from)
	}
}

// resolver asks d only (the pure Go resolver, dialled to d's socket).
func (d *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var nd net.Dialer
		return nd.DialContext(ctx, "udp", d.conn.LocalAddr().String())
	}}
}

// TestNotifyKeptWhileDNSSlow: a notification to a host name whose DNS
// server does not answer (the target check's lookup times out) is not
// lost: Notify queues it, its attempts fail while the server is silent,
// and once the server answers it is delivered, once. A server failure
// (SERVFAIL) is the same. A name that does not exist (NXDOMAIN) or that
// resolves to an address the allow-list refuses is still refused at once
// and nothing is queued; a name that was not resolved when queued and then
// resolves to a refused address is given up at its first attempt that
// dials, without reaching it.
func TestNotifyKeptWhileDNSSlow(t *testing.T) {
	dns := startDNS(t)
	h := newHook(t)
	h.start()
	_, port, _ := net.SplitHostPort(h.addr)
	// A host name per step: a connection kept alive from an earlier step
	// would skip the lookup.
	target := func(step string) string { return "http://" + step + ".hooks.tapedeck.test:" + port + "/done" }

	st := openStore(t, filepath.Join(t.TempDir(), "tapedeck.db"))
	defer st.Close()
	ob := st.(meta.Outbox)
	allow, err := netguard.Parse([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	var logs tu.SyncBuffer
	s := New(Options{Outbox: ob, Node: "n1", Allow: allow.WithResolver(dns.resolver()), Secret: []byte("k"),
		Timeout: 300 * time.Millisecond, MaxAttempts: 20, Backoff: 50 * time.Millisecond, Workers: 2,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	s.Start()
	defer s.Close()
	pending := func() int {
		n, err := ob.PendingCount(context.Background(), "n1")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	for _, step := range []struct {
		mode int
		host string
	}{{dnsSilent, "silent"}, {dnsServFail, "servfail"}} {
		mode, target := step.mode, target(step.host)
		dns.set(mode, "")
		retried := value(mRetried)
		// A command's check refuses what it cannot check now, saying why.
		if err := s.CheckTarget(context.Background(), target); !errors.Is(err, ErrUnresolved) || !errors.Is(err, ErrTarget) {
			t.Fatalf("CheckTarget while the DNS server is down (mode %d): %v, want ErrUnresolved", mode, err)
		}
		before := dns.queries.Load()
		if err := s.Notify(context.Background(), Notification{Kind: "RecordCompleted", CallID: "slow-dns", URL: target, Form: form}); err != nil {
			t.Fatalf("Notify while the DNS server is down (mode %d): %v", mode, err)
		}
		if dns.queries.Load() == before {
			t.Fatal("the DNS server was not asked")
		}
		if n := pending(); n != 1 {
			t.Fatalf("%d notifications queued, want 1", n)
		}
		// An attempt fails while the server still does not answer.
		tu.Eventually(t, 10*time.Second, 5*time.Millisecond, func() bool { return value(mRetried) > retried },
			"no failed attempt while the DNS server is down")
		if n := h.count(); n != 0 {
			t.Fatalf("delivered %d while the name does not resolve", n)
		}
		dns.set(dnsAnswer, "127.0.0.1")
		tu.Eventually(t, 15*time.Second, 5*time.Millisecond, func() bool { return h.count() == 1 },
			"not delivered once the DNS server answers (%d)", h.count())
		tu.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool { return pending() == 0 }, "not settled")
		h.mu.Lock()
		h.got = nil
		h.mu.Unlock()
	}
	if !strings.Contains(logs.String(), "not resolved now") || !strings.Contains(logs.String(), "call=slow-dns") {
		t.Fatalf("no log line with the call id: %s", logs.String())
	}

	// Refused at once: a name that does not exist, a refused address.
	for _, c := range []struct {
		mode int
		addr string
	}{{dnsNXDomain, ""}, {dnsAnswer, "10.9.9.9"}} {
		dns.set(c.mode, c.addr)
		err := s.Notify(context.Background(), Notification{Kind: "RecordCompleted", CallID: "refused", URL: target("refused"), Form: form})
		if !errors.Is(err, ErrTarget) || errors.Is(err, ErrUnresolved) {
			t.Fatalf("DNS mode %d %s: %v, want a refusal (ErrTarget, not ErrUnresolved)", c.mode, c.addr, err)
		}
		if n := pending(); n != 0 {
			t.Fatalf("DNS mode %d %s: %d queued", c.mode, c.addr, n)
		}
	}

	// Queued unresolved, then resolving to a refused address: given up
	// at the attempt that dials it, never reached.
	dns.set(dnsSilent, "")
	failed := value(mFailed)
	if err := s.Notify(context.Background(), Notification{Kind: "RecordCompleted", CallID: "rebound", URL: target("rebound"), Form: form}); err != nil {
		t.Fatal(err)
	}
	dns.set(dnsAnswer, "10.9.9.9")
	tu.Eventually(t, 15*time.Second, 5*time.Millisecond, func() bool { return value(mFailed) > failed && pending() == 0 },
		"a notification whose name resolves to a refused address is not given up")
	if n := h.count(); n != 0 {
		t.Fatalf("delivered %d", n)
	}
	if !strings.Contains(logs.String(), "refused=true") {
		t.Fatalf("the give-up is not logged as refused: %s", logs.String())
	}
}
