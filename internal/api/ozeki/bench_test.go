package ozeki

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// BenchmarkCommand1000Calls measures one command of the API, over a real
// HTTP connection on loopback, with OZEKI_BENCH_CALLS (default 1,000)
// calls up in a real call manager: in-process channels (external media
// channels, each with its RTP sockets) instead of SIP phones, so that the
// figure is the command's own cost and not the load of a thousand RTP
// streams on the same cores. It reports p50/p99 latency per command.
func BenchmarkCommand1000Calls(b *testing.B) {
	calls, ids, base, client := benchAPI(b, call.Options{})
	for _, cmd := range []string{"ListActiveCalls", "SendDTMF"} {
		b.Run(cmd, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			var buf bytes.Buffer
			b.ResetTimer()
			for i := range b.N {
				u := base + cmd
				if cmd == "SendDTMF" {
					u += "&DTMF=1&CallId=" + url.QueryEscape(string(ids[i%len(ids)]))
				}
				t0 := time.Now()
				res, err := client.Get(u)
				if err != nil {
					b.Fatal(err)
				}
				buf.Reset()
				buf.ReadFrom(res.Body)
				res.Body.Close()
				body := buf.Bytes()
				lat = append(lat, time.Since(t0))
				if i == 0 {
					var r Response
					if err := xml.Unmarshal(body, &r); err != nil {
						b.Fatal(err)
					}
					if r.Code != 200 || (cmd == "ListActiveCalls" && (r.ActiveCalls == nil || len(r.ActiveCalls.Calls) != calls)) {
						b.Fatalf("%s: %d %s", cmd, r.Code, r.Message)
					}
				}
			}
			b.StopTimer()
			reportLatency(b, lat, calls)
		})
	}
}

// benchAPI starts a call manager (opts, with a bus, RTP ports and a
// discarding logger set here) with OZEKI_BENCH_CALLS (default 1,000)
// calls up: in-process channels (external media channels, each with its
// RTP sockets), hung up when b ends. It serves this API over the manager
// on a real loopback HTTP server and returns the number of calls, their
// channels, the API's URL for HTTP_User_1 up to "command=" and a client.
func benchAPI(b *testing.B, opts call.Options) (calls int, ids []call.ChannelID, base string, client *http.Client) {
	b.Helper()
	calls = 1000
	if v, err := strconv.Atoi(os.Getenv("OZEKI_BENCH_CALLS")); err == nil && v > 0 {
		calls = v
	}
	lo, hi := testutil.FreeUDPPortRange(b, 4*calls+100)
	ports, err := rtp.NewPorts("127.0.0.1", lo, hi)
	if err != nil {
		b.Fatal(err)
	}
	bus := event.NewBus("bench")
	bus.Register(event.NewSubscriber("bench", 1<<20, false), nil)
	opts.Bus, opts.Ports, opts.Logger = bus, ports, slog.New(slog.DiscardHandler)
	m := call.NewManager(opts)
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
	b.Cleanup(func() {
		for _, id := range ids {
			m.Hangup(id, call.CauseNormalClearing)
		}
		a.Wait(30 * time.Second) // the recordings' ends, before TempDir's cleanup
	})
	srv := httptest.NewServer(a)
	b.Cleanup(srv.Close)
	client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	return calls, ids, srv.URL + "/api?Username=HTTP_User_1&Password=qwe123&command=", client
}

// reportLatency reports the p50 and p99 of the commands' latencies lat
// (sorted here) and the calls that were up.
func reportLatency(b *testing.B, lat []time.Duration, calls int) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(calls), "calls-up")
}
