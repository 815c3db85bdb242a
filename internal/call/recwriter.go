package call

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/tapedeck/tapedeck/internal/contain"
	"github.com/tapedeck/tapedeck/internal/media/audio"
	"github.com/tapedeck/tapedeck/internal/recorder"
)

// The recording pipeline: the media path (a Poller worker, a session's
// reader, a bridge's clock) copies each recording's audio into that
// recording's bounded queue and goes on; the node's writer pool
// (writerPool) drains each queue into its recorder.Writer (file writes,
// the header rewrite, lame's pipe) when the shared writerClock ticks or the
// queue is half full. No goroutine waits per recording: a pool worker runs
// one recording's batch, then the next one's; a worker whose write blocks
// (a stalled disk) keeps only that recording, and the pool starts another
// worker for the others. One goroutine for the node (recSyncer) makes the
// written audio durable every fsync interval. A recording whose queue
// overflows (its disk or encoder stalls) fails by itself; nothing on the
// media path ever waits for a disk.

const (
	// recQueueDuration is the longest stall of its disk (a write that
	// does not return) that a recording survives: a queue holds this much
	// audio, and more only while its writer is not stuck in a write for
	// this long (recQueueBurst).
	recQueueDuration = 2 * time.Second
	// recQueueBurst bounds what a queue holds while its writer is healthy:
	// the backlog that a process or VM stall (SIGSTOP, a paused VM, a long
	// host stall) leaves in the kernel's socket buffers, read at once when
	// the process goes on. The writer is fine then, and the burst is not a
	// disk that did not keep up; without this the recording failed after
	// any stall of the process over recQueueDuration. It bounds the memory
	// a recording's queue takes (480 KB mono at 8 kHz).
	recQueueBurst = 30 * time.Second
	// writerStallTimeout bounds how long a stop or a hangup waits for the
	// writer to write what is queued and close the file.
	writerStallTimeout = 2 * time.Second
	// DefaultFsyncInterval is how often the recordings' file systems are
	// synced when Options.FsyncInterval is 0.
	DefaultFsyncInterval = 2 * time.Second
	// writerTick is how often the writer pool takes each queue (sooner
	// when the queue is half full) rather than once per packet. The
	// recorder buffers a second of audio before it writes (one data write
	// a second), so the tick sets no write rate: a shorter one means
	// smaller queue buffers (recChunk: 5 KB for a mono recording at 200 ms
	// against 12 KB at 500 ms, most of the RSS per call left above
	// a490023) for a few more steps, which the pool runs back to back
	// after one wake-up (measured: no CPU cost, bench/RESULTS.md). It
	// bounds what a crash of the process loses to this plus that second.
	// A multiple of the RTP poller's read interval (100 ms): on the
	// node's wake-up grid (wakegrid) every tick then falls on a read, in
	// the same wake-up of the process (at 250 ms, half of them did not).
	writerTick = 200 * time.Millisecond
)

var errDiskStalled = errors.New("disk stalled")

