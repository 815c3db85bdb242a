package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// wavFile is a 16-bit PCM WAV read whole.
type wavFile struct {
	rate, channels int
	samples        []int16 // interleaved
	headerBytes    int64   // data size the header announces
	dataBytes      int64   // data bytes actually present
}

func readWAV(path string) (*wavFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, errors.New("not a RIFF/WAVE file")
	}
	w := &wavFile{}
	bits := 0
	for off := 12; off+8 <= len(b); {
		id := string(b[off : off+4])
		size := int64(binary.LittleEndian.Uint32(b[off+4:]))
		body := off + 8
		switch id {
		case "fmt ":
			if body+16 > len(b) {
				return nil, errors.New("short fmt chunk")
			}
			if tag := binary.LittleEndian.Uint16(b[body:]); tag != 1 && tag != 0xFFFE {
				return nil, fmt.Errorf("format tag %d is not PCM", tag)
			}
			w.channels = int(binary.LittleEndian.Uint16(b[body+2:]))
			w.rate = int(binary.LittleEndian.Uint32(b[body+4:]))
			bits = int(binary.LittleEndian.Uint16(b[body+14:]))
		case "data":
			if bits != 16 || w.channels == 0 {
				return nil, errors.New("data before a 16-bit PCM fmt chunk")
			}
			// tapedeck writes the data chunk last and rewrites the header
			// every second: read what is there and compare.
			w.headerBytes = size
			w.dataBytes = int64(len(b) - body)
			n := int(w.dataBytes / 2)
			w.samples = make([]int16, n)
			for i := range w.samples {
				w.samples[i] = int16(binary.LittleEndian.Uint16(b[body+2*i:]))
			}
			return w, nil
		}
		off = body + int(size) + int(size&1)
	}
	return nil, errors.New("no data chunk")
}

// channel returns one channel's samples.
func (w *wavFile) channel(c int) []int16 {
	if w.channels == 1 {
		return w.samples
	}
	out := make([]int16, len(w.samples)/w.channels)
	for i := range out {
		out[i] = w.samples[i*w.channels+c]
	}
	return out
}

// gapStats finds runs of at least minRun exact zeros (µ-law 0xFF/0x7F and
// A-law never decode to anything else that is silent: the audio sent has
// no such run, so every one is a gap the server made).
type gapStats struct {
	Gaps       int     `json:"gaps"`
	GapMs      float64 `json:"gap_ms"`
	LongestMs  float64 `json:"longest_gap_ms"`
	FirstGapAt float64 `json:"first_gap_at_s,omitempty"`
}

func findGaps(s []int16, minRun int, rate int) gapStats {
	var g gapStats
	run := 0
	flush := func(end int) {
		if run >= minRun {
			g.Gaps++
			ms := float64(run) * 1000 / float64(rate)
			g.GapMs += ms
			g.LongestMs = max(g.LongestMs, ms)
			if g.Gaps == 1 {
				g.FirstGapAt = float64(end-run) / float64(rate)
			}
		}
		run = 0
	}
	for i, v := range s {
		if v == 0 {
			run++
		} else if run > 0 {
			flush(i)
		}
	}
	flush(len(s))
	return g
}

// trimSilence returns s without its leading and trailing zeros, and how
// many samples were cut at each end.
func trimSilence(s []int16) (mid []int16, lead, trail int) {
	i, j := 0, len(s)
	for i < j && s[i] == 0 {
		i++
	}
	for j > i && s[j-1] == 0 {
		j--
	}
	return s[i:j], i, len(s) - j
}

// recCheck is the verdict on one recording.
type recCheck struct {
	Name       string   `json:"name"`
	Seconds    float64  `json:"seconds"`
	SentSec    float64  `json:"sent_seconds"`
	OffMs      float64  `json:"off_ms"`
	Gaps       gapStats `json:"gaps"`
	RightGaps  gapStats `json:"right_gaps,omitzero"`
	LeadMs     float64  `json:"lead_trimmed_ms,omitempty"`
	TrailMs    float64  `json:"trail_trimmed_ms,omitempty"`
	HeaderOK   bool     `json:"header_ok"`
	Err        string   `json:"error,omitempty"`
	BadLength  bool     `json:"bad_length"`
	HasGap     bool     `json:"has_gap"`
	Unreadable bool     `json:"unreadable"`
}

// checkRecording compares a recording with the sentSamples the caller sent.
// Mono (a, b): the whole file is the caller's audio from its first packet
// to the BYE. Stereo bridge recordings (c) are clocked by the bridge, so
// each channel is silent until its party's audio arrives and after it
// leaves: the edges are trimmed, the caller's (left) remainder must match
// what it sent, and neither channel may have a gap inside.
func checkRecording(path, name string, sentSamples int, tolMs float64) recCheck {
	rc := recCheck{Name: name, SentSec: float64(sentSamples) / 8000}
	w, err := readWAV(path)
	if err != nil {
		rc.Err, rc.Unreadable = err.Error(), true
		return rc
	}
	rc.HeaderOK = w.headerBytes == w.dataBytes
	if w.rate != 8000 {
		rc.Err = fmt.Sprintf("sample rate %d", w.rate)
	}
	minRun := w.rate / 50 // 20 ms
	if w.channels == 1 {
		s := w.samples
		rc.Seconds = float64(len(s)) / float64(w.rate)
		rc.Gaps = findGaps(s, minRun, w.rate)
	} else {
		left, lead, trail := trimSilence(w.channel(0))
		right, _, _ := trimSilence(w.channel(1))
		rc.LeadMs = float64(lead) * 1000 / float64(w.rate)
		rc.TrailMs = float64(trail) * 1000 / float64(w.rate)
		rc.Seconds = float64(len(left)) / float64(w.rate)
		rc.Gaps = findGaps(left, minRun, w.rate)
		rc.RightGaps = findGaps(right, minRun, w.rate)
	}
	rc.OffMs = (rc.Seconds - rc.SentSec) * 1000
	rc.BadLength = rc.OffMs > tolMs || rc.OffMs < -tolMs
	rc.HasGap = rc.Gaps.Gaps > 0 || rc.RightGaps.Gaps > 0
	return rc
}
