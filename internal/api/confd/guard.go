package confd

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/tapedeck/tapedeck/internal/metrics"
)

var (
	loginsTotal = promauto.With(metrics.Registry).NewCounterVec(prometheus.CounterOpts{
		Name: "tapedeck_wazo_logins_total",
		Help: "wazo-auth logins (POST /api/auth/0.1/token) by result: ok, failed (wrong credentials), throttled (refused after too many failures from the address).",
	}, []string{"result"})
	unauthorizedTotal = promauto.With(metrics.Registry).NewCounter(prometheus.CounterOpts{
		Name: "tapedeck_wazo_unauthorized_total",
		Help: "wazo-confd requests refused for a missing, unknown or expired X-Auth-Token.",
	})
)

// Failed logins from one address: past maxFailures within failWindow, the
// address gets 429 until the window ends.
const (
	maxFailures = 10
	failWindow  = time.Minute
	maxTracked  = 10000 // addresses remembered at most (oldest windows dropped first)
)

// loginGuard counts failed logins per source address.
type loginGuard struct {
	mu   sync.Mutex
	byIP map[string]*failures
}

type failures struct {
	n     int
	since time.Time
}

func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// blocked reports whether ip is throttled now, and for how long.
func (g *loginGuard) blocked(ip string, now time.Time) (time.Duration, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.byIP[ip]
	if f == nil || now.Sub(f.since) >= failWindow {
		return 0, false
	}
	if f.n >= maxFailures {
		return failWindow - now.Sub(f.since), true
	}
	return 0, false
}

// fail counts a failed login from ip.
func (g *loginGuard) fail(ip string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.byIP == nil {
		g.byIP = map[string]*failures{}
	}
	f := g.byIP[ip]
	if f == nil || now.Sub(f.since) >= failWindow {
		if len(g.byIP) >= maxTracked {
			for k, v := range g.byIP {
				if now.Sub(v.since) >= failWindow || len(g.byIP) >= maxTracked {
					delete(g.byIP, k)
				}
				if len(g.byIP) < maxTracked/2 {
					break
				}
			}
		}
		f = &failures{since: now}
		g.byIP[ip] = f
	}
	f.n++
}

// throttled answers 429 with Retry-After.
func throttled(w http.ResponseWriter, now time.Time, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
	authError(w, now, http.StatusTooManyRequests, "Too many failed logins from this address; retry later")
}
