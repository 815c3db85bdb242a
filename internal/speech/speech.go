// Package speech turns text into audio for Ozeki's Speak (command and
// OzML verb) with the espeak-ng program (Debian package espeak-ng): the
// text is synthesised once per text and voice into a WAV file in a cache
// directory and decoded (and resampled) to the call's 8 kHz by
// internal/sounds.
//
// Media URI: speech:<voice>:<text, path-escaped> (URI builds one).
package speech

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tapedeck/tapedeck/internal/sounds"
)

// ErrUnavailable: espeak-ng is not installed.
var ErrUnavailable = errors.New("speech: espeak-ng is not installed (Debian: apt-get install espeak-ng; scripts/test-deps.sh installs it)")

// MaxText bounds the text of one Speak.
const MaxText = 4000

// DefaultVoice is espeak-ng's English voice.
const DefaultVoice = "en"

// Synth synthesises and caches speech.
type Synth struct {
	// Dir caches the WAV files.
	Dir string
	// Program is the espeak-ng binary; default: found on $PATH.
	Program string

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// New returns a synthesiser caching into dir.
func New(dir string) *Synth { return &Synth{Dir: dir, locks: map[string]*sync.Mutex{}} }

func (s *Synth) program() string {
	name := "espeak-ng"
	if s.Program != "" {
		name = s.Program
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	return p
}

// Available reports ErrUnavailable when espeak-ng cannot be run.
func (s *Synth) Available() error {
	if s.program() == "" {
		return ErrUnavailable
	}
	return nil
}

// URI is the media URI that speaks text with voice.
func URI(voice, text string) string {
	if voice == "" {
		voice = DefaultVoice
	}
	return "speech:" + voice + ":" + url.PathEscape(text)
}

// ParseURI splits the part after "speech:".
func ParseURI(rest string) (voice, text string, err error) {
	voice, esc, ok := strings.Cut(rest, ":")
	if !ok {
		return "", "", fmt.Errorf("speech URI %q: want speech:<voice>:<text>", rest)
	}
	text, err = url.PathUnescape(esc)
	return voice, text, err
}

// CheckVoice accepts espeak-ng voice names: letters, digits, '-', '+', '_'.
func CheckVoice(v string) error {
	if v == "" || len(v) > 40 {
		return fmt.Errorf("voice %q: empty or too long", v)
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '+' || r == '_') {
			return fmt.Errorf("voice %q: invalid character %q", v, r)
		}
	}
	return nil
}

// File is the cached WAV of text spoken by voice, synthesised on first use.
func (s *Synth) File(ctx context.Context, voice, text string) (string, error) {
	if voice == "" {
		voice = DefaultVoice
	}
	if err := CheckVoice(voice); err != nil {
		return "", err
	}
	if strings.TrimSpace(text) == "" || len(text) > MaxText {
		return "", fmt.Errorf("speech: text empty or longer than %d bytes", MaxText)
	}
	prog := s.program()
	if prog == "" {
		return "", ErrUnavailable
	}
	sum := sha256.Sum256([]byte(voice + "\x00" + text))
	key := hex.EncodeToString(sum[:16])
	path := filepath.Join(s.Dir, key+".wav")
	s.mu.Lock()
	if s.locks == nil {
		s.locks = map[string]*sync.Mutex{}
	}
	l := s.locks[key]
	if l == nil {
		l = &sync.Mutex{}
		s.locks[key] = l
	}
	s.mu.Unlock()
	l.Lock()
	defer l.Unlock()
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// The text is one argument after "--": never parsed as options.
	out, err := exec.CommandContext(ctx, prog, "-v", voice, "-w", tmp, "--", text).CombinedOutput()
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("speech: espeak-ng: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", err
	}
	return path, nil
}

// Clip synthesises (or finds in the cache) and decodes the speech at 8 kHz.
func (s *Synth) Clip(ctx context.Context, voice, text string) (*sounds.Clip, error) {
	path, err := s.File(ctx, voice, text)
	if err != nil {
		return nil, err
	}
	return sounds.DecodeFile(path)
}
