package rtp

import "runtime"

// goid is the calling goroutine's id. It costs a stack trace (about a
// microsecond and a small allocation), so it is only computed off the packet
// path: once per reading goroutine, and when a Flush finds the socket being
// read and must know whether it is being called by that very reader (from
// the Handler) or by another goroutine that has to wait.
func goid() int64 {
	var buf [40]byte
	n := runtime.Stack(buf[:], false)
	const prefix = "goroutine "
	if n <= len(prefix) {
		return -1
	}
	var id int64
	for _, c := range buf[len(prefix):n] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + int64(c-'0')
	}
	return id
}
