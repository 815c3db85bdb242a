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
// second, lame's pipe, fsync). A recording whose queue overflows (its disk
// or encoder stalls) fails by itself; nothing on the media path ever waits
// for a disk.

const (
	// recQueueDuration is how much audio a recording's queue holds before
	// it overflows: the longest stall of its disk that a recording survives.
	recQueueDuration = 2 * time.Second
	// writerStallTimeout bounds how long a stop or a hangup waits for the
	// writer to write what is queued and close the file.
	writerStallTimeout = 2 * time.Second
	// DefaultFsyncInterval is how often a recording's file is fsynced
	// when Options.FsyncInterval is 0.
	DefaultFsyncInterval = 2 * time.Second
	// writerTick is how often a writer takes its queue (sooner when the
	// queue is half full): a wake-up per recording every 250 ms rather
	// than one per packet.
	writerTick = 250 * time.Millisecond
)

var errDiskStalled = errors.New("disk stalled")

// recQueue is a recording's queue: two preallocated buffers swapped
// between the media path (push) and the writer goroutine (take), so the
// steady state allocates nothing and the lock is never held across I/O.
type recQueue struct {
	mu      sync.Mutex
	pending []int16 // samples waiting for the writer
	spare   []int16 // the writer's buffer, handed back by take
	done    bool    // close was called: the writer finishes after this batch
	wake    chan struct{}
	closed  chan error // receives the Writer's Close result, once
}

func (q *recQueue) init(samples int) {
	q.pending = make([]int16, 0, samples)
	q.spare = make([]int16, 0, samples)
	q.wake = make(chan struct{}, 1)
	q.closed = make(chan error, 1)
}

// push copies pcm into the queue; false when it does not fit (overflow).
func (q *recQueue) push(pcm []int16) bool {
	q.mu.Lock()
	if len(q.pending)+len(pcm) > cap(q.pending) {
		q.mu.Unlock()
		return false
	}
	q.pending = append(q.pending, pcm...)
	half := len(q.pending) >= cap(q.pending)/2
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

// fsyncInterval is how often recordings are fsynced (negative: never).
func (m *Manager) fsyncInterval() time.Duration {
	if m.opts.FsyncInterval == 0 {
		return DefaultFsyncInterval
	}
	return m.opts.FsyncInterval
}

// writeLoop is the recording's writer goroutine: every writerTick (or when
// the queue is half full) it writes what the media path queued, fsyncs every fsync interval (so a power cut loses at most
// that much, plus the queue), and on close writes the rest and closes the
// file, sending Close's result on q.closed. A write error fails the
// recording (its cause is the error) and the loop then only waits for the
// close.
func (r *LiveRecording) writeLoop(w recorder.Writer, fsync time.Duration) {
	t := time.NewTicker(writerTick)
	defer t.Stop()
	var batch []int16
	var werr error
	dirty := false
	lastSync := time.Now()
	for {
		select {
		case <-r.q.wake:
		case <-t.C:
		}
		var done bool
		batch, done = r.q.take(batch)
		if werr == nil && len(batch) > 0 {
			werr = w.Write(batch)
			dirty = true
			if werr == nil {
				promRecBytes.Add(float64(2 * len(batch)))
			}
		}
		if werr == nil && fsync > 0 && dirty && !done && time.Since(lastSync) >= fsync {
			werr = w.Sync()
			dirty, lastSync = false, time.Now()
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
