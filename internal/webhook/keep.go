package webhook

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/tapedeck/tapedeck/internal/metrics"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// Notify is Send for a notification that must not be lost: when the row
// cannot be stored for a reason that passes (the caller's deadline ran
// out, the catalog is busy or locked, its connection failed: see
// meta.Transient), the notification is kept in memory and its insert
// retried with back-off until it commits; it is then delivered as any
// other, once. A target whose host name cannot be resolved now (a DNS
// timeout or server failure, ErrUnresolved) is queued too, its address
// checked when it is dialled. A refused target (NXDOMAIN included), a bad
// method or a refused row fail at once, as with Send. Close tries once more to store what is still kept
// and logs, as an error, each notification it could not.
//
// While notifications are kept, later ones wait behind them (stored in
// order) instead of adding writes to a catalog that is struggling.
func (s *Sender) Notify(ctx context.Context, n Notification) error {
	it, err := s.prepare(ctx, n)
	if errors.Is(err, ErrUnresolved) {
		// The name may resolve later: the notification is queued, and
		// each attempt's dialler checks the address it resolves to.
		s.o.Log.Warn("webhook: target's host name not resolved now; queued, its address is checked when delivered",
			"kind", n.Kind, "call", n.CallID, "url", redact(n.URL), "err", err)
		it, err = s.row(n)
	}
	if err != nil {
		return err
	}
	s.keepMu.Lock()
	if !s.keepClosed && len(s.kept) > 0 {
		err := s.keepLocked(it, errBehindKept)
		s.keepMu.Unlock()
		return err
	}
	s.keepMu.Unlock()
	if _, err := s.store(ctx, it); err != nil {
		if !meta.Transient(err) {
			return err
		}
		s.keepMu.Lock()
		defer s.keepMu.Unlock()
		return s.keepLocked(it, err)
	}
	return nil
}

// ErrNotKept: a notification could not be stored and could not be kept
// to be stored later (the sender is closed, or too many are kept).
var ErrNotKept = errors.New("webhook: notification not queued and not kept")

var errBehindKept = errors.New("queued behind notifications the catalog has not taken yet")

// maxKept bounds the notifications kept in memory (about a kilobyte each).
const maxKept = 1 << 16

// Figures of the notifications kept in memory.
var (
	mUnqueued = promauto.With(metrics.Registry).NewGauge(prometheus.GaugeOpts{
		Name: "tapedeck_webhook_unqueued", Help: "Notifications kept in memory because the catalog could not store them yet (slow, busy, unreachable)."})
	mQueueRetries = promauto.With(metrics.Registry).NewCounter(prometheus.CounterOpts{
		Name: "tapedeck_webhook_queue_retries_total", Help: "Retried outbox inserts of notifications kept in memory."})
	mLost = promauto.With(metrics.Registry).NewCounter(prometheus.CounterOpts{
		Name: "tapedeck_webhook_lost_total", Help: "Notifications that could be neither stored nor kept (at shutdown, or beyond the memory bound)."})
)

// kept is a notification waiting in memory to be stored.
type kept struct {
	it    meta.OutboxItem
	since time.Time
	tries int
}

// keeper holds the kept notifications; its zero value is ready.
type keeper struct {
	keepMu     sync.Mutex
	kept       []kept
	keeping    bool          // a retry goroutine runs
	keepClosed bool          // Close has begun: nothing more is kept
	keepStop   chan struct{} // closed by Close
	keepDone   chan struct{} // closed when the retry goroutine returns
	// Back-off of the retries (first, cap), the bound of one insert and
	// Close's budget for its last try (defaults in keepDefaults).
	keepBackoff, keepMaxBackoff, keepAttempt, keepFinal time.Duration
}

func (k *keeper) keepDefaults() {
	k.keepBackoff, k.keepMaxBackoff, k.keepAttempt, k.keepFinal = 100*time.Millisecond, 5*time.Second, 10*time.Second, 5*time.Second
	k.keepStop = make(chan struct{})
}

