package e2e

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/pion/rtp"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil/nodeari"
)

// slinSine is amp·sin at f Hz, rate Hz, n samples, as 16-bit little-endian.
func slinSine(f float64, rate, n int, amp float64) []byte {
	b := make([]byte, 0, 2*n)
	for i := range n {
		b = binary.LittleEndian.AppendUint16(b, uint16(int16(amp*math.Sin(2*math.Pi*f*float64(i)/float64(rate)))))
	}
	return b
}

func slinPCM(b []byte) []int16 {
	out := make([]int16, len(b)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

// dominantAt is dominant for pcm at rate Hz (goertzel's formula depends on
// f/rate only).
func dominantAt(pcm []int16, rate int, f, g float64) bool {
	s := 8000 / float64(rate)
	return dominant(pcm, f*s, g*s)
}

// streamCall runs the voice-bot story with an external media channel of
// the given parameters: a caller dials the npm ari-client voicebot app,
// which bridges it with the external media channel. peer is started with
// the EXTERNAL line's channel and must return the audio (PCM at rate) it
// received while both sides sent their tones: the caller 440 Hz, the peer
// 1000 Hz. The peer's audio must carry the caller's tone and the caller
// must hear the peer's.
func streamCall(t *testing.T, n *node, env map[string]string, rate int, peer func(ext map[string]any, callerTalks func()) []int16) {
	t.Helper()
	env["ARI_URL"], env["ARI_APP"] = n.baseURL(), "voicebot"
	app := nodeari.Start(t, "voicebot.js", env)
	if _, err := app.WaitLine("READY", 20*time.Second); err != nil {
		t.Fatalf("voicebot did not start: %v\n%s", err, app.Output())
	}
	callerSink := &audioSink{}
	caller := newPhone(t, "udp")
	res := dialAsync(caller, n.target("300"), sipua.CallOptions{Handler: callerSink})
	rc := wait(t, res, 15*time.Second, "caller answered")
	must(t, rc.err)
	ext, err := app.WaitLine("EXTERNAL", 10*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, app.Output())
	}
	if _, err := app.WaitLine("BRIDGED", 10*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, app.Output())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	callerSink.reset()
	// The caller talks from now on, as a phone sends its audio: the
	// bridge forwards what the caller sends (Asterisk's simple_bridge),
	// so the peer's first audio is the caller's. callerTalks waits for the
	// end of the caller's tone.
	talked := make(chan struct{})
	go func() { defer close(talked); _ = rc.call.SendAudio(ctx, sine(440, 8000*2, 8000)) }()
	got := peer(ext, func() { <-talked })
	if len(got) < rate || !dominantAt(got, rate, 440, 1000) {
		t.Errorf("the external program does not get the caller's 440 Hz: %d samples at %d Hz", len(got), rate)
	}
	heard := callerSink.samples()
	if len(heard) < 8000 || !dominant(heard, 1000, 440) {
		t.Errorf("the caller does not hear the external program's 1000 Hz: %d samples, 1000 %.0f, 440 %.0f", len(heard), goertzel(heard, 1000), goertzel(heard, 440))
	}
	must(t, rc.call.Hangup(ctx))
	if err := app.Wait(10 * time.Second); err != nil {
		t.Fatalf("voicebot: %v\n%s", err, app.Output())
	}
}

// TestAriExternalMediaAudioSocket: externalMedia with Asterisk's
// AudioSocket encapsulation over TCP in slin16. The test is the AudioSocket
// server: the first message is the UUID from data, then the call's audio
// arrives as kind 0x12 (slin16) messages of 20 ms carrying the caller's
// 440 Hz, and the 1000 Hz the test sends back as slin16 messages is what
// the caller hears (resampled both ways). Bad parameters answer 400 with
// Asterisk's wording, or 503 when the server cannot be reached.
func TestAriExternalMediaAudioSocket(t *testing.T) {
	n := startNode(t, withRoute("_3XX", "Stasis(voicebot)"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	id := uuid.New()
	conns := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			conns <- c
		}
	}()
	n.connect("voicebot") // the app must be registered for the parameter checks below
	for q, want := range map[string]string{
		"app=voicebot&format=slin16&encapsulation=audiosocket&transport=tcp&external_host=" + ln.Addr().String():                "data can not be empty",
		"app=voicebot&format=slin16&encapsulation=audiosocket&transport=tcp&data=nope&external_host=" + ln.Addr().String():      "UUID",
		"app=voicebot&format=g722&encapsulation=audiosocket&transport=tcp&data=" + id.String() + "&external_host=127.0.0.1:9":   "Unsupported format",
		"app=voicebot&format=slin16&encapsulation=audiosocket&transport=udp&data=" + id.String() + "&external_host=127.0.0.1:9": "transport must be 'tcp'",
		"app=voicebot&format=slin16&encapsulation=audiosocket&transport=tcp&data=" + id.String() + "&external_host=nohost":      "<host>:<port>",
	} {
		if code, body := n.do("POST", "/channels/externalMedia?"+q, nil); code != 400 || !strings.Contains(string(body), want) {
			t.Errorf("externalMedia?%s = %d %s, want 400 with %q", q, code, body, want)
		}
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	if code, body := n.do("POST", "/channels/externalMedia?app=voicebot&format=slin&encapsulation=audiosocket&transport=tcp&data="+id.String()+"&external_host="+closed.Addr().String(), nil); code != 503 {
		t.Errorf("AudioSocket server down: %d %s, want 503", code, body)
	}

	streamCall(t, n, map[string]string{"EXTERNAL_HOST": ln.Addr().String(), "ENCAPSULATION": "audiosocket", "TRANSPORT": "tcp",
		"DATA": id.String(), "FORMAT": "slin16"}, 16000, func(ext map[string]any, callerTalks func()) []int16 {
		if name, _ := ext["name"].(string); !strings.HasPrefix(name, "AudioSocket/"+ln.Addr().String()) {
			t.Errorf("channel name %q", name)
		}
		vars, _ := ext["channelvars"].(map[string]any)
		if vars["AUDIOSOCKET_UUID"] != id.String() || vars["AUDIOSOCKET_SERVICE"] != ln.Addr().String() {
			t.Errorf("channel vars %v", vars)
		}
		var c net.Conn
		select {
		case c = <-conns:
		case <-time.After(10 * time.Second):
			t.Fatal("no AudioSocket connection")
		}
		t.Cleanup(func() { c.Close() }) // open until the app hangs the channel up
		r := bufio.NewReader(c)
		var hdr [3]byte
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			t.Fatal(err)
		}
		payload := make([]byte, binary.BigEndian.Uint16(hdr[1:]))
		if _, err := io.ReadFull(r, payload); err != nil {
			t.Fatal(err)
		}
		if hdr[0] != 0x01 || string(payload) != string(id[:]) {
			t.Fatalf("first message kind 0x%02x payload %x, want the UUID %x", hdr[0], payload, id[:])
		}
		var mu sync.Mutex
		var got []int16
		badKind := 0
		go func() {
			for {
				c.SetReadDeadline(time.Now().Add(20 * time.Second))
				if _, err := io.ReadFull(r, hdr[:]); err != nil {
					return
				}
				p := make([]byte, binary.BigEndian.Uint16(hdr[1:]))
				if _, err := io.ReadFull(r, p); err != nil {
					return
				}
				mu.Lock()
				if hdr[0] != 0x12 || len(p) != 640 {
					badKind++
				} else {
					got = append(got, slinPCM(p)...)
				}
				mu.Unlock()
			}
		}()
		// Wait for the call's audio, forget the silence before the tone.
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			k := len(got)
			mu.Unlock()
			if k > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no audio reached the AudioSocket server")
			}
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		got = nil
		mu.Unlock()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); callerTalks() }()
		tone := slinSine(1000, 16000, 32000, 8000)
		tick := time.NewTicker(20 * time.Millisecond)
		for off := 0; off < len(tone); off += 640 {
			msg := append([]byte{0x12, 0x02, 0x80}, tone[off:off+640]...)
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			<-tick.C
		}
		tick.Stop()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		if badKind > 0 {
			t.Errorf("%d audio messages were not kind 0x12 with 640 bytes", badKind)
		}
		return append([]int16(nil), got...)
	})
}

