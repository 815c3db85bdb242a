package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tapedeck/tapedeck/internal/sipua"
)

// BenchmarkCallSetup measures full call cycles — INVITE, StasisStart to an
// ARI application over the WebSocket, POST answer, 200 OK, ACK, BYE — with
// 16 calls in flight. It reports cycles/s and the INVITE→200 OK latency
// p50/p99. Client, ARI app and server share the machine.
func BenchmarkCallSetup(b *testing.B) {
	n := startNode(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://%s/ari/events?app=test&api_key=asterisk:asterisk", n.srv.HTTPAddr()), nil)
	if err != nil {
		b.Fatal(err)
	}
	conn.SetReadLimit(1 << 20)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	answer := make(chan string, 1024)
	for w := 0; w < 8; w++ {
		go func() {
			for id := range answer {
				req, _ := http.NewRequest("POST", n.baseURL()+"/ari/channels/"+id+"/answer", nil)
				req.SetBasicAuth("asterisk", "asterisk")
				if res, err := client.Do(req); err == nil {
					res.Body.Close()
				}
			}
		}()
	}
	go func() {
		defer close(answer)
		for {
			_, data, err := conn.Read(ctx)
			if err != nil {
				return
			}
			var ev struct {
				Type    string `json:"type"`
				Channel struct {
					ID string `json:"id"`
				} `json:"channel"`
			}
			if json.Unmarshal(data, &ev) == nil && ev.Type == "StasisStart" {
				answer <- ev.Channel.ID
			}
		}
	}()

	const inflight = 16
	phones := make([]*sipua.Phone, inflight)
	for i := range phones {
		p, err := sipua.New(sipua.Options{User: fmt.Sprintf("load%d", i), RTPMin: 44000 + i*120, RTPMax: 44000 + i*120 + 119})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		phones[i] = p
	}
	var next atomic.Int64
	var failed atomic.Int64
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < inflight; w++ {
		wg.Add(1)
		go func(p *sipua.Phone) {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
				call, err := p.Dial(cctx, n.target("300"), sipua.CallOptions{})
				if err != nil {
					failed.Add(1)
					ccancel()
					continue
				}
				mu.Lock()
				lat = append(lat, call.SetupTime)
				mu.Unlock()
				if err := call.Hangup(cctx); err != nil {
					failed.Add(1)
				}
				ccancel()
			}
		}(phones[w])
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Errorf("%d of %d calls failed", f, b.N)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "calls/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-setup-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-setup-ms")
	}
	// Every channel was torn down.
	deadline := time.Now().Add(10 * time.Second)
	for n.srv.Calls().Count() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c := n.srv.Calls().Count(); c > 0 {
		b.Errorf("%d channels left after the run", c)
	}
}
