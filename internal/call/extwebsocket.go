package call

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/tapedeck/tapedeck/internal/media/audio"
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

// wsPending is a server channel waiting for its application.
type wsPending struct {
	s    *streamMedia
	opts wsOptions
}

// Media directions of a websocket channel, as the application sees them
// (chan_websocket's d() option and SET_MEDIA_DIRECTION): both; in, the
// channel's audio goes to the application and what it sends is dropped;
// out, the application's audio goes to the channel and the channel's
// audio is not sent to it.
const (
	wsDirBoth int32 = iota
	wsDirIn
	wsDirOut
)

var wsDirNames = map[string]int32{"both": wsDirBoth, "in": wsDirIn, "out": wsDirOut}

func wsDirName(d int32) string {
	for n, v := range wsDirNames {
		if v == d {
			return n
		}
	}
	return "both"
}

// wsMediaProtocol is chan_websocket's sub-protocol.
const wsMediaProtocol = "media"

// mediaWebSocket is the WebSocket transport of a channel.
type mediaWebSocket struct {
	conn *websocket.Conn
	// nb is the connection under conn (nil in tests that make a
	// mediaWebSocket by hand): its writes do not block, and its backlog
	// bounds the audio queued for a far end that reads slowly.
	nb     *nbConn
	limit  int // backlog in bytes beyond which audio frames drop
	s      *streamMedia
	connID string
	json   bool // control messages in JSON (transport_data f(json))
	// noAnswer (n): the channel is not answered when the socket is up;
	// passthrough (p): the application's messages are taken as they come,
	// and the commands about buffering and pacing them answer an error.
	noAnswer, passthrough bool
	dir                   atomic.Int32 // wsDir*
	// bulk is chan_websocket's bulk_media_in_progress: between
	// START_MEDIA_BUFFERING and STOP_MEDIA_BUFFERING (or FLUSH_MEDIA). Only
	// the reader (run, command) uses it.
	bulk bool

	// Answers to commands and notifications go out through replies,
	// written by one goroutine (replier): a far end that sends commands
	// without reading the answers fills it, and what does not fit is
	// dropped, instead of a goroutine per answer piling up on the socket.
	replies chan string
	stop    chan struct{}
	dropped atomic.Int64
}

// maxPendingReplies bounds the answers waiting for a far end that does not
// read them.
const maxPendingReplies = 64

// reply queues a control message; it never blocks.
func (w *mediaWebSocket) reply(msg string) {
	select {
	case w.replies <- msg:
	default:
		if w.dropped.Add(1) == 1 {
			w.s.m.log.Warn("media websocket: the far end does not read its control messages; dropping them", "channel", w.s.ch.id)
		}
	}
}

// startReplies starts the replier; closing w.stop ends it.
func (w *mediaWebSocket) startReplies() {
	w.replies, w.stop = make(chan string, maxPendingReplies), make(chan struct{})
	go w.replier()
}

func (w *mediaWebSocket) replier() {
	for {
		select {
		case msg := <-w.replies:
			_ = w.text(msg)
		case <-w.stop:
			return
		}
	}
}

// wsOptions are chan_websocket's dial string options, given in
// externalMedia's transport_data: c(codec) (the format parameter wins),
// n no auto answer (the application answers: ANSWER, or ARI's answer),
// p passthrough, v(name=value,…) URI parameters of a client connection,
// f(plain-text|json) the control message format, d(both|in|out) the media
// direction (externalMedia's direction, when given, overrides it, as
// Asterisk appends it to the dial string).
type wsOptions struct {
	json        bool
	uriParams   string
	noAnswer    bool
	passthrough bool
	dir         int32
}

// newMediaWebSocket is the transport of a channel's websocket; nb is the
// connection under conn.
func newMediaWebSocket(conn *websocket.Conn, nb *nbConn, s *streamMedia, connID string, o wsOptions) *mediaWebSocket {
	// About a second of audio (50 frames with their headers) may wait for
	// a far end that reads slowly; beyond, frames drop.
	w := &mediaWebSocket{conn: conn, nb: nb, limit: 50 * (s.f.frameBytes() + 14), s: s, connID: connID, json: o.json, noAnswer: o.noAnswer, passthrough: o.passthrough}
	w.dir.Store(o.dir)
	return w
}

// parseWSOptions parses transport_data.
func parseWSOptions(s string) (wsOptions, error) {
	var o wsOptions
	for s != "" {
		opt := s[0]
		s = s[1:]
		arg := ""
		if strings.HasPrefix(s, "(") {
			end := strings.IndexByte(s, ')')
			if end < 0 {
				return o, fmt.Errorf("option %c: unclosed parenthesis", opt)
			}
			arg, s = s[1:end], s[end+1:]
		}
		switch opt {
		case 'c':
		case 'n':
			o.noAnswer = true
		case 'p':
			o.passthrough = true
		case 'v':
			o.uriParams = arg
		case 'f':
			switch arg {
			case "json":
				o.json = true
			case "plain-text", "":
			default:
				return o, fmt.Errorf("f(%s): the control message format is plain-text or json", arg)
			}
		case 'd':
			d, ok := wsDirNames[arg]
			if !ok {
				return o, fmt.Errorf("Unrecognized option for media direction: '%s'", arg)
			}
			o.dir = d
		case '/', ' ', ',':
		default:
			return o, fmt.Errorf("unknown option %q", opt)
		}
	}
	return o, nil
}

