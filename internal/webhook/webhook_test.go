package webhook

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tapedeck/tapedeck/internal/netguard"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	tu "github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/pgtest"
)

// hook is a real HTTP receiver on loopback that can be stopped and
// started again on the same port.
type hook struct {
	t    *testing.T
	addr string
	mu   sync.Mutex
	got  []url.Values
	sigs []string
	srv  *http.Server
	// hang: accept the request and never answer (until the test ends).
	hang chan struct{}
}

func newHook(t *testing.T) *hook {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hook{t: t, addr: l.Addr().String()}
	l.Close() // down until start
	return h
}

func (h *hook) url() string { return "http://" + h.addr + "/done" }

func (h *hook) start() {
	l, err := net.Listen("tcp", h.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.hang != nil {
			select {
			case <-h.hang:
			case <-r.Context().Done():
			}
			return
		}
		b, _ := io.ReadAll(r.Body)
		f, _ := url.ParseQuery(string(b))
		h.mu.Lock()
		h.got = append(h.got, f)
		h.sigs = append(h.sigs, r.Header.Get(SignatureHeader))
		h.mu.Unlock()
	})}
	go h.srv.Serve(l)
	h.t.Cleanup(func() { h.srv.Close() })
}

func (h *hook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

func openStore(t *testing.T, path string) meta.Store {
	st, err := meta.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newSender(t *testing.T, st meta.Store, log *slog.Logger, attempts int) *Sender {
	allow, err := netguard.Parse([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Outbox: st.(meta.Outbox), Node: "n1", Allow: allow, Secret: []byte("k"),
		Timeout: 300 * time.Millisecond, MaxAttempts: attempts, Backoff: 50 * time.Millisecond, Workers: 2, Log: log})
	s.Start()
	return s
}

var form = url.Values{"NotificationName": {"RecordCompleted"}, "CallId": {"c1"}}

// TestDeliveredOnceAfterReceiverAndRestart: the receiver is down when the
// notification is sent and tapedeck restarts (the sender and the database
// are closed and opened again) before it comes up: the notification is
// delivered, once, signed.
func TestDeliveredOnceAfterReceiverAndRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tapedeck.db")
	h := newHook(t)
	st := openStore(t, db)
	s := newSender(t, st, slog.New(slog.DiscardHandler), 100)
	id, err := s.Send(context.Background(), Notification{Kind: "RecordCompleted", CallID: "c1", URL: h.url(), Form: form})
	if err != nil {
		t.Fatal(err)
	}
	ob := st.(meta.Outbox)
	tu.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool {
		it, err := ob.OutboxItem(context.Background(), id)
		return err == nil && it.Attempts >= 2
	}, "no failed attempts while the receiver is down")
	// Restart: everything closed, then opened from the same file.
	s.Close()
	st.Close()
	st = openStore(t, db)
	defer st.Close()
	h.start()
	before := value(mDelivered)
	s = newSender(t, st, slog.New(slog.DiscardHandler), 100)
	defer s.Close()
	tu.Eventually(t, 10*time.Second, 10*time.Millisecond, func() bool { return h.count() == 1 }, "not delivered after the restart")
	tu.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool {
		it, err := st.(meta.Outbox).OutboxItem(context.Background(), id)
		return err == nil && it.Status == meta.OutboxDelivered
	}, "not marked delivered")
	if got := value(mDelivered) - before; got != 1 {
		t.Fatalf("delivered counter +%v, want +1", got)
	}
	// Nothing is sent again.
	s.Wake()
	s2 := newSender(t, st, slog.New(slog.DiscardHandler), 100)
	s2.Close()
	if h.count() != 1 {
		t.Fatalf("delivered %d times", h.count())
	}
	h.mu.Lock()
	f, sig := h.got[0], h.sigs[0]
	h.mu.Unlock()
	if f.Get("CallId") != "c1" || f.Get("NotificationName") != "RecordCompleted" {
		t.Fatalf("form %v", f)
	}
	if !Verify([]byte("k"), sig, []byte(form.Encode()), time.Now(), time.Minute) {
		t.Fatalf("signature %q does not verify", sig)
	}
	if Verify([]byte("other"), sig, []byte(form.Encode()), time.Now(), time.Minute) {
		t.Fatal("a wrong secret verifies")
	}
}

