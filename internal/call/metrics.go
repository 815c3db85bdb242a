package call

import (
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/tapedeck/tapedeck/internal/metrics"
	"github.com/tapedeck/tapedeck/internal/rtp"
)

// The call model's figures. Counters move on events that happen once per
// call or per recording (never per packet); RTP figures are read from the
// sessions' own statistics at scrape time (rtpCollector), so the packet
// path pays nothing for them.
var (
	promCalls = promauto.With(metrics.Registry).NewCounterVec(prometheus.CounterOpts{
		Name: "tapedeck_calls_total",
		Help: "Calls (channels) that ended or were refused, by result: answered, unanswered, rejected.",
	}, []string{"result"})
	promHangups = promauto.With(metrics.Registry).NewCounterVec(prometheus.CounterOpts{
		Name: "tapedeck_call_hangups_total",
		Help: "Channels ended, by hangup cause (Q.850 text).",
	}, []string{"cause"})
	promActive = promauto.With(metrics.Registry).NewGauge(prometheus.GaugeOpts{
		Name: "tapedeck_calls_active",
		Help: "Channels up or being set up now.",
	})
	promSetup = promauto.With(metrics.Registry).NewHistogram(prometheus.HistogramOpts{
		Name:    "tapedeck_call_setup_seconds",
		Help:    "Time from a channel's creation (INVITE received or sent) to its answer.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})
	promRecFinished = promauto.With(metrics.Registry).NewCounter(prometheus.CounterOpts{
		Name: "tapedeck_recordings_finished_total",
		Help: "Recordings that ended with a stored file.",
	})
	promRecFailed = promauto.With(metrics.Registry).NewCounterVec(prometheus.CounterOpts{
		Name: "tapedeck_recordings_failed_total",
		Help: "Recordings that failed, by cause: disk_full, permission, exists, disk_stalled, overflow, answer, other.",
	}, []string{"cause"})
	promRecBytes = promauto.With(metrics.Registry).NewCounter(prometheus.CounterOpts{
		Name: "tapedeck_recording_audio_bytes_total",
		Help: "16-bit PCM audio handed to the recordings' file writers, in bytes (before any encoding).",
	})
	promRTPJitter = promauto.With(metrics.Registry).NewHistogram(prometheus.HistogramOpts{
		Name:    "tapedeck_rtp_call_jitter_seconds",
		Help:    "Interarrival jitter (RFC 3550) of each ended channel's received stream, at its end.",
		Buckets: []float64{.001, .0025, .005, .01, .02, .04, .08, .16},
	})
)

func init() {
	for _, r := range []string{"answered", "unanswered", "rejected"} {
		promCalls.WithLabelValues(r)
	}
	metrics.Registry.MustRegister(rtpFigures)
}

// failedCauseLabel maps a recording's failure cause (free text) to a
// bounded label.
func failedCauseLabel(cause string) string {
	switch {
	case strings.HasPrefix(cause, "Disk full"):
		return "disk_full"
	case strings.HasPrefix(cause, "Permission denied"):
		return "permission"
	case strings.HasPrefix(cause, "Recording already exists"):
		return "exists"
	case strings.Contains(cause, errDiskStalled.Error()):
		return "disk_stalled"
	case strings.HasPrefix(cause, "Recording queue overflow"):
		return "overflow"
	case strings.HasPrefix(cause, "Could not answer"):
		return "answer"
	}
	return "other"
}

// recordingEnded counts a recording's end by its final state.
func recordingEnded(final RecordingState, cause string) {
	switch final {
	case RecFailed:
		promRecFailed.WithLabelValues(failedCauseLabel(cause)).Inc()
	case RecDone:
		promRecFinished.Inc()
	}
}

// channelEnded counts a channel's end and folds its RTP figures into the
// totals of ended channels.
func channelEnded(cause Cause, answered bool, st rtp.Stats) {
	promActive.Dec()
	if answered {
		promCalls.WithLabelValues("answered").Inc()
	} else {
		promCalls.WithLabelValues("unanswered").Inc()
	}
	promHangups.WithLabelValues(CauseText(cause)).Inc()
	if st.Received > 1 {
		promRTPJitter.Observe(st.Jitter / 8000)
	}
}

// rtpCollector reports RTP totals as the sum of the ended channels' final
// figures and the live channels' current ones, read from their sessions at
// scrape time (one statistics lock per live channel per scrape). A channel
// moves from live to ended under mu and its manager's mu together
// (Manager.remove), so a scrape never counts it twice or not at all; lock
// order: rtpCollector.mu -> Manager.mu -> the session's statistics lock.
type rtpCollector struct {
	mu       sync.Mutex
	managers []weak.Pointer[Manager]
	// Totals of ended channels.
	received, lost, late, dups, sent, dropped uint64
}

var rtpFigures = &rtpCollector{}

var (
	descRTPReceived = prometheus.NewDesc("tapedeck_rtp_packets_received_total", "RTP packets received (duplicates excluded).", nil, nil)
	descRTPLost     = prometheus.NewDesc("tapedeck_rtp_packets_lost_total", "RTP packets expected but not received (RFC 3550 cumulative loss).", nil, nil)
	descRTPLate     = prometheus.NewDesc("tapedeck_rtp_packets_late_total", "RTP packets received out of order (later than a higher sequence number).", nil, nil)
	descRTPDups     = prometheus.NewDesc("tapedeck_rtp_packets_duplicate_total", "Duplicate RTP packets received.", nil, nil)
	descRTPSent     = prometheus.NewDesc("tapedeck_rtp_packets_sent_total", "RTP packets sent.", nil, nil)
	descRTPDropped  = prometheus.NewDesc("tapedeck_rtp_packets_foreign_dropped_total", "RTP packets dropped because they came from another address than the call's (strict RTP).", nil, nil)
	descRTPJitter   = prometheus.NewDesc("tapedeck_rtp_jitter_max_seconds", "Highest interarrival jitter among the live channels now.", nil, nil)
	descRecActive   = prometheus.NewDesc("tapedeck_recordings_active", "Live recordings (queued or recording) now.", nil, nil)
)

func (c *rtpCollector) track(m *Manager) {
	c.mu.Lock()
	c.managers = append(c.managers, weak.Make(m))
	c.mu.Unlock()
}

// endedLocked adds an ended channel's figures (c.mu held).
func (c *rtpCollector) endedLocked(st rtp.Stats) {
	c.received += st.Received
	if st.Lost > 0 {
		c.lost += uint64(st.Lost)
	}
	c.late += st.Reordered
	c.dups += st.Duplicates
	c.sent += st.Sent
	c.dropped += st.SourceDropped
}

func (c *rtpCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRTPReceived, descRTPLost, descRTPLate, descRTPDups, descRTPSent, descRTPDropped, descRTPJitter, descRecActive} {
		ch <- d
	}
}

func (c *rtpCollector) Collect(out chan<- prometheus.Metric) {
	c.mu.Lock()
	live := c.managers[:0]
	var ms []*Manager
	for _, w := range c.managers {
		if m := w.Value(); m != nil {
			live = append(live, w)
			ms = append(ms, m)
		}
	}
	clear(c.managers[len(live):])
	c.managers = live
	received, lost, late, dups, sent, dropped := c.received, c.lost, c.late, c.dups, c.sent, c.dropped
	var jitter float64
	recs := 0
	for _, m := range ms {
		m.recMu.Lock()
		recs += len(m.live)
		m.recMu.Unlock()
		m.mu.RLock()
		for _, ch := range m.chans {
			st := ch.media.Stats()
			received += st.Received
			if st.Lost > 0 {
				lost += uint64(st.Lost)
			}
			late += st.Reordered
			dups += st.Duplicates
			sent += st.Sent
			dropped += st.SourceDropped
			jitter = max(jitter, st.Jitter/8000)
		}
		m.mu.RUnlock()
	}
	c.mu.Unlock()
	out <- prometheus.MustNewConstMetric(descRTPReceived, prometheus.CounterValue, float64(received))
	out <- prometheus.MustNewConstMetric(descRTPLost, prometheus.CounterValue, float64(lost))
	out <- prometheus.MustNewConstMetric(descRTPLate, prometheus.CounterValue, float64(late))
	out <- prometheus.MustNewConstMetric(descRTPDups, prometheus.CounterValue, float64(dups))
	out <- prometheus.MustNewConstMetric(descRTPSent, prometheus.CounterValue, float64(sent))
	out <- prometheus.MustNewConstMetric(descRTPDropped, prometheus.CounterValue, float64(dropped))
	out <- prometheus.MustNewConstMetric(descRTPJitter, prometheus.GaugeValue, jitter)
	out <- prometheus.MustNewConstMetric(descRecActive, prometheus.GaugeValue, float64(recs))
}

// observeSetup records a channel's time to answer.
func observeSetup(created, now time.Time) {
	if d := now.Sub(created); d >= 0 {
		promSetup.Observe(d.Seconds())
	}
}

// round3 rounds to three decimals (log figures).
func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }
