//go:build unix

package sip

import "golang.org/x/sys/unix"

// raiseNofile raises the soft limit on open descriptors to the hard limit
// (Go already does at start on Linux, but not everywhere, and an embedding
// program may have lowered it) and returns the limits in force.
func raiseNofile() (soft, hard uint64, err error) {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		return 0, 0, err
	}
	if r.Cur < r.Max {
		want := r
		want.Cur = r.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &want); err == nil {
			r = want
		}
	}
	return uint64(r.Cur), uint64(r.Max), nil
}
