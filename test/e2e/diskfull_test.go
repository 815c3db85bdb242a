package e2e

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mewkiz/flac"

	"github.com/tapedeck/tapedeck/internal/testutil"
)

// requireRoot skips (or, in CI, fails) a disk-full test without root,
// which it needs to mount a tmpfs.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		testutil.SkipOrFail(t, "the disk-full test mounts a tmpfs and needs root")
	}
}

// mountFull mounts a tmpfs of 48 KiB (3 s of 8 kHz 16-bit audio) as the
// recordings directory sub of n, unmounted when the test ends.
func mountFull(t *testing.T, n *node, sub string) string {
	t.Helper()
	full := filepath.Join(n.recDir(), sub)
	if err := os.MkdirAll(full, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", full).CombinedOutput(); err != nil {
		testutil.SkipOrFail(t, "cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", full).Run() })
	return full
}

// TestDiskFull: a recording whose directory is a tiny tmpfs fails with a
// cause when it fills up; the call stays up and a recording on another
// disk completes.
func TestDiskFull(t *testing.T) {
	requireRoot(t)
	n := startNode(t)
	full := mountFull(t, n, "full")

	events := n.connect("test")
	phone := newPhone(t, "udp")
	id, call := answeredCall(t, n, events, phone, "330")
	n.mustDo("POST", "/channels/"+id+"/record?name=full%2Fbig&format=wav", 201)
	events.skipTo("RecordingStarted", 5*time.Second)
	n.mustDo("POST", "/channels/"+id+"/record?name=fine&format=wav", 201)
	events.skipTo("RecordingStarted", 5*time.Second)

	// 48 KiB hold 3 s of 8 kHz 16-bit audio; send 5 s.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call.SendAudio(ctx, sweep(8000*5)) }()
	failed := events.skipTo("RecordingFailed", 10*time.Second)
	rec := failed["recording"].(map[string]any)
	if rec["name"] != "full/big" || rec["state"] != "failed" || !strings.Contains(strings.ToLower(rec["cause"].(string)), "disk full") {
		t.Fatalf("RecordingFailed %v", rec)
	}
	must(t, <-done)
	// The call is still up and the other recording completes.
	body := n.mustDo("GET", "/channels/"+id, 200)
	if !strings.Contains(string(body), `"state":"Up"`) {
		t.Fatalf("call after disk full: %s", body)
	}
	n.mustDo("POST", "/recordings/live/fine/stop", 204)
	fin := events.skipTo("RecordingFinished", 5*time.Second)
	if r := fin["recording"].(map[string]any); r["name"] != "fine" || r["duration"].(float64) < 4 {
		t.Fatalf("other recording: %v", r)
	}
	if _, pcm := readWAV(t, filepath.Join(n.recDir(), "fine.wav")); len(pcm) < 8000*4 {
		t.Fatalf("other recording holds %d samples", len(pcm))
	}
	if err := call.SendDTMF("1", 80*time.Millisecond, 0); err != nil {
		t.Fatal(err)
	}
	events.skipTo("ChannelDtmfReceived", 5*time.Second)

	// The catalog tells the truth about the failed recording: the cause,
	// and the size and duration of what its file holds.
	row, err := n.srv.Catalog().Meta.RecordingByName(context.Background(), "full/big")
	if err != nil {
		t.Fatal(err)
	}
	acc := defaultAccount(t, n)
	r := rcRecording(t, n, acc, row.Sid)
	if r["status"] != "failed" || !strings.Contains(strings.ToLower(r["status_detail"]), "disk full") {
		t.Errorf("catalog row of full/big: %v, want failed with the cause", r)
	}
	checkFromFile(t, r, filepath.Join(full, "big.wav"))
}

// TestDiskFullEncodedLength: a flac recording that fills its disk fails
// with the length of the audio its file holds — RecordingFailed's
// duration, and the catalog's — not the audio it had accepted, of which
// the second buffered when the write failed is lost.
func TestDiskFullEncodedLength(t *testing.T) {
	requireRoot(t)
	n := startNode(t)
	full := mountFull(t, n, "fullflac")

	events := n.connect("test")
	phone := newPhone(t, "udp")
	id, call := answeredCall(t, n, events, phone, "330")
	n.mustDo("POST", "/channels/"+id+"/record?name=fullflac%2Fbig&format=flac", 201)
	events.skipTo("RecordingStarted", 5*time.Second)

	// A sweep takes the flac encoder most of its 16 bits a sample: 48 KiB
	// hold a few seconds of it; send 12 s.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call.SendAudio(ctx, sweep(8000*12)) }()
	failed := events.skipTo("RecordingFailed", 15*time.Second)
	rec := failed["recording"].(map[string]any)
	if rec["name"] != "fullflac/big" || !strings.Contains(strings.ToLower(rec["cause"].(string)), "disk full") {
		t.Fatalf("RecordingFailed %v", rec)
	}
	cancel()
	<-done

	// The audio the file holds: its whole frames, decoded.
	stream, err := flac.ParseFile(filepath.Join(full, "big.flac"))
	must(t, err)
	defer stream.Close()
	held := 0
	for {
		fr, err := stream.ParseNext()
		if err != nil {
			break
		}
		held += int(fr.BlockSize)
	}
	if held < 8000 {
		t.Fatalf("the full disk's file holds %d samples: too few for the test", held)
	}
	secs := float64(held) / 8000
	if d, ok := rec["duration"].(float64); !ok || int(d) != int(math.Round(secs)) {
		t.Fatalf("RecordingFailed's duration %v s; the file holds %.3f s of audio", rec["duration"], secs)
	}
	row, err := n.srv.Catalog().Meta.RecordingByName(context.Background(), "fullflac/big")
	must(t, err)
	if row.Status != "failed" || math.Abs(row.Duration-secs) > 0.001 {
		t.Fatalf("catalog row of fullflac/big: %s, %v s; the file holds %.3f s", row.Status, row.Duration, secs)
	}
}