// wsPeer plays the application's end of a media websocket: it checks
// MEDIA_START, collects the binary frames (each of optimal_frame_size) and
// sends the 1000 Hz tone as a few large unpaced messages, which
// chan_websocket (and tapedeck) cut into frames and play in real time.
func wsPeer(t *testing.T, conn *websocket.Conn, format string, rate int, callerTalks func()) []int16 {
	// The socket stays open until the app hangs the channel up; a read
	// whose context ends would close it.
	t.Cleanup(func() { conn.CloseNow() })
	ctx := context.Background()
	typ, msg, err := conn.Read(ctx)
	if err != nil || typ != websocket.MessageText || !strings.HasPrefix(string(msg), "MEDIA_START ") {
		t.Fatalf("first message %v %q %v, want MEDIA_START", typ, msg, err)
	}
	frame := rate / 50 * 2
	for _, want := range []string{"format:" + format, "optimal_frame_size:" + strconv.Itoa(frame), "connection_id:", "channel:WebSocket/"} {
		if !strings.Contains(string(msg), want) {
			t.Errorf("MEDIA_START %q lacks %q", msg, want)
		}
	}
	var mu sync.Mutex
	var got []int16
	var texts []string
	bad := 0
	first := make(chan struct{})
	go func() {
		once := sync.Once{}
		for {
			typ, b, err := conn.Read(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			if typ == websocket.MessageText {
				texts = append(texts, string(b))
			} else if len(b) != frame {
				bad++
			} else {
				got = append(got, slinPCM(b)...)
				once.Do(func() { close(first) })
			}
			mu.Unlock()
		}
	}()
	select {
	case <-first:
	case <-time.After(10 * time.Second):
		t.Fatal("no audio reached the websocket")
	}
	mu.Lock()
	got = nil
	mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); callerTalks() }()
	tone := slinSine(1000, rate, 2*rate, 8000)
	must(t, conn.Write(ctx, websocket.MessageText, []byte("START_MEDIA_BUFFERING")))
	for off := 0; off < len(tone); off += 60000 {
		must(t, conn.Write(ctx, websocket.MessageBinary, tone[off:min(off+60000, len(tone))]))
	}
	must(t, conn.Write(ctx, websocket.MessageText, []byte("STOP_MEDIA_BUFFERING tone1")))
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		done := strings.Contains(strings.Join(texts, "\n"), "MEDIA_BUFFERING_COMPLETED tone1")
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("no MEDIA_BUFFERING_COMPLETED tone1 after the tone: %q", texts)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if bad > 0 {
		t.Errorf("%d binary messages were not %d bytes", bad, frame)
	}
	return append([]int16(nil), got...)
}

