package ari

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/tapedeck/tapedeck/internal/metrics"
)

var promWSClients = promauto.With(metrics.Registry).NewGauge(prometheus.GaugeOpts{
	Name: "tapedeck_ari_websocket_clients",
	Help: "ARI event WebSockets connected now.",
})
