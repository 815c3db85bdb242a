package main

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/codec"
	"github.com/tapedeck/tapedeck/internal/webhook"
)

func TestAudioLoopHasNoSilence(t *testing.T) {
	a, err := buildAudio()
	if err != nil {
		t.Fatal(err)
	}
	if a.frames < 50 {
		t.Fatalf("loop of %d frames is too short", a.frames)
	}
	pcm := make([]int16, len(a.alaw))
	codec.DecodeAlaw(pcm, a.alaw)
	if r := longestZeroRun(pcm); r >= 16 {
		t.Fatalf("A-law loop has a %d-sample run of zeros", r)
	}
}

func TestFindGapsAndTrim(t *testing.T) {
	s := make([]int16, 8000)
	for i := range s {
		s[i] = 100
	}
	clear(s[1000:1159]) // 159 zeros: not a gap
	clear(s[4000:4400]) // 50 ms: a gap
	clear(s[7900:])     // trailing 100 samples: a gap too (12.5 ms... no)
	g := findGaps(s, 160, 8000)
	if g.Gaps != 1 || g.GapMs != 50 || g.FirstGapAt != 0.5 {
		t.Fatalf("gaps %+v", g)
	}
	mid, lead, trail := trimSilence(append(make([]int16, 30), s...))
	if lead != 30 || trail != 100 || len(mid) != 7900 {
		t.Fatalf("trim: lead %d trail %d len %d", lead, trail, len(mid))
	}
}

func writeTestWAV(t *testing.T, path string, channels int, samples []int16, headerBytes uint32) {
	t.Helper()
	b := make([]byte, 44+2*len(samples))
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*len(samples)))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
	binary.LittleEndian.PutUint16(b[22:], uint16(channels))
	binary.LittleEndian.PutUint32(b[24:], 8000)
	binary.LittleEndian.PutUint32(b[28:], uint32(16000*channels))
	binary.LittleEndian.PutUint16(b[32:], uint16(2*channels))
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], headerBytes)
	for i, v := range samples {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(v))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGapVerdict: gaps in a bridge-clocked recording (scenarios c and p)
// fail the run unless loadgen's pacer sent at least as many packets late
// as the gaps are frames long; in a channel recording (scenario a), whose
// timeline follows the RTP timestamps, a late sender is no excuse.
func TestGapVerdict(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		gapMs    float64
		late     int64
		pass     bool
	}{
		{"p", 40, 2, true},
		{"p", 40, 1, false},
		{"c", 20, 5, true},
		{"p", 60, 0, false},
		{"a", 20, 100, false},
	} {
		r := &Report{Scenario: tc.scenario}
		r.CPU.TotalSeconds = 1
		r.RTP.PacerLate = tc.late
		r.Recordings.WithGap, r.Recordings.GapMs = 1, tc.gapMs
		r.finish()
		if r.Passed != tc.pass || r.Recordings.GapsFromLateSender != tc.pass {
			t.Errorf("scenario %s, %.0f ms of gaps, pacer %d packets late: passed %v (from a late sender %v), want %v; problems %v",
				tc.scenario, tc.gapMs, tc.late, r.Passed, r.Recordings.GapsFromLateSender, tc.pass, r.Problems)
		}
	}
}

func TestCheckRecording(t *testing.T) {
	dir := t.TempDir()
	mono := make([]int16, 8000)
	for i := range mono {
		mono[i] = 7
	}
	p := filepath.Join(dir, "m.wav")
	writeTestWAV(t, p, 1, mono, 16000)
	if rc := checkRecording(p, "m", 8000, 20); rc.HasGap || rc.BadLength || !rc.HeaderOK || rc.OffMs != 0 {
		t.Fatalf("good mono: %+v", rc)
	}
	if rc := checkRecording(p, "m", 8000+161, 20); !rc.BadLength {
		t.Fatalf("161 samples short should be a bad length: %+v", rc)
	}
	writeTestWAV(t, p, 1, mono, 1000) // header not rewritten at the end
	if rc := checkRecording(p, "m", 8000, 20); rc.HeaderOK {
		t.Fatalf("stale header not noticed: %+v", rc)
	}
	// Stereo: left silent for 20 ms at the start, right has a hole.
	st := make([]int16, 2*8000)
	for i := 0; i < 8000; i++ {
		if i >= 160 {
			st[2*i] = 5
		}
		if i < 3000 || i > 3200 {
			st[2*i+1] = 9
		}
	}
	p = filepath.Join(dir, "s.wav")
	writeTestWAV(t, p, 2, st, 32000)
	rc := checkRecording(p, "s", 8000-160, 20)
	if rc.BadLength || rc.Gaps.Gaps != 0 || rc.RightGaps.Gaps != 1 || rc.LeadMs != 20 || !rc.HasGap {
		t.Fatalf("stereo: %+v", rc)
	}
}

