package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/tapedeck/tapedeck/internal/codec"
	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// recDir is the node's recordings root.
func (n *node) recDir() string { return n.cfg.RecordingsDir() }

// readWAV parses a 16-bit mono WAV file and returns its rate and samples.
// wavHeaderCurrent reports whether path is a WAV file whose RIFF size
// covers the whole file: a recording that closed (the header is rewritten
// at the end, after the last data), not one being written.
func wavHeaderCurrent(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && len(b) >= 44 && string(b[0:4]) == "RIFF" && int(binary.LittleEndian.Uint32(b[4:8])) == len(b)-8
}

func readWAV(t testing.TB, path string) (int, []int16) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 44 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		t.Fatalf("%s is not a WAV file", path)
	}
	if int(binary.LittleEndian.Uint32(b[4:8])) != len(b)-8 {
		t.Fatalf("%s: RIFF size %d, file %d", path, binary.LittleEndian.Uint32(b[4:8]), len(b))
	}
	off := 12
	rate, bits, chans := 0, 0, 0
	for off+8 <= len(b) {
		id := string(b[off : off+4])
		size := int(binary.LittleEndian.Uint32(b[off+4 : off+8]))
		body := b[off+8:]
		switch id {
		case "fmt ":
			chans = int(binary.LittleEndian.Uint16(body[2:4]))
			rate = int(binary.LittleEndian.Uint32(body[4:8]))
			bits = int(binary.LittleEndian.Uint16(body[14:16]))
		case "data":
			if chans != 1 || bits != 16 {
				t.Fatalf("%s: %d channels %d bits", path, chans, bits)
			}
			if size > len(body) {
				t.Fatalf("%s: data size %d > %d bytes present", path, size, len(body))
			}
			pcm := make([]int16, size/2)
			for i := range pcm {
				pcm[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
			}
			return rate, pcm
		}
		off += 8 + size + size%2
	}
	t.Fatalf("%s: no data chunk", path)
	return 0, nil
}

// sweep is a known signal: a 300→3000 Hz chirp.
func sweep(n int) []int16 {
	out := make([]int16, n)
	phase := 0.0
	for i := range out {
		f := 300 + 2700*float64(i)/float64(n)
		phase += 2 * math.Pi * f / 8000
		out[i] = int16(9000 * math.Sin(phase))
	}
	return out
}

// g711 returns what a PCMU round trip makes of pcm.
func g711(pcm []int16) []int16 {
	out := make([]int16, len(pcm))
	for i, s := range pcm {
		out[i] = codec.MulawDecode(codec.MulawEncode(s))
	}
	return out
}

// recordingCall places a call, answers it and starts a recording.
func recordingCall(t *testing.T, n *node, events *ariEvents, phone *sipua.Phone, exten, query string) (string, *sipua.Call) {
	t.Helper()
	id, call := answeredCall(t, n, events, phone, exten)
	code, body := n.do("POST", "/channels/"+id+"/record?"+query, nil)
	if code != 201 {
		t.Fatalf("record: %d %s", code, body)
	}
	ev := events.skipTo("RecordingStarted", 5*time.Second)
	rec := ev["recording"].(map[string]any)
	if rec["state"] != "recording" || rec["target_uri"] != "channel:"+id {
		t.Fatalf("RecordingStarted %v", rec)
	}
	return id, call
}

// sendPackets sends pcm as 20 ms PCMU packets paced in real time; drop,
// dup and swap pick the packets to lose, duplicate and reorder.
func sendPackets(t *testing.T, call *sipua.Call, pcm []int16, ssrc uint32, ts0 uint32, seq0 uint16, lose func(i int) bool, dup func(i int) bool, swap func(i int) bool) {
	t.Helper()
	frames := len(pcm) / 160
	pkts := make([]*rtp.Packet, frames)
	for i := range pkts {
		payload := make([]byte, 160)
		codec.EncodeMulaw(payload, pcm[i*160:(i+1)*160])
		pkts[i] = &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq0 + uint16(i), Timestamp: ts0 + uint32(i*160), SSRC: ssrc, Marker: i == 0}, Payload: payload}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < frames; i++ {
		<-tick.C
		if swap != nil && swap(i) && i+1 < frames {
			must(t, call.Media().WriteRTP(pkts[i+1]))
			must(t, call.Media().WriteRTP(pkts[i]))
			i++
			continue
		}
		if lose != nil && lose(i) {
			continue
		}
		must(t, call.Media().WriteRTP(pkts[i]))
		if dup != nil && dup(i) {
			must(t, call.Media().WriteRTP(pkts[i]))
		}
	}
}

