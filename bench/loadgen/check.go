package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// writeMulawWAV writes the audio loop as a WAV of 8-bit µ-law at 8 kHz
// (format tag 7), the kind of file SIPp's rtp_stream action plays.
func writeMulawWAV(path string) error {
	a, err := buildAudio()
	if err != nil {
		return err
	}
	n := len(a.mulaw)
	h := make([]byte, 46)
	copy(h, "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(38+n))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 18)
	binary.LittleEndian.PutUint16(h[20:], 7) // WAVE_FORMAT_MULAW
	binary.LittleEndian.PutUint16(h[22:], 1)
	binary.LittleEndian.PutUint32(h[24:], 8000)
	binary.LittleEndian.PutUint32(h[28:], 8000)
	binary.LittleEndian.PutUint16(h[32:], 1)
	binary.LittleEndian.PutUint16(h[34:], 8)
	// h[36:38]: cbSize 0
	b := append(h[:38:38], "data"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	b = append(b, a.mulaw...)
	return os.WriteFile(path, b, 0o644)
}

// checkOnly analyses every WAV under dir as a mono recording of a call that
// sent `hold` of audio (e.g. a SIPp run against extension 2001).
func checkOnly(dir string, hold time.Duration, w io.Writer) int {
	sent := int(hold/packetInterval) * frameSamples
	var n, gaps, bad, unreadable int
	minOff, maxOff := 0.0, 0.0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".wav") {
			return err
		}
		rc := checkRecording(p, strings.TrimPrefix(p, dir), sent, 20)
		if rc.Unreadable {
			unreadable++
			fmt.Fprintf(w, "  unreadable %s: %s\n", rc.Name, rc.Err)
			return nil
		}
		if n == 0 || rc.OffMs < minOff {
			minOff = rc.OffMs
		}
		if n == 0 || rc.OffMs > maxOff {
			maxOff = rc.OffMs
		}
		n++
		if rc.HasGap {
			gaps++
		}
		if rc.BadLength {
			bad++
		}
		if rc.HasGap || rc.BadLength {
			fmt.Fprintf(w, "  %s: %.3f s, %d gaps (%.0f ms, first at %.2f s)\n", rc.Name, rc.Seconds, rc.Gaps.Gaps, rc.Gaps.GapMs, rc.Gaps.FirstGapAt)
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(w, "loadgen:", err)
		return 1
	}
	ok := n > 0 && gaps == 0 && bad == 0 && unreadable == 0
	fmt.Fprintf(w, "recordings in %s: %d, with gaps %d, length off > 20 ms from %v: %d (%+.1f .. %+.1f ms), unreadable %d: %s\n",
		dir, n, gaps, hold, bad, minOff, maxOff, unreadable, verdict(ok))
	if !ok {
		return 1
	}
	return 0
}
