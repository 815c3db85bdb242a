//go:build !unix

package sip

// raiseNofile has nothing to raise where there are no rlimits.
func raiseNofile() (soft, hard uint64, err error) { return 0, 0, nil }
