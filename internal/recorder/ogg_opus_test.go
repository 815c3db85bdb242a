//go:build opus && cgo

package recorder

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func requireOpusdec(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("opusdec")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("opusdec missing (apt-get install opus-tools)")
		}
		t.Skip("SKIPPED: opusdec not installed (apt-get install opus-tools); Ogg Opus not decoded")
	}
	return p
}

// decodeOpus decodes with opusdec (libopusfile, an independent Ogg reader)
// to 8 kHz 16-bit PCM.
func decodeOpus(t *testing.T, opusdec, path string) []int16 {
	t.Helper()
	out := filepath.Join(t.TempDir(), "dec.raw")
	if b, err := exec.Command(opusdec, "--quiet", "--rate", "8000", "--no-dither", path, out).CombinedOutput(); err != nil {
		t.Fatalf("opusdec: %v %s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]int16, len(b)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return pcm
}

// checkTone checks that the 440 Hz tone dominates the decoded audio.
func checkTone(t *testing.T, dec []int16) {
	t.Helper()
	mid := dec[len(dec)/4 : len(dec)*3/4]
	tone := goertzel(mid, 440, 8000)
	other := goertzel(mid, 1000, 8000) + goertzel(mid, 1500, 8000) + goertzel(mid, 2500, 8000) + goertzel(mid, 250, 8000)
	if tone < 1000*other {
		t.Errorf("decoded ogg does not carry the 440 Hz tone (%g vs %g)", tone, other)
	}
}

func TestOggOpus(t *testing.T) {
	opusdec := requireOpusdec(t)
	f, err := Lookup("ogg")
	if err != nil {
		t.Fatalf("Lookup(ogg) with -tags opus: %v", err)
	}
	if f.AppendOK || f.ContentType != "audio/ogg" {
		t.Errorf("format %+v", f)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "tone.ogg")
	w, err := Create(path, f, Fail)
	if err != nil {
		t.Fatal(err)
	}
	if !exists(InProgressMarker(path)) {
		t.Error("no in-progress marker while recording")
	}
	const n = 8000*2 + 37 // 2 s and a partial frame
	writeOddChunks(t, w, sine(n, 440, 10000, 8000))
	if w.Samples() != n {
		t.Errorf("Samples() = %d", w.Samples())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if exists(InProgressMarker(path)) {
		t.Error("in-progress marker left after Close")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pages, audio := checkOggOpus(t, b, n, opusGranuleRate)
	preskip := binary.LittleEndian.Uint16(pages[0].packets[0][10:])
	if preskip == 0 || preskip%opusGranulePerSample != 0 {
		t.Errorf("pre-skip %d", preskip)
	}
	if vendor := string(pages[1].packets[0][12:]); !strings.Contains(vendor, "libopus") {
		t.Errorf("vendor %q", vendor)
	}
	// 16 kbit/s VBR is at most about 2000 bytes per second of packets; a
	// steady tone takes less.
	if pktBytes := packetBytes(audio); pktBytes < 1000 || pktBytes > 5000 {
		t.Errorf("%d bytes of Opus packets for 2 s of tone", pktBytes)
	}
	t.Logf("%d bytes, %d pages, %d packets, pre-skip %d", len(b), len(pages), len(audio), preskip)

	dec := decodeOpus(t, opusdec, path)
	if d := len(dec) - n; d < -320 || d > 320 {
		t.Errorf("decoded %d samples, want %d ±40 ms", len(dec), n)
	}
	checkTone(t, dec)
	if info, err := exec.LookPath("opusinfo"); err == nil {
		out, err := exec.Command(info, path).CombinedOutput()
		if err != nil || strings.Contains(string(out), "WARNING") || strings.Contains(string(out), "ERROR") {
			t.Errorf("opusinfo: %v\n%s", err, out)
		}
	}

	// Formats that cannot be continued refuse Append; Fail refuses the file.
	if _, err := Create(path, f, Append); !errors.Is(err, ErrAppendUnsupported) {
		t.Errorf("Append: %v", err)
	}
	if _, err := Create(path, f, Fail); !errors.Is(err, ErrExists) {
		t.Errorf("Fail on existing: %v", err)
	}
	// Overwrite, and an empty recording.
	w, err = Create(path, f, Overwrite)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	checkOggOpus(t, b, 0, opusGranuleRate)
	if dec := decodeOpus(t, opusdec, path); len(dec) != 0 {
		t.Errorf("empty recording decodes to %d samples", len(dec))
	}
}

func packetBytes(pkts [][]byte) int {
	n := 0
	for _, p := range pkts {
		n += len(p)
	}
	return n
}

// TestOggOpusBitrate: noise is coded at about opusBitrate.
func TestOggOpusBitrate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "noise.ogg")
	w, err := Create(path, Format{Name: "ogg"}, Fail)
	if err != nil {
		t.Fatal(err)
	}
	writeFrames(t, w, ramp(8000*4, 7))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	_, audio := checkOggOpus(t, b, 8000*4, opusGranuleRate)
	kbps := float64(packetBytes(audio)) * 8 / 4 / 1000
	t.Logf("noise: %.1f kbit/s", kbps)
	if kbps < 12 || kbps > 20 {
		t.Errorf("noise coded at %.1f kbit/s, want about %d", kbps, opusBitrate/1000)
	}
}

// TestOggOpusCrash: a copy taken while recording (kill -9) plays up to the
// last page, and Recover cuts a torn page and reports the duration.
func TestOggOpusCrash(t *testing.T) {
	opusdec := requireOpusdec(t)
	work, root := t.TempDir(), t.TempDir()
	path := filepath.Join(work, "r.ogg")
	w, err := Create(path, Format{Name: "ogg"}, Fail)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	writeFrames(t, w, sine(8000*2+4000, 440, 10000, 8000)) // 2 s on disk, 0.5 s buffered
	live := crashCopy(t, path, root, "live.ogg")
	dec := decodeOpus(t, opusdec, live)
	if len(dec) < 8000*2-320 || len(dec) > 8000*2 {
		t.Errorf("crash copy decodes to %d samples", len(dec))
	}
	checkTone(t, dec)

	// A torn last page: cut in the middle of the third second's page.
	writeFrames(t, w, sine(8000, 440, 10000, 8000))
	torn := crashCopy(t, path, root, "a/torn.ogg")
	b, _ := os.ReadFile(torn)
	os.WriteFile(torn, b[:len(b)-700], 0o644)
	// Pages at 1 s, 2 s, 3 s: after the repair 2 s minus the lookahead.
	recs, err := Recover(root)
	if err != nil || len(recs) != 2 {
		t.Fatalf("Recover: %+v %v", recs, err)
	}
	fi, _ := os.Stat(torn)
	s := scanOgg(mustOpen(t, torn), fi.Size())
	if !IsRecovered(torn) || exists(InProgressMarker(torn)) {
		t.Error("markers not replaced")
	}
	if s.end != fi.Size() {
		t.Fatalf("Recover left a torn Ogg page: %d valid bytes of %d", s.end, fi.Size())
	}
	if !s.eos {
		t.Error("no EOS page after repair")
	}
	for _, r := range recs {
		if r.Name == "a/torn" {
			if d := r.Duration; d < 1990*time.Millisecond || d > 2*time.Second {
				t.Errorf("recovered duration %v", d)
			}
		}
	}
	dec = decodeOpus(t, opusdec, torn)
	if len(dec) < 8000*2-320 || len(dec) > 8000*2 {
		t.Errorf("recovered file decodes to %d samples", len(dec))
	}
	checkTone(t, dec)
}

// TestStoredOggOpus is TestStoredEncodedIsTheAudioInTheFile with libopus
// and an independent decoder: after a full disk cut a write short (5000
// bytes: some seconds at 16 kbit/s), Stored is what opusdec plays back.
func TestStoredOggOpus(t *testing.T) {
	opusdec := requireOpusdec(t)
	path := filepath.Join(t.TempDir(), "full.ogg")
	w, err := Create(path, Format{Name: "ogg"}, Fail, WithOpenFile(faultOpen(5000)))
	if err != nil {
		t.Fatal(err)
	}
	writeUntilError(w, sine(8000*6, 440, 10000, 8000))
	held := oggHeld(t, path)
	dec := decodeOpus(t, opusdec, path)
	t.Logf("Stored %d, the pages %d, opusdec %d, accepted %d", Stored(w), held, len(dec), w.Samples())
	if s := Stored(w); s != held || s > w.Samples()-8000+160 || s < 8000 {
		t.Errorf("Stored %d, the file's pages play back %d samples (%d accepted)", s, held, w.Samples())
	}
	if d := int64(len(dec)) - Stored(w); d < -opusFrame || d > opusFrame {
		t.Errorf("opusdec plays back %d samples, Stored %d", len(dec), Stored(w))
	}
}
