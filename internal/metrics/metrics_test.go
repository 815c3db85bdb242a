package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

func TestHandlerServesRegisteredCollectors(t *testing.T) {
	c := promauto.With(Registry).NewCounter(prometheus.CounterOpts{
		Name: "tapedeck_metrics_test_total", Help: "test counter",
	})
	defer Registry.Unregister(c)
	c.Add(3)

	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{"tapedeck_metrics_test_total 3", "go_goroutines ", "process_cpu_seconds_total "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestHandlerDoesNotCompress: a scraper asking for gzip gets plain text,
// which costs the server less CPU per scrape than compressing it.
func TestHandlerDoesNotCompress(t *testing.T) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	Handler().ServeHTTP(rec, req)
	if enc := rec.Header().Get("Content-Encoding"); enc != "" {
		t.Fatalf("Content-Encoding %q", enc)
	}
	if !strings.Contains(rec.Body.String(), "go_goroutines ") {
		t.Fatal("not the plain text exposition")
	}
}
