package call

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tapedeck/tapedeck/internal/media/audio"
	"github.com/tapedeck/tapedeck/internal/recorder"
)

// The recording pipeline: the media path (a Poller worker, a session's
// reader, a bridge's clock) copies each recording's audio into that
// recording's bounded queue and goes on; one writer goroutine per recording
// drains it into the recorder.Writer (file writes, the header rewrite every
// second, lame's pipe). One goroutine for the node (recSyncer) makes the
// written audio durable every fsync interval. A recording whose queue
// overflows (its disk or encoder stalls) fails by itself; nothing on the
// media path ever waits for a disk.

const (
	// recQueueDuration is how much audio a recording's queue holds before
	// it overflows: the longest stall of its disk that a recording survives.
	recQueueDuration = 2 * time.Second
	// writerStallTimeout bounds how long a stop or a hangup waits for the
	// writer to write what is queued and close the file.
	writerStallTimeout = 2 * time.Second
	// DefaultFsyncInterval is how often the recordings' file systems are
	// synced when Options.FsyncInterval is 0.
	DefaultFsyncInterval = 2 * time.Second
	// writerTick is how often a writer takes its queue (sooner when the
	// queue is half full): two wake-ups per recording a second rather than
	// one per packet. The recorder buffers a second of audio before it
	// writes (one data write and one header rewrite a second), so a
	// shorter tick only adds wake-ups; it bounds what a crash of the
	// process loses to this plus that second.
	writerTick = 500 * time.Millisecond
)

var errDiskStalled = errors.New("disk stalled")

// recQueue is a recording's queue: two buffers swapped between the media
// path (push) and the writer goroutine (take), so the steady state
// allocates nothing and the lock is never held across I/O. The buffers
// grow on demand up to the queue's bound: a writer that keeps up takes
// every writerTick, so they hold about that much audio, not the whole
// bound (a quarter of the memory of preallocated 2 s buffers).
type recQueue struct {
	mu      sync.Mutex
	max     int     // samples the queue holds before it overflows
	pending []int16 // samples waiting for the writer
	spare   []int16 // the writer's buffer, handed back by take
	done    bool    // close was called: the writer finishes after this batch
	wake    chan struct{}
	closed  chan error // receives the Writer's Close result, once
}

// recQueueMinGrow is the smallest allocation of a queue buffer (samples):
// 100 ms of 8 kHz mono, so a buffer reaches its working size in a few
// steps.
const recQueueMinGrow = 800

func (q *recQueue) init(samples int) {
	q.max = samples
	q.wake = make(chan struct{}, 1)
	q.closed = make(chan error, 1)
}

// push copies pcm into the queue; false when it does not fit (overflow).
func (q *recQueue) push(pcm []int16) bool {
	q.mu.Lock()
	n := len(q.pending) + len(pcm)
	if n > q.max {
		q.mu.Unlock()
		return false
	}
	if n > cap(q.pending) {
		grown := make([]int16, len(q.pending), min(q.max, max(n, 2*cap(q.pending), recQueueMinGrow)))
		copy(grown, q.pending)
		q.pending = grown
	}
	q.pending = append(q.pending, pcm...)
	half := len(q.pending) >= q.max/2
	q.mu.Unlock()
	if half { // otherwise the writer's tick takes it: no wake-up per packet
		q.signal()
	}
	return true
}

func (q *recQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take swaps the queued samples out (the previous batch's buffer goes back
// into the queue) and says whether the queue was closed.
func (q *recQueue) take(prev []int16) ([]int16, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if prev != nil {
		q.spare = prev[:0]
	}
	batch := q.pending
	q.pending = q.spare
	q.spare = nil
	return batch, q.done
}

// close asks the writer to write what is queued and close the file.
func (q *recQueue) close() {
	q.mu.Lock()
	q.done = true
	q.mu.Unlock()
	q.signal()
}

// queueSamples is the capacity of the recording's queue in samples.
func (r *LiveRecording) queueSamples() int {
	n := int(recQueueDuration * audio.SampleRate / time.Second)
	if r.stereo {
		n *= 2
	}
	return n
}

func (r *LiveRecording) overflowCause() string {
	return fmt.Sprintf("Recording queue overflow: the disk did not keep up (more than %v of audio waiting to be written)", recQueueDuration)
}

// fsyncInterval is how often the recordings' file systems are synced
// (negative: never).
func (m *Manager) fsyncInterval() time.Duration {
	if m.opts.FsyncInterval == 0 {
		return DefaultFsyncInterval
	}
	return m.opts.FsyncInterval
}

// writeLoop is the recording's writer goroutine: every writerTick (the
// node's writerClock wakes all writers at once) or when the queue is half
// full, it writes what the media path queued and tells the node's syncer
// (which syncs it within the fsync interval, so a power cut loses at most
// that much plus the recorder's second and the queue); on close it writes
// the rest and closes the file, sending Close's result on q.closed. A write error fails the recording (its cause is the error) and
// the loop then only waits for the close.
func (r *LiveRecording) writeLoop(w recorder.Writer, dir string) {
	r.m.writers.add(&r.q)
	defer r.m.writers.remove(&r.q)
	var batch []int16
	var werr error
	for {
		<-r.q.wake // the shared writerClock's tick, a half-full queue or the close
		var done bool
		batch, done = r.q.take(batch)
		if werr == nil && len(batch) > 0 {
			if werr = w.Write(batch); werr == nil && !done {
				r.m.syncer.mark(dir)
			}
		}
		if werr != nil && !r.writeFailed(werr) {
			werr = errWriteReported
		}
		if done {
			r.q.closed <- w.Close()
			return
		}
	}
}

// errWriteReported stands for a write error already reported.
var errWriteReported = errors.New("reported")

// writeFailed records a write error as the recording's cause and ends the
// recording (RecordingFailed) on another goroutine: finish waits for this
// one. It returns false once reported.
func (r *LiveRecording) writeFailed(err error) bool {
	if errors.Is(err, errWriteReported) {
		return false
	}
	r.mu.Lock()
	if r.cause == "" {
		r.cause = failureCause(err)
	}
	cause := r.cause
	r.mu.Unlock()
	go r.fail(cause)
	return false
}

// SetRecorderOptions adds options to every later recording's
// recorder.Create (a fault-injecting file in tests). Call it before calls.
func (m *Manager) SetRecorderOptions(opts ...recorder.Option) {
	m.opts.RecorderOptions = append([]recorder.Option(nil), opts...)
}
