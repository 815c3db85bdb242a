package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// mediaApp is the application's end of a websocket external media channel
// (connection_type server): its text messages in order, and a count of the
// binary (audio) messages it received.
type mediaApp struct {
	t      *testing.T
	c      *websocket.Conn
	texts  chan string
	audio  atomic.Int64
	connID string
}

func dialMediaApp(t *testing.T, n *node, body []byte) *mediaApp {
	t.Helper()
	connID := strings.Split(strings.Split(string(body), `"MEDIA_WEBSOCKET_CONNECTION_ID":"`)[1], `"`)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.baseURL(), "http")+"/media/"+connID, &websocket.DialOptions{Subprotocols: []string{"media"}})
	if err != nil {
		t.Fatal(err)
	}
	a := &mediaApp{t: t, c: c, texts: make(chan string, 100), connID: connID}
	t.Cleanup(func() { c.CloseNow() })
	go func() {
		defer close(a.texts)
		for {
			typ, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if typ == websocket.MessageBinary {
				a.audio.Add(1)
				continue
			}
			a.texts <- string(b)
		}
	}()
	return a
}

func (a *mediaApp) send(msg string) {
	a.t.Helper()
	if err := a.c.Write(context.Background(), websocket.MessageText, []byte(msg)); err != nil {
		a.t.Fatal(err)
	}
}

// next is the next text message, as JSON.
func (a *mediaApp) next() map[string]any {
	a.t.Helper()
	select {
	case s, ok := <-a.texts:
		if !ok {
			a.t.Fatal("media websocket closed")
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			a.t.Fatalf("not JSON: %s", s)
		}
		return m
	case <-time.After(10 * time.Second):
		a.t.Fatal("no control message")
	}
	return nil
}

// queued sends frames of audio then GET_STATUS, and returns the queue
// length the status reports (the frames were read before it).
func (a *mediaApp) queued(frames int) float64 {
	a.t.Helper()
	frame := make([]byte, 160)
	for i := range frame {
		frame[i] = byte(i)
	}
	for range frames {
		if err := a.c.Write(context.Background(), websocket.MessageBinary, frame); err != nil {
			a.t.Fatal(err)
		}
	}
	a.send(`{"command":"GET_STATUS"}`)
	st := a.next()
	if st["event"] != "STATUS" {
		a.t.Fatalf("after GET_STATUS: %v", st)
	}
	return st["queue_length"].(float64)
}

// TestAriExternalMediaWebSocketDirection: externalMedia's direction (in,
// out or both; anything else is 400) and chan_websocket's d(), n and p
// options, as Asterisk's chan_websocket has them. In: the channel's audio
// goes to the application, the application's is dropped and the commands
// about it answer an error. Out: the channel's audio is not sent to the
// application. SET_MEDIA_DIRECTION (JSON) changes it. n: the channel is
// not answered when the socket is up; the application answers it (ANSWER).
// p (passthrough): the buffering commands answer an error. The request's
// direction overrides transport_data's d(), as Asterisk appends it to the
// dial string.
func TestAriExternalMediaWebSocketDirection(t *testing.T) {
	n := startNode(t)
	ev := n.connect("bot")
	const em = "/channels/externalMedia?app=bot&format=ulaw&encapsulation=none&transport=websocket&connection_type=server"
	if code, body := n.do("POST", em+"&direction=sideways", nil); code != 400 || !strings.Contains(string(body), "direction") {
		t.Errorf("direction=sideways: %d %s", code, body)
	}

	a := dialMediaApp(t, n, n.mustDo("POST", em+"&channelId=wsin&direction=in&transport_data="+urlq("f(json)n"), 200))
	if m := a.next(); m["event"] != "MEDIA_START" {
		t.Fatalf("first message %v", m)
	}
	if body := string(n.mustDo("GET", "/channels/wsin", 200)); !strings.Contains(body, `"state":"Down"`) {
		t.Errorf("n: connected channel answered: %s", body)
	}
	a.send(`{"command":"ANSWER"}`)
	for {
		st := ev.skipTo("ChannelStateChange", 10*time.Second)
		if channelID(st) == "wsin" && st["channel"].(map[string]any)["state"] == "Up" {
			break
		}
	}
	if q := a.queued(50); q != 0 {
		t.Errorf("direction in: the application's audio was queued (%v frames)", q)
	}
	a.send(`{"command":"START_MEDIA_BUFFERING"}`)
	if m := a.next(); m["event"] != "ERROR" || m["error_text"] != "START_MEDIA_BUFFERING not supported while media direction is 'in'" {
		t.Errorf("START_MEDIA_BUFFERING with direction in: %v", m)
	}
	a.send(`{"command":"SET_MEDIA_DIRECTION","direction":"sideways"}`)
	if m := a.next(); m["event"] != "ERROR" || m["error_text"] != "'sideways' is not a valid direction for SET_MEDIA_DIRECTION.\n" {
		t.Errorf("SET_MEDIA_DIRECTION sideways: %v", m)
	}
	a.send(`{"command":"SET_MEDIA_DIRECTION","direction":"both"}`)
	if q := a.queued(50); q == 0 {
		t.Error("direction both: the application's audio was not queued")
	}
	a.send(`{"command":"FLUSH_MEDIA"}`)

	// Out: none of the channel's audio (a playback) reaches the
	// application; both: it does.
	play := func(id string) int64 {
		t.Helper()
		before := a.audio.Load()
		n.mustDo("POST", "/channels/wsin/play/"+id+"?media="+urlq("tone:!1000/600"), 201)
		for {
			f := ev.skipTo("PlaybackFinished", 10*time.Second)
			if f["playback"].(map[string]any)["id"] == id {
				break
			}
		}
		// The frames sent before PlaybackFinished are on their way; a
		// GET_STATUS answered after them marks their end.
		a.send(`{"command":"GET_STATUS"}`)
		a.next()
		return a.audio.Load() - before
	}
	a.send(`{"command":"SET_MEDIA_DIRECTION","direction":"out"}`)
	if got := play("out"); got != 0 {
		t.Errorf("direction out: the application received %d audio messages", got)
	}
	a.send(`{"command":"SET_MEDIA_DIRECTION","direction":"both"}`)
	if got := play("both"); got < 10 {
		t.Errorf("direction both: the application received %d audio messages of a 600 ms playback", got)
	}

	// p, and d(out) overridden by the request's direction=in; answered
	// when connected (no n).
	b := dialMediaApp(t, n, n.mustDo("POST", em+"&channelId=wsp&direction=in&transport_data="+urlq("f(json)d(out)p"), 200))
	if m := b.next(); m["event"] != "MEDIA_START" {
		t.Fatalf("first message %v", m)
	}
	for {
		st := ev.skipTo("ChannelStateChange", 10*time.Second)
		if channelID(st) == "wsp" && st["channel"].(map[string]any)["state"] == "Up" {
			break
		}
	}
	for _, cmd := range []string{"START_MEDIA_BUFFERING", "MARK_MEDIA", "FLUSH_MEDIA", "SET_MEDIA_DIRECTION"} {
		b.send(fmt.Sprintf(`{"command":%q,"direction":"both"}`, cmd))
		if m := b.next(); m["event"] != "ERROR" || m["error_text"] != cmd+" not supported in passthrough mode" {
			t.Errorf("p: %s: %v", cmd, m)
		}
	}
	if q := b.queued(50); q != 0 {
		t.Errorf("direction=in over d(out): the application's audio was queued (%v frames)", q)
	}
}