// recQueue is a recording's queue: the media path (push) appends to the
// pending buffer and the writer pool (take) swaps it out, so the lock
// is never held across I/O. The buffers come from a free list shared by
// all recordings (recBufs) and go back to it once written: a recording
// holds one buffer of about a writerTick of audio between ticks, not two
// buffers of the whole bound (2 s), and the steady state allocates
// nothing. A buffer grows past that size only while the writer is behind,
// up to the queue's bound. A wav recording's queue (direct) is also its
// recorder's one-second buffer: its buffer holds that second more, which
// the recorder writes from (stepDirect) instead of copying it into its
// own, and it keeps the buffer between ticks.
type recQueue struct {
	// First, what a packet touches (reserve, commit): mu, max, pending
	// and gaps.
	mu      sync.Mutex
	max     int     // samples the queue holds while its writer is stuck in a write
	pending []int16 // samples waiting for the writer
	// gaps are runs of silence queued between pending's samples, in
	// order: gap g is g.n zero samples before pending[g.at:]. Silence
	// takes no room (pushSilence): a gap the timeline fills when a
	// sender goes on after a pause (silence suppression, a hold) is as
	// long as the time that passed, handed on at once, and must not
	// overflow a queue that bounds a disk's stall.
	gaps []recGap
	// hard is the most samples it holds at all (recQueueBurst), stall how
	// long a write may be in flight before the queue holds no more than
	// max (recQueueDuration), stepAt when the running writer step began
	// (zero while none runs).
	hard   int
	stall  time.Duration
	stepAt time.Time
	chunk  int  // size of the shared buffers it takes (samples)
	done   bool // close was called: the writer finishes after this batch
	// held is, for a queue that its writer writes from (direct, see
	// stepDirect), how many of pending's first samples the writer has
	// taken but not yet written: the recorder's buffer, kept here instead
	// of copied there. They do not count against the queue's bounds.
	// writing: the writer is writing from pending's array (without mu),
	// which must then not go back to the free list.
	held    int
	direct  bool
	writing bool
	// run writes one batch (the recording's writer step); signal hands it
	// to the writer pool unless it is already scheduled or running, in
	// which case it runs once more after the current run (again).
	run       func()
	scheduled bool
	again     bool
	closed    chan error // receives the Writer's Close result, once
}

// recChunk is how much audio a queue's buffer holds before it must grow:
// a writerTick, a burst of the default read interval (100 ms) and a frame
// (320 ms at the 200 ms tick), so a writer that keeps up never grows it.
const recChunk = writerTick * 8 / 5

// recChunkFor is the chunk for media that arrives in bursts of up to
// burst (the poller's read interval: a socket's packets of that long are
// delivered at once): between two writer ticks a queue takes a writerTick
// of audio plus one burst, so the chunk holds that and a frame more. With
// the default read interval (100 ms) it is recChunk; at 200 ms a
// recording's buffer grew (allocated, then dropped) on most ticks.
func recChunkFor(burst time.Duration) time.Duration {
	return max(recChunk, writerTick+burst+20*time.Millisecond)
}

func (q *recQueue) init(samples int) { q.initFor(samples, 0) }

// initFor sizes the queue: samples is its bound, burst the longest audio
// the media path hands over at once (recChunkFor).
func (q *recQueue) initFor(samples int, burst time.Duration) {
	q.max = samples
	q.hard = samples * int(recQueueBurst/recQueueDuration)
	q.stall = recQueueDuration
	q.chunk = min(samples, int(recChunkFor(burst)*audio.SampleRate/time.Second)*max(1, samples/int(recQueueDuration*audio.SampleRate/time.Second)))
	q.closed = make(chan error, 1)
}

// push copies pcm into the queue; false when it does not fit (overflow):
// more than max samples while the writer's step has been in a write for
// stall (the disk stalled), or more than hard at all. A burst (a stalled
// process's backlog) while the writer is healthy fits.
func (q *recQueue) push(pcm []int16) bool {
	q.mu.Lock()
	n := len(q.pending) + len(pcm)
	if n-q.held > q.max && (n-q.held > q.hard || q.stuckLocked()) {
		q.mu.Unlock()
		return false
	}
	if n > cap(q.pending) {
		q.grow(n)
	}
	q.pending = append(q.pending, pcm...)
	half := len(q.pending)-q.held >= q.max/2
	q.mu.Unlock()
	if half { // otherwise the writer's tick takes it: no wake-up per packet
		q.signal()
	}
	return true
}

// reserve is push for audio the caller has not decoded yet: it extends
// pending by n samples and returns them, with q.mu held, for the caller to
// decode the audio into (saving the copy from a decode buffer); commit
// then queues them and unlocks. When the audio would not fit it changes
// nothing, does not lock, and returns false: the caller decodes the audio
// elsewhere and calls pushAudio, which decides (silence never overflows).
func (q *recQueue) reserve(n int) ([]int16, bool) {
	q.mu.Lock()
	end := len(q.pending) + n
	if end-q.held > q.max && (end-q.held > q.hard || q.stuckLocked()) {
		q.mu.Unlock()
		return nil, false
	}
	if end > cap(q.pending) {
		q.grow(end)
	}
	q.pending = q.pending[:end]
	return q.pending[end-n:], true
}

// commit queues the samples reserve returned, filled: as pushAudio would,
// all zeros as a gap (which takes no room), anything else as audio; sound
// says whether any sample is not zero (the decoder found it). It unlocks
// q.mu.
func (q *recQueue) commit(pcm []int16, sound bool) {
	if !sound {
		q.pending = q.pending[:len(q.pending)-len(pcm)]
		if k := len(q.gaps); k > 0 && q.gaps[k-1].at == len(q.pending) {
			q.gaps[k-1].n += len(pcm)
		} else {
			q.gaps = append(q.gaps, recGap{at: len(q.pending), n: len(pcm)})
		}
		q.mu.Unlock()
		return
	}
	half := len(q.pending)-q.held >= q.max/2
	q.mu.Unlock()
	if half {
		q.signal()
	}
}

// recGap is a run of n silent samples before pending[at:].
type recGap struct{ at, n int }

// pushAudio queues pcm: a frame of silence (all zeros) as a gap, which
// takes no room, anything else as push does.
func (q *recQueue) pushAudio(pcm []int16) bool {
	for _, v := range pcm {
		if v != 0 {
			return q.push(pcm)
		}
	}
	q.pushSilence(len(pcm))
	return true
}

// pushSilence queues n silent samples; it never overflows.
func (q *recQueue) pushSilence(n int) {
	if n <= 0 {
		return
	}
	q.mu.Lock()
	if k := len(q.gaps); k > 0 && q.gaps[k-1].at == len(q.pending) {
		q.gaps[k-1].n += n
	} else {
		q.gaps = append(q.gaps, recGap{at: len(q.pending), n: n})
	}
	q.mu.Unlock()
}

// stuckLocked says whether the writer's step has been running for stall
// (its write blocks). A writer that is idle or waits to be scheduled is
// not stuck: the pool runs it (and starts a worker for it if the others
// are stuck). A step caught in flight by a stall of the whole process
// looks stuck for as long as it takes to finish after the process goes
// on (microseconds); the queue then overflows only if it is over max.
func (q *recQueue) stuckLocked() bool {
	return !q.stepAt.IsZero() && time.Since(q.stepAt) >= q.stall
}

// signal asks for a writer step: the pool runs q.run soon, once for any
// number of signals that arrive before it starts.
func (q *recQueue) signal() { q.signalBy(false) }

// signalBy is signal; clocked says the recordings' clock asks (its tick),
// which checks the pool for stuck workers at its next tick.
func (q *recQueue) signalBy(clocked bool) {
	q.mu.Lock()
	if q.run == nil {
		q.mu.Unlock()
		return
	}
	if q.scheduled {
		q.again = true
		q.mu.Unlock()
		return
	}
	q.scheduled = true
	q.mu.Unlock()
	recWriters.submit(q, clocked)
}

// step runs the writer steps asked for, then frees q for the next signal.
func (q *recQueue) step() {
	q.mu.Lock()
	for {
		run := q.run
		if run != nil {
			q.stepAt = time.Now()
		}
		q.mu.Unlock()
		if run != nil {
			run()
		}
		q.mu.Lock()
		q.stepAt = time.Time{}
		if !q.again {
			q.scheduled = false
			q.mu.Unlock()
			return
		}
		q.again = false
	}
}

// stopRunning makes later signals do nothing (the writer closed the file
// or panicked): the queue stays scheduled for good.
func (q *recQueue) stopRunning() {
	q.mu.Lock()
	q.run = nil
	q.again = false
	q.mu.Unlock()
}

// recWriters is the node's writer pool.
var recWriters writerPool

