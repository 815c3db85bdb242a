package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// BenchmarkOzekiCommand measures the command API with many real calls up:
// OZEKI_BENCH_CALLS (default 500) sipua calls to Script(), whose OzML app
// answers <Delay>600</Delay> so each call is answered and held, with its RTP
// sockets. Then each iteration is one HTTP command on loopback:
// ListActiveCalls (every call listed) or SendDTMF on one of the calls. It
// reports p50/p99 latency per command.
func BenchmarkOzekiCommand(b *testing.B) {
	calls := 500
	if v, err := strconv.Atoi(os.Getenv("OZEKI_BENCH_CALLS")); err == nil && v > 0 {
		calls = v
	}
	recv := startReceiver(b)
	recv.answer = func(string, url.Values) (int, string) {
		return 200, `<?xml version="1.0"?><Response><Delay>600</Delay></Response>`
	}
	n := ozekiNode(b, "700", "Script("+recv.url("/incoming")+")", func(c *config.Config) {
		c.RTP.PortMin, c.RTP.PortMax = 20000, 29999
	})
	const phonesN = 10
	per := (calls + phonesN - 1) / phonesN
	var wg sync.WaitGroup
	var mu sync.Mutex
	var held []*sipua.Call
	for i := range phonesN {
		p, err := sipua.New(sipua.Options{User: fmt.Sprintf("oz%d", i), RTPMin: 30000 + i*1000, RTPMax: 30000 + i*1000 + 999})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		for range per {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				c, err := p.Dial(ctx, n.target("700"), sipua.CallOptions{})
				if err == nil {
					mu.Lock()
					held = append(held, c)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if len(held) < calls {
		b.Fatalf("%d of %d calls up", len(held), calls)
	}
	testutil.Eventually(b, 30*time.Second, 50*time.Millisecond, func() bool { return n.srv.Calls().Count() >= calls }, "calls not up")
	ids := n.srv.Calls().Channels()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	base := "http://" + n.srv.OzekiAddr() + "/api?Username=HTTP_User_1&Password=qwe123&command="
	for _, cmd := range []string{"ListActiveCalls", "SendDTMF"} {
		b.Run(cmd, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				u := base + cmd
				if cmd == "SendDTMF" {
					u += "&DTMF=1&CallId=" + url.QueryEscape(string(ids[i%len(ids)].ID))
				}
				t0 := time.Now()
				res, err := client.Get(u)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				lat = append(lat, time.Since(t0))
				if i > 0 {
					continue // the check below costs more than the command
				}
				if r := parseOz(b, string(body)); r.Code != 200 {
					b.Fatalf("%s: %d %s", cmd, r.Code, r.Message)
				}
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(calls), "calls-up")
		})
	}
	for _, c := range held {
		c.Hangup(context.Background())
	}
}
