package ozeki

import (
	"bytes"
	"context"
	"encoding/xml"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// BenchmarkRecord1000Calls measures the Record command, over a real HTTP
// connection on loopback, with OZEKI_BENCH_CALLS (default 1,000) calls up
// in a real call manager (external media channels with their RTP sockets)
// that catalogues its recordings in a real SQLite catalog: each Record
// checks that its name is free (the live recordings and the catalog) and
// starts a recording whose in-progress row the catalog writes (before the
// answer since the row-first Record), listed in the recordings journal. Each
// iteration records the next call (one recording per call and round); the
// recordings end with the calls. It reports p50/p99 latency per command.
func BenchmarkRecord1000Calls(b *testing.B) {
	dir := b.TempDir()
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() }) // after the calls' hangups (benchAPI's cleanup)
	root := filepath.Join(dir, "recording")
	cat := &catalog.Service{Meta: st, Root: root, Node: "bench", Log: slog.New(slog.DiscardHandler)}
	if _, err := cat.DefaultAccount(context.Background()); err != nil {
		b.Fatal(err)
	}
	// The recordings in progress are listed in a journal, as the server
	// lists them (instead of a marker file per recording).
	if err := os.MkdirAll(root, 0o755); err != nil {
		b.Fatal(err)
	}
	journal, err := recorder.OpenJournal(root, "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { journal.Close() }) // after the calls' hangups (benchAPI's cleanup)
	calls, ids, base, client := benchAPI(b, call.Options{RecordingsDir: root, Catalog: cat, Journal: journal})
	base += "Record&Format=wav&CallId="
	lat := make([]time.Duration, 0, b.N)
	var buf bytes.Buffer
	b.ResetTimer()
	for i := range b.N {
		u := base + url.QueryEscape(string(ids[i%len(ids)]))
		t0 := time.Now()
		res, err := client.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		buf.Reset()
		buf.ReadFrom(res.Body)
		res.Body.Close()
		lat = append(lat, time.Since(t0))
		var r Response
		if err := xml.Unmarshal(buf.Bytes(), &r); err != nil {
			b.Fatal(err)
		}
		if r.Code != 200 {
			b.Fatalf("Record: %d %s", r.Code, r.Message)
		}
	}
	b.StopTimer()
	reportLatency(b, lat, calls)
}
