package call

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// The WebSocket transport of external media (Asterisk's chan_websocket):
// binary messages carry raw audio in the channel's format both ways, text
// messages carry the plain-text control protocol. With connection_type
// client tapedeck connects to a configured websocket client
// (Options.MediaWebSocketClients, Asterisk's websocket_client.conf); with
// server the application connects to /media/{MEDIA_WEBSOCKET_CONNECTION_ID}
// on the HTTP server. Either way the channel is answered when the socket
// is up and the application first hears MEDIA_START.

// MediaWebSocketClient is a websocket client connection an external media
// channel may dial (websocket_client.conf).
type MediaWebSocketClient struct {
	URI       string
	Protocols []string // default "media"
	Username  string
	Password  string
}

// wsMediaProtocol is chan_websocket's sub-protocol.
const wsMediaProtocol = "media"

// mediaWebSocket is the WebSocket transport of a channel.
type mediaWebSocket struct {
	conn   *websocket.Conn
	s      *streamMedia
	connID string
}

// write sends one message; like the AudioSocket's it may block while the
// far end does not read, on the stream's writer goroutine, until the
// channel closes the socket (no per-frame timer).
func (w *mediaWebSocket) write(typ websocket.MessageType, b []byte) error {
	return w.conn.Write(context.Background(), typ, b)
}

func (w *mediaWebSocket) writeAudio(frame []byte) error {
	return w.write(websocket.MessageBinary, frame)
}

func (w *mediaWebSocket) writeDigit(d rune) error {
	return w.text(fmt.Sprintf("DTMF_END digit:%c channel_id:%s", d, w.s.ch.id))
}

func (w *mediaWebSocket) text(msg string) error { return w.write(websocket.MessageText, []byte(msg)) }

func (w *mediaWebSocket) close() { w.conn.Close(websocket.StatusNormalClosure, "") }

// run announces the stream, answers the channel and reads the
// application's audio and commands until the socket closes, then hangs
// the channel up.
func (w *mediaWebSocket) run() {
	s, ch := w.s, w.s.ch
	w.conn.SetReadLimit(65500)
	s.mu.Lock()
	s.onEvent = func(ev string) { go w.text(ev) }
	s.mu.Unlock()
	s.connect(w)
	_ = w.text(fmt.Sprintf("MEDIA_START connection_id:%s channel:%s channel_id:%s format:%s optimal_frame_size:%d ptime:20",
		w.connID, ch.name, ch.id, s.f.name, s.f.frameBytes()))
	ch.mu.Lock()
	if !ch.hangingUp {
		ch.setStateLocked(StateUp)
	}
	ch.mu.Unlock()
	for {
		typ, data, err := w.conn.Read(context.Background())
		if err != nil {
			select {
			case <-s.done:
			default:
				ch.log.Info("media websocket closed; hanging up", "err", err)
			}
			break
		}
		if typ == websocket.MessageBinary {
			s.receive(data, s.f.enc, s.f.rate)
			continue
		}
		if w.command(strings.TrimSpace(string(data))) {
			break
		}
	}
	w.conn.CloseNow()
	go ch.hangup(CauseNormalClearing, true)
}

// command runs one control message; it reports whether to hang up.
func (w *mediaWebSocket) command(msg string) (hangup bool) {
	s := w.s
	cmd, arg, _ := strings.Cut(msg, " ")
	switch cmd {
	case "ANSWER", "START_MEDIA_BUFFERING":
		// Answered when connected; every message is buffered into frames.
	case "HANGUP":
		return true
	case "STOP_MEDIA_BUFFERING":
		s.mu.Lock()
		s.marks = append(s.marks, streamMark{left: len(s.queue), id: strings.TrimSpace(arg)})
		s.mu.Unlock()
	case "FLUSH_MEDIA":
		s.flushQueue()
	case "PAUSE_MEDIA", "CONTINUE_MEDIA":
		s.mu.Lock()
		s.paused = cmd == "PAUSE_MEDIA"
		s.mu.Unlock()
	case "REPORT_QUEUE_DRAINED":
		s.mu.Lock()
		s.drained = true
		s.mu.Unlock()
	case "GET_STATUS":
		s.mu.Lock()
		st := fmt.Sprintf("STATUS channel_id:%s queue_length:%d xon_level:800 xoff_level:900 queue_full:%t bulk_media:false media_paused:%t",
			s.ch.id, (len(s.queue)+159)/160, s.xoff, s.paused)
		s.mu.Unlock()
		go w.text(st)
	default:
		go w.text(fmt.Sprintf("ERROR channel_id:%s error_text:unknown command %q", s.ch.id, cmd))
	}
	return false
}

// dialMediaWebSocket connects to a configured client connection.
func dialMediaWebSocket(c MediaWebSocketClient) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	protos := c.Protocols
	if len(protos) == 0 {
		protos = []string{wsMediaProtocol}
	}
	h := http.Header{}
	if c.Username != "" || c.Password != "" {
		r, _ := http.NewRequest("GET", "http://x", nil)
		r.SetBasicAuth(c.Username, c.Password)
		h.Set("Authorization", r.Header.Get("Authorization"))
	}
	conn, _, err := websocket.Dial(ctx, c.URI, &websocket.DialOptions{Subprotocols: protos, HTTPHeader: h})
	return conn, err
}

// MediaWebSocketHandler serves /media/{connection_id}: the application's
// end of a websocket server external media channel. An unknown or already
// used id is 404.
func (m *Manager) MediaWebSocketHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/media/")
		m.mu.Lock()
		s := m.wsPending[id]
		delete(m.wsPending, id)
		m.mu.Unlock()
		if s == nil {
			http.Error(w, "no such media connection", http.StatusNotFound)
			return
		}
		conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{wsMediaProtocol}, InsecureSkipVerify: true})
		if err != nil {
			m.mu.Lock()
			m.wsPending[id] = s // the application may try again
			m.mu.Unlock()
			return
		}
		(&mediaWebSocket{conn: conn, s: s, connID: id}).run()
	})
}
