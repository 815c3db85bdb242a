package ozeki

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
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
	calls := 1000
	if v, err := strconv.Atoi(os.Getenv("OZEKI_BENCH_CALLS")); err == nil && v > 0 {
		calls = v
	}
	dir := b.TempDir()
	st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	root := filepath.Join(dir, "recording")
	cat := &catalog.Service{Meta: st, Root: root, Node: "bench", Log: slog.New(slog.DiscardHandler)}
	if _, err := cat.DefaultAccount(context.Background()); err != nil {
		b.Fatal(err)
	}
	lo, hi := testutil.FreeUDPPortRange(b, 4*calls+100)
	ports, err := rtp.NewPorts("127.0.0.1", lo, hi)
	if err != nil {
		b.Fatal(err)
	}
	bus := event.NewBus("bench")
	bus.Register(event.NewSubscriber("bench", 1<<20, false), nil)
	// The recordings in progress are listed in a journal, as the server
	// lists them (instead of a marker file per recording).
	if err := os.MkdirAll(root, 0o755); err != nil {
		b.Fatal(err)
	}
	journal, err := recorder.OpenJournal(root, "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer journal.Close()
	m := call.NewManager(call.Options{Bus: bus, Ports: ports, Logger: slog.New(slog.DiscardHandler),
		RecordingsDir: root, Catalog: cat, Journal: journal})
	var ids []call.ChannelID
	for i := range calls {
		j, err := m.ExternalMedia(call.ExternalMediaOptions{App: "bench", ExternalHost: "127.0.0.1:9", Format: "ulaw",
			ChannelID: call.ChannelID(fmt.Sprintf("bench-%d", i))})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	a := New(Options{Calls: m, Users: []config.OzekiUser{{Username: "HTTP_User_1", Password: "qwe123"}},
		Log: slog.New(slog.DiscardHandler)})
	defer func() {
		for _, id := range ids {
			m.Hangup(id, call.CauseNormalClearing)
		}
		a.Wait(30 * time.Second) // the recordings' ends, before TempDir's cleanup
	}()
	srv := httptest.NewServer(a)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	base := srv.URL + "/api?Username=HTTP_User_1&Password=qwe123&command=Record&Format=wav&CallId="
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
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(calls), "calls-up")
}
