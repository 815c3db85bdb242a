package call

import (
	"context"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tapedeck/tapedeck/internal/event"
)

// BenchmarkWebSocketStreamSendCPU: the CPU the process spends per 20 ms
// frame a WebSocket external media stream (ulaw, connection_type server,
// to a coder/websocket application in this process over loopback) sends,
// as a bridge hands it over: the hand-off or inline write, the socket
// writes, the goroutine wake-ups and the application's reads. Frames come
// faster than real time, held back while the application is 20 frames
// behind. cpu-ns/frame is the figure (getrusage over the run); ns/op is
// wall time. It uses only what the stream had before it wrote on the
// sender's goroutine, so that the same file measures both.
func BenchmarkWebSocketStreamSendCPU(b *testing.B) {
	m := benchManager(b)
	m.opts.Bus.Register(event.NewSubscriber("bench", 1<<16, false), nil)
	srv := httptest.NewServer(m.MediaWebSocketHandler())
	b.Cleanup(srv.Close)
	j, err := m.ExternalMedia(ExternalMediaOptions{App: "bench", Encapsulation: "none", Transport: "websocket",
		ConnectionType: "server", Format: "ulaw"})
	if err != nil {
		b.Fatal(err)
	}
	ch, err := m.channel(string(j.ID))
	if err != nil {
		b.Fatal(err)
	}
	sm := ch.media.(*streamMedia)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/media/" + j.Channelvars["MEDIA_WEBSOCKET_CONNECTION_ID"]
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"media"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.CloseNow() })
	var got atomic.Int64 // audio messages the application read
	go func() {
		for {
			typ, _, err := conn.Read(ctx)
			if err != nil {
				return
			}
			if typ == websocket.MessageBinary {
				got.Add(1)
			}
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for sm.transport() == nil { // the application's socket is up
		if time.Now().After(deadline) {
			b.Fatal("the media websocket did not connect")
		}
		time.Sleep(time.Millisecond)
	}
	wait := func(n int64) { // not spinning: the CPU is what is measured
		deadline := time.Now().Add(10 * time.Second)
		for got.Load() < n {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d frames arrived", got.Load(), n)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	payload := benchPayload
	b.ReportAllocs()
	runtime.GC()
	before := cpuTime(b)
	b.ResetTimer()
	for i := range b.N {
		if got.Load() < int64(i-20) {
			b.StopTimer()
			wait(int64(i - 20))
			b.StartTimer()
		}
		if err := sm.WriteAudio(payload, 160); err != nil {
			b.Fatal(err)
		}
	}
	wait(int64(b.N))
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-before)/float64(b.N), "cpu-ns/frame")
	if d := sm.dropped.Load(); d > 0 {
		b.Fatalf("%d frames dropped", d)
	}
}
