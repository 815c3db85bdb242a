// Package wakegrid puts a node's periodic wake-ups on one grid of times,
// so that those due together run after one wake-up of the process.
//
// Every wake-up of a Go process from idle costs the runtime far more than
// the work it wakes for on a small VM: a thread woken (futex), the
// runtime's monitor polling again at 20 µs for a while, the sleeping
// threads put back to sleep (bench/RESULTS.md, node20 and clu20). A node
// has several independent periodic jobs — the RTP poller's read every
// 100 ms, the recordings' writer clock, the readiness check and the
// cluster's announcement every second, the recordings' file system sync —
// and each on its own free-running ticker wakes the process at its own
// moments. Each job here waits instead until the next multiple of its
// period on the wall clock: periods that are multiples of one another then
// fall on the same instants (every readiness check on a poller read), and
// the kernel's timer slack (50 µs) wakes the process once for all of them.
package wakegrid

import "time"

// Until is the time from now to the next multiple of period since the Unix
// epoch (in (0, period]).
func Until(period time.Duration) time.Duration {
	return UntilFrom(time.Now(), period)
}

// UntilFrom is Until as of now.
func UntilFrom(now time.Time, period time.Duration) time.Duration {
	if period <= 0 {
		return 0
	}
	return period - time.Duration(now.UnixNano()%int64(period))
}