// writerPool runs recordings' writer steps on a few goroutines instead of
// one goroutine (and its stack) per recording: up to GOMAXPROCS workers
// take the signaled queues in order. A step that blocks (a stalled disk)
// holds its worker, and only its own recording waits (its queue overflows
// and fails it): whenever steps wait with no idle worker for writerStuck,
// the pool starts one more worker for them, so a stalled disk never delays
// another recording's writes or its close (a hangup) by more than that.
// Workers beyond GOMAXPROCS exit once nothing waits.
//
// Steps that the recordings' clock asked for (each tick hands a hundred
// steps to the workers at once) are checked for stuck workers by that
// clock at its next tick (checkStuck); only the others (a recording's
// close, a queue half full) arm a rescue timer. The timer was armed on
// nearly every tick and fired 50 ms later for nothing: a wake-up of the
// process and a goroutine, several a second.
type writerPool struct {
	mu      sync.Mutex
	cond    sync.Cond
	queue   []poolStep // steps waiting for a worker, in order, from head
	head    int
	workers int  // live workers
	idle    int  // workers waiting in cond
	armed   bool // a rescue timer is pending
	// unclocked counts the waiting steps not asked for by the clock;
	// waitSince is when steps began to wait with no idle worker (zero:
	// none waits, or a worker is idle).
	unclocked int
	waitSince time.Time
}

// poolStep is a queue waiting for a worker; clocked: the clock asked.
type poolStep struct {
	q       *recQueue
	clocked bool
}

// writerStuck is how long signaled steps wait while every worker is busy
// before the pool starts another worker.
const writerStuck = 50 * time.Millisecond

func (p *writerPool) submit(q *recQueue, clocked bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cond.L == nil {
		p.cond.L = &p.mu
	}
	p.queue = append(p.queue, poolStep{q, clocked})
	if !clocked {
		p.unclocked++
	}
	switch {
	case p.idle > 0:
		p.cond.Signal()
	case p.workers < runtime.GOMAXPROCS(0):
		p.workers++
		go p.work()
	default:
		p.armLocked()
	}
}

// armLocked notes that steps wait with no idle worker and, if one of
// them was not asked for by the clock, starts the rescue timer.
func (p *writerPool) armLocked() {
	if p.head == len(p.queue) || p.idle > 0 {
		return
	}
	if p.waitSince.IsZero() {
		p.waitSince = time.Now()
	}
	if p.armed || p.unclocked == 0 {
		return
	}
	p.armed = true
	time.AfterFunc(writerStuck, p.rescue)
}

// checkStuck rescues the steps that have waited with no idle worker for
// writerStuck or longer; the recordings' clock calls it every tick.
func (p *writerPool) checkStuck() {
	p.mu.Lock()
	stuck := p.head != len(p.queue) && p.idle == 0 && !p.waitSince.IsZero() && time.Since(p.waitSince) >= writerStuck
	p.mu.Unlock()
	if stuck {
		p.rescue()
	}
}

// rescue starts a worker for each step still waiting: the busy workers
// are stuck in slow writes (a stalled disk, or one slow for everybody, as
// when the whole host is short of I/O: then every recording writes in
// parallel, as with a goroutine each, instead of queueing behind a few
// blocked workers until the queues overflow). The extra workers exit once
// nothing waits.
func (p *writerPool) rescue() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = false
	if p.idle > 0 {
		return
	}
	p.waitSince = time.Time{}
	for n := len(p.queue) - p.head; n > 0; n-- {
		p.workers++
		go p.work()
	}
}

func (p *writerPool) work() {
	p.mu.Lock()
	for {
		for p.head == len(p.queue) {
			p.waitSince = time.Time{} // none waits
			if p.workers > runtime.GOMAXPROCS(0) {
				p.workers--
				p.mu.Unlock()
				return
			}
			p.idle++
			p.cond.Wait()
			p.idle--
			// Woken by a Signal, the worker runs on the signaller's time
			// slice (see rtp's slow round): pass through the scheduler
			// first, so that the monitor does not preempt a batch of
			// writes that has just begun.
			p.mu.Unlock()
			runtime.Gosched()
			p.mu.Lock()
		}
		st := p.queue[p.head]
		q := st.q
		p.queue[p.head] = poolStep{}
		if !st.clocked {
			p.unclocked--
		}
		if p.head++; p.head == len(p.queue) {
			p.queue, p.head = p.queue[:0], 0 // (the array is reused)
		}
		p.armLocked()
		p.mu.Unlock()
		q.step()
		p.mu.Lock()
	}
}