// keepLocked keeps it (keepMu held) and starts the retries.
func (s *Sender) keepLocked(it meta.OutboxItem, cause error) error {
	if s.keepClosed || len(s.kept) >= maxKept {
		why := "the sender is closed"
		if !s.keepClosed {
			why = fmt.Sprintf("%d notifications are already kept", len(s.kept))
		}
		mLost.Inc()
		s.o.Log.Error("webhook: NOTIFICATION LOST: not queued and not kept", "why", why, "kind", it.Kind,
			"call", it.CallID, "url", redact(it.URL), "err", cause)
		return fmt.Errorf("%w (%s): %v", ErrNotKept, why, cause)
	}
	tries := 1 // the caller's
	if errors.Is(cause, errBehindKept) {
		tries = 0
	}
	s.kept = append(s.kept, kept{it: it, since: s.now(), tries: tries})
	mUnqueued.Inc()
	if !errors.Is(cause, errBehindKept) {
		s.o.Log.Warn("webhook: notification not queued yet (the catalog did not take it); kept in memory and retried",
			"kind", it.Kind, "call", it.CallID, "url", redact(it.URL), "kept", len(s.kept), "err", cause)
	}
	if !s.keeping {
		s.keeping = true
		s.keepDone = make(chan struct{})
		go s.retryKept(s.keepDone)
	}
	return nil
}

// retryKept stores the kept notifications, oldest first, retrying the
// first with back-off while the catalog does not take it, until none is
// kept or Close stops it.
func (s *Sender) retryKept(done chan struct{}) {
	defer close(done)
	// An insert in progress ends when Close begins (Close tries again).
	base, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		select {
		case <-s.keepStop:
			stop()
		case <-base.Done():
		}
	}()
	delay := s.keepBackoff
	for {
		s.keepMu.Lock()
		if len(s.kept) == 0 || s.keepClosed {
			s.keeping = false
			s.keepMu.Unlock()
			return
		}
		k := s.kept[0]
		s.keepMu.Unlock()

		mQueueRetries.Inc()
		ctx, cancel := context.WithTimeout(base, s.keepAttempt)
		id, err := s.store(ctx, k.it)
		cancel()

		s.keepMu.Lock()
		if err == nil || !meta.Transient(err) {
			s.kept[0] = kept{}
			s.kept = s.kept[1:]
			if len(s.kept) == 0 {
				s.kept = nil
			}
			mUnqueued.Dec()
			left := len(s.kept)
			s.keepMu.Unlock()
			if err == nil {
				s.o.Log.Info("webhook: kept notification queued", "kind", k.it.Kind, "call", k.it.CallID, "id", id,
					"tries", k.tries+1, "waited", s.now().Sub(k.since).Round(time.Millisecond), "kept", left)
			} else {
				mLost.Inc()
				s.o.Log.Error("webhook: NOTIFICATION LOST: the catalog refused a kept notification", "kind", k.it.Kind,
					"call", k.it.CallID, "url", redact(k.it.URL), "err", err)
			}
			delay = s.keepBackoff
			continue
		}
		s.kept[0].tries++
		closed := s.keepClosed
		left := len(s.kept)
		s.keepMu.Unlock()
		if closed {
			continue // Close takes what is kept
		}
		s.o.Log.Warn("webhook: kept notification still not queued; retrying", "kind", k.it.Kind, "call", k.it.CallID,
			"tries", k.tries+1, "retry_in", delay, "kept", left, "err", err)
		select {
		case <-s.keepStop:
		case <-time.After(delay):
		}
		delay = min(2*delay, s.keepMaxBackoff)
	}
}

// closeKept stops the retries, tries once more to store each kept
// notification (within keepFinal in all) and logs each one it could not.
func (s *Sender) closeKept() {
	s.keepMu.Lock()
	if s.keepClosed {
		s.keepMu.Unlock()
		return
	}
	s.keepClosed = true
	close(s.keepStop)
	done := s.keepDone
	s.keepMu.Unlock()
	if done != nil {
		<-done
	}
	s.keepMu.Lock()
	rest := s.kept
	s.kept = nil
	s.keepMu.Unlock()
	if len(rest) == 0 {
		return
	}
	s.o.Log.Warn("webhook: closing with notifications not queued yet; trying once more", "count", len(rest))
	ctx, cancel := context.WithTimeout(context.Background(), s.keepFinal)
	defer cancel()
	lost := 0
	for _, k := range rest {
		mUnqueued.Dec()
		if _, err := s.store(ctx, k.it); err != nil {
			lost++
			mLost.Inc()
			s.o.Log.Error("webhook: NOTIFICATION LOST at shutdown: the catalog did not take it", "kind", k.it.Kind,
				"call", k.it.CallID, "url", redact(k.it.URL), "kept_for", s.now().Sub(k.since).Round(time.Millisecond),
				"tries", k.tries+1, "err", err)
		}
	}
	if lost > 0 {
		s.o.Log.Error("webhook: notifications lost at shutdown", "lost", lost, "queued", len(rest)-lost)
	} else {
		s.o.Log.Info("webhook: kept notifications queued at shutdown", "count", len(rest))
	}
}
