package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/sys/unix"
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
	if _, err := s.meta.ListAccounts(ctx); err != nil {
		reasons = append(reasons, "catalog database: "+err.Error())
	}
	root := s.cfg.RecordingsDir()
	if err := unix.Access(root, unix.W_OK|unix.X_OK); err != nil {
		reasons = append(reasons, fmt.Sprintf("recordings root %s: %v", root, err))
	} else if min := s.cfg.HTTP.MinFreeDiskMB; min > 0 {
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
