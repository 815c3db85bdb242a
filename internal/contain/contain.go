// Package contain keeps a panic in one unit of work (one webhook delivery,
// one call's dialling, one upload job, one recording's writer, one
// playback) from taking the process, and every other call, down: the
// panic is recovered, logged with its stack, counted in
// tapedeck_panics_total{site}, and the unit is failed by its own fail
// function (which is itself contained).
//
// The RTP packet path (rtp.HandlerPanics), the SIP endpoint's goroutines
// and OzML scripts have their own containment with the same shape.
package contain

import (
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	dto "github.com/prometheus/client_model/go"

	"github.com/tapedeck/tapedeck/internal/metrics"
)

// Panics counts recovered panics by site (webhook, dial, upload,
// recording-writer, playback, ...).
var Panics = promauto.With(metrics.Registry).NewCounterVec(prometheus.CounterOpts{
	Name: "tapedeck_panics_total",
	Help: "Panics recovered in one unit of work (which failed alone), by site.",
}, []string{"site"})

// Recover is deferred at the top of a unit of work's goroutine:
//
//	defer contain.Recover(log, "upload", func() { ... fail the job ... })
//
// A panic is logged (with the stack) on log (slog.Default when nil),
// counted under site, and fail (may be nil) runs to fail that unit only.
func Recover(log *slog.Logger, site string, fail func()) {
	v := recover()
	if v == nil {
		return
	}
	Report(log, site, v)
	if fail == nil {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			Report(log, site+": failing the unit", v)
		}
	}()
	fail()
}

// Report logs and counts a recovered panic value v.
func Report(log *slog.Logger, site string, v any) {
	if log == nil {
		log = slog.Default()
	}
	Panics.WithLabelValues(site).Inc()
	log.Error("recovered from a panic; only this unit of work failed", "site", site, "panic", fmt.Sprint(v),
		"stack", string(debug.Stack()))
}

// Go runs f on a goroutine of its own under Recover.
func Go(log *slog.Logger, site string, f func(), fail func()) {
	go func() {
		defer Recover(log, site, fail)
		f()
	}()
}

// Count is the number of panics recovered at site so far.
func Count(site string) float64 {
	var m dto.Metric
	if err := Panics.WithLabelValues(site).Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
