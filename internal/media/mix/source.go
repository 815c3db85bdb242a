package mix

// Source supplies injected audio (an announcement or a playback) to the
// mixer. It is called once per tick, from the ticking goroutine, with a
// 160-sample buffer to fill; it returns how many samples it wrote. Returning
// fewer than len(pcm) means the source is finished: the samples written are
// mixed, the rest of the frame is silent and the mixer detaches the source.
// A Source that has nothing for this tick but is not finished (a queue
// between a playback and the mixer, momentarily empty) returns Idle: the
// tick mixes nothing from it and it stays attached. A Source must not block
// (pre-buffer any file or network reads) and must not keep pcm after
// returning.
type Source func(pcm []int16) int

// Idle is what a Source returns when it has no audio for this tick but is
// not finished.
const Idle = -1

// source boxes a Source so it can be swapped atomically and detached with a
// compare-and-swap that never clobbers a newer source.
type source struct {
	fn Source
}

// fill runs the source into dst and reports whether it wrote anything
// (dst is untouched when not) and whether it is exhausted.
func (s *source) fill(dst []int16) (active, done bool) {
	n := s.fn(dst)
	if n == Idle {
		return false, false
	}
	if n < 0 {
		n = 0
	}
	if n > len(dst) {
		n = len(dst)
	}
	if n < len(dst) {
		clear(dst[n:])
		return n > 0, true
	}
	return true, false
}
