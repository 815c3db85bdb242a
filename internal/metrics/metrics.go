// Package metrics holds tapedeck's Prometheus registry. Every package that
// exports figures registers its collectors on Registry (with promauto.With
// or Registry.MustRegister); the HTTP server serves them at /metrics.
//
// Metric names start with "tapedeck_" and follow Prometheus' naming
// conventions: counters end in _total, sizes in _bytes, durations in
// _seconds.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry is the process-wide registry: Go runtime and process collectors
// plus whatever tapedeck's packages register.
var Registry = prometheus.NewRegistry()

func init() {
	Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
}

// Handler serves Registry in the Prometheus text (or OpenMetrics) format,
// uncompressed: gzip was about a sixth of a scrape's CPU (bench/RESULTS.md,
// "Metrics cost"), and a scrape is a few tens of KiB on a local network.
func Handler() http.Handler {
	return promhttp.HandlerFor(Registry, promhttp.HandlerOpts{Registry: Registry, DisableCompression: true})
}
