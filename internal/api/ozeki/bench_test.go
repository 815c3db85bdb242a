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
	calls := 1000
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
	m := call.NewManager(call.Options{Bus: bus, Ports: ports, Logger: slog.New(slog.DiscardHandler)})
	var ids []call.ChannelID
	for i := range calls {
		j, err := m.ExternalMedia(call.ExternalMediaOptions{App: "bench", ExternalHost: "127.0.0.1:9", Format: "ulaw",
			ChannelID: call.ChannelID(fmt.Sprintf("bench-%d", i))})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	defer func() {
		for _, id := range ids {
			m.Hangup(id, call.CauseNormalClearing)
		}
	}()
	a := New(Options{Calls: m, Users: []config.OzekiUser{{Username: "HTTP_User_1", Password: "qwe123"}},
		Log: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(a)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	base := srv.URL + "/api?Username=HTTP_User_1&Password=qwe123&command="
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
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(calls), "calls-up")
		})
	}
}