// TestSmokeLoad builds tapedeck from this repository and places 20
// concurrent 10 s calls on extension 2001 (dialplan Record()): no call may
// fail, no recording may have a gap or a wrong length, and the server CPU
// per call-second must have been measured.
func TestSmokeLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the smoke load takes about 15 s")
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs Linux /proc to measure the server")
	}
	bin := filepath.Join(t.TempDir(), "tapedeck")
	build := exec.Command("go", "build", "-o", bin, "github.com/tapedeck/tapedeck/cmd/tapedeck")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tapedeck: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := config{scenario: "a", calls: 20, rate: 50, duration: 10 * time.Second, serverCmd: bin,
		ariUser: "asterisk", ariPass: "asterisk", tick: 5 * time.Millisecond, dialTimeout: 15 * time.Second}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	rep, err := run(ctx, c, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	rep.CommandLine = "TestSmokeLoad"
	var sb strings.Builder
	rep.writeText(&sb)
	t.Log("\n" + sb.String())
	if rep.Calls.Attempted != 20 || rep.Calls.Answered != 20 || rep.Calls.Failed != 0 {
		t.Errorf("calls attempted/answered/failed = %d/%d/%d, want 20/20/0", rep.Calls.Attempted, rep.Calls.Answered, rep.Calls.Failed)
	}
	if rr := rep.Recordings; rr.Found != 20 || rr.WithGap != 0 || rr.BadLength != 0 || rr.Unreadable != 0 {
		t.Errorf("recordings: %d found, %d with gaps, %d wrong length, %d unreadable", rr.Found, rr.WithGap, rr.BadLength, rr.Unreadable)
	}
	if !(rep.CPU.MsPerCallSecond > 0) {
		t.Errorf("server CPU per call-second = %v, want > 0", rep.CPU.MsPerCallSecond)
	}
	if !rep.Passed {
		t.Errorf("run FAILED: %v", rep.Problems)
	}
}

// TestPolicyLoad: scenario p sets up what it needs in a fresh server (a
// trunk at the caller phone, a user through the confd API, that user's
// phone registered with digest authentication), and every call from the
// trunk reaches the registered phone and leaves one recording by policy,
// without gaps and with its final header. (The recordings' length is
// reported, not asserted here: bridge recordings lose the last 20-60 ms
// at hangup, bench/RESULTS.md.)
func TestPolicyLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the policy load takes about 15 s")
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs Linux /proc to measure the server")
	}
	bin := filepath.Join(t.TempDir(), "tapedeck")
	build := exec.Command("go", "build", "-o", bin, "github.com/tapedeck/tapedeck/cmd/tapedeck")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tapedeck: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := config{scenario: "p", calls: 10, rate: 10, duration: 4 * time.Second, serverCmd: bin,
		ariUser: "asterisk", ariPass: "asterisk", tick: 5 * time.Millisecond, dialTimeout: 15 * time.Second}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	rep, err := run(ctx, c, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	rep.writeText(&sb)
	t.Log("\n" + sb.String())
	if rep.Calls.Attempted != 10 || rep.Calls.Answered != 10 || rep.Calls.Failed != 0 {
		t.Errorf("calls attempted/answered/failed = %d/%d/%d, want 10/10/0", rep.Calls.Attempted, rep.Calls.Answered, rep.Calls.Failed)
	}
	// A gap is the bridge's real-time silence for a packet that came late;
	// it is the server's unless loadgen's own pacer, starved of CPU on a
	// busy host, sent at least that much late (TestGapVerdict).
	if rr := rep.Recordings; rr.Found != 10 || (rr.WithGap != 0 && !rr.GapsFromLateSender) || rr.BadHeader != 0 || rr.Unreadable != 0 {
		t.Errorf("recordings: %d found, %d with gaps (%.0f ms; loadgen's pacer sent %d packets late), %d bad headers, %d unreadable",
			rr.Found, rr.WithGap, rr.GapMs, rep.RTP.PacerLate, rr.BadHeader, rr.Unreadable)
	}
	if !(rep.CPU.MsPerCallSecond > 0) {
		t.Errorf("server CPU per call-second = %v, want > 0", rep.CPU.MsPerCallSecond)
	}
}