// TestGivenUpAfterLimit: a receiver that never answers is given up after
// MaxAttempts timeouts: status failed, the failed counter, a log line.
func TestGivenUpAfterLimit(t *testing.T) {
	h := newHook(t)
	h.hang = make(chan struct{})
	h.start()
	t.Cleanup(func() { close(h.hang) })
	st := openStore(t, filepath.Join(t.TempDir(), "tapedeck.db"))
	defer st.Close()
	var logs tu.SyncBuffer
	before := value(mFailed)
	retried := value(mRetried)
	s := newSender(t, st, slog.New(slog.NewTextHandler(&logs, nil)), 3)
	defer s.Close()
	id, err := s.Send(context.Background(), Notification{Kind: "RecordCompleted", CallID: "c9", URL: h.url(), Form: form})
	if err != nil {
		t.Fatal(err)
	}
	ob := st.(meta.Outbox)
	tu.Eventually(t, 10*time.Second, 10*time.Millisecond, func() bool {
		it, err := ob.OutboxItem(context.Background(), id)
		return err == nil && it.Status == meta.OutboxFailed
	}, "not given up")
	it, _ := ob.OutboxItem(context.Background(), id)
	if it.Attempts != 3 || !strings.Contains(it.LastError, "deadline") && !strings.Contains(it.LastError, "Timeout") {
		t.Fatalf("item %+v", it)
	}
	if got := value(mFailed) - before; got != 1 {
		t.Fatalf("failed counter +%v, want +1", got)
	}
	if got := value(mRetried) - retried; got != 2 {
		t.Fatalf("retried counter +%v, want +2", got)
	}
	tu.Eventually(t, time.Second, 10*time.Millisecond, func() bool {
		return strings.Contains(logs.String(), "webhook given up") && strings.Contains(logs.String(), "call=c9")
	}, "no log line: %s", logs.String())
	tu.Eventually(t, time.Second, 10*time.Millisecond, func() bool { return value(mDepth) == 0 }, "queue depth not 0")
}

// TestSendRefusesForbiddenTargets: the allow-list is applied when a
// notification is accepted.
func TestSendRefusesForbiddenTargets(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "tapedeck.db"))
	defer st.Close()
	s := New(Options{Outbox: st.(meta.Outbox), Node: "n1"})
	for _, u := range []string{"http://127.0.0.1:9/x", "http://10.1.2.3/x", "ftp://example.com/x", "http://u:p@127.0.0.1/x", "/relative", "http://[::1]:80/"} {
		if _, err := s.Send(context.Background(), Notification{URL: u, Form: form}); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	if n, _ := st.(meta.Outbox).PendingCount(context.Background(), "n1"); n != 0 {
		t.Fatalf("%d queued", n)
	}
}