// TestAriExternalMediaWebSocket: externalMedia over chan_websocket's
// protocol. server: the channel waits for the application, which connects
// to /media/{MEDIA_WEBSOCKET_CONNECTION_ID} (slin48: 1920-byte frames);
// client: tapedeck connects to a configured websocket client (the test's
// server) in slin. Either way the application gets the caller's 440 Hz
// and the 1000 Hz it sends unpaced, in 60 kB messages, is played to the
// caller in real time, with MEDIA_BUFFERING_COMPLETED once played.
func TestAriExternalMediaWebSocket(t *testing.T) {
	accepted := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"media"}})
		if err != nil {
			return
		}
		if c.Subprotocol() != "media" {
			c.Close(websocket.StatusProtocolError, "want media")
			return
		}
		accepted <- c
		<-r.Context().Done()
	}))
	defer srv.Close()
	n := startNode(t, withRoute("_3XX", "Stasis(voicebot)"), func(c *config.Config) {
		c.ARI.WebSocketClients = []config.WebSocketClient{{ID: "bot", URI: "ws" + strings.TrimPrefix(srv.URL, "http") + "/media"}}
	})
	n.connect("voicebot")
	for q, want := range map[string]string{
		"app=voicebot&format=slin&transport=websocket":                                           "encapsulation must be 'none'",
		"app=voicebot&format=slin&transport=websocket&encapsulation=none":                        "external_host is required",
		"app=voicebot&format=slin&transport=websocket&encapsulation=none&external_host=nobody":   "valid websocket_client",
		"app=voicebot&format=slin&connection_type=server&external_host=127.0.0.1:9":              "'server' connection_type",
		"app=voicebot&format=opus&transport=websocket&encapsulation=none&connection_type=server": "Unsupported format",
	} {
		if code, body := n.do("POST", "/channels/externalMedia?"+q, nil); code != 400 || !strings.Contains(string(body), want) {
			t.Errorf("externalMedia?%s = %d %s, want 400 with %q", q, code, body, want)
		}
	}
	if resp, err := http.Get(n.baseURL() + "/media/" + uuid.NewString()); err != nil || resp.StatusCode != 404 {
		t.Errorf("unknown media connection: %v %v, want 404", resp, err)
	}

	t.Run("server", func(t *testing.T) {
		streamCall(t, n, map[string]string{"ENCAPSULATION": "none", "TRANSPORT": "websocket", "CONNECTION_TYPE": "server", "FORMAT": "slin48"},
			48000, func(ext map[string]any, callerTalks func()) []int16 {
				vars, _ := ext["channelvars"].(map[string]any)
				id, _ := vars["MEDIA_WEBSOCKET_CONNECTION_ID"].(string)
				if vars["MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE"] != "1920" || id == "" {
					t.Fatalf("channel vars %v", vars)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.baseURL(), "http")+"/media/"+id,
					&websocket.DialOptions{Subprotocols: []string{"media"}})
				if err != nil {
					t.Fatal(err)
				}
				conn.SetReadLimit(1 << 20)
				return wsPeer(t, conn, "slin48", 48000, callerTalks)
			})
	})
	t.Run("client", func(t *testing.T) {
		streamCall(t, n, map[string]string{"ENCAPSULATION": "none", "TRANSPORT": "websocket", "EXTERNAL_HOST": "bot", "FORMAT": "slin"},
			8000, func(ext map[string]any, callerTalks func()) []int16 {
				var conn *websocket.Conn
				select {
				case conn = <-accepted:
				case <-time.After(10 * time.Second):
					t.Fatal("tapedeck did not connect to the websocket client's server")
				}
				conn.SetReadLimit(1 << 20)
				return wsPeer(t, conn, "slin", 8000, callerTalks)
			})
	})
}

