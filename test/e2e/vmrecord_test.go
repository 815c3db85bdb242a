package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/nodeari"
)

// The voice mail recorder of the Asterisk wiki page "ARI and Media: Part 1 -
// Recording" (test/node/vm-record: the seed's JavaScript, "Cancelling a
// Recording" version; the only changes are marked DEVIATION: URL and app
// name from the environment, extra JSON output lines) runs on npm ari-client
// 2.2.0 against tapedeck. A Go phone calls mailbox 305 through the seed's dialplan
// (exten _3XX → Stasis(vm-record, ${EXTEN})), speaks a known tone, and
// presses '#', '*' or hangs up; the recording must end up under
// <DataDir>/recording/voicemail/305/<timestamp>.wav and in
// GET /recordings/stored.

const (
	vmrAmplitude = 8000
	vmrRate      = 8000
)

// vmrStart starts tapedeck with the seed's dialplan and the seed's app, and
// waits until the app's events WebSocket is open.
func vmrStart(t *testing.T) (*node, *nodeari.Proc) {
	t.Helper()
	n := startNode(t, withRoute("_3XX", "Stasis(vm-record, ${EXTEN})"))
	app := nodeari.Start(t, "vm-record/vm-record.js", map[string]string{
		"ARI_URL": n.baseURL(),
		"ARI_APP": "vm-record", // nodeari passes no argv; vm-record.js falls back to $ARI_APP
	})
	if _, err := app.WaitLine("READY", 20*time.Second); err != nil {
		t.Fatalf("vm-record.js did not connect: %v", err)
	}
	return n, app
}

// vmrDial calls mailbox 305 and returns once the app answered; it checks the
// app saw StasisStart with args ["305"].
func vmrDial(t *testing.T, n *node, app *nodeari.Proc) *sipua.Call {
	t.Helper()
	phone := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	call, err := phone.Dial(ctx, n.target("305"), sipua.CallOptions{})
	if err != nil {
		t.Fatalf("dial 305: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		call.Hangup(ctx)
	})
	start, err := app.WaitLine("StasisStart", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(start["args"], []any{"305"}) {
		t.Fatalf("StasisStart args %v, want [305]", start["args"])
	}
	return call
}

// vmrWaitState waits for the next state-entry line of the app and checks
// it is the wanted state.
func vmrWaitState(t *testing.T, app *nodeari.Proc, want string, timeout time.Duration) nodeari.Line {
	t.Helper()
	l, err := app.WaitLine("state", timeout)
	if err != nil {
		t.Fatal(err)
	}
	if l["state"] != want {
		t.Fatalf("app entered state %v, want %s", l, want)
	}
	return l
}

// vmrWaitRecording waits for the next event of type typ (RecordingStarted,
// RecordingFinished, ...) and checks it is for the recording name.
func vmrWaitRecording(t *testing.T, app *nodeari.Proc, typ, name string, timeout time.Duration) map[string]any {
	t.Helper()
	l, err := app.WaitLine(typ, timeout)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := l["recording"].(map[string]any)
	if rec == nil || rec["name"] != name {
		t.Fatalf("%s for %v, want recording %q", typ, l["recording"], name)
	}
	return rec
}

// vmrWaitFinished waits for the RecordingFinished of the name with state
// "done", skipping the ones of cancelled takes (Asterisk reports a cancelled
// recording as RecordingFinished with state "canceled").
func vmrWaitFinished(t *testing.T, app *nodeari.Proc, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rec := vmrWaitRecording(t, app, "RecordingFinished", name, time.Until(deadline))
		switch rec["state"] {
		case "done":
			return
		case "canceled":
			continue
		default:
			t.Fatalf("RecordingFinished with recording %v, want state done", rec)
		}
	}
}

// vmrRecord waits until the recording state is entered and the recording
// started (after the beep), and returns the recording name.
func vmrRecord(t *testing.T, app *nodeari.Proc) string {
	t.Helper()
	st := vmrWaitState(t, app, "recording", 10*time.Second)
	name, _ := st["name"].(string)
	if !strings.HasPrefix(name, "voicemail/305/") {
		t.Fatalf("recording name %q, want voicemail/305/<timestamp>", name)
	}
	rec := vmrWaitRecording(t, app, "RecordingStarted", name, 10*time.Second)
	if rec["format"] != "wav" {
		t.Errorf("RecordingStarted format %v, want wav", rec["format"])
	}
	return name
}

