package sip

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// maxLoggedBytes bounds every string sipgo logs: it logs an unparsable
// message whole (up to its 32 KB read buffer).
const maxLoggedBytes = 200

// libLog is the slog handler of sipgo's loggers. sipgo logs every message
// it cannot parse at ERROR with all its bytes, which turned a flood of
// junk datagrams into tens of megabytes of log a second. Here those
// records are counted, logged at the level the operator chose
// (sip.malformed_log_level), truncated and rate-limited with a count of
// the ones left out; sipgo's other records pass at ERROR only (all at
// debug), truncated and rate-limited too.
type libLog struct {
	h              slog.Handler
	e              *Endpoint // nil for sipgo's package-level logger
	malformedLevel slog.Level
	malformed      *limiter
	other          *limiter
}

func newLibLog(h slog.Handler, e *Endpoint, malformedLevel slog.Level) libLog {
	return libLog{h: h, e: e, malformedLevel: malformedLevel, malformed: newLimiter(), other: newLimiter()}
}

func (l libLog) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= slog.LevelError || l.h.Enabled(ctx, slog.LevelDebug)
}

func (l libLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "failed to parse" { // sipgo's UDP and TCP transports
		if l.e != nil {
			l.e.stats.malformed.Add(1)
		}
		if !l.h.Enabled(ctx, l.malformedLevel) {
			return nil
		}
		ok, left := l.malformed.allow(time.Now())
		if !ok {
			return nil
		}
		nr := slog.NewRecord(r.Time, l.malformedLevel, "sip: unparsable message dropped", r.PC)
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "data" {
				nr.AddAttrs(slog.Int("bytes", len(a.Value.String())))
			}
			nr.AddAttrs(truncate(a))
			return true
		})
		if left > 0 {
			nr.AddAttrs(slog.Uint64("not_logged_since_last", left))
		}
		return l.h.Handle(ctx, nr)
	}
	debug := l.h.Enabled(ctx, slog.LevelDebug)
	if !debug {
		if r.Level < slog.LevelError || !l.h.Enabled(ctx, r.Level) {
			return nil
		}
		if ok, _ := l.other.allow(time.Now()); !ok {
			return nil
		}
	}
	nr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool { nr.AddAttrs(truncate(a)); return true })
	return l.h.Handle(ctx, nr)
}

func (l libLog) WithAttrs(a []slog.Attr) slog.Handler {
	l.h = l.h.WithAttrs(a)
	return l
}

func (l libLog) WithGroup(g string) slog.Handler {
	l.h = l.h.WithGroup(g)
	return l
}

func truncate(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindString && len(v.String()) > maxLoggedBytes {
		return slog.String(a.Key, v.String()[:maxLoggedBytes]+"…")
	}
	if v.Kind() == slog.KindAny {
		if err, ok := v.Any().(error); ok && len(err.Error()) > maxLoggedBytes {
			return slog.String(a.Key, err.Error()[:maxLoggedBytes]+"…")
		}
	}
	return a
}

// limiter is a token bucket: a burst of 10 records, then one a second.
type limiter struct {
	mu      sync.Mutex
	tokens  float64
	last    time.Time
	dropped uint64
}

const (
	logBurst = 10
	logRate  = 1.0 // records a second
)

func newLimiter() *limiter { return &limiter{tokens: logBurst} }

// allow reports whether a record may be logged now and, if so, how many
// were refused since the last one allowed.
func (l *limiter) allow(now time.Time) (bool, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() {
		l.tokens = min(logBurst, l.tokens+now.Sub(l.last).Seconds()*logRate)
	}
	l.last = now
	if l.tokens < 1 {
		l.dropped++
		return false, 0
	}
	l.tokens--
	n := l.dropped
	l.dropped = 0
	return true, n
}