// grow makes room for n samples: a shared buffer when the queue is empty,
// otherwise a larger one (the writer is behind).
func (q *recQueue) grow(n int) {
	if len(q.pending) == 0 && n <= q.chunk {
		q.putPending()
		q.pending = recBufs.get(q.chunk)
		return
	}
	grown := make([]int16, len(q.pending), min(q.hard+q.held, max(n, 2*cap(q.pending))))
	copy(grown, q.pending)
	q.putPending()
	q.pending = grown
}

// putPending gives pending's array back to the free list, unless the
// writer is writing from it (stepDirect): then the garbage collector
// takes it.
func (q *recQueue) putPending() {
	if !q.writing {
		recBufs.put(q.pending)
	}
}

// take swaps the queued samples out (prev, the previous batch, goes back
// to the free list), copies the silence between them into gapBuf's array
// (gaps), and says whether the queue was closed. The caller gives the
// batch back with recBufs.put (or the next take) once written.
func (q *recQueue) take(prev []int16, gapBuf []recGap) (batch []int16, gaps []recGap, done bool) {
	recBufs.put(prev)
	q.mu.Lock()
	defer q.mu.Unlock()
	batch = q.pending
	q.pending = nil
	gaps = append(gapBuf[:0], q.gaps...)
	q.gaps = q.gaps[:0]
	return batch, gaps, q.done
}

// stepDirect is a writer step for a recorder that writes from the
// queue's memory (recorder.DirectWriter): the queue's pending samples are
// the recorder's buffer, so they are not copied there. It takes what is
// queued (held: out of the queue's bounds, as take's batch), writes it
// with its gaps of silence (a gap's zeros with Write, after all the audio
// before it), lets the recorder write the rest once it makes a full buffer
// (straight from pending's array, without mu: the media path only appends
// after it), then drops what was written from pending's front (less than
// a page and what arrived meanwhile stay). Done: it writes everything. A
// write error is stored in *werr; later steps only empty the queue. It
// returns gapBuf for reuse and whether the queue was closed.
func (q *recQueue) stepDirect(w recorder.DirectWriter, gapBuf []recGap, werr *error) ([]recGap, bool) {
	q.mu.Lock()
	q.fillGapsLocked()
	batch := q.pending
	gaps := append(gapBuf[:0], q.gaps...)
	q.gaps = q.gaps[:0]
	done := q.done
	q.held = len(batch)
	q.writing = true
	q.mu.Unlock()
	written := len(batch) // samples dropped from pending's front
	if *werr == nil {
		written = 0
		for _, g := range gaps {
			if g.at > written {
				n, err := w.WriteDirect(batch[written:g.at], true)
				promRecBytes.Add(float64(2 * n))
				if err != nil {
					*werr = err
					break
				}
				written = g.at
			}
			if err := writeZeros(w, g.n); err != nil {
				*werr = err
				break
			}
		}
		if *werr == nil && (written < len(batch) || done) {
			n, err := w.WriteDirect(batch[written:], done)
			promRecBytes.Add(float64(2 * n))
			written += n
			if err != nil {
				*werr = err
			}
		}
		if *werr != nil {
			written = len(batch)
		}
	}
	q.mu.Lock()
	q.writing = false
	q.held = len(batch) - written
	if written > 0 {
		rest := copy(q.pending, q.pending[written:])
		q.pending = q.pending[:rest]
		for i := range q.gaps {
			q.gaps[i].at -= written
		}
		if rest == 0 {
			recBufs.put(q.pending)
			q.pending = nil
		}
	}
	q.mu.Unlock()
	return gaps, done
}