// waitRx waits until the server has received want packets of the current
// source, so that stopping a recording does not race packets in flight.
func waitRx(t *testing.T, n *node, id string, want int) {
	t.Helper()
	pollFor(t, 5*time.Second, func() bool {
		_, body := n.do("GET", "/channels/"+id+"/rtp_statistics", nil)
		var st struct {
			Rx int `json:"rxcount"`
		}
		_ = jsonUnmarshal(body, &st)
		return st.Rx >= want
	}, fmt.Sprintf("%d packets at the server", want))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRecordingGolden: the stored WAV holds exactly the audio sent, sample
// for sample; with loss, duplicates and reordering injected, the gaps are
// silence at the right offsets and the length is the RTP timeline. Both
// ways of reading RTP: batched (the default) and a goroutine per socket
// (rtp.read_interval_ms: 0).
func TestRecordingGolden(t *testing.T) {
	for _, tc := range []struct {
		impaired bool
		readMs   int
	}{{false, 100}, {true, 100}, {false, 0}, {true, 0}} {
		impaired := tc.impaired
		t.Run(fmt.Sprintf("impaired=%v/read_interval_ms=%d", impaired, tc.readMs), func(t *testing.T) {
			n := startNode(t, func(c *config.Config) { c.RTP.ReadIntervalMs = tc.readMs })
			events := n.connect("test")
			phone := newPhone(t, "udp")
			id, call := recordingCall(t, n, events, phone, "320", "name=golden&format=wav")
			src := sweep(8000 * 2) // 2 s
			rng := rand.New(rand.NewPCG(1, 2))
			lost := map[int]bool{}
			var lose, dup, swap func(int) bool
			if impaired {
				lose = func(i int) bool {
					if i > 0 && i < 99 && rng.IntN(20) == 0 { // ~5%, never the first or last
						lost[i] = true
						return true
					}
					return false
				}
				dup = func(i int) bool { return i%17 == 5 }
				swap = func(i int) bool { return i%23 == 7 }
			}
			sendPackets(t, call, src, 0x1234, 90000, 1000, lose, dup, swap)
			waitRx(t, n, id, len(src)/160-len(lost))
			n.mustDo("POST", "/recordings/live/golden/stop", 204)
			fin := events.skipTo("RecordingFinished", 5*time.Second)
			if r := fin["recording"].(map[string]any); r["state"] != "done" || r["duration"].(float64) != 2 {
				t.Fatalf("RecordingFinished %v", r)
			}
			rate, got := readWAV(t, filepath.Join(n.recDir(), "golden.wav"))
			if rate != 8000 {
				t.Fatalf("rate %d", rate)
			}
			if len(got) != len(src) {
				t.Fatalf("recorded %d samples, sent a timeline of %d", len(got), len(src))
			}
			want := g711(src)
			for f := 0; f < len(src)/160; f++ {
				for i := f * 160; i < (f+1)*160; i++ {
					w := want[i]
					if lost[f] {
						w = 0
					}
					if got[i] != w {
						t.Fatalf("sample %d (frame %d, lost=%v): got %d want %d", i, f, lost[f], got[i], w)
					}
				}
			}
			if impaired && len(lost) == 0 {
				t.Fatal("the impaired run lost nothing")
			}
			n.mustDo("DELETE", "/channels/"+id, 204)
		})
	}
}

// TestRecordingSSRCChange: a new SSRC with a new timestamp base (as after a
// re-INVITE) continues the file without corrupting it.
func TestRecordingSSRCChange(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	phone := newPhone(t, "udp")
	id, call := recordingCall(t, n, events, phone, "321", "name=ssrc&format=wav")
	a, b := sweep(8000), sweep(8000)
	sendPackets(t, call, a, 1, 1000, 10, nil, nil, nil)
	sendPackets(t, call, b, 2, 3_000_000_000, 65500, nil, nil, nil) // new source, wrapping sequence
	waitRx(t, n, id, 50)                                            // counters restart with the new source
	n.mustDo("POST", "/recordings/live/ssrc/stop", 204)
	events.skipTo("RecordingFinished", 5*time.Second)
	_, got := readWAV(t, filepath.Join(n.recDir(), "ssrc.wav"))
	// Both halves present, in order; the switch may add at most a few frames.
	if len(got) < 16000 || len(got) > 16000+5*160 {
		t.Fatalf("%d samples for 2 s of audio", len(got))
	}
	wa, wb := g711(a), g711(b)
	for i := 0; i < 8000; i++ {
		if got[i] != wa[i] {
			t.Fatalf("first source sample %d: %d != %d", i, got[i], wa[i])
		}
	}
	tail := got[len(got)-8000:]
	for i := range tail {
		if tail[i] != wb[i] {
			t.Fatalf("second source sample %d: %d != %d", i, tail[i], wb[i])
		}
	}
}

func TestRecordingErrors(t *testing.T) {
	n := startNode(t, func(c *config.Config) {
		c.Dialplan = append(c.Dialplan, config.Route{Exten: "800", App: "Wait(20)"})
	})
	events := n.connect("test")
	phone := newPhone(t, "udp")
	id, call := answeredCall(t, n, events, phone, "322")
	_ = call
	// A file that exists in another format blocks ifExists=fail.
	if err := os.MkdirAll(n.recDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(n.recDir(), "taken.sln"), make([]byte, 320), 0o644)
	outside := t.TempDir()
	os.Symlink(outside, filepath.Join(n.recDir(), "escape"))
	cases := []struct {
		q    string
		code int
	}{
		{"format=wav", 400},
		{"name=x", 400},
		{"name=x&format=wav&maxDurationSeconds=-1", 400},
		{"name=x&format=wav&maxSilenceSeconds=-2", 400},
		{"name=x&format=wav&ifExists=maybe", 400},
		{"name=x&format=wav&terminateOn=5", 400},
		{"name=x&format=wav&beep=perhaps", 400},
		{"name=../x&format=wav", 400},
		{"name=a/../../x&format=wav", 400},
		{"name=" + url.QueryEscape("/etc/x") + "&format=wav", 400},
		{"name=a%00b&format=wav", 400},
		{"name=escape/x&format=wav", 400},
		{"name=a//b&format=wav", 400},
		{"name=x&format=grue", 422},
		{"name=taken&format=wav", 409},
	}
	for _, c := range cases {
		code, body := n.do("POST", "/channels/"+id+"/record?"+c.q, nil)
		if code != c.code {
			t.Errorf("record?%s = %d %s, want %d", c.q, code, body, c.code)
		}
	}
	if code, _ := n.do("POST", "/channels/nope/record?name=x&format=wav", nil); code != 404 {
		t.Errorf("no channel: %d", code)
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 0 {
		t.Fatalf("something was written outside the root: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(n.recDir(), "x.wav")); err == nil {
		t.Fatal("a rejected request wrote a file")
	}
	// Name in use by a live recording.
	n.mustDo("POST", "/channels/"+id+"/record?name=busy&format=wav", 201)
	events.skipTo("RecordingStarted", 5*time.Second)
	if code, _ := n.do("POST", "/channels/"+id+"/record?name=busy&format=wav&ifExists=overwrite", nil); code != 409 {
		t.Errorf("live name reused: %d", code)
	}
	// Live operation errors.
	if code, _ := n.do("POST", "/recordings/live/nope/stop", nil); code != 404 {
		t.Errorf("stop unknown: %d", code)
	}
	// The channel not in Stasis.
	waitCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go phone.Dial(waitCtx, n.target("800"), sipua.CallOptions{})
	var waitID string
	pollFor(t, 5*time.Second, func() bool {
		for _, ch := range listChannels(t, n) {
			if ch["dialplan"].(map[string]any)["app_name"] == "Wait" {
				waitID = ch["id"].(string)
			}
		}
		return waitID != ""
	}, "Wait channel")
	if code, _ := n.do("POST", "/channels/"+waitID+"/record?name=w&format=wav", nil); code != 409 {
		t.Errorf("record on channel not in Stasis: %d", code)
	}
	// The call survived all of it.
	n.mustDo("POST", "/recordings/live/busy/stop", 204)
	events.skipTo("RecordingFinished", 5*time.Second)
	body := n.mustDo("GET", "/channels/"+id, 200)
	if !strings.Contains(string(body), `"state":"Up"`) {
		t.Fatalf("call after bad requests: %s", body)
	}
}

func listChannels(t *testing.T, n *node) []map[string]any {
	_, body := n.do("GET", "/channels", nil)
	var list []map[string]any
	_ = jsonUnmarshal(body, &list)
	return list
}

// TestLiveRecordingControls: pause skips time, mute writes silence, cancel
// deletes the file, a live recording is gone once finished, and the
// recording auto-answers an unanswered channel.
func TestLiveRecordingControls(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	phone := newPhone(t, "udp")
	id, call := recordingCall(t, n, events, phone, "323", "name=ctl&format=wav")
	tone := sweep(8000)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(t, call.SendAudio(ctx, tone[:4000]))           // 0.5 s recorded
	n.mustDo("POST", "/recordings/live/ctl/pause", 204) // 0.5 s skipped
	must(t, call.SendAudio(ctx, tone[:4000]))
	body := n.mustDo("GET", "/recordings/live/ctl", 200)
	if !strings.Contains(string(body), `"state":"paused"`) {
		t.Fatalf("live while paused: %s", body)
	}
	n.mustDo("DELETE", "/recordings/live/ctl/pause", 204)
	n.mustDo("POST", "/recordings/live/ctl/mute", 204) // 0.5 s of silence
	must(t, call.SendAudio(ctx, tone[:4000]))
	n.mustDo("DELETE", "/recordings/live/ctl/mute", 204)
	must(t, call.SendAudio(ctx, tone[:4000])) // 0.5 s recorded
	n.mustDo("POST", "/recordings/live/ctl/stop", 204)
	events.skipTo("RecordingFinished", 5*time.Second)
	n.mustDo("GET", "/recordings/live/ctl", 404)
	if code, _ := n.do("POST", "/recordings/live/ctl/pause", nil); code != 404 {
		t.Errorf("pause after finish: %d", code)
	}
	_, got := readWAV(t, filepath.Join(n.recDir(), "ctl.wav"))
	if d := len(got) - 12000; d < -800 || d > 800 {
		t.Fatalf("%d samples, want about 1.5 s (paused time skipped)", len(got))
	}
	muted := got[4000+800 : 8000-800] // the middle of the muted half second
	for i, s := range muted {
		if s != 0 {
			t.Fatalf("muted part has audio at %d: %d", i, s)
		}
	}
	if rms(got[800:3200]) < 1000 || rms(got[len(got)-3200:len(got)-800]) < 1000 {
		t.Fatal("recorded parts are silent")
	}
	// Cancel deletes the file.
	n.mustDo("POST", "/channels/"+id+"/record?name=gone&format=wav", 201)
	events.skipTo("RecordingStarted", 5*time.Second)
	must(t, call.SendAudio(ctx, tone[:1600]))
	n.mustDo("DELETE", "/recordings/live/gone", 204)
	if ev := events.skipTo("RecordingFinished", 5*time.Second); ev["recording"].(map[string]any)["state"] != "canceled" {
		t.Fatalf("canceled recording finished as %v", ev["recording"])
	}
	if _, err := os.Stat(filepath.Join(n.recDir(), "gone.wav")); !os.IsNotExist(err) {
		t.Fatalf("canceled recording left a file: %v", err)
	}
	n.mustDo("GET", "/recordings/stored/gone", 404)
}

// bursts is speech-like: 200 ms of sweep, 100 ms of silence, repeated.
func bursts(n int) []int16 {
	out := sweep(n)
	for i := range out {
		if i%2400 >= 1600 {
			out[i] = 0
		}
	}
	return out
}

func rms(pcm []int16) float64 {
	var sum float64
	for _, s := range pcm {
		sum += float64(s) * float64(s)
	}
	return math.Sqrt(sum / float64(len(pcm)))
}

// TestRecordingLimits: maxDurationSeconds, terminateOn and hangup end a
// recording by themselves; maxSilenceSeconds ends it after silence and
// reports talking/silence durations.
func TestRecordingLimits(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	phone := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Auto-answer: record on an unanswered channel answers it.
	res := dialAsync(phone, n.target("324"), sipua.CallOptions{})
	id := channelID(events.skipTo("StasisStart", 5*time.Second))
	n.mustDo("POST", "/channels/"+id+"/record?name=limit&format=wav&maxDurationSeconds=1&beep=yes", 201)
	r := wait(t, res, 10*time.Second, "auto-answer")
	must(t, r.err)
	events.skipTo("RecordingStarted", 5*time.Second)
	must(t, r.call.SendAudio(ctx, sweep(8000*3/2)))
	fin := events.skipTo("RecordingFinished", 5*time.Second)
	if rec := fin["recording"].(map[string]any); rec["duration"].(float64) != 1 || rec["state"] != "done" {
		t.Fatalf("maxDuration: %v", rec)
	}

	// terminateOn=#.
	n.mustDo("POST", "/channels/"+id+"/record?name=term&format=wav&terminateOn=%23", 201)
	events.skipTo("RecordingStarted", 5*time.Second)
	must(t, r.call.SendDTMF("1", 80*time.Millisecond, 0))
	must(t, r.call.SendDTMF("#", 80*time.Millisecond, 0))
	fin = events.skipTo("RecordingFinished", 5*time.Second)
	if fin["recording"].(map[string]any)["name"] != "term" {
		t.Fatalf("terminateOn: %v", fin)
	}

	// maxSilenceSeconds: 1 s of syllable-like bursts, then silence.
	n.mustDo("POST", "/channels/"+id+"/record?name=quiet&format=wav&maxSilenceSeconds=1", 201)
	events.skipTo("RecordingStarted", 5*time.Second)
	start := time.Now()
	go func() {
		_ = r.call.SendAudio(ctx, bursts(8000))
		_ = r.call.SendAudio(ctx, make([]int16, 8000*4))
	}()
	fin = events.skipTo("RecordingFinished", 10*time.Second)
	rec := fin["recording"].(map[string]any)
	if time.Since(start) > 4*time.Second || rec["talking_duration"] == nil || rec["silence_duration"] == nil {
		t.Fatalf("maxSilence did not end the recording in time: %v after %v", rec, time.Since(start))
	}
	if td := rec["talking_duration"].(float64); td < 1 || td > 2 {
		t.Errorf("talking_duration %v, want about 1", td)
	}

	// Hangup stops and stores.
	n.mustDo("POST", "/channels/"+id+"/record?name=hung&format=wav", 201)
	events.skipTo("RecordingStarted", 5*time.Second)
	must(t, r.call.SendAudio(ctx, sweep(4000)))
	must(t, r.call.Hangup(ctx))
	fin = events.skipTo("RecordingFinished", 5*time.Second)
	if rec := fin["recording"].(map[string]any); rec["name"] != "hung" || rec["state"] != "done" {
		t.Fatalf("hangup: %v", rec)
	}
	events.skipTo("StasisEnd", 5*time.Second)
	n.mustDo("GET", "/recordings/stored/hung", 200)
}

// TestRecordingFormats: every format the build can write records and is
// served with its content type; one without an encoder answers 422 with a
// hint.
func TestRecordingFormats(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	phone := newPhone(t, "udp")
	id, call := answeredCall(t, n, events, phone, "326")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	types := map[string]string{"wav": "audio/wav", "wav16": "audio/wav", "sln": "audio/L16;rate=8000", "ulaw": "audio/basic", "alaw": "audio/x-alaw-basic", "g722": "audio/G722", "flac": "audio/flac", "mp3": "audio/mpeg"}
	for format, ctype := range types {
		if format == "mp3" {
			testutil.RequireTool(t, "lame")
		}
		code, body := n.do("POST", "/channels/"+id+"/record?name=fmt-"+format+"&format="+format, nil)
		if code != 201 {
			t.Fatalf("%s: %d %s", format, code, body)
		}
		events.skipTo("RecordingStarted", 5*time.Second)
		must(t, call.SendAudio(ctx, sweep(2400)))
		n.mustDo("POST", "/recordings/live/fmt-"+format+"/stop", 204)
		if fin := events.skipTo("RecordingFinished", 10*time.Second); fin["recording"].(map[string]any)["state"] != "done" {
			t.Fatalf("%s: %v", format, fin)
		}
		code, h, data := rawRequest(t, "GET", n.baseURL()+"/ari/recordings/stored/fmt-"+format+"/file", "", "", basic("asterisk", "asterisk"))
		if code != 200 || h.Get("Content-Type") != ctype || len(data) < 500 {
			t.Errorf("%s file: %d %q %d bytes", format, code, h.Get("Content-Type"), len(data))
		}
	}
	code, body := n.do("POST", "/channels/"+id+"/record?name=x&format=ogg", nil)
	if code != 422 || !strings.Contains(string(body), "opus") {
		t.Errorf("ogg without an encoder: %d %s", code, body)
	}
}

// TestStoredRecordings: list, get, file with Content-Type and Range, copy
// (409 on an existing destination, 404 on a missing source), delete.
func TestStoredRecordings(t *testing.T) {
	n := startNode(t)
	events := n.connect("test")
	phone := newPhone(t, "udp")
	id, call := recordingCall(t, n, events, phone, "325", "name="+url.QueryEscape("vm/305/msg1")+"&format=wav")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(t, call.SendAudio(ctx, sweep(4000)))
	n.mustDo("POST", "/recordings/live/vm%2F305%2Fmsg1/stop", 204)
	events.skipTo("RecordingFinished", 5*time.Second)
	_ = id

	body := n.mustDo("GET", "/recordings/stored", 200)
	var stored []map[string]any
	if err := json.Unmarshal(body, &stored); err != nil || len(stored) != 1 || stored[0]["name"] != "vm/305/msg1" || stored[0]["format"] != "wav" {
		t.Fatalf("list: %s", body)
	}
	n.mustDo("GET", "/recordings/stored/vm%2F305%2Fmsg1", 200)
	code, h, data := rawRequest(t, "GET", n.baseURL()+"/ari/recordings/stored/vm%2F305%2Fmsg1/file", "", "", basic("asterisk", "asterisk"))
	if code != 200 || h.Get("Content-Type") != "audio/wav" || !strings.HasPrefix(data, "RIFF") {
		t.Fatalf("file: %d %s", code, h.Get("Content-Type"))
	}
	code, h, part := rawRequest(t, "GET", n.baseURL()+"/ari/recordings/stored/vm%2F305%2Fmsg1/file", "", "", func(r *httpRequest) {
		r.SetBasicAuth("asterisk", "asterisk")
		r.Header.Set("Range", "bytes=0-3")
	})
	if code != 206 || part != "RIFF" || !strings.HasPrefix(h.Get("Content-Range"), "bytes 0-3/") {
		t.Fatalf("range: %d %q %s", code, part, h.Get("Content-Range"))
	}
	code, b := n.do("POST", "/recordings/stored/vm%2F305%2Fmsg1/copy?destinationRecordingName=copy%2Fsuperfreak", nil)
	if code != 200 || !strings.Contains(string(b), `"name":"copy/superfreak"`) {
		t.Fatalf("copy: %d %s", code, b)
	}
	if code, _ := n.do("POST", "/recordings/stored/vm%2F305%2Fmsg1/copy?destinationRecordingName=copy%2Fsuperfreak", nil); code != 409 {
		t.Errorf("copy onto existing: %d", code)
	}
	if code, _ := n.do("POST", "/recordings/stored/nope/copy?destinationRecordingName=x", nil); code != 404 {
		t.Errorf("copy missing: %d", code)
	}
	if code, _ := n.do("POST", "/recordings/stored/vm%2F305%2Fmsg1/copy?destinationRecordingName=..%2Fout", nil); code != 400 {
		t.Errorf("copy outside root: %d", code)
	}
	if code, _ := n.do("GET", "/recordings/stored/..%2F..%2Fetc%2Fpasswd", nil); code != 400 {
		t.Errorf("get outside root: %d", code)
	}
	n.mustDo("DELETE", "/recordings/stored/copy%2Fsuperfreak", 204)
	n.mustDo("GET", "/recordings/stored/copy%2Fsuperfreak", 404)
	n.mustDo("DELETE", "/recordings/stored/copy%2Fsuperfreak", 404)
	// The original is still there; ifExists=fail refuses it, overwrite works.
	if code, _ := n.do("POST", "/channels/"+id+"/record?name=vm%2F305%2Fmsg1&format=wav", nil); code != 409 {
		t.Errorf("ifExists=fail on existing: %d", code)
	}
	n.mustDo("POST", "/channels/"+id+"/record?name=vm%2F305%2Fmsg1&format=wav&ifExists=overwrite", 201)
	events.skipTo("RecordingStarted", 5*time.Second)
}

// TestStopIncludesQueuedAudio: RTP is read in batches (here every second,
// so that no read round falls between the packets and the stop), yet a
// recording stopped right after the audio arrived holds all of it: the stop
// first hands the recording what the socket holds. The same goes for the
// packet count of rtp_statistics.
func TestStopIncludesQueuedAudio(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.RTP.ReadIntervalMs = 1000 })
	events := n.connect("test")
	phone := newPhone(t, "udp")
	id, call := recordingCall(t, n, events, phone, "321", "name=queued&format=wav")
	src := sweep(8000) // 1 s, sent at once
	const frames = 50
	for i := range frames {
		payload := make([]byte, 160)
		codec.EncodeMulaw(payload, src[i*160:(i+1)*160])
		must(t, call.Media().WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(7 + i),
			Timestamp: uint32(1000 + i*160), SSRC: 77, Marker: i == 0}, Payload: payload}))
	}
	n.mustDo("POST", "/recordings/live/queued/stop", 204)
	events.skipTo("RecordingFinished", 5*time.Second)
	_, got := readWAV(t, filepath.Join(n.recDir(), "queued.wav"))
	if len(got) != len(src) {
		t.Fatalf("recorded %d samples of the %d that arrived before the stop", len(got), len(src))
	}
	for i, w := range g711(src) {
		if got[i] != w {
			t.Fatalf("sample %d = %d, want %d", i, got[i], w)
		}
	}
	for i := range frames {
		payload := make([]byte, 160)
		must(t, call.Media().WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(7 + frames + i),
			Timestamp: uint32(1000 + (frames+i)*160), SSRC: 77}, Payload: payload}))
	}
	_, body := n.do("GET", "/channels/"+id+"/rtp_statistics", nil)
	var st struct {
		Rx int `json:"rxcount"`
	}
	must(t, jsonUnmarshal(body, &st))
	if st.Rx != 2*frames {
		t.Fatalf("rxcount %d right after %d packets arrived", st.Rx, 2*frames)
	}
}
