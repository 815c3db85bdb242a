package call

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tapedeck/tapedeck/internal/event"
)

// TestMediaWebSocketRepliesBounded: a far end that floods commands and
// never reads the answers costs a bounded queue, not a goroutine per
// answer (with 100,000 GET_STATUS, one each would exhaust memory, or the
// race detector's goroutine limit).
func TestMediaWebSocketRepliesBounded(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(rw, r, nil)
		if err != nil {
			return
		}
		<-release // never reads
		c.CloseNow()
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	m := &Manager{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	w := &mediaWebSocket{conn: conn, s: &streamMedia{m: m, ch: &Channel{id: "c1"}}}
	w.startReplies()
	defer close(w.stop)
	before := runtime.NumGoroutine()
	for i := 0; i < 100000; i++ {
		w.command("GET_STATUS")
	}
	if after := runtime.NumGoroutine(); after > before+10 {
		t.Fatalf("%d goroutines after the flood, %d before", after, before)
	}
	if w.dropped.Load() == 0 {
		t.Fatal("no answer was dropped: the far end read 100,000 of them?")
	}
}

// frameSizes is a tap that keeps the length of each frame it sees.
type frameSizes struct {
	mu    sync.Mutex
	sizes []int
}

func (f *frameSizes) Audio(fr *Frame) {
	f.mu.Lock()
	f.sizes = append(f.sizes, len(fr.PCM))
	f.mu.Unlock()
}

func (f *frameSizes) Digit(Digit) bool { return false }

func (f *frameSizes) get() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sizes)
}

// TestMediaWebSocketPassthroughKeepsFrames: a real WebSocket application
// sends ulaw messages of 30, 10, 20 and 41.6 ms. With chan_websocket's p
// (passthrough) each message enters the channel as one frame of its own
// length, as Asterisk queues each message as a frame; without it the
// audio is cut into 20 ms frames (the last padded).
func TestMediaWebSocketPassthroughKeepsFrames(t *testing.T) {
	msgs := []int{240, 80, 160, 333}
	for _, c := range []struct {
		data string
		want []int
	}{
		{"p", msgs},
		{"", []int{160, 160, 160, 160, 160, 160}}, // 813 samples
	} {
		t.Run("transport_data="+c.data, func(t *testing.T) {
			m := testManager(t, "")
			m.opts.Bus.Register(event.NewSubscriber("bot", 1000, false), nil)
			srv := httptest.NewServer(m.MediaWebSocketHandler())
			defer srv.Close()
			j, err := m.ExternalMedia(ExternalMediaOptions{App: "bot", Encapsulation: "none", Transport: "websocket",
				ConnectionType: "server", Format: "ulaw", TransportData: c.data})
			if err != nil {
				t.Fatal(err)
			}
			ch, err := m.channel(string(j.ID))
			if err != nil {
				t.Fatal(err)
			}
			sizes := &frameSizes{}
			if _, ok := ch.AttachTap(sizes, StageSink); !ok {
				t.Fatal("could not attach a tap")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/media/" + j.Channelvars["MEDIA_WEBSOCKET_CONNECTION_ID"]
			conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"media"}})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.CloseNow()
			if typ, b, err := conn.Read(ctx); err != nil || typ != websocket.MessageText || !strings.HasPrefix(string(b), "MEDIA_START") {
				t.Fatalf("first message %v %q %v", typ, b, err)
			}
			go func() { // the channel's own audio to the application: read and drop
				for {
					if _, _, err := conn.Read(ctx); err != nil {
						return
					}
				}
			}()
			// Without p the media clock cuts what is queued when it plays,
			// padding a short remainder: a clock that played between two of
			// the messages (a busy host) padded that one too. PAUSE_MEDIA
			// ... CONTINUE_MEDIA (handled in order with the audio) has all
			// four queued before the first frame is cut.
			if c.data == "" {
				if err := conn.Write(ctx, websocket.MessageText, []byte("PAUSE_MEDIA")); err != nil {
					t.Fatal(err)
				}
			}
			for _, n := range msgs {
				if err := conn.Write(ctx, websocket.MessageBinary, bytes.Repeat([]byte{0x55}, n)); err != nil {
					t.Fatal(err)
				}
			}
			if c.data == "" {
				if err := conn.Write(ctx, websocket.MessageText, []byte("CONTINUE_MEDIA")); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(5 * time.Second)
			for len(sizes.get()) < len(c.want) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := sizes.get(); !slices.Equal(got, c.want) {
				t.Fatalf("frames of %v samples, want %v", got, c.want)
			}
		})
	}
}