// value reads a counter or gauge.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// BenchmarkDeliver: b.N notifications queued in a real SQLite outbox and
// delivered to a loopback receiver; reports deliveries per second.
func BenchmarkDeliver(b *testing.B) {
	st, err := meta.OpenSQLite(filepath.Join(b.TempDir(), "tapedeck.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	benchDeliver(b, st)
}

// BenchmarkDeliverPostgres is BenchmarkDeliver with the outbox in
// PostgreSQL (a cluster's shared catalog: claims, heartbeats), in a fresh
// database at $TAPEDECK_TEST_PG_DSN or scripts/pg-test.sh's role.
func BenchmarkDeliverPostgres(b *testing.B) {
	ctx := context.Background()
	st, err := meta.OpenPostgres(ctx, pgtest.FreshDatabase(b, "tapedeck_whbench"), meta.WithTokenKey("bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	benchDeliver(b, st)
}

func benchDeliver(b *testing.B, st meta.Store) {
	var got atomic.Int64
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got.Add(1)
	})}
	go srv.Serve(l)
	defer srv.Close()
	allow, _ := netguard.Parse([]string{"127.0.0.1"})
	s := New(Options{Outbox: st.(meta.Outbox), Node: "n1", Allow: allow, Secret: []byte("k"), Workers: 8, Log: slog.New(slog.DiscardHandler)})
	s.Start()
	defer s.Close()
	target := "http://" + l.Addr().String() + "/done"
	b.ResetTimer()
	start := time.Now()
	cpu0 := processCPU()
	for range b.N {
		if _, err := s.Send(context.Background(), Notification{Kind: "RecordCompleted", CallID: "c", URL: target, Form: form}); err != nil {
			b.Fatal(err)
		}
	}
	for got.Load() < int64(b.N) {
		if time.Since(start) > time.Minute {
			b.Fatalf("%d of %d delivered", got.Load(), b.N)
		}
		time.Sleep(time.Millisecond) // a benchmark's wait, not a test's
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "delivered/s")
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/delivered")
}

// BenchmarkDeliverOneByOne is the sender as a load run with callbacks on
// sees it: one notification at a time (a call ends, its RecordCompleted
// goes), each delivered before the next is queued. ns/op is a
// notification's latency from Send to the receiver; cpu-µs/delivered is
// the process's CPU (sender, SQLite outbox and the loopback receiver) per
// notification.
func BenchmarkDeliverOneByOne(b *testing.B) {
	st, err := meta.OpenSQLite(filepath.Join(b.TempDir(), "tapedeck.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	got := make(chan struct{}, 1)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got <- struct{}{}
	})}
	go srv.Serve(l)
	defer srv.Close()
	allow, _ := netguard.Parse([]string{"127.0.0.1"})
	s := New(Options{Outbox: st.(meta.Outbox), Node: "n1", Allow: allow, Secret: []byte("k"), Log: slog.New(slog.DiscardHandler)})
	s.Start()
	defer s.Close()
	target := "http://" + l.Addr().String() + "/done"
	b.ResetTimer()
	cpu0 := processCPU()
	for range b.N {
		if _, err := s.Send(context.Background(), Notification{Kind: "RecordCompleted", CallID: "c", URL: target, Form: form}); err != nil {
			b.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(time.Minute):
			b.Fatal("not delivered within a minute")
		}
	}
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/delivered")
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestGETNotification: a notification with Method GET is sent as a GET
// with its parameters added to the URL's query (after those it has) and no
// body, also when delivered from the outbox after a restart; another
// method is refused.
func TestGETNotification(t *testing.T) {
	type seen struct {
		method, query, ctype string
		body                 []byte
	}
	var mu sync.Mutex
	var got []seen
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.RawQuery, r.Header.Get("Content-Type"), b})
		mu.Unlock()
	})}
	go srv.Serve(l)
	defer srv.Close()
	st := openStore(t, filepath.Join(t.TempDir(), "tapedeck.db"))
	defer st.Close()
	s := newSender(t, st, slog.New(slog.DiscardHandler), 5)
	defer s.Close()
	target := "http://" + l.Addr().String() + "/cb?tenant=a%20b"
	id, err := s.Send(context.Background(), Notification{Kind: "K", URL: target, Form: form, Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	tu.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 }, "not delivered")
	q, _ := url.ParseQuery(got[0].query)
	if got[0].method != "GET" || len(got[0].body) != 0 || got[0].ctype != "" ||
		q.Get("tenant") != "a b" || q.Get("CallId") != "c1" || q.Get("NotificationName") != "RecordCompleted" {
		t.Fatalf("received %s %q (content type %q, body %q)", got[0].method, got[0].query, got[0].ctype, got[0].body)
	}
	it, err := st.(meta.Outbox).OutboxItem(context.Background(), id)
	if err != nil || !it.IsGET() || !strings.HasPrefix(it.URL, target+"&") {
		t.Fatalf("outbox row %+v %v", it, err)
	}
	if _, err := s.Send(context.Background(), Notification{Kind: "K", URL: target, Form: form, Method: "PUT"}); err == nil {
		t.Fatal("a PUT notification was accepted")
	}
	if u := WithQuery("http://h/p#f", url.Values{"a": {"1"}}); u != "http://h/p?a=1#f" {
		t.Fatalf("WithQuery with a fragment: %s", u)
	}
}