// fillGapsLocked turns the queue's gaps of silence into zeros in pending
// when they fit in its array (silent frames, short pauses), so that
// stepDirect writes them with the audio from pending's memory: the
// recorder would otherwise take all the audio before a gap into its own
// buffer (a copy). Longer gaps stay (stepDirect writes them with Write).
// It moves the audio after the first gap (at most what arrived since the
// last step).
func (q *recQueue) fillGapsLocked() {
	z := 0
	for _, g := range q.gaps {
		z += g.n
	}
	if z == 0 || len(q.pending)+z > cap(q.pending) {
		return
	}
	end := len(q.pending)
	p := q.pending[:end+z]
	shift := z
	for i := len(q.gaps) - 1; i >= 0; i-- {
		g := q.gaps[i]
		copy(p[g.at+shift:end+shift], p[g.at:end])
		shift -= g.n
		clear(p[g.at+shift : g.at+shift+g.n])
		end = g.at
	}
	q.pending = p
	q.gaps = q.gaps[:0]
}

// writeZeros writes n samples of silence with Write.
func writeZeros(w interface{ Write(pcm []int16) error }, n int) error {
	for n > 0 {
		k := min(n, len(zeros))
		if err := w.Write(zeros[:k]); err != nil {
			return err
		}
		promRecBytes.Add(float64(2 * k))
		n -= k
	}
	return nil
}

// zeros is silence to write gaps from (never written to).
var zeros = make([]int16, 4000)

// writeBatch writes a batch taken from a queue with its gaps of silence;
// it returns the samples written.
func writeBatch(w interface{ Write(pcm []int16) error }, batch []int16, gaps []recGap) (int, error) {
	at, n := 0, 0
	for _, g := range gaps {
		if g.at > at {
			if err := w.Write(batch[at:g.at]); err != nil {
				return n, err
			}
			n += g.at - at
			at = g.at
		}
		for left := g.n; left > 0; {
			k := min(left, len(zeros))
			if err := w.Write(zeros[:k]); err != nil {
				return n, err
			}
			n += k
			left -= k
		}
	}
	if at < len(batch) {
		if err := w.Write(batch[at:]); err != nil {
			return n, err
		}
		n += len(batch) - at
	}
	return n, nil
}

// recBufs is the free list of queue buffers shared by all recordings.
var recBufs bufList

// bufList keeps sample buffers by capacity for reuse; it keeps at most
// maxFree of each capacity (the rest go to the garbage collector).
type bufList struct {
	mu   sync.Mutex
	free map[int][][]int16
}

const maxFree = 256

func (l *bufList) get(size int) []int16 {
	l.mu.Lock()
	if f := l.free[size]; len(f) > 0 {
		b := f[len(f)-1]
		l.free[size] = f[:len(f)-1]
		l.mu.Unlock()
		return b
	}
	if l.free == nil {
		l.free = map[int][][]int16{}
	}
	if _, ok := l.free[size]; !ok {
		l.free[size] = nil // a chunk size: put keeps buffers of it
	}
	l.mu.Unlock()
	return make([]int16, 0, size)
}

// put gives b back; buffers of a size that get never asked for (a queue
// grown while its writer was behind), or beyond maxFree, are dropped.
func (l *bufList) put(b []int16) {
	if cap(b) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if f, ok := l.free[cap(b)]; ok && len(f) < maxFree {
		l.free[cap(b)] = append(f, b[:0])
	}
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
	return fmt.Sprintf("Recording queue overflow: the disk did not keep up (a write stalled for more than %v with more than %v of audio waiting, or more than %v waiting)", recQueueDuration, recQueueDuration, recQueueBurst)
}

// fsyncInterval is how often the recordings' file systems are synced
// (negative: never).
func (m *Manager) fsyncInterval() time.Duration {
	if m.opts.FsyncInterval == 0 {
		return DefaultFsyncInterval
	}
	return m.opts.FsyncInterval
}

// startWriter gives the recording's queue to the writer pool: every
// writerTick (the node's writerClock signals all queues at once) or when
// the queue is half full, a pool worker writes what the media path queued
// and tells the node's syncer (which syncs it within the fsync interval,
// so a power cut loses at most that much plus the recorder's second and
// the queue); on close it writes the rest and closes the file, sending
// Close's result on q.closed. A write error fails the recording (its cause
// is the error) and later steps then only wait for the close.
func (r *LiveRecording) startWriter(w recorder.Writer, dir string) {
	step := r.writerStep(w, dir)
	r.q.mu.Lock()
	r.q.run = step
	r.q.mu.Unlock()
	r.m.writers.add(&r.q)
}