// event sends a notification in the control format: plain text as
// "NAME[ id]" (the id of MEDIA_BUFFERING_COMPLETED and
// MEDIA_MARK_PROCESSED), JSON as {"event", "channel_id"[, "correlation_id"]}.
func (w *mediaWebSocket) event(name, id string) string {
	if !w.json {
		return name + prefixed(" ", id)
	}
	m := map[string]any{"event": name, "channel_id": w.s.ch.id}
	if name == "MEDIA_BUFFERING_COMPLETED" || name == "MEDIA_MARK_PROCESSED" {
		m["correlation_id"] = id
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

// write sends one message on the caller's goroutine. It does not block:
// the connection under it (nbConn) takes every byte at once and writes
// what the socket does not take later, in order.
func (w *mediaWebSocket) write(typ websocket.MessageType, b []byte) error {
	return w.conn.Write(context.Background(), typ, b)
}

// writeAudio sends a frame of the channel's audio, or drops it
// (errStreamFull) while about a second of what was sent has not reached
// the socket.
func (w *mediaWebSocket) writeAudio(frame []byte) error {
	if w.dir.Load() == wsDirOut {
		return nil // the application does not want the channel's audio
	}
	if w.nb != nil && w.nb.backlog()+len(frame) > w.limit {
		return errStreamFull
	}
	return w.write(websocket.MessageBinary, frame)
}

func (w *mediaWebSocket) writeDigit(d rune) error {
	if w.json {
		b, _ := json.Marshal(map[string]string{"event": "DTMF_END", "channel_id": w.s.ch.id, "digit": string(d)})
		return w.text(string(b))
	}
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
	w.startReplies()
	defer close(w.stop)
	s.mu.Lock()
	s.onEvent = func(ev, id string) { w.reply(w.event(ev, id)) }
	s.passthrough = w.passthrough
	s.mu.Unlock()
	s.connect(w)
	if w.json {
		ch.mu.Lock()
		vars := maps.Clone(ch.vars)
		ch.mu.Unlock()
		b, _ := json.Marshal(map[string]any{"event": "MEDIA_START", "connection_id": w.connID, "channel": ch.name, "channel_id": ch.id,
			"format": s.f.name, "optimal_frame_size": s.f.frameBytes(), "ptime": 20, "channel_variables": vars})
		_ = w.text(string(b))
	} else {
		_ = w.text(fmt.Sprintf("MEDIA_START connection_id:%s channel:%s channel_id:%s format:%s optimal_frame_size:%d ptime:20",
			w.connID, ch.name, ch.id, s.f.name, s.f.frameBytes()))
	}
	if !w.noAnswer {
		ch.mu.Lock()
		if !ch.hangingUp {
			ch.setStateLocked(StateUp)
		}
		ch.mu.Unlock()
	}
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
			if w.dir.Load() != wsDirIn {
				s.receive(data, s.f.enc, s.f.rate)
			}
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
	var direction *string
	if w.json {
		var m struct {
			Command       string  `json:"command"`
			CorrelationID string  `json:"correlation_id"`
			Direction     *string `json:"direction"`
		}
		if err := json.Unmarshal([]byte(msg), &m); err != nil {
			w.reply(fmt.Sprintf(`{"event":"ERROR","channel_id":%q,"error_text":"Unable to parse JSON command"}`, s.ch.id))
			return false
		}
		cmd, arg, direction = m.Command, m.CorrelationID, m.Direction
	}
	// As chan_websocket: in passthrough mode the commands about buffering
	// and pacing the application's audio, and with the direction "in"
	// those about audio the application sends, answer an error.
	switch cmd {
	case "START_MEDIA_BUFFERING", "STOP_MEDIA_BUFFERING", "MARK_MEDIA", "FLUSH_MEDIA", "REPORT_QUEUE_DRAINED",
		"PAUSE_MEDIA", "CONTINUE_MEDIA", "SET_MEDIA_DIRECTION":
		if w.passthrough {
			w.reply(w.errorText(cmd + " not supported in passthrough mode"))
			return false
		}
	}
	switch cmd {
	case "START_MEDIA_BUFFERING", "STOP_MEDIA_BUFFERING", "MARK_MEDIA", "PAUSE_MEDIA", "CONTINUE_MEDIA":
		if w.dir.Load() == wsDirIn {
			w.reply(w.errorText(cmd + " not supported while media direction is 'in'"))
			return false
		}
	}
	switch cmd {
	case "ANSWER":
		ch := s.ch
		ch.mu.Lock()
		if !ch.hangingUp {
			ch.setStateLocked(StateUp)
		}
		ch.mu.Unlock()
	case "START_MEDIA_BUFFERING":
		// Every message is buffered into frames.
		w.bulk = true
	case "SET_MEDIA_DIRECTION":
		switch {
		case !w.json:
			w.reply(w.errorText(cmd + " only supports JSON format.\n"))
		case direction == nil:
			w.reply(w.errorText(cmd + " requires a 'direction' parameter.\n"))
		default:
			d, ok := wsDirNames[*direction]
			if !ok {
				w.reply(w.errorText(fmt.Sprintf("'%s' is not a valid direction for %s.\n", *direction, cmd)))
				break
			}
			w.dir.Store(d)
		}
	case "HANGUP":
		return true
	case "STOP_MEDIA_BUFFERING", "MARK_MEDIA":
		ev := "MEDIA_BUFFERING_COMPLETED"
		if cmd == "STOP_MEDIA_BUFFERING" {
			w.bulk = false
		}
		if cmd == "MARK_MEDIA" {
			ev = "MEDIA_MARK_PROCESSED"
		}
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.mu.Unlock()
			w.reply(w.event(ev, strings.TrimSpace(arg)))
			break
		}
		s.marks = append(s.marks, streamMark{left: len(s.queue), event: ev, id: strings.TrimSpace(arg)})
		s.mu.Unlock()
	case "FLUSH_MEDIA":
		w.bulk = false
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
		// queue_length is chan_websocket's frame_queue_length: the frames
		// queued and not yet played. In passthrough each message is one
		// frame (s.frames); otherwise the audio is cut into 20 ms frames.
		ql := (len(s.queue) + audio.FrameSamples - 1) / audio.FrameSamples
		if s.passthrough {
			ql = len(s.frames)
		}
		st := fmt.Sprintf("STATUS channel_id:%s queue_length:%d xon_level:800 xoff_level:900 queue_full:%t bulk_media:%t media_paused:%t",
			s.ch.id, ql, s.xoff, w.bulk, s.paused)
		if w.json {
			b, _ := json.Marshal(map[string]any{"event": "STATUS", "channel_id": s.ch.id, "queue_length": ql,
				"xon_level": 800, "xoff_level": 900, "queue_full": s.xoff, "bulk_media": w.bulk, "media_paused": s.paused})
			st = string(b)
		}
		s.mu.Unlock()
		w.reply(st)
	default:
		w.reply(w.errorText(fmt.Sprintf("unknown command %q", cmd)))
	}
	return false
}

// errorText is chan_websocket's ERROR event in the control format.
func (w *mediaWebSocket) errorText(text string) string {
	if w.json {
		b, _ := json.Marshal(map[string]string{"event": "ERROR", "channel_id": w.s.ch.id, "error_text": text})
		return string(b)
	}
	return fmt.Sprintf("ERROR channel_id:%s error_text:%s", w.s.ch.id, text)
}

// dialMediaWebSocket connects to a configured client connection, with
// transport_data's v(name=value,…) added to its URI's query; the second
// result is the connection under the websocket.
func dialMediaWebSocket(c MediaWebSocketClient, uriParams string) (*websocket.Conn, *nbConn, error) {
	uri := c.URI
	if uriParams != "" {
		u, err := url.Parse(uri)
		if err != nil {
			return nil, nil, err
		}
		q := u.Query()
		for _, kv := range strings.Split(uriParams, ",") {
			k, v, _ := strings.Cut(kv, "=")
			q.Add(k, v)
		}
		u.RawQuery = q.Encode()
		uri = u.String()
	}
	c.URI = uri
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
	var nb *nbConn
	conn, _, err := websocket.Dial(ctx, c.URI, &websocket.DialOptions{Subprotocols: protos, HTTPHeader: h, HTTPClient: nbClient(&nb)})
	if err != nil {
		return nil, nil, err
	}
	return conn, nb, nil
}

// MediaWebSocketHandler serves /media/{connection_id}: the application's
// end of a websocket server external media channel. An unknown or already
// used id is 404.
func (m *Manager) MediaWebSocketHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/media/")
		m.mu.Lock()
		p, ok := m.wsPending[id]
		delete(m.wsPending, id)
		m.mu.Unlock()
		if !ok {
			http.Error(w, "no such media connection", http.StatusNotFound)
			return
		}
		hj := &nbHijacker{ResponseWriter: w}
		conn, err := websocket.Accept(hj, r, &websocket.AcceptOptions{Subprotocols: []string{wsMediaProtocol}, InsecureSkipVerify: true})
		if err != nil {
			m.mu.Lock()
			m.wsPending[id] = p // the application may try again
			m.mu.Unlock()
			return
		}
		newMediaWebSocket(conn, hj.conn, p.s, id, p.opts).run()
	})
}