// TestAriExternalMediaRTPSlin16: externalMedia over RTP in slin16, as
// voice bots ask for it: the test's UDP socket gets L16 (big-endian, 16
// kHz, 640-byte payloads, Asterisk's payload type 118) carrying the
// caller's 440 Hz, and the 1000 Hz it sends back the same way is what the
// caller hears.
func TestAriExternalMediaRTPSlin16(t *testing.T) {
	n := startNode(t, withRoute("_3XX", "Stasis(voicebot)"))
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var mu sync.Mutex
	var got []int16
	var from *net.UDPAddr
	bad := 0
	go func() {
		buf := make([]byte, 2048)
		for {
			k, addr, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			var pkt rtp.Packet
			if pkt.Unmarshal(buf[:k]) != nil {
				continue
			}
			mu.Lock()
			if pkt.PayloadType != 118 || len(pkt.Payload) != 640 {
				bad++
			} else {
				for i := 0; i+1 < len(pkt.Payload); i += 2 {
					got = append(got, int16(binary.BigEndian.Uint16(pkt.Payload[i:])))
				}
			}
			from = addr
			mu.Unlock()
		}
	}()
	streamCall(t, n, map[string]string{"EXTERNAL_HOST": conn.LocalAddr().String(), "FORMAT": "slin16"}, 16000,
		func(ext map[string]any, callerTalks func()) []int16 {
			deadline := time.Now().Add(10 * time.Second)
			for {
				mu.Lock()
				addr := from
				mu.Unlock()
				if addr != nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no RTP reached the external host")
				}
				time.Sleep(10 * time.Millisecond)
			}
			mu.Lock()
			got = nil // the silence before the caller talks
			to := from
			mu.Unlock()
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); callerTalks() }()
			tone := slinSine(1000, 16000, 32000, 8000)
			tick := time.NewTicker(20 * time.Millisecond)
			for i, off := 0, 0; off < len(tone); i, off = i+1, off+640 {
				payload := make([]byte, 640)
				for j := 0; j < 640; j += 2 {
					binary.BigEndian.PutUint16(payload[j:], binary.LittleEndian.Uint16(tone[off+j:]))
				}
				pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 118, SequenceNumber: uint16(i), Timestamp: uint32(i * 320), SSRC: 0x16161616}, Payload: payload}
				b, err := pkt.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := conn.WriteToUDP(b, to); err != nil {
					t.Fatal(err)
				}
				<-tick.C
			}
			tick.Stop()
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			if bad > 0 {
				t.Errorf("%d RTP packets were not PT 118 with 640 bytes", bad)
			}
			return append([]int16(nil), got...)
		})
}

