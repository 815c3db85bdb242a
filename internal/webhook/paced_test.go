package webhook

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/netguard"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// BenchmarkDeliverPaced is the sender as a load run with many callbacks
// sees it: b.N notifications sent at a steady rate (WEBHOOK_BENCH_RATE a
// second, default 500), as recordings end, each Send from its own
// goroutine, into a real SQLite outbox, delivered to a loopback receiver.
// cpu-µs/delivered is the process's CPU (sender, outbox and receiver) per
// notification from the first Send until the last is delivered and the
// outbox has none pending. It uses only the package's API, so the same
// file measures an older build.
func BenchmarkDeliverPaced(b *testing.B) {
	rate := 500.0
	if v, err := strconv.ParseFloat(os.Getenv("WEBHOOK_BENCH_RATE"), 64); err == nil && v > 0 {
		rate = v
	}
	st, err := meta.OpenSQLite(filepath.Join(b.TempDir(), "tapedeck.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var got atomic.Int64
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got.Add(1)
	})}
	go srv.Serve(l)
	defer srv.Close()
	allow, _ := netguard.Parse([]string{"127.0.0.1"})
	s := New(Options{Outbox: st.(meta.Outbox), Node: "n1", Allow: allow, Secret: []byte("k"), Log: slog.New(slog.DiscardHandler)})
	s.Start()
	defer s.Close()
	target := "http://" + l.Addr().String() + "/done"
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	for i := range b.N {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval))) // the pacer (a benchmark's, not a test's wait)
		go func() {
			if _, err := s.Send(context.Background(), Notification{Kind: "RecordCompleted", CallID: "c", URL: target, Form: form}); err != nil {
				b.Error(err)
			}
		}()
	}
	for got.Load() < int64(b.N) {
		if time.Since(start) > 2*time.Minute {
			b.Fatalf("%d of %d delivered", got.Load(), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	for {
		n, err := st.(meta.Outbox).PendingCount(context.Background(), "n1")
		if err == nil && n == 0 || time.Since(start) > 2*time.Minute {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/delivered")
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "delivered/s")
}