// TestDirectDeliveryOnceWhileLoopRuns: Send stores the row already claimed
// by the node's direct claimant and a worker delivers it from memory;
// while that delivery is in flight (the receiver holds it) the outbox loop,
// woken again and again, does not send it a second time; once answered it
// is marked delivered (in the settler's batch) with one attempt.
func TestDirectDeliveryOnceWhileLoopRuns(t *testing.T) {
	var reqs atomic.Int32
	hold := make(chan struct{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		io.Copy(io.Discard, r.Body)
		<-hold
	})}
	go srv.Serve(l)
	defer srv.Close()
	st := openStore(t, filepath.Join(t.TempDir(), "tapedeck.db"))
	defer st.Close()
	allow, _ := netguard.Parse([]string{"127.0.0.1"})
	s := New(Options{Outbox: st.(meta.Outbox), Node: "n1", Allow: allow, Timeout: 5 * time.Second, Workers: 2,
		Log: slog.New(slog.DiscardHandler)})
	s.Start()
	defer s.Close()
	id, err := s.Send(context.Background(), Notification{Kind: "RecordCompleted", CallID: "c1", URL: "http://" + l.Addr().String() + "/x", Form: form})
	if err != nil {
		t.Fatal(err)
	}
	tu.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool { return reqs.Load() == 1 }, "not delivered")
	it, err := st.(meta.Outbox).OutboxItem(context.Background(), id)
	if err != nil || it.ClaimedBy != "n1/direct" || it.Status != meta.OutboxPending || it.Attempts != 0 {
		t.Fatalf("row in flight: %+v %v, want pending, claimed by n1/direct", it, err)
	}
	// The loop looks at the outbox many times while the request is held.
	for range 20 {
		s.Wake()
		time.Sleep(5 * time.Millisecond) // give the loop its turns; nothing to poll for
	}
	close(hold)
	tu.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool {
		it, err := st.(meta.Outbox).OutboxItem(context.Background(), id)
		return err == nil && it.Status == meta.OutboxDelivered
	}, "not marked delivered")
	it, _ = st.(meta.Outbox).OutboxItem(context.Background(), id)
	if it.Attempts != 1 || it.ClaimedBy != "" {
		t.Fatalf("settled row %+v", it)
	}
	if n := reqs.Load(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

// TestDirectClaimReleasedAtStart: a node killed while holding direct
// claims (rows stored claimed for an hour, as Send leaves them) delivers
// them as soon as it starts again, not when the claims end; and a burst
// sent meanwhile is delivered once each and marked delivered.
func TestDirectClaimReleasedAtStart(t *testing.T) {
	h := newHook(t)
	h.start()
	st := openStore(t, filepath.Join(t.TempDir(), "tapedeck.db"))
	defer st.Close()
	ob := st.(meta.Outbox)
	var left []int64
	for i := range 3 {
		id, err := ob.Enqueue(context.Background(), meta.OutboxItem{Node: "n1", Kind: "RecordCompleted", CallID: fmt.Sprint("dead", i),
			URL: h.url(), ContentType: "application/x-www-form-urlencoded", Body: []byte(form.Encode()),
			ClaimedBy: "n1/direct", ClaimUntil: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		left = append(left, id)
	}
	s := newSender(t, st, slog.New(slog.DiscardHandler), 5)
	defer s.Close()
	var burst []int64
	for range 200 {
		id, err := s.Send(context.Background(), Notification{Kind: "RecordCompleted", CallID: "c", URL: h.url(), Form: form})
		if err != nil {
			t.Fatal(err)
		}
		burst = append(burst, id)
	}
	tu.Eventually(t, 10*time.Second, 10*time.Millisecond, func() bool { return h.count() == 203 }, "not all 203 delivered")
	tu.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool {
		n, err := ob.PendingCount(context.Background(), "n1")
		return err == nil && n == 0
	}, "not all marked delivered")
	for _, id := range append(left, burst...) {
		if it, err := ob.OutboxItem(context.Background(), id); err != nil || it.Status != meta.OutboxDelivered || it.Attempts != 1 {
			t.Fatalf("row %+v %v", it, err)
		}
	}
	if n := h.count(); n != 203 {
		t.Fatalf("%d deliveries, want 203", n)
	}
}
