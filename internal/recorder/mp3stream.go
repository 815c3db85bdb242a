package recorder

import (
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"sync"
)

// MP3Stream encodes 16-bit PCM at any sample rate the lame program accepts
// (it resamples the rates MP3 has no frames for), mono or stereo, into an
// MP3 stream written to out as lame produces it: what transcodes a stored
// recording that is not 8 kHz mono (the recording writers take 8 kHz mono
// audio; their MP3 is that). It needs the lame program.
type MP3Stream struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *tailBuffer
	buf    []byte
	done   chan struct{}

	mu      sync.Mutex
	copyErr error
}

// MP3StreamBitrate is the constant bit rate (kbit/s) an MP3Stream uses for
// a sample rate and channel count: 32 kbit/s a channel up to 16 kHz (the
// recordings' MP3), 48 up to 24 kHz, 64 above.
func MP3StreamBitrate(rate, channels int) int {
	kbps := 64
	switch {
	case rate <= 16000:
		kbps = 32
	case rate <= 24000:
		kbps = 48
	}
	return kbps * channels
}

// NewMP3Stream starts lame for PCM at rate Hz with channels (1 or 2,
// interleaved) channels.
func NewMP3Stream(out io.Writer, rate, channels int) (*MP3Stream, error) {
	if channels != 1 && channels != 2 {
		return nil, fmt.Errorf("recorder: MP3 of %d channels (1 or 2)", channels)
	}
	if rate < 8000 || rate > 48000 {
		return nil, fmt.Errorf("recorder: MP3 at %d Hz: lame takes 8 to 48 kHz", rate)
	}
	prog := lameProgram()
	if prog == "" {
		return nil, &UnavailableError{Format: "mp3", Hint: mp3Hint}
	}
	mode := "m"
	if channels == 2 {
		mode = "j"
	}
	cmd := exec.Command(prog, "-r", "-s", strconv.FormatFloat(float64(rate)/1000, 'f', -1, 64),
		"--bitwidth", "16", "--signed", "--little-endian", "-m", mode,
		"-b", strconv.Itoa(MP3StreamBitrate(rate, channels)), "-t", "--quiet", "-", "-")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("%w: lame: %v", ErrEncoder, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%w: lame: %v", ErrEncoder, err)
	}
	s := &MP3Stream{cmd: cmd, stdin: stdin, stderr: &tailBuffer{max: 2048}, done: make(chan struct{})}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: start lame: %v", ErrEncoder, err)
	}
	go func() {
		defer close(s.done)
		_, err := io.Copy(out, stdout)
		if err != nil {
			s.mu.Lock()
			s.copyErr = err
			s.mu.Unlock()
			_, _ = io.Copy(io.Discard, stdout) // lame never blocks
		}
	}()
	return s, nil
}

func (s *MP3Stream) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.copyErr
}

// Write hands lame samples (interleaved when stereo).
func (s *MP3Stream) Write(pcm []int16) error {
	if err := s.failure(); err != nil {
		return err
	}
	if cap(s.buf) < 2*len(pcm) {
		s.buf = make([]byte, 0, 2*len(pcm))
	}
	s.buf = appendLE16(s.buf[:0], pcm)
	if _, err := s.stdin.Write(s.buf); err != nil {
		if cerr := s.failure(); cerr != nil {
			return cerr
		}
		return fmt.Errorf("%w: lame: %v %s", ErrEncoder, err, s.stderr.String())
	}
	return nil
}

// Close ends the stream: lame writes its last frames and exits.
func (s *MP3Stream) Close() error {
	s.stdin.Close()
	<-s.done
	werr := s.cmd.Wait()
	if err := s.failure(); err != nil {
		return err
	}
	if werr != nil {
		return fmt.Errorf("%w: lame: %v %s", ErrEncoder, werr, s.stderr.String())
	}
	return nil
}

// Abort stops lame without waiting for its last frames.
func (s *MP3Stream) Abort() {
	s.stdin.Close()
	_ = s.cmd.Process.Kill()
	<-s.done
	_ = s.cmd.Wait()
}