// TestMediaWebSocketStatus: GET_STATUS's queue_length counts the frames
// waiting to be played, as chan_websocket's frame_queue_length: in
// passthrough (p) each of the application's messages is one frame, so 100
// messages of 10 ms are 100 frames; otherwise the audio is cut into 20 ms
// frames, 50. bulk_media is true between START_MEDIA_BUFFERING and
// STOP_MEDIA_BUFFERING. The messages play at one per 20 ms, so most are
// still queued when the status is asked for.
func TestMediaWebSocketStatus(t *testing.T) {
	const sent = 100
	for _, c := range []struct {
		data   string
		frames int
		bulk   bool
	}{
		{"f(json)p", sent, false},
		{"f(json)", sent / 2, true},
	} {
		t.Run("transport_data="+c.data, func(t *testing.T) {
			m := testManager(t, "")
			m.opts.Bus.Register(event.NewSubscriber("bot", 1000, false), nil)
			srv := httptest.NewServer(m.MediaWebSocketHandler())
			defer srv.Close()
			j, err := m.ExternalMedia(ExternalMediaOptions{App: "bot", Encapsulation: "none", Transport: "websocket",
				ConnectionType: "server", Format: "ulaw", TransportData: c.data})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/media/" + j.Channelvars["MEDIA_WEBSOCKET_CONNECTION_ID"]
			conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"media"}})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.CloseNow()
			texts := make(chan string, 10)
			go func() {
				defer close(texts)
				for {
					typ, b, err := conn.Read(ctx)
					if err != nil {
						return
					}
					if typ == websocket.MessageText {
						texts <- string(b)
					}
				}
			}()
			next := func() map[string]any {
				t.Helper()
				s, ok := <-texts
				if !ok {
					t.Fatal("media websocket closed")
				}
				var v map[string]any
				if err := json.Unmarshal([]byte(s), &v); err != nil {
					t.Fatalf("not JSON: %s", s)
				}
				return v
			}
			send := func(typ websocket.MessageType, b []byte) {
				t.Helper()
				if err := conn.Write(ctx, typ, b); err != nil {
					t.Fatal(err)
				}
			}
			if v := next(); v["event"] != "MEDIA_START" {
				t.Fatalf("first message %v", v)
			}
			if c.bulk {
				send(websocket.MessageText, []byte(`{"command":"START_MEDIA_BUFFERING"}`))
			}
			for range sent {
				send(websocket.MessageBinary, bytes.Repeat([]byte{0x55}, 80))
			}
			send(websocket.MessageText, []byte(`{"command":"GET_STATUS"}`))
			v := next()
			if v["event"] != "STATUS" || v["bulk_media"] != c.bulk {
				t.Fatalf("after GET_STATUS: %v, want bulk_media %v", v, c.bulk)
			}
			// At most a few frames (a burst of 3, then one per 20 ms) were
			// played while the messages were read: under heavy load, half.
			if q, _ := v["queue_length"].(float64); q < float64(c.frames/2) || q > float64(c.frames) {
				t.Errorf("queue_length %v with %d messages of 10 ms just sent, want between %d and %d", v["queue_length"], sent, c.frames/2, c.frames)
			}
			if c.bulk {
				send(websocket.MessageText, []byte(`{"command":"STOP_MEDIA_BUFFERING"}`))
				send(websocket.MessageText, []byte(`{"command":"GET_STATUS"}`))
				for {
					v := next()
					if v["event"] == "STATUS" {
						if v["bulk_media"] != false {
							t.Errorf("after STOP_MEDIA_BUFFERING: %v", v)
						}
						break
					}
				}
			}
		})
	}
}

// TestMediaWebSocketSlowFarEndWritesInline: the channel's audio is written
// to the media websocket on the sender's goroutine, and never blocks it:
// with an application that does not read, 4000 frames (650 KB, more than
// the loopback buffers, made small, hold) are all handed over at once,
// those beyond about a second of backlog dropped whole. When the
// application reads, it gets every frame that was not dropped, whole and in
// order, with a DTMF_END sent in the middle in its place among them; when
// the channel hangs up, the close handshake ends the socket with a normal
// closure.
func TestMediaWebSocketSlowFarEndWritesInline(t *testing.T) {
	m := testManager(t, "")
	m.opts.Bus.Register(event.NewSubscriber("bot", 1000, false), nil)
	srv := httptest.NewServer(m.MediaWebSocketHandler())
	defer srv.Close()
	j, err := m.ExternalMedia(ExternalMediaOptions{App: "bot", Encapsulation: "none", Transport: "websocket",
		ConnectionType: "server", Format: "ulaw"})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := m.channel(string(j.ID))
	if err != nil {
		t.Fatal(err)
	}
	sm := ch.media.(*streamMedia)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The application's socket reads into a small buffer.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			err = c.(*net.TCPConn).SetReadBuffer(4096)
		}
		return c, err
	}
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/media/" + j.Channelvars["MEDIA_WEBSOCKET_CONNECTION_ID"]
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"media"}, HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	if typ, b, err := conn.Read(ctx); err != nil || typ != websocket.MessageText || !strings.HasPrefix(string(b), "MEDIA_START") {
		t.Fatalf("first message %v %q %v", typ, b, err)
	}
	w, ok := sm.transport().(*mediaWebSocket)
	if !ok || w.nb == nil {
		t.Fatalf("transport %T without its connection", sm.transport())
	}
	if err := w.nb.Conn.(*net.TCPConn).SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}

	const frames, dtmfAt = 4000, 2000
	done := make(chan error, 1)
	go func() {
		payload := make([]byte, 160)
		for i := range frames {
			if i == dtmfAt {
				if err := w.writeDigit('7'); err != nil {
					done <- err
					return
				}
			}
			payload[0], payload[1] = byte(i>>8), byte(i)
			if err := sm.WriteAudio(payload, 160); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WriteAudio blocked on an application that does not read")
	}
	dropped := int(sm.dropped.Load())
	if dropped == 0 {
		t.Fatal("no frame dropped: the buffers took 650 KB")
	}

	last, n, dtmfAfter := -1, 0, -2
	for n < frames-dropped || dtmfAfter == -2 {
		typ, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("after %d frames: %v", n, err)
		}
		if typ == websocket.MessageText {
			if !strings.HasPrefix(string(b), "DTMF_END digit:7") || dtmfAfter != -2 {
				t.Fatalf("text message %q after frame %d", b, last)
			}
			dtmfAfter = last
			continue
		}
		i := int(b[0])<<8 | int(b[1])
		if len(b) != 160 || i <= last {
			t.Fatalf("frame %d (%d bytes) after frame %d", i, len(b), last)
		}
		if dtmfAfter != -2 && i < dtmfAt || dtmfAfter == -2 && i >= dtmfAt {
			t.Fatalf("frame %d on the wrong side of the DTMF_END sent before frame %d (read after frame %d)", i, dtmfAt, dtmfAfter)
		}
		last = i
		n++
	}
	if n != frames-dropped {
		t.Fatalf("%d frames read, %d sent and %d dropped", n, frames, dropped)
	}

	go ch.hangup(CauseNormalClearing, false)
	for {
		_, _, err := conn.Read(ctx)
		if err == nil {
			continue
		}
		if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
			t.Fatalf("the socket ended with %v, want a normal closure", err)
		}
		break
	}
}

