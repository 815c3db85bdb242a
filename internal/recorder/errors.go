package recorder

import (
	"errors"
	"fmt"
	"syscall"
)

// Sentinel errors. Callers test with errors.Is; the API layer maps them to
// HTTP status codes (ErrUnknownFormat -> 422, ErrInvalidName -> 400,
// ErrExists -> 409, ErrUnavailable -> 422 with the error text as the reason).
var (
	// ErrUnknownFormat: the format name is not one tapedeck knows.
	ErrUnknownFormat = errors.New("recorder: unknown format")
	// ErrUnavailable: the format is known but cannot be written by this build
	// or on this machine. The concrete error is an *UnavailableError.
	ErrUnavailable = errors.New("recorder: format unavailable")
	// ErrExists: IfExists was Fail and the file already exists.
	ErrExists = errors.New("recorder: recording file already exists")
	// ErrAppendUnsupported: IfExists was Append for a format that cannot be
	// continued (Format.AppendOK is false).
	ErrAppendUnsupported = errors.New("recorder: format does not support append")
	// ErrAppendMismatch: IfExists was Append but the existing file is not a
	// file of the requested format/parameters that can be continued.
	ErrAppendMismatch = errors.New("recorder: existing file cannot be appended to")
	// ErrInvalidName: a recording name is empty, malformed or escapes the
	// recordings root.
	ErrInvalidName = errors.New("recorder: invalid recording name")
	// ErrWriteFailed: writing the recording file failed (any I/O error).
	ErrWriteFailed = errors.New("recorder: writing recording failed")
	// ErrDiskFull: writing failed because the device is full (ENOSPC or
	// EDQUOT). Errors matching ErrDiskFull also match ErrWriteFailed.
	ErrDiskFull = errors.New("recorder: disk full")
	// ErrTooLarge: the recording reached the 4 GiB limit of the RIFF/WAVE
	// format.
	ErrTooLarge = errors.New("recorder: recording too large for format")
	// ErrClosed: the Writer was already closed.
	ErrClosed = errors.New("recorder: writer closed")
	// ErrStereoUnsupported: two channels were asked of a format other than wav.
	ErrStereoUnsupported = errors.New("recorder: stereo is only supported for wav")
	// ErrEncoder: an external or cgo encoder failed.
	ErrEncoder = errors.New("recorder: encoder failed")
)

// UnavailableError reports a known format that this build or machine cannot
// write, and how to enable it. It matches ErrUnavailable with errors.Is.
type UnavailableError struct {
	Format string // format name, e.g. "mp3"
	Hint   string // how to enable it, shown to the user
}

func (e *UnavailableError) Error() string {
	return e.Hint
}

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// IOError is the sticky error of a failed Writer: what failed, on which file,
// and why. It matches ErrWriteFailed, ErrDiskFull (for ENOSPC/EDQUOT) and the
// underlying error (so errors.Is(err, syscall.ENOSPC) works too).
type IOError struct {
	Op   string // "write", "write header", "open", "sync", "close", ...
	Path string
	Err  error
}

func (e *IOError) Error() string {
	cause := "I/O error"
	if e.diskFull() {
		cause = "disk full"
	}
	return fmt.Sprintf("recorder: %s %s: %s: %v", e.Op, e.Path, cause, e.Err)
}

func (e *IOError) diskFull() bool {
	return errors.Is(e.Err, syscall.ENOSPC) || errors.Is(e.Err, syscall.EDQUOT) || errors.Is(e.Err, ErrDiskFull)
}

// Unwrap exposes the cause and the sentinels it matches.
func (e *IOError) Unwrap() []error {
	if e.diskFull() {
		return []error{e.Err, ErrDiskFull, ErrWriteFailed}
	}
	return []error{e.Err, ErrWriteFailed}
}

func ioErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var ie *IOError
	if errors.As(err, &ie) {
		return err
	}
	return &IOError{Op: op, Path: path, Err: err}
}