// TestStreamLoad: scenario e streams every call to loadgen's AudioSocket
// receiver, or its RTP receiver (-stream-encap rtp) (a snoop of what the
// caller says, bridged with an external media channel) besides recording
// it: each stream arrives (an AudioSocket one starting with its UUID) and
// holds most of the caller's audio.
func TestStreamLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the stream load takes about 10 s")
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs Linux /proc to measure the server")
	}
	bin := filepath.Join(t.TempDir(), "tapedeck")
	build := exec.Command("go", "build", "-o", bin, "github.com/tapedeck/tapedeck/cmd/tapedeck")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tapedeck: %v\n%s", err, out)
	}
	for _, encap := range []string{"audiosocket", "rtp"} {
		t.Run(encap, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			c := config{scenario: "e", streamFormat: "slin16", streamEncap: encap, calls: 10, rate: 20, duration: 5 * time.Second, serverCmd: bin,
				ariUser: "asterisk", ariPass: "asterisk", tick: 5 * time.Millisecond, dialTimeout: 15 * time.Second}
			if err := c.validate(); err != nil {
				t.Fatal(err)
			}
			rep, err := run(ctx, c, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			var sb strings.Builder
			rep.writeText(&sb)
			t.Log("\n" + sb.String())
			want := map[string]string{"audiosocket": "AudioSocket", "rtp": "RTP"}[encap]
			if st := rep.Streams; st == nil || st.Encap != want || st.Expected != 10 || st.Received != 10 || st.Short != 0 || len(st.Problems) > 0 {
				t.Errorf("streams: %+v, want 10 %s streams received, none short", st, want)
			}
			if !rep.Passed {
				t.Errorf("run FAILED: %v", rep.Problems)
			}
		})
	}
}

// TestScriptLoad: scenario o runs every call through an OzML script
// served by loadgen (Script(), Record, Delay) with -callbacks: each
// recording is exact and its RecordCompleted arrives once, signed, naming
// the call's recording.
func TestScriptLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the script load takes about 10 s")
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs Linux /proc to measure the server")
	}
	bin := filepath.Join(t.TempDir(), "tapedeck")
	build := exec.Command("go", "build", "-o", bin, "github.com/tapedeck/tapedeck/cmd/tapedeck")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tapedeck: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := config{scenario: "o", callbacks: true, calls: 10, rate: 20, duration: 4 * time.Second, serverCmd: bin,
		ariUser: "asterisk", ariPass: "asterisk", tick: 5 * time.Millisecond, dialTimeout: 15 * time.Second}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	rep, err := run(ctx, c, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	rep.writeText(&sb)
	t.Log("\n" + sb.String())
	if rep.Calls.Answered != 10 || rep.Calls.Failed != 0 {
		t.Errorf("calls answered/failed = %d/%d, want 10/0", rep.Calls.Answered, rep.Calls.Failed)
	}
	if rr := rep.Recordings; rr.Found != 10 || rr.WithGap != 0 || rr.BadLength != 0 || rr.BadHeader != 0 {
		t.Errorf("recordings: %d found, %d with gaps, %d wrong length, %d bad headers", rr.Found, rr.WithGap, rr.BadLength, rr.BadHeader)
	}
	cb := rep.Callbacks
	if cb == nil || cb.Calls != 10 || cb.Expected != 10 || cb.Delivered != 10 || cb.Duplicates != 0 || cb.BadSig != 0 || cb.BadURL != 0 || cb.Reasons["hangup/done"] != 10 {
		t.Errorf("callbacks: %+v, want 10 RecordCompleted (hangup/done), once each, signed", cb)
	}
	if !rep.Passed {
		t.Errorf("run FAILED: %v", rep.Problems)
	}
}

