package nodeari_test

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/nodeari"
)

// mockARI is the smallest ARI server answer.js works with: api-docs for the
// eleven resources (channels: answer + hangup; events: three models), and a
// stdlib WebSocket on /ari/events that the test pushes events into. It
// checks answer.js itself, independently of tapedeck's server.
type mockARI struct {
	srv *httptest.Server

	mu       sync.Mutex
	ws       net.Conn
	requests []string
}

func newMockARI(t *testing.T) *mockARI {
	m := &mockARI{}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(func() {
		m.mu.Lock()
		if m.ws != nil {
			m.ws.Close()
		}
		m.mu.Unlock()
		m.srv.Close()
	})
	return m
}

var resourceNames = []string{"asterisk", "endpoints", "channels", "bridges", "recordings", "sounds",
	"playbacks", "deviceStates", "mailboxes", "events", "applications"}

func (m *mockARI) serve(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.requests = append(m.requests, r.Method+" "+r.URL.Path)
	m.mu.Unlock()
	base := "http://" + r.Host + "/ari"
	writeJSON := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	pathParam := func(name string) map[string]any {
		return map[string]any{"name": name, "paramType": "path", "required": true, "dataType": "string"}
	}
	switch {
	case r.URL.Path == "/ari/api-docs/resources.json":
		var apis []map[string]any
		for _, n := range resourceNames {
			apis = append(apis, map[string]any{"path": "/api-docs/" + n + ".{format}", "description": n})
		}
		writeJSON(map[string]any{"apiVersion": "2.0.0", "swaggerVersion": "1.2", "basePath": base, "apis": apis})
	case strings.HasPrefix(r.URL.Path, "/ari/api-docs/"):
		name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/ari/api-docs/"), ".json")
		decl := map[string]any{"apiVersion": "2.0.0", "swaggerVersion": "1.2", "basePath": base,
			"resourcePath": "/api-docs/" + name + ".{format}", "apis": []any{}, "models": map[string]any{}}
		switch name {
		case "channels":
			decl["apis"] = []any{
				map[string]any{"path": "/channels/{channelId}", "operations": []any{map[string]any{
					"httpMethod": "DELETE", "nickname": "hangup", "responseClass": "void",
					"parameters": []any{pathParam("channelId")}}}},
				map[string]any{"path": "/channels/{channelId}/answer", "operations": []any{map[string]any{
					"httpMethod": "POST", "nickname": "answer", "responseClass": "void",
					"parameters": []any{pathParam("channelId")}}}},
			}
			decl["models"] = map[string]any{"Channel": map[string]any{"id": "Channel",
				"properties": map[string]any{"id": map[string]any{"type": "string"}}}}
		case "events":
			prop := func(typ string) map[string]any { return map[string]any{"type": typ} }
			decl["models"] = map[string]any{
				"StasisStart": map[string]any{"id": "StasisStart", "properties": map[string]any{
					"type": prop("string"), "application": prop("string"), "args": prop("List[string]"), "channel": prop("Channel")}},
				"StasisEnd": map[string]any{"id": "StasisEnd", "properties": map[string]any{
					"type": prop("string"), "application": prop("string"), "channel": prop("Channel")}},
				"ChannelDtmfReceived": map[string]any{"id": "ChannelDtmfReceived", "properties": map[string]any{
					"type": prop("string"), "application": prop("string"), "digit": prop("string"),
					"duration_ms": prop("int"), "channel": prop("Channel")}},
			}
		}
		writeJSON(decl)
	case r.URL.Path == "/ari/events":
		m.upgrade(w, r)
	case r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/answer"),
		r.Method == "DELETE" && strings.HasPrefix(r.URL.Path, "/ari/channels/"):
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

func (m *mockARI) upgrade(w http.ResponseWriter, r *http.Request) {
	sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	// Kept before the 101 goes out: the client is open (and the script
	// says READY) as soon as it reads it, and send may follow at once.
	m.mu.Lock()
	m.ws = conn
	m.mu.Unlock()
	rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
	rw.Flush()
	go func() { // discard what the client sends
		br := bufio.NewReader(conn)
		for {
			if _, err := br.ReadByte(); err != nil {
				return
			}
		}
	}()
}

// send pushes one event as an unmasked text frame.
func (m *mockARI) send(t *testing.T, ev map[string]any) {
	t.Helper()
	data, _ := json.Marshal(ev)
	frame := []byte{0x81}
	if len(data) < 126 {
		frame = append(frame, byte(len(data)))
	} else {
		frame = append(frame, 126, 0, 0)
		binary.BigEndian.PutUint16(frame[2:], uint16(len(data)))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.ws.Write(append(frame, data...)); err != nil {
		t.Fatalf("mock ARI: write event: %v", err)
	}
}

func (m *mockARI) saw(req string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.requests {
		if r == req {
			return true
		}
	}
	return false
}

// answer.js against the mock: StasisStart → answer, three digits → hangup,
// StasisEnd → exit 0.
func TestAnswerScriptAgainstMockARI(t *testing.T) {
	m := newMockARI(t)
	p := nodeari.Start(t, "answer.js", map[string]string{
		"ARI_URL":       m.srv.URL,
		"ARI_APP":       "mock",
		"EXPECT_DIGITS": "12#",
		"TIMEOUT_MS":    "15000",
	})
	if _, err := p.WaitLine("READY", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	ch := map[string]any{"id": "chan-1", "name": "PJSIP/a-1", "state": "Ring"}
	m.send(t, map[string]any{"type": "StasisStart", "application": "mock", "args": []string{"x", "y"}, "channel": ch})
	l, err := p.WaitLine("StasisStart", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if l["channel"] != "chan-1" || len(l["args"].([]any)) != 2 {
		t.Fatalf("StasisStart line %v", l)
	}
	if _, err := p.WaitLine("ANSWERED", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool {
		return m.saw("POST /ari/channels/chan-1/answer")
	}, "no answer request")
	for _, d := range []string{"1", "2", "#"} {
		m.send(t, map[string]any{"type": "ChannelDtmfReceived", "application": "mock", "digit": d, "duration_ms": 100, "channel": ch})
	}
	if l, err := p.WaitLine("DIGITS", 5*time.Second); err != nil || l["digits"] != "12#" {
		t.Fatalf("DIGITS line %v, %v", l, err)
	}
	if _, err := p.WaitLine("HUNGUP", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if !m.saw("DELETE /ari/channels/chan-1") {
		t.Fatal("no hangup request")
	}
	m.send(t, map[string]any{"type": "StasisEnd", "application": "mock", "channel": ch})
	if err := p.Wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	lines := p.Lines()
	if last := lines[len(lines)-1]; last["type"] != "StasisEnd" || last["channel"] != "chan-1" {
		t.Fatalf("last line %v, want StasisEnd of chan-1", last)
	}
}