// vmrTone is d of a sine at hz, amplitude 8000, at 8 kHz.
func vmrTone(hz float64, d time.Duration) []int16 {
	s := make([]int16, int(d.Seconds()*vmrRate))
	for i := range s {
		s[i] = int16(vmrAmplitude * math.Sin(2*math.Pi*hz*float64(i)/vmrRate))
	}
	return s
}

func vmrSend(t *testing.T, call *sipua.Call, samples []int16) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := call.SendAudio(ctx, samples); err != nil {
		t.Fatalf("send audio: %v", err)
	}
}

// vmrStored waits until the recording is in GET /recordings/stored as wav
// and its file exists, and returns the file's path.
func vmrStored(t *testing.T, n *node, name string) string {
	t.Helper()
	file := filepath.Join(n.cfg.DataDir, "recording", filepath.FromSlash(name)+".wav")
	var last string
	err := testutil.Poll(10*time.Second, 20*time.Millisecond, func() bool {
		code, body := n.do("GET", "/recordings/stored", nil)
		last = fmt.Sprintf("%d %s", code, body)
		if code != http.StatusOK {
			return false
		}
		var list []map[string]any
		if json.Unmarshal(body, &list) != nil {
			return false
		}
		for _, r := range list {
			if r["name"] == name && r["format"] == "wav" {
				_, err := os.Stat(file)
				return err == nil
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("recording %q not stored as %s within 10s (GET /recordings/stored: %s)", name, file, last)
	}
	return file
}

// vmrFiles lists the files under recording/voicemail/305.
func vmrFiles(t *testing.T, n *node) []string {
	t.Helper()
	var files []string
	root := filepath.Join(n.cfg.DataDir, "recording", "voicemail", "305")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", root, err)
	}
	return files
}

type vmrWav struct {
	format, channels, rate, bits int
	samples                      []int16
}

func (w vmrWav) duration() time.Duration {
	return time.Duration(len(w.samples)) * time.Second / vmrRate
}

// vmrReadWav parses a RIFF/WAVE file: the fmt chunk and the data chunk.
func vmrReadWav(t *testing.T, file string) vmrWav {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		t.Fatalf("%s: not a RIFF/WAVE file (%d bytes, starts %q)", file, len(b), b[:min(12, len(b))])
	}
	if riff := int(binary.LittleEndian.Uint32(b[4:8])); riff != len(b)-8 {
		t.Errorf("%s: RIFF size %d, file has %d bytes after the RIFF header", file, riff, len(b)-8)
	}
	var w vmrWav
	var haveFmt, haveData bool
	for off := 12; off+8 <= len(b); {
		id := string(b[off : off+4])
		size := int(binary.LittleEndian.Uint32(b[off+4 : off+8]))
		body := b[off+8:]
		if size > len(body) {
			t.Fatalf("%s: chunk %q size %d, only %d bytes left", file, id, size, len(body))
		}
		body = body[:size]
		switch id {
		case "fmt ":
			if size < 16 {
				t.Fatalf("%s: fmt chunk of %d bytes", file, size)
			}
			w.format = int(binary.LittleEndian.Uint16(body[0:2]))
			w.channels = int(binary.LittleEndian.Uint16(body[2:4]))
			w.rate = int(binary.LittleEndian.Uint32(body[4:8]))
			byteRate := int(binary.LittleEndian.Uint32(body[8:12]))
			align := int(binary.LittleEndian.Uint16(body[12:14]))
			w.bits = int(binary.LittleEndian.Uint16(body[14:16]))
			if byteRate != w.rate*w.channels*w.bits/8 || align != w.channels*w.bits/8 {
				t.Errorf("%s: byte rate %d / block align %d inconsistent with %d Hz, %d ch, %d bit",
					file, byteRate, align, w.rate, w.channels, w.bits)
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				t.Fatalf("%s: data chunk before fmt chunk", file)
			}
			w.samples = make([]int16, size/2)
			for i := range w.samples {
				w.samples[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
			}
			haveData = true
		}
		off += 8 + size + size%2
	}
	if !haveFmt || !haveData {
		t.Fatalf("%s: fmt chunk %v, data chunk %v", file, haveFmt, haveData)
	}
	if w.format != 1 || w.channels != 1 || w.rate != 8000 || w.bits != 16 {
		t.Fatalf("%s: format %d, %d channel(s), %d Hz, %d bit; want PCM mono 8000 Hz 16 bit",
			file, w.format, w.channels, w.rate, w.bits)
	}
	return w
}

// vmrAnalyze returns how long the audio is loud (20 ms frames with an RMS
// above 1000; the tone's RMS is about 5660), and the median share of the
// energy at hz in the loud 100 ms blocks (about 1 for a pure tone at hz,
// about 0 for a tone far from hz).
func vmrAnalyze(samples []int16, hz float64) (loud time.Duration, share float64) {
	rms := func(s []int16) float64 {
		var e float64
		for _, v := range s {
			e += float64(v) * float64(v)
		}
		return math.Sqrt(e / float64(len(s)))
	}
	for off := 0; off+160 <= len(samples); off += 160 {
		if rms(samples[off:off+160]) > 1000 {
			loud += 20 * time.Millisecond
		}
	}
	var shares []float64
	for off := 0; off+800 <= len(samples); off += 800 {
		blk := samples[off : off+800]
		r := rms(blk)
		if r < 2000 {
			continue
		}
		var re, im float64
		for i, v := range blk {
			ph := 2 * math.Pi * hz * float64(i) / vmrRate
			re += float64(v) * math.Cos(ph)
			im += float64(v) * math.Sin(ph)
		}
		n := float64(len(blk))
		shares = append(shares, 2*(re*re+im*im)/(n*n)/(r*r))
	}
	if len(shares) == 0 {
		return loud, 0
	}
	// median
	for i := 1; i < len(shares); i++ {
		for j := i; j > 0 && shares[j] < shares[j-1]; j-- {
			shares[j], shares[j-1] = shares[j-1], shares[j]
		}
	}
	return loud, shares[len(shares)/2]
}

// vmrCheckTone checks the wav holds `sent` of a tone at hz and not much
// more: total and loud durations within ±0.5 s of what the phone sent,
// and the loud part is that tone. notHz, if non-zero, is a tone that must
// not be in the file.
func vmrCheckTone(t *testing.T, file string, w vmrWav, sent time.Duration, hz, notHz float64) {
	t.Helper()
	const tol = 500 * time.Millisecond
	d := w.duration()
	loud, share := vmrAnalyze(w.samples, hz)
	t.Logf("%s: %v of audio, %v loud, %.3f of the energy at %v Hz", filepath.Base(file), d, loud, share, hz)
	if d < sent-tol || d > sent+tol {
		t.Errorf("%s lasts %v, the phone sent %v of audio", file, d, sent)
	}
	if loud < sent-tol || loud > sent+tol {
		t.Errorf("%s has %v of loud audio, the phone sent %v of a %v Hz tone", file, loud, sent, hz)
	}
	if share < 0.8 {
		t.Errorf("%s: only %.3f of the loud audio's energy is at %v Hz, want > 0.8", file, share, hz)
	}
	if notHz != 0 {
		if _, other := vmrAnalyze(w.samples, notHz); other > 0.1 {
			t.Errorf("%s: %.3f of the energy at %v Hz: the cancelled take is in the file", file, other, notHz)
		}
	}
}

func vmrAppAlive(t *testing.T, app *nodeari.Proc) {
	t.Helper()
	if code := app.ExitCode(); code != -1 {
		t.Fatalf("vm-record.js exited (status %d); it should keep running", code)
	}
}

// TestVMRecordOctothorpe: the caller records, presses '#': the app stops
// the live recording (POST /recordings/live/{name}/stop) and hangs up.
func TestVMRecordOctothorpe(t *testing.T) {
	n, app := vmrStart(t)
	call := vmrDial(t, n, app)
	name := vmrRecord(t, app)

	const sent = 2 * time.Second
	vmrSend(t, call, vmrTone(440, sent))
	if err := call.SendDTMF("#", 100*time.Millisecond, 0); err != nil {
		t.Fatal(err)
	}
	stop, err := app.WaitLine("stop", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if stop["name"] != name || stop["error"] != nil {
		t.Fatalf("recording.stop(): %v", stop)
	}
	vmrWaitState(t, app, "ending", 5*time.Second)
	wait(t, call.Ended(), 10*time.Second, "BYE from the app after '#'")
	vmrWaitFinished(t, app, name, 10*time.Second)

	file := vmrStored(t, n, name)
	vmrCheckTone(t, file, vmrReadWav(t, file), sent, 440, 0)
	if files := vmrFiles(t, n); len(files) != 1 {
		t.Errorf("files under recording/voicemail/305: %v, want one", files)
	}
	out := app.Output()
	for _, want := range []string{"Entering recording state", "Accepted recording " + name, "Ending voice mail call from PJSIP/alice-"} {
		if !strings.Contains(out, want) {
			t.Errorf("app output lacks %q", want)
		}
	}
	vmrAppAlive(t, app)
}

// TestVMRecordStarCancels: '*' cancels the live recording (DELETE
// /recordings/live/{name}) and the app records again under the same name;
// '#' then keeps only the second take.
func TestVMRecordStarCancels(t *testing.T) {
	n, app := vmrStart(t)
	call := vmrDial(t, n, app)
	name := vmrRecord(t, app)

	// First take: 2 s at 600 Hz, then '*'.
	vmrSend(t, call, vmrTone(600, 2*time.Second))
	if err := call.SendDTMF("*", 100*time.Millisecond, 0); err != nil {
		t.Fatal(err)
	}
	cancel, err := app.WaitLine("cancel", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if cancel["name"] != name || cancel["error"] != nil {
		t.Fatalf("recording.cancel(): %v", cancel)
	}
	// The app re-enters the recording state with the same name.
	if again := vmrRecord(t, app); again != name {
		t.Fatalf("second take named %q, first %q", again, name)
	}

	// Second take: 1 s at 440 Hz, then '#'.
	const sent = time.Second
	vmrSend(t, call, vmrTone(440, sent))
	if err := call.SendDTMF("#", 100*time.Millisecond, 0); err != nil {
		t.Fatal(err)
	}
	stop, err := app.WaitLine("stop", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if stop["name"] != name || stop["error"] != nil {
		t.Fatalf("recording.stop(): %v", stop)
	}
	vmrWaitState(t, app, "ending", 5*time.Second)
	wait(t, call.Ended(), 10*time.Second, "BYE from the app after '#'")
	vmrWaitFinished(t, app, name, 10*time.Second)

	file := vmrStored(t, n, name)
	if files := vmrFiles(t, n); len(files) != 1 || files[0] != filepath.Base(file) {
		t.Errorf("files under recording/voicemail/305: %v, want only %s", files, filepath.Base(file))
	}
	vmrCheckTone(t, file, vmrReadWav(t, file), sent, 440, 600)

	out := app.Output()
	if got := strings.Count(out, "Entering recording state"); got != 2 {
		t.Errorf("%d \"Entering recording state\" lines, want 2", got)
	}
	if !strings.Contains(out, "Canceling recording "+name) {
		t.Errorf("app output lacks \"Canceling recording %s\"", name)
	}
	// The cancelled take never became a stored recording: one
	// RecordingFinished in state "done" (a cancelled take may report
	// RecordingFinished in state "canceled", as Asterisk does), no failure.
	done := 0
	for _, l := range app.Lines() {
		rec, _ := l["recording"].(map[string]any)
		switch {
		case l["type"] == "RecordingFailed":
			t.Errorf("RecordingFailed: %v", rec)
		case l["type"] == "RecordingFinished" && rec["state"] == "done":
			done++
		}
	}
	if done != 1 {
		t.Errorf("%d RecordingFinished events in state done, want 1", done)
	}
	vmrAppAlive(t, app)
}

// TestVMRecordHangup: the caller records and hangs up: the live recording
// is stopped and stored by the server (the app does not stop it), and the
// app enters the hungup state.
func TestVMRecordHangup(t *testing.T) {
	n, app := vmrStart(t)
	call := vmrDial(t, n, app)
	name := vmrRecord(t, app)

	const sent = 1500 * time.Millisecond
	vmrSend(t, call, vmrTone(440, sent))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := call.Hangup(ctx); err != nil {
		t.Fatalf("BYE: %v", err)
	}
	vmrWaitState(t, app, "hungup", 10*time.Second)
	vmrWaitFinished(t, app, name, 10*time.Second)

	file := vmrStored(t, n, name)
	vmrCheckTone(t, file, vmrReadWav(t, file), sent, 440, 0)
	if files := vmrFiles(t, n); len(files) != 1 {
		t.Errorf("files under recording/voicemail/305: %v, want one", files)
	}
	if out := app.Output(); !strings.Contains(out, "Accepted recording "+name+" on hangup") {
		t.Errorf("app output lacks \"Accepted recording %s on hangup\"", name)
	}
	vmrAppAlive(t, app)
}