// TestAriExternalMediaFarEndEnds: the far end ends the stream and the
// channel goes (ChannelDestroyed): an AudioSocket hangup message, an
// AudioSocket message of an unknown kind, an AudioSocket DTMF message (as
// in Asterisk, whose res_audiosocket takes only hangup and audio from the
// far end: the digit is not received, the channel hangs up), a websocket
// HANGUP command, a websocket closed.
func TestAriExternalMediaFarEndEnds(t *testing.T) {
	n := startNode(t)
	ev := n.connect("bot")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	destroyed := func(id string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			e := ev.nextEvent(time.Until(deadline))
			if e == nil {
				t.Fatalf("%s: no ChannelDestroyed", id)
			}
			if e["channel"].(map[string]any)["id"] != id {
				continue
			}
			switch e["type"] {
			case "ChannelDestroyed":
				return
			case "ChannelDtmfReceived":
				t.Errorf("%s: %v", id, e)
			}
		}
	}
	for _, c := range []struct {
		name string
		end  []byte
	}{{"hangup", []byte{0x00, 0x00, 0x00}}, {"unknown kind", []byte{0x42, 0x00, 0x01, 0x00}}, {"dtmf", []byte{0x03, 0x00, 0x01, '7'}}} {
		id := "as-" + strings.ReplaceAll(c.name, " ", "-")
		n.mustDo("POST", "/channels/externalMedia?app=bot&format=slin&encapsulation=audiosocket&transport=tcp&channelId="+id+
			"&data="+uuid.NewString()+"&external_host="+ln.Addr().String(), 200)
		conn, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(c.end); err != nil {
			t.Fatal(err)
		}
		destroyed(id)
		conn.Close()
	}
	for _, how := range []string{"HANGUP", "close"} {
		id := "ws-" + strings.ToLower(how)
		body := n.mustDo("POST", "/channels/externalMedia?app=bot&format=ulaw&encapsulation=none&transport=websocket&connection_type=server&channelId="+id, 200)
		connID := strings.Split(strings.Split(string(body), `"MEDIA_WEBSOCKET_CONNECTION_ID":"`)[1], `"`)[0]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.baseURL(), "http")+"/media/"+connID, &websocket.DialOptions{Subprotocols: []string{"media"}})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if st := ev.skipTo("ChannelStateChange", 10*time.Second); st["channel"].(map[string]any)["state"] != "Up" {
			t.Errorf("connected websocket channel: %v, want Up", st)
		}
		if how == "HANGUP" {
			must(t, c.Write(context.Background(), websocket.MessageText, []byte("HANGUP")))
		} else {
			c.Close(websocket.StatusNormalClosure, "")
		}
		destroyed(id)
		c.CloseNow()
	}
}