// writerStep is the writer pool's step for the recording: it writes what
// the queue holds to w (in dir), and closes w once the queue is closed.
func (r *LiveRecording) writerStep(w recorder.Writer, dir string) func() {
	var werr error
	var gaps []recGap // reused: one step runs at a time
	// Built once: a bridge recording's logger is a With, which allocates
	// (each step built it again, 5 steps a second per recording).
	log := r.logger()
	// A wav writer that writes from the queue's memory (DirectSamples):
	// the queue keeps the recorder's second of audio (stepDirect).
	var dw recorder.DirectWriter
	if d, ok := w.(recorder.DirectWriter); ok && d.DirectSamples() > 0 {
		dw = d
		r.q.mu.Lock()
		r.q.direct = true
		r.q.chunk += d.DirectSamples()
		r.q.mu.Unlock()
	}
	// finish reports a write error and, once the queue is closed, closes
	// the file.
	finish := func(done bool) {
		if werr != nil && !r.writeFailed(werr) {
			werr = errWriteReported
		}
		if done {
			r.q.stopRunning()
			r.m.writers.remove(&r.q)
			err := w.Close()
			if werr != nil || err != nil {
				r.noteStored(w)
			}
			if err == nil {
				// Closing wrote the last audio and rewrote the header:
				// the next pass (or the shutdown's flush) syncs them too.
				r.m.syncer.mark(dir)
			}
			r.q.closed <- err
		}
	}
	step := func() {
		// A panic here (an encoder's bug) fails this recording only: the
		// file is closed, finish gets the cause, the call goes on, and the
		// pool's worker goes on with other recordings.
		defer contain.Recover(log, "recording-writer", func() {
			r.q.stopRunning()
			r.m.writers.remove(&r.q)
			r.writerPanicked(w)
		})
		if dw != nil {
			var done bool
			gaps, done = r.q.stepDirect(dw, gaps, &werr)
			if werr == nil && !done {
				r.m.syncer.mark(dir)
			}
			finish(done)
			return
		}
		var batch []int16
		var done bool
		batch, gaps, done = r.q.take(nil, gaps)
		if werr == nil && (len(batch) > 0 || len(gaps) > 0) {
			var n int
			n, werr = writeBatch(w, batch, gaps)
			promRecBytes.Add(float64(2 * n))
			if werr == nil && !done {
				r.m.syncer.mark(dir)
			}
		}
		recBufs.put(batch)
		finish(done)
	}
	return step
}

// writerPanicked ends a writer that panicked: the recording
// fails (RecordingFailed), the file is closed and finish, which waits for
// the writer's close, is answered. Nothing more is written through w: its
// state is unknown after the panic (how much of a write reached the file,
// what its buffer or encoder holds), and a bug that keeps firing panicked
// again in a Close that flushed, leaving the file open, its header stale
// and its in-progress marker behind. The file is closed as after a write
// error (recorder.Abandon): it ends at its last good write, and what was
// still buffered or queued is lost, as the cause says.
func (r *LiveRecording) writerPanicked(w recorder.Writer) {
	r.writeFailed(errWriterPanicked)
	func() {
		defer contain.Recover(r.logger(), "recording-writer", nil)
		recorder.Abandon(w, errWriterPanicked)
		r.noteStored(w)
	}()
	select {
	case r.q.closed <- errWriterPanicked:
	default: // (Close's result was sent before the panic)
	}
}

// noteStored notes, once the failed writer w is closed, how much of the
// audio queued reached the file (recorder.Stored): the failed recording's
// length (finish).
func (r *LiveRecording) noteStored(w recorder.Writer) {
	n := recorder.Stored(w)
	r.mu.Lock()
	r.stored, r.storedSet = n, true
	r.mu.Unlock()
}

var errWriterPanicked = errors.New("recording writer failed (an internal error, logged with its stack): the file ends at its last good write; the audio still buffered or queued then (about the last second) is lost")

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
