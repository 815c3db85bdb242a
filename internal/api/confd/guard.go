package confd

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/tapedeck/tapedeck/internal/httpx"
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

// Failed logins are counted per source address by httpx.LoginGuard
// (shared with the web page's sign-in).
const (
	maxFailures = httpx.LoginMaxFailures
	failWindow  = httpx.LoginFailWindow
)

// throttled answers 429 with Retry-After.
func throttled(w http.ResponseWriter, now time.Time, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
	authError(w, now, http.StatusTooManyRequests, "Too many failed logins from this address; retry later")
}