// TestOZMLAppChecks: the receiver of scenario o refuses an unsigned
// callback and counts a repeated delivery, so a load run cannot pass with
// callbacks that are unsigned or sent twice.
func TestOZMLAppChecks(t *testing.T) {
	a, err := newOZMLApp(true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	post := func(path string, form url.Values, sign bool, delivery string) int {
		body := form.Encode()
		req, _ := http.NewRequest("POST", a.base()+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if sign {
			req.Header.Set(webhook.SignatureHeader, webhook.Sign(a.secret, time.Now(), []byte(body)))
		}
		if delivery != "" {
			req.Header.Set(webhook.DeliveryHeader, delivery)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if path == "/incoming" && sign && !strings.Contains(string(b), `FinishedUrl="`+a.base()+`/done"`) {
			t.Errorf("OzML without FinishedUrl: %s", b)
		}
		return res.StatusCode
	}
	if code := post("/incoming", url.Values{"NotificationName": {"IncomingCall"}, "CallId": {"c1"}}, true, ""); code != 200 {
		t.Fatalf("IncomingCall: %d", code)
	}
	recDir := "/data/recording"
	good := url.Values{"NotificationName": {"RecordCompleted"}, "CallId": {"c1"}, "Reason": {"hangup"}, "State": {"done"},
		"RecordURL": {"http://x/api/recordings/" + base64.RawURLEncoding.EncodeToString([]byte(recDir+"/"+ozmlFolder+"/c1-1.wav")) + ".wav?sig=ab"}}
	if code := post("/done", good, false, "7"); code != http.StatusForbidden {
		t.Errorf("unsigned RecordCompleted: %d, want 403", code)
	}
	if cr := a.report(recDir); cr.BadSig != 1 || cr.Missing != 1 || cr.Delivered != 0 {
		t.Errorf("after an unsigned callback: %+v", cr)
	}
	post("/done", good, true, "7")
	if cr := a.report(recDir); cr.Delivered != 1 || cr.Missing != 0 || cr.Duplicates != 0 || cr.BadURL != 0 {
		t.Errorf("after one good callback: %+v", cr)
	}
	post("/done", good, true, "7")
	if cr := a.report(recDir); cr.Duplicates != 2 { // the CallId twice and the delivery id twice
		t.Errorf("after a repeat: %+v", cr)
	}
	bad := url.Values{"NotificationName": {"RecordCompleted"}, "CallId": {"c2"}, "RecordURL": {"http://x/elsewhere.wav"}}
	post("/done", bad, true, "8")
	if cr := a.report(recDir); cr.Unknown != 1 || cr.BadURL != 1 {
		t.Errorf("after a callback for an unknown call: %+v", cr)
	}
}

// TestScriptLoadRecordCommands: -record-rate drives the Ozeki API's Record
// command against the script's calls while they are up; every accepted
// command's recording posts RecordCompleted to /extra once, signed, and
// the calls' own recordings stay exact (the commands record into a
// RecordPath of their own).
func TestScriptLoadRecordCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the script load takes about 10 s")
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs Linux /proc to measure the server")
	}
	bin := filepath.Join(t.TempDir(), "tapedeck")
	build := exec.Command("go", "build", "-o", bin, "github.com/tapedeck/tapedeck/cmd/tapedeck")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tapedeck: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := config{scenario: "o", callbacks: true, recordRate: 20, calls: 10, rate: 20, duration: 5 * time.Second, serverCmd: bin,
		ariUser: "asterisk", ariPass: "asterisk", tick: 5 * time.Millisecond, dialTimeout: 15 * time.Second}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	rep, err := run(ctx, c, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	rep.writeText(&sb)
	t.Log("\n" + sb.String())
	if rr := rep.Recordings; rr.Found != 10 || rr.WithGap != 0 || rr.BadLength != 0 {
		t.Errorf("recordings: %d found, %d with gaps, %d wrong length", rr.Found, rr.WithGap, rr.BadLength)
	}
	er := rep.ExtraRecords
	if er == nil || er.Accepted < 20 || int64(er.Delivered) != er.Accepted || er.Duplicates != 0 || er.BadSig != 0 || er.States["duration/done"] == 0 {
		t.Errorf("Record commands: %+v, want at least 20 accepted, each one's RecordCompleted once, signed", er)
	}
	if cb := rep.Callbacks; cb == nil || cb.Delivered != 10 || cb.Duplicates != 0 {
		t.Errorf("the calls' own callbacks: %+v", cb)
	}
	if !rep.Passed {
		t.Errorf("run FAILED: %v", rep.Problems)
	}
	// Without FinishedUrl: the same commands, no notification.
	c.recordNoURL = true
	rep, err = run(ctx, c, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if er := rep.ExtraRecords; er == nil || er.Accepted < 20 || er.Delivered != 0 || !rep.Passed {
		t.Errorf("-record-no-url: %+v, passed %v %v", er, rep.Passed, rep.Problems)
	}
	if c.recordRate = -1; c.validate() == nil {
		t.Error("a negative -record-rate accepted")
	}
}
