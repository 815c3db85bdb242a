package e2e

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	tdcall "github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/recorder"
	rtpsess "github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/server"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// TestBridgeRecordingKeepsLastFrames: two phones in a recorded ARI bridge
// (mixed and stereo), each sending a known number of frames of its own
// tone; the caller hangs up right after its last frame, the application
// then destroys the bridge (what loadgen's scenario c does). Every frame
// either party sent is in both recordings, within one frame: none of the
// caller's last frames is cut when it leaves the bridge, and the stereo
// recording's left channel does not take the callee's audio once the
// caller has left.
func TestBridgeRecordingKeepsLastFrames(t *testing.T) {
	for _, readMs := range []int{100, 0} {
		t.Run(fmt.Sprintf("read_interval_ms=%d", readMs), func(t *testing.T) { testBridgeRecordingKeepsLastFrames(t, readMs) })
	}
}

func testBridgeRecordingKeepsLastFrames(t *testing.T, readMs int) {
	const framesA, framesB = 100, 60 // B pauses first: A's end is the mix's end until A has gone
	const framesAfter = 25           // B alone once A has left
	n := startNode(t, func(c *config.Config) { c.RTP.ReadIntervalMs = readMs })
	events := n.connect("test")
	caller := newPhone(t, "udp")
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	callee, err := sipua.New(sipua.Options{User: "bob", RTPMin: rtpLo, RTPMax: rtpHi, AutoAnswer: true,
		IncomingHandler: func() rtpsess.Handler { return &audioSink{} }})
	if err != nil {
		t.Fatal(err)
	}
	defer callee.Close()

	res := dialAsync(caller, n.target("300"), sipua.CallOptions{Handler: &audioSink{}})
	aID := channelID(events.expect("StasisStart", 5*time.Second))
	n.mustDo("POST", "/channels/"+aID+"/answer", 204)
	ra := wait(t, res, 10*time.Second, "answer A")
	must(t, ra.err)
	endpoint := fmt.Sprintf("PJSIP/bob@127.0.0.1:%d", callee.Port())
	n.mustDo("POST", "/channels?endpoint="+urlq(endpoint)+"&app=test&channelId=leg-b", 200)
	var callB *sipua.Call
	select {
	case callB = <-callee.Incoming():
	case <-time.After(5 * time.Second):
		t.Fatal("callee did not get the call")
	}
	for {
		st := events.skipTo("StasisStart", 10*time.Second)
		if channelID(st) == "leg-b" {
			break
		}
	}
	n.mustDo("POST", "/bridges?bridgeId=brx", 200)
	n.mustDo("POST", "/bridges/brx/addChannel?channel="+aID+",leg-b", 204)
	n.mustDo("POST", "/bridges/brx/record?name=xmixed&format=wav", 201)
	n.mustDo("POST", "/bridges/brx/record?name=xstereo&format=wav&stereo=true", 201)
	for range 2 {
		events.skipTo("RecordingStarted", 5*time.Second)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	doneB := make(chan error, 1)
	go func() { doneB <- callB.SendAudio(ctx, sine(1000, framesB*160, 8000)) }()
	must(t, ra.call.SendAudio(ctx, sine(440, framesA*160, 8000)))
	// SendAudio waits a frame's time after the last packet; hang up at once.
	hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
	must(t, ra.call.Hangup(hctx))
	hcancel()
	must(t, <-doneB)
	for {
		ev := events.skipTo("StasisEnd", 5*time.Second)
		if channelID(ev) == aID {
			break
		}
	}
	// B talks on alone: the stereo recording's left channel stays A's
	// (silent now), it does not become B's when A has left the mix.
	must(t, callB.SendAudio(ctx, sine(1000, framesAfter*160, 8000)))
	n.mustDo("DELETE", "/bridges/brx", 204)
	for range 2 {
		events.skipTo("RecordingFinished", 5*time.Second)
	}
	n.mustDo("DELETE", "/channels/leg-b", 204)

	// Nothing sent may be missing (one frame's tolerance for the edges).
	// More is allowed: a party's packets late on a busy host make the mix
	// play silence in real time, which the other party's audio covers in
	// the mix.
	within := func(what string, got, want int) {
		t.Helper()
		if got < want-160 {
			t.Errorf("%s: %d samples of audio (%.0f ms), sent %d (%.0f ms): off by %+.0f ms", what, got, float64(got)/8, want, float64(want)/8, float64(got-want)/8)
		}
	}
	_, mixed := readWAV(t, filepath.Join(n.recDir(), "xmixed.wav"))
	left, right := readStereoWAV(t, filepath.Join(n.recDir(), "xstereo.wav"))
	within("stereo left (A, who hung up)", audibleSpan(left), framesA*160)
	// The mix up to A's last sample: both parties, A ending it. (B talks
	// again once A has left; its first frame may overlap A's last.)
	// (The two recordings start a few frames apart: A's end in the mix is
	// where it is in the left channel, shifted by the difference of their
	// leading silences.)
	firstLast := func(pcm []int16) (first, last int) {
		first = -1
		for i, v := range pcm {
			if v > 64 || v < -64 {
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		return first, last
	}
	firstL, lastL := firstLast(left)
	firstM, _ := firstLast(mixed)
	endA := lastL + 1 + firstM - firstL
	within("mixed recording up to A's end", audibleSpan(mixed[:max(0, min(endA, len(mixed)))]), framesA*160)
	within("stereo right (B)", audibleSpan(right), (framesB+framesAfter)*160)
	if t.Failed() {
		t.Logf("mixed %d samples, stereo %d frames; silences (start, length) mixed %v left %v right %v",
			len(mixed), len(left), zeroRuns(mixed), zeroRuns(left), zeroRuns(right))
	}
}

// zeroRuns lists the runs of 40 or more exact zeros in pcm.
func zeroRuns(pcm []int16) [][2]int {
	var out [][2]int
	start := -1
	for i := 0; i <= len(pcm); i++ {
		if i < len(pcm) && pcm[i] == 0 {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 && i-start >= 40 {
			out = append(out, [2]int{start, i - start})
		}
		start = -1
	}
	return out
}

// audibleSpan is the number of samples of audio in pcm: from the first to
// the last one that is not (near) silence, less the runs of digital silence
// (40 samples or more of exact zeros) in between, which the mix plays in
// real time while a party's packets are late (a busy host) and which hold
// nothing that was sent.
func audibleSpan(pcm []int16) int {
	first, last := -1, -1
	for i, s := range pcm {
		if s > 64 || s < -64 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return 0
	}
	n, run := last-first+1, 0
	for _, s := range pcm[first : last+1] {
		if s != 0 {
			run = 0
			continue
		}
		if run++; run == 40 {
			n -= 40
		} else if run > 40 {
			n--
		}
	}
	return n
}

// TestPolicyRecordingKeepsEveryFrame: a trunk call to a user whose
// incoming external calls are recorded (loadgen's scenario p): the caller
// talks from the moment it is answered and hangs up right after its last
// frame. The stereo policy recording's left channel holds every frame the
// caller sent, within one frame: none lost while the file is created at
// the start (its disk is slow here), none at the hangup.
func TestPolicyRecordingKeepsEveryFrame(t *testing.T) {
	const frames = 100
	caller := newPhone(t, "udp")
	rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 100)
	callee, err := sipua.New(sipua.Options{User: "callee", RTPMin: rtpLo, RTPMax: rtpHi, AutoAnswer: true,
		IncomingHandler: func() rtpsess.Handler { return &audioSink{} }})
	if err != nil {
		t.Fatal(err)
	}
	defer callee.Close()
	dir := wazoUsers("1100")
	dir.users[0].CallRecordIncomingExternal = true
	n := startNodeWith(t, func(s *server.Server) { s.SetDirectory(dir) }, func(c *config.Config) {
		c.Trunks = []config.Trunk{{Name: "carrier", Address: "127.0.0.1", Port: caller.Port(), DIDs: map[string]string{"2100": "1100"}}}
		c.CallRecording.FilenameTemplate = "policy/{{ srcnum }}-{{ dstnum }}-{{ timestamp }}"
		c.CallRecording.Stereo = true
	})
	registerSipua(t, n, "sip1100", "pw-1100", callee.Port())
	// A slow disk: creating the policy recording's file takes 300 ms
	// (what a busy host showed). The caller's audio must not wait in no
	// file meanwhile.
	n.srv.Calls().(*tdcall.Manager).SetRecorderOptions(recorder.WithOpenFile(func(name string, flag int, perm fs.FileMode) (recorder.File, error) {
		if strings.Contains(filepath.ToSlash(name), "/policy/") && flag&os.O_CREATE != 0 {
			time.Sleep(300 * time.Millisecond)
		}
		return os.OpenFile(name, flag, perm)
	}))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	call, err := caller.Dial(ctx, n.target("2100"), sipua.CallOptions{})
	must(t, err)
	var callB *sipua.Call
	select {
	case callB = <-callee.Incoming():
	case <-time.After(5 * time.Second):
		t.Fatal("the user's phone did not get the call")
	}
	go func() { _ = callB.SendAudio(ctx, sine(1000, 30*8000, 8000)) }()
	must(t, call.SendAudio(ctx, sine(440, frames*160, 8000)))
	hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
	must(t, call.Hangup(hctx))
	hcancel()
	if err := testutil.Poll(10*time.Second, 20*time.Millisecond, func() bool { return n.srv.Calls().Count() == 0 }); err != nil {
		t.Fatalf("channels left: %v", n.srv.Calls().Channels())
	}
	var files []string
	if err := testutil.Poll(10*time.Second, 20*time.Millisecond, func() bool {
		files, _ = filepath.Glob(filepath.Join(n.recDir(), "policy", "*.wav"))
		return len(files) == 1
	}); err != nil {
		t.Fatalf("policy recordings %v, want one", files)
	}
	var left []int16
	if err := testutil.Poll(10*time.Second, 20*time.Millisecond, func() bool {
		b := mustRead(t, files[0])
		if len(b) < 44 || int(uint32(b[40])|uint32(b[41])<<8|uint32(b[42])<<16|uint32(b[43])<<24) != len(b)-44 {
			return false // the header is final at the close
		}
		left, _ = readStereoWAV(t, files[0])
		return true
	}); err != nil {
		t.Fatal("the policy recording's header is not final")
	}
	if got, want := audibleSpan(left), frames*160; got < want-160 || got > want+160 {
		t.Errorf("the caller's channel holds %d samples of audio (%.0f ms), it sent %d (%.0f ms): off by %+.0f ms",
			got, float64(got)/8, want, float64(want)/8, float64(got-want)/8)
	}
}

// registerSipua registers a sipua phone's contact as user (digest auth).
func registerSipua(t *testing.T, n *node, user, pass string, port int) {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("e2e-register"))
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	addr := n.srv.SIPAddr()
	host, portStr, _ := strings.Cut(addr, ":")
	sport, _ := strconv.Atoi(portStr)
	var to sip.Uri
	must(t, sip.ParseUri("sip:"+user+"@"+addr, &to))
	reg := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: host, Port: sport})
	reg.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	from := &sip.FromHeader{Address: to, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	reg.AppendHeader(from)
	reg.AppendHeader(sip.NewHeader("Contact", fmt.Sprintf("<sip:%s@127.0.0.1:%d>", user, port)))
	reg.AppendHeader(sip.NewHeader("Expires", "3600"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := client.Do(ctx, reg)
	if err == nil && r.StatusCode == 401 {
		r, err = client.DoDigestAuth(ctx, reg, r, sipgo.DigestAuth{Username: user, Password: pass})
	}
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("REGISTER %s: %v %v", user, r, err)
	}
}
