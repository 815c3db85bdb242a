package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapedeck/tapedeck/internal/wakegrid"
)

// readyz says whether the node should be sent calls: 200 "ready", or 503
// with the reasons (draining; the catalog database does not answer; the
// recordings root is not writable; free disk below http.min_free_disk_mb).
// It is public, like /healthz: a load balancer probes it.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain")
	if reasons := s.notReady(r.Context()); len(reasons) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %s\n", strings.Join(reasons, "; "))
		return
	}
	fmt.Fprintln(w, "ready")
}

// readyLoop checks readiness every interval and tells SIP, so that OPTIONS
// answers 503 while /readyz would (a dispatcher probing with OPTIONS skips
// the node) without a database round trip per OPTIONS. It also beats the
// cluster's announcements.
func (s *Server) readyLoop(interval time.Duration) {
	defer close(s.readyDone)
	// On the node's wake-up grid (wakegrid): a check falls on an RTP
	// poller read and a writer clock tick, in one wake-up of the process.
	t := time.NewTimer(wakegrid.Until(interval))
	defer t.Stop()
	last := ""
	for {
		if s.cluster != nil {
			// The cluster's every-second announcement rides on this tick
			// (one wake-up a second for both), before the database check
			// that can take up to its 2 s timeout.
			s.cluster.beat()
		}
		reason := strings.Join(s.notReady(context.Background()), "; ")
		s.sip.SetUnready(reason)
		if reason != last {
			if reason != "" {
				s.log.Warn("not ready: SIP OPTIONS answers 503", "reasons", reason)
			} else if last != "" {
				s.log.Info("ready again: SIP OPTIONS answers 200")
			}
			last = reason
		}
		select {
		case <-s.stopReady:
			return
		case <-t.C:
			t.Reset(wakegrid.Until(interval))
		}
	}
}

func (s *Server) notReady(ctx context.Context) []string {
	var reasons []string
	if s.draining.Load() {
		reasons = append(reasons, "draining")
	}
	if s.nats != nil && !s.nats.connected() {
		reasons = append(reasons, "nats: not connected (no new channels or bridges)")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.meta.Ping(ctx); err != nil {
		reasons = append(reasons, "catalog database: "+err.Error())
	}
	root := s.cfg.RecordingsDir()
	if err := unix.Access(root, unix.W_OK|unix.X_OK); err != nil {
		reasons = append(reasons, fmt.Sprintf("recordings root %s: %v", root, err))
	} else if min := s.minFreeDiskMB.Load(); min > 0 {
		free, err := freeBytes(root)
		switch {
		case err != nil:
			reasons = append(reasons, fmt.Sprintf("recordings root %s: %v", root, err))
		case free < uint64(min)<<20:
			reasons = append(reasons, fmt.Sprintf("disk: %d MiB free under %s, below http.min_free_disk_mb %d", free>>20, root, min))
		}
	}
	return reasons
}