// TestAriExternalMediaWebSocketJSON: transport_data f(json) switches
// chan_websocket's control messages to JSON (MEDIA_START with the channel
// variables, MARK_MEDIA answered by MEDIA_MARK_PROCESSED with its
// correlation_id, GET_STATUS), and v(…) adds parameters to a client
// connection's URI.
func TestAriExternalMediaWebSocketJSON(t *testing.T) {
	queries := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries <- r.URL.RawQuery
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"media"}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		<-r.Context().Done()
	}))
	defer srv.Close()
	n := startNode(t, func(c *config.Config) {
		c.ARI.WebSocketClients = []config.WebSocketClient{{ID: "bot", URI: "ws" + strings.TrimPrefix(srv.URL, "http") + "/media"}}
	})
	ev := n.connect("bot")
	if code, body := n.do("POST", "/channels/externalMedia?app=bot&format=ulaw&encapsulation=none&transport=websocket&connection_type=server&transport_data=f(xml)", nil); code != 400 {
		t.Errorf("f(xml): %d %s", code, body)
	}
	n.mustDo("POST", "/channels/externalMedia?app=bot&format=ulaw&encapsulation=none&transport=websocket&external_host=bot&channelId=cl&transport_data="+url.QueryEscape("f(json)v(nonce=abc)"), 200)
	select {
	case q := <-queries:
		if q != "nonce=abc" {
			t.Errorf("client URI query %q, want nonce=abc", q)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no client connection")
	}
	body := n.mustDo("POST", "/channels/externalMedia?app=bot&format=slin16&encapsulation=none&transport=websocket&connection_type=server&channelId=js&transport_data=f(json)", 200)
	connID := strings.Split(strings.Split(string(body), `"MEDIA_WEBSOCKET_CONNECTION_ID":"`)[1], `"`)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.baseURL(), "http")+"/media/"+connID, &websocket.DialOptions{Subprotocols: []string{"media"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	next := func() map[string]any {
		t.Helper()
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if typ != websocket.MessageText {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("control message %q is not JSON: %v", b, err)
			}
			return m
		}
	}
	start := next()
	vars, _ := start["channel_variables"].(map[string]any)
	if start["event"] != "MEDIA_START" || start["channel_id"] != "js" || start["format"] != "slin16" || start["optimal_frame_size"] != float64(640) || vars["MEDIA_WEBSOCKET_CONNECTION_ID"] != connID {
		t.Errorf("MEDIA_START %v", start)
	}
	must(t, c.Write(ctx, websocket.MessageText, []byte(`{"command":"MARK_MEDIA","correlation_id":"m1"}`)))
	if m := next(); m["event"] != "MEDIA_MARK_PROCESSED" || m["correlation_id"] != "m1" {
		t.Errorf("after MARK_MEDIA: %v", m)
	}
	must(t, c.Write(ctx, websocket.MessageText, []byte(`{"command":"GET_STATUS"}`)))
	if m := next(); m["event"] != "STATUS" || m["queue_length"] != float64(0) {
		t.Errorf("after GET_STATUS: %v", m)
	}
	must(t, c.Write(ctx, websocket.MessageText, []byte(`{"command":"HANGUP"}`)))
	deadline := time.Now().Add(10 * time.Second)
	for {
		e := ev.skipTo("ChannelDestroyed", time.Until(deadline))
		if e["channel"].(map[string]any)["id"] == "js" {
			break
		}
	}
}
