// Package recorder is the file side of call recording: it writes 8 kHz mono
// 16-bit linear PCM into recording files (wav, wav16, sln, ulaw, alaw, g722,
// flac, mp3), keeps them playable across crashes (periodic header rewrites
// and in-progress markers repaired by Recover), places packets on a
// sample-accurate timeline by RTP timestamp (Timeline), detects speech (VAD)
// and maps ARI recording names to paths that cannot escape the recordings
// root (ResolveName).
package recorder

import (
	"os/exec"
	"strings"

	"github.com/tapedeck/tapedeck/internal/media/audio"
)

// Format describes a recording file format.
type Format struct {
	Name        string // ARI format name, e.g. "wav"
	Ext         string // file extension without the dot
	ContentType string // MIME type served for downloads
	AppendOK    bool   // IfExists=Append can continue an existing file
}

// SampleRate is the rate of the PCM handed to writers and of the Timeline in
// the usual case.
const SampleRate = audio.SampleRate

var formats = []Format{
	{Name: "wav", Ext: "wav", ContentType: "audio/wav", AppendOK: true},
	{Name: "wav16", Ext: "wav16", ContentType: "audio/wav", AppendOK: true},
	{Name: "sln", Ext: "sln", ContentType: "audio/L16;rate=8000", AppendOK: true},
	{Name: "ulaw", Ext: "ulaw", ContentType: "audio/basic", AppendOK: true},
	{Name: "alaw", Ext: "alaw", ContentType: "audio/x-alaw-basic", AppendOK: true},
	{Name: "g722", Ext: "g722", ContentType: "audio/G722", AppendOK: true},
	{Name: "flac", Ext: "flac", ContentType: "audio/flac", AppendOK: false},
	// MP3 is a sequence of self-contained frames (written without a LAME/Xing
	// tag), so a continued file plays through.
	{Name: "mp3", Ext: "mp3", ContentType: "audio/mpeg", AppendOK: true},
	{Name: "ogg", Ext: "ogg", ContentType: "audio/ogg", AppendOK: false},
}

// Hints returned in UnavailableError.
const (
	mp3Hint = "mp3 needs the LAME encoder: install the lame program (Debian: apt-get install lame) or build with -tags lame and libmp3lame-dev"
	oggHint = "ogg (Opus) needs libopus: build with -tags opus and libopus-dev (Debian: apt-get install libopus-dev)"
)

// lookPath is replaced in tests.
var lookPath = exec.LookPath

// lameProgram returns the path of the lame program, or "".
func lameProgram() string {
	p, err := lookPath("lame")
	if err != nil {
		return ""
	}
	return p
}

// Formats returns every known format, available or not, in a stable order.
func Formats() []Format {
	out := make([]Format, len(formats))
	copy(out, formats)
	return out
}

// ByExt returns the format whose file extension is ext (with or without a
// leading dot, case-insensitive). Availability is not checked.
func ByExt(ext string) (Format, bool) {
	ext = strings.ToLower(strings.TrimPrefix(ext, "."))
	for _, f := range formats {
		if f.Ext == ext {
			return f, true
		}
	}
	return Format{}, false
}

func byName(name string) (Format, bool) {
	for _, f := range formats {
		if f.Name == name {
			return f, true
		}
	}
	return Format{}, false
}

// Lookup returns the format called name (ARI names are lower case; the match
// is case-insensitive). Unknown names give ErrUnknownFormat; formats this build
// or machine cannot write give an *UnavailableError (errors.Is ErrUnavailable)
// whose message says how to enable them.
func Lookup(name string) (Format, error) {
	f, ok := byName(strings.ToLower(name))
	if !ok {
		return Format{}, ErrUnknownFormat
	}
	if err := available(f); err != nil {
		return Format{}, err
	}
	return f, nil
}

func available(f Format) error {
	switch f.Name {
	case "mp3":
		if lameInProcess || lameProgram() != "" {
			return nil
		}
		return &UnavailableError{Format: f.Name, Hint: mp3Hint}
	case "ogg":
		if opusInProcess {
			return nil
		}
		return &UnavailableError{Format: f.Name, Hint: oggHint}
	}
	return nil
}
