package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"
)

// The sampler's /healthz requests after its first fall on whole seconds of
// the wall clock, the instants a node wakes at for its own 1 s jobs
// (internal/wakegrid), whatever the phase the run starts at. The run here
// starts half-way between two seconds: a free-running 1 s ticker (the old
// sampler) sends every request near x.5 s. The bound on the lateness is
// loose (a loaded VM's timer and scheduling delays); phases near 0.5 s are
// what it tells apart. Peak channels and the per-second samples still come
// from the requests.
func TestSamplerHealthOnWholeSeconds(t *testing.T) {
	var mu sync.Mutex
	var arrivals []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		n := len(arrivals)
		mu.Unlock()
		fmt.Fprintf(w, `{"channels": %d}`, 10*n)
	}))
	defer srv.Close()

	// Start at x.5 s on the wall clock.
	now := time.Now()
	time.Sleep(time.Duration((int64(1500*time.Millisecond) - now.UnixNano()%int64(time.Second)) % int64(time.Second)))

	s := newSampler(os.Getpid(), srv.URL, "", "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.run(ctx); close(done) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		n := len(arrivals)
		mu.Unlock()
		if n >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d /healthz requests in 15 s, want 4", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done

	mu.Lock()
	defer mu.Unlock()
	for i, a := range arrivals[1:4] {
		if phase := time.Duration(a.UnixNano() % int64(time.Second)); phase > 200*time.Millisecond {
			t.Errorf("request %d arrived %v after a whole second, want it on the second (within a loose 200 ms)", i+2, phase)
		}
	}
	if got := s.maxChannels.Load(); got < 40 {
		t.Errorf("peak channels %d, want at least the 4th answer's 40", got)
	}
	if len(s.up) < 4 {
		t.Errorf("%d per-second samples, want 4", len(s.up))
	}
	if s.maxRSS.Load() <= 0 {
		t.Errorf("RSS not sampled: %d", s.maxRSS.Load())
	}
}