// TestMediaWebSocketOverTLS: on the HTTPS server the hijacked connection is
// TLS, which cannot be written without blocking: the stream's writes then
// go through one lasting flusher, still in order (frames around a
// DTMF_END), the close handshake still ends the socket normally, and the
// flusher ends with it.
func TestMediaWebSocketOverTLS(t *testing.T) {
	m := testManager(t, "")
	m.opts.Bus.Register(event.NewSubscriber("bot", 1000, false), nil)
	srv := httptest.NewTLSServer(m.MediaWebSocketHandler())
	defer srv.Close()
	j, err := m.ExternalMedia(ExternalMediaOptions{App: "bot", Encapsulation: "none", Transport: "websocket",
		ConnectionType: "server", Format: "ulaw"})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := m.channel(string(j.ID))
	if err != nil {
		t.Fatal(err)
	}
	sm := ch.media.(*streamMedia)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := "wss" + strings.TrimPrefix(srv.URL, "https") + "/media/" + j.Channelvars["MEDIA_WEBSOCKET_CONNECTION_ID"]
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"media"}, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if typ, b, err := conn.Read(ctx); err != nil || typ != websocket.MessageText || !strings.HasPrefix(string(b), "MEDIA_START") {
		t.Fatalf("first message %v %q %v", typ, b, err)
	}
	w := sm.transport().(*mediaWebSocket)
	if w.nb == nil || w.nb.raw != nil {
		t.Fatalf("the TLS connection: %+v", w.nb)
	}
	const frames = 100
	payload := make([]byte, 160)
	for i := range frames {
		if i == frames/2 {
			if err := w.writeDigit('3'); err != nil {
				t.Fatal(err)
			}
		}
		// Faster than real time, but not past the second of backlog the
		// stream keeps before it drops frames.
		eventually(t, "the backlog to shrink", func() bool { return w.nb.backlog() < 2000 })
		payload[0] = byte(i)
		if err := sm.WriteAudio(payload, 160); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for len(got) < frames+1 {
		typ, b, err := conn.Read(ctx)
		if err != nil {
			w.nb.mu.Lock()
			pend, fl, werr := len(w.nb.pend), w.nb.flushing, w.nb.err
			w.nb.mu.Unlock()
			t.Fatalf("after %v: %v (pend %d, flushing %v, err %v; dropped %d)", got, err, pend, fl, werr, sm.dropped.Load())
		}
		if typ == websocket.MessageText {
			got = append(got, string(b[:min(len(b), 16)]))
		} else {
			got = append(got, strconv.Itoa(int(b[0])))
		}
	}
	var want []string
	for i := range frames {
		if i == frames/2 {
			want = append(want, "DTMF_END digit:3")
		}
		want = append(want, strconv.Itoa(i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("messages %v, want %v", got, want)
	}
	w.nb.mu.Lock()
	lasting := w.nb.flushing
	w.nb.mu.Unlock()
	if !lasting {
		t.Error("no lasting flusher: a goroutine would start for every write")
	}
	go ch.hangup(CauseNormalClearing, false)
	for {
		if _, _, err := conn.Read(ctx); err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Fatalf("the socket ended with %v, want a normal closure", err)
			}
			break
		}
	}
	eventually(t, "the flusher to end", func() bool {
		w.nb.mu.Lock()
		defer w.nb.mu.Unlock()
		return !w.nb.flushing
	})
}
