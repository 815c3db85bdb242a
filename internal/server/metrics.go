package server

import (
	"net/http"
	"sync"
	"time"
	"weak"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"github.com/tapedeck/tapedeck/internal/metrics"
)

var (
	promHTTPRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tapedeck_http_requests_total",
		Help: "HTTP requests by route pattern (not the raw path) and status code.",
	}, []string{"route", "code", "method"})
	promHTTPDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tapedeck_http_request_duration_seconds",
		Help:    "HTTP request durations by route pattern (WebSockets: the connection's life).",
		Buckets: prometheus.DefBuckets,
	}, []string{"route", "code", "method"})
	nodes = &nodeCollector{}
)

func init() {
	metrics.Registry.MustRegister(promHTTPRequests, promHTTPDuration, nodes)
}

// instrument counts and times every request by the mux pattern that serves
// it (bounded: one per registered route, "other" for what none matches),
// and logs it when the access log is on.
func (s *Server) instrument(mux *http.ServeMux) http.Handler {
	var routes sync.Map // pattern -> http.Handler
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		if pattern == "" {
			pattern = "other"
		}
		h, ok := routes.Load(pattern)
		if !ok {
			l := prometheus.Labels{"route": pattern}
			h, _ = routes.LoadOrStore(pattern, promhttp.InstrumentHandlerDuration(promHTTPDuration.MustCurryWith(l),
				promhttp.InstrumentHandlerCounter(promHTTPRequests.MustCurryWith(l), mux)))
		}
		if !s.cfg.HTTP.AccessLog {
			h.(http.Handler).ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.(http.Handler).ServeHTTP(rec, r)
		s.log.Info("http request", "method", r.Method, "route", pattern, "path", r.URL.Path,
			"status", rec.status, "duration_ms", time.Since(start).Milliseconds(), "remote", r.RemoteAddr)
	})
}

// statusRecorder notes the status code for the access log; Unwrap lets
// http.ResponseController (WebSocket hijack, flush) reach the original.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes a flush on (streamed MP3, server-sent events): handlers
// that test for http.Flusher rather than use a ResponseController would
// otherwise buffer behind the access log.
func (w *statusRecorder) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// metricsHandler serves the registry, behind ARI credentials when
// http.metrics_auth is set.
func (s *Server) metricsHandler() http.Handler {
	h := metrics.Handler()
	if !s.cfg.HTTP.MetricsAuth {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.ari.Authenticated(r) {
			s.authFailed(r, "metrics")
			w.Header().Set("WWW-Authenticate", `Basic realm="tapedeck"`)
			http.Error(w, "Authentication required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// authFailed logs a refused login with its source.
func (s *Server) authFailed(r *http.Request, api string) {
	user, _, _ := r.BasicAuth()
	s.log.Warn("authentication failed", "api", api, "remote", r.RemoteAddr, "user", user, "path", r.URL.Path)
}

// freeBytes is the space left to unprivileged users under dir.
func freeBytes(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// nodeCollector reads, at scrape time, the figures of every running server
// in the process (one in production; tests run several): disk space left
// under the recordings root and the catalog's upload jobs.
type nodeCollector struct {
	mu      sync.Mutex
	servers []weak.Pointer[Server]
}

var (
	descDiskFree  = prometheus.NewDesc("tapedeck_recordings_disk_free_bytes", "Space left to tapedeck on the file system of the recordings root.", []string{"path"}, nil)
	descUploadQ   = prometheus.NewDesc("tapedeck_recording_uploads_pending", "Recordings waiting for their upload to object storage (running or retrying).", nil, nil)
	descUploadErr = prometheus.NewDesc("tapedeck_recording_upload_failures_total", "Upload attempts to object storage that failed (each is retried).", nil, nil)
	descDraining  = prometheus.NewDesc("tapedeck_draining", "1 while the node drains (refuses new calls).", nil, nil)
)

func (c *nodeCollector) track(s *Server) {
	c.mu.Lock()
	c.servers = append(c.servers, weak.Make(s))
	c.mu.Unlock()
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDiskFree
	ch <- descUploadQ
	ch <- descUploadErr
	ch <- descDraining
}

func (c *nodeCollector) Collect(out chan<- prometheus.Metric) {
	c.mu.Lock()
	var live []*Server
	kept := c.servers[:0]
	for _, w := range c.servers {
		if s := w.Value(); s != nil && !s.closed.Load() {
			kept = append(kept, w)
			live = append(live, s)
		}
	}
	clear(c.servers[len(kept):])
	c.servers = kept
	c.mu.Unlock()
	var pending, failed, draining float64
	seen := map[string]bool{}
	for _, s := range live {
		root := s.cfg.RecordingsDir()
		if !seen[root] {
			seen[root] = true
			if free, err := freeBytes(root); err == nil {
				out <- prometheus.MustNewConstMetric(descDiskFree, prometheus.GaugeValue, float64(free), root)
			}
		}
		pending += float64(s.catalog.Uploading())
		failed += float64(s.catalog.FailedUploads())
		if s.draining.Load() {
			draining = 1
		}
	}
	out <- prometheus.MustNewConstMetric(descUploadQ, prometheus.GaugeValue, pending)
	out <- prometheus.MustNewConstMetric(descUploadErr, prometheus.CounterValue, failed)
	out <- prometheus.MustNewConstMetric(descDraining, prometheus.GaugeValue, draining)
}
