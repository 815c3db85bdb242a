package event

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/tapedeck/tapedeck/internal/metrics"
)

var (
	promSubsDropped = promauto.With(metrics.Registry).NewCounter(prometheus.CounterOpts{
		Name: "tapedeck_event_subscribers_dropped_total",
		Help: "Event subscribers (ARI WebSockets, observers) dropped because they did not keep up.",
	})
	promEventsDropped = promauto.With(metrics.Registry).NewCounter(prometheus.CounterOpts{
		Name: "tapedeck_events_dropped_total",
		Help: "Events lost with subscribers dropped for not keeping up (their queue and the event that overflowed it).",
	})
)
