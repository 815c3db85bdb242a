package rtp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tapedeck/tapedeck/internal/rawsock"
	"github.com/tapedeck/tapedeck/internal/wakegrid"
)

// PacketFunc receives one datagram read by a Poller: b is valid only during
// the call, at is the kernel's receive time. Calls for one socket are
// sequential.
type PacketFunc func(b []byte, from netip.AddrPort, at time.Time)

// Poller reads many Sockets in batches. A worker goroutine sleeps (see run)
// and wakes on a fixed schedule to drain its sockets with recvmmsg, so
// waking up is paid once per round for all sockets instead of once per
// packet, and a socket holding several packets gives them all in one
// syscall.
//
// Each socket is read every slowEvery intervals (100 ms by default): that
// is what makes a recorded call cheap, five packets per syscall instead of
// one. A worker with a tick to run (below) wakes every interval (10 ms by
// default) and reads a share of its sockets each round; one without wakes
// once per read interval and reads them all (run). Packets reach their
// handler up to one read interval late, with their kernel arrival time, so
// jitter statistics and the recording timeline are exact. A socket whose
// audio others hear live (a bridged channel) is instead drained by its
// owner right before it uses the audio (SetOwned, TryDrain), and
// functions added with AddTick (a bridge's 20 ms mix) run on the worker's
// schedule. Any socket's queued packets can be drained at once (Drain,
// TryDrain) before a hangup or a recording control.
type Poller struct {
	interval  time.Duration
	slowEvery int
	workers   []*pollWorker
	once      sync.Once
	next      atomic.Uint32
	roundMu   sync.Mutex // serialises changes of roundFns
	roundFns  atomic.Pointer[[]*roundFunc]
}

type roundFunc struct{ fn func() }

// Registration is a socket added to a Poller.
type Registration struct {
	w *pollWorker
	m *member
}

type member struct {
	busy    sync.Mutex   // held while the socket is drained
	holder  atomic.Int64 // who holds busy: a worker's goroutine id, drainerHolds, or 0 (none yet)
	removed bool
	owned   atomic.Bool  // drained by its owner, not by the worker
	live    atomic.Bool  // read on arrival by the worker's live reader (SetLive), not on its schedule
	relax   atomic.Int64 // SetRelaxed's period in ns (0: none): read only on that period's grid
	lvDead  bool         // removed: never live again (guarded by the worker's live.mu)
	every   int          // read every this many rounds (slowEvery, or more: AddEvery)
	phase   int          // read on rounds where (round+phase)%every == 0
	sock    *Socket
	fn      PacketFunc
}

const (
	pollBatch   = 32   // datagrams per recvmmsg
	pollBufSize = 2048 // per datagram; larger ones are truncated and dropped
)

type pollWorker struct {
	interval  time.Duration
	slowEvery int // the Poller's: rounds per read interval

	mu     sync.Mutex // serialises changes of list and ticks
	list   atomic.Pointer[[]*member]
	ticks  atomic.Pointer[[]*tick]
	nextID int
	// rounds0 is the Poller's round functions (AddRoundFunc).
	rounds0 *atomic.Pointer[[]*roundFunc]
	// active counts the ticks in ticks that are not paused: only those
	// make the worker wake every interval (Tick.SetPaused).
	active atomic.Int32

	live liveSet // the sockets read on arrival (poller_live_linux.go)

	b   *batch // used only by the worker goroutine
	gid int64  // the worker goroutine's id (see member.holder)

	stop   chan struct{}
	done   chan struct{}
	rounds atomic.Int64 // rounds run (or slept through, see slowSleep), for tests
	wakes  atomic.Int64 // times the worker woke up to read or tick, for tests
	// slowSleeps counts the waits of slowSleep begun, sleptUntil the end
	// of the last one (monotonic ns), for tests.
	slowSleeps, sleptUntil atomic.Int64
	// wake tells a worker parked with nothing to read or tick (idle)
	// that a socket or a tick was added.
	wake chan struct{}
}

// idle reports whether the worker has nothing to do: no socket, no tick
// to run (paused ticks do not count).
func (w *pollWorker) idle() bool { return len(*w.list.Load()) == 0 && w.active.Load() == 0 }

// ticking reports whether the worker has a tick to run every interval.
func (w *pollWorker) ticking() bool { return w.active.Load() > 0 }

// poke wakes the worker if it is parked (idle).
func (w *pollWorker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// NewPoller starts workers (at least one) that wake every interval and read
// each socket every slow (rounded to a multiple of interval, at least
// interval).
func NewPoller(interval, slow time.Duration, workers int) (*Poller, error) {
	if interval <= 0 {
		return nil, errors.New("rtp: poller interval must be positive")
	}
	every := max(int((slow+interval/2)/interval), 1)
	workers = max(workers, 1)
	p := &Poller{interval: interval, slowEvery: every}
	p.roundFns.Store(&[]*roundFunc{})
	for range workers {
		w := &pollWorker{
			rounds0:   &p.roundFns,
			interval:  interval,
			slowEvery: every,
			b:         newBatch(),
			stop:      make(chan struct{}),
			done:      make(chan struct{}),
			wake:      make(chan struct{}, 1),
		}
		w.list.Store(&[]*member{})
		w.ticks.Store(&[]*tick{})
		p.workers = append(p.workers, w)
		go w.run()
	}
	return p, nil
}

// Interval is the workers' wake-up interval, the resolution of AddTick.
func (p *Poller) Interval() time.Duration { return p.interval }

// SlowInterval is the read interval of the sockets.
func (p *Poller) SlowInterval() time.Duration { return p.interval * time.Duration(p.slowEvery) }

// batch is the recvmmsg state: pollBatch datagram buffers with their
// source addresses and control messages.
type batch struct {
	hdrs   []unix.Mmsghdr
	iovs   []unix.Iovec
	names  []unix.RawSockaddrInet6
	ctrl   []byte
	bufs   []byte
	ctrlSz int
	// dirty is how many headers the last recvmmsg filled in (it writes
	// nothing to the others): only those need their lengths and flags
	// set again. A socket's round reads a few datagrams, and setting all
	// pollBatch headers touched 2 KB per socket per round.
	dirty int
}

func newBatch() *batch {
	b := &batch{
		hdrs:   make([]unix.Mmsghdr, pollBatch),
		iovs:   make([]unix.Iovec, pollBatch),
		names:  make([]unix.RawSockaddrInet6, pollBatch),
		bufs:   make([]byte, pollBatch*pollBufSize),
		ctrlSz: unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{}))),
		dirty:  pollBatch,
	}
	b.ctrl = make([]byte, pollBatch*b.ctrlSz)
	for i := range b.hdrs {
		b.iovs[i].Base = &b.bufs[i*pollBufSize]
		b.iovs[i].SetLen(pollBufSize)
		h := &b.hdrs[i].Hdr
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Control = &b.ctrl[i*b.ctrlSz]
	}
	return b
}

// batches serves Drain calls, which run outside the worker goroutines.
var batches = sync.Pool{New: func() any { return newBatch() }}

// Add starts reading s every slow interval; fn gets every datagram until
// Remove. Sockets are spread over the workers round robin.
func (p *Poller) Add(s *Socket, fn PacketFunc) (*Registration, error) {
	return p.AddEvery(s, fn, 0)
}

// AddEvery is Add for a socket read less often: every period, rounded to a
// multiple of the slow interval (at most the slow interval: as Add). An
// RTCP socket, which receives a report every few seconds, is read once a
// second instead of ten times, each of those reads but one finding it
// empty: a syscall for nothing.
func (p *Poller) AddEvery(s *Socket, fn PacketFunc, period time.Duration) (*Registration, error) {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return nil, fmt.Errorf("rtp: poller add: %w", net.ErrClosed)
	}
	w := p.workers[int(p.next.Add(1))%len(p.workers)]
	slow := p.SlowInterval()
	m := &member{sock: s, fn: fn, every: p.slowEvery * max(int((period+slow/2)/slow), 1)}
	w.mu.Lock()
	m.phase = w.nextID % m.every
	w.nextID++
	list := append(slices.Clone(*w.list.Load()), m)
	w.list.Store(&list)
	w.mu.Unlock()
	w.poke()
	return &Registration{w: w, m: m}, nil
}

// SetOwned hands the reading of the socket to its owner (on), who drains it
// with TryDrain or Drain on its own schedule, or back to the worker (off).
// A bridge owns its parties' sockets and drains them right before each mix:
// the audio is as fresh as a read every interval would make it, without
// the reads between mixes that find nothing.
func (r *Registration) SetOwned(on bool) { r.m.owned.Store(on) }

// SetRelaxed reads the socket every period instead of every read interval
// (0 or less than two read intervals: back to every read interval), on the
// wake-ups of a worker without ticks whose instant is on period's wall-clock
// grid (wakegrid): a socket whose packets nobody needs before a periodic
// job on that grid takes them (a call that is only recorded: the writers
// take the recordings' queues every 200 ms, right after those reads) then
// gives twice the packets per recvmmsg, and its cold state is touched half
// as often. A worker with ticks (bridges) reads it every read interval, as
// before. period is rounded down to a multiple of the read interval. For a
// socket added with Add; owned and live sockets are read as they say.
func (r *Registration) SetRelaxed(period time.Duration) {
	slow := r.w.interval * time.Duration(r.w.slowEvery)
	period = period / slow * slow
	if period < 2*slow {
		period = 0
	}
	if old := r.m.relax.Swap(int64(period)); old > 0 && (period == 0 || int64(period) < old) {
		r.w.poke() // its worker may be asleep for the old period
	}
}

// Relaxed is the period set by SetRelaxed (0: none).
func (r *Registration) Relaxed() time.Duration { return time.Duration(r.m.relax.Load()) }

// Remove stops reading the socket. When it returns the handler is not
// running and will not run again. It must not be called from the socket's
// own handler; it is idempotent.
func (r *Registration) Remove() {
	r.stopLive()
	w := r.w
	w.mu.Lock()
	old := *w.list.Load()
	i := slices.Index(old, r.m)
	if i < 0 {
		w.mu.Unlock()
		return
	}
	list := slices.Delete(slices.Clone(old), i, i+1)
	w.list.Store(&list)
	w.mu.Unlock()
	r.m.busy.Lock()
	r.m.removed = true
	r.m.busy.Unlock()
}

// Close stops the workers (within one interval). Sockets still registered
// are not closed.
func (p *Poller) Close() {
	p.once.Do(func() {
		for _, w := range p.workers {
			close(w.stop)
		}
		for _, w := range p.workers {
			<-w.done
		}
		for _, w := range p.workers {
			w.stopLive()
		}
	})
}

// run wakes on schedule and drains the sockets due. With a tick to run (a
// bridge's mix) it wakes every interval and sleeps in clock_nanosleep
// rather than on a Go timer: a goroutine blocked in a syscall costs the
// runtime nothing, while a timer wake-up every few milliseconds keeps the
// scheduler's monitor thread polling at 20 µs (it resets its back-off
// whenever the process wakes from idle), and those context switches cost
// more CPU than the packets.
//
// Without a tick nothing needs the interval's resolution: the worker wakes
// once per read interval (slowSleep) and reads every socket due in it.
//
// A worker with no socket and no tick parks on a channel until Add or
// AddTick pokes it: an idle node (or a lightly loaded one, whose other
// workers have nothing) pays no wake-up every interval, and the runtime's
// monitor can sleep.
func (w *pollWorker) run() {
	defer close(w.done)
	w.gid = goid()
	step := w.interval.Nanoseconds()
	next := monotonic()
	round := 0
	var timer *time.Timer
	for {
		if w.idle() {
			select {
			case <-w.stop:
				return
			case <-w.wake:
			}
			next = monotonic()
		}
		if w.slowEvery > 1 && !w.ticking() {
			if timer == nil {
				timer = time.NewTimer(time.Hour)
			}
			// The read interval ends on the node's wake-up grid
			// (wakegrid): the other periodic jobs due then run in the
			// same wake-up of the process.
			slow := int64(w.slowEvery) * step
			// A worker whose sockets are all relaxed (SetRelaxed) sleeps
			// from one instant of their grid to the next: nothing is read
			// in the wake-ups between (a node recording calls only, 5 a
			// second instead of 10).
			period := w.sleepPeriod(slow)
			next = monotonic() + int64(wakegrid.Until(time.Duration(period))) - period
			k, stop := w.slowSleep(timer, next, period)
			if stop {
				return
			}
			w.wakes.Add(1)
			// Pass through the scheduler before the round: woken by its
			// timer, the goroutine runs on the time slice of whatever ran
			// last on this P (the scheduler's tick does not move), which
			// the runtime's monitor may have seen start long ago; it then
			// preempted the round with a signal (about 7 a second at 100
			// calls, bench/RESULTS.md). Gosched starts a new slice.
			runtime.Gosched()
			w.readDue(round, round+k, time.Now().UnixNano(), slow)
			w.runRoundFuncs()
			round += k
			next += int64(k) * step
			w.rounds.Add(int64(k))
			if now := monotonic(); next <= now-step {
				next = now // overran (or the machine stalled): skip, don't burst
			}
			continue
		}
		next += step
		deadline := unix.NsecToTimespec(next)
		for {
			err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &deadline, nil)
			if err != unix.EINTR {
				break
			}
		}
		select {
		case <-w.stop:
			return
		default:
		}
		round++
		w.rounds.Add(1)
		w.wakes.Add(1)
		w.round(round)
		w.runRoundFuncs()
		// Pass through the scheduler once per round. A goroutine that never
		// does looks, to the runtime's monitor, like one running for too
		// long: every 10 ms it would force a preemption and take the P away
		// during the sleep, and the monitor would go back to polling at
		// 20 µs. Gosched costs a few hundred nanoseconds and no switch.
		runtime.Gosched()
		if now := monotonic(); next <= now-step {
			next = now // overran (or the machine stalled): skip, don't burst
		}
	}
}

// slowSleep waits, on a Go timer, for the end of the read interval that
// begins at from (monotonic ns): once per read interval instead of once per
// interval, the wake-ups (and the thread hand-offs and monitor polls each
// one brings) of a node recording calls without bridges are a tenth. It
// parks the goroutine, so the runtime neither sees a long syscall (which
// its monitor would take the P from, and poll at 20 µs after: why the
// clock_nanosleep schedule cannot simply sleep longer) nor needs a Gosched.
// It returns the intervals that passed, all of them (slowEvery) unless a
// tick was added or the last socket removed, which end the wait at once.
//
// period (ns, a multiple of the read interval: sleepPeriod) is the wait's
// length; when a socket that must be read sooner comes (Add, SetRelaxed
// lowered) the wait ends at the next read interval's end instead.
func (w *pollWorker) slowSleep(timer *time.Timer, from, period int64) (k int, stop bool) {
	step := w.interval.Nanoseconds()
	slow := int64(w.slowEvery) * step
	w.slowSleeps.Add(1)
	until := from + period
	w.sleptUntil.Store(until)
	timer.Reset(time.Duration(until - monotonic()))
	for {
		select {
		case <-w.stop:
			timer.Stop()
			return 0, true
		case <-timer.C:
			return int((until - from + step/2) / step), false
		case <-w.wake:
			if !w.ticking() && !w.idle() {
				// A socket added, or one relaxed no more: read on this
				// schedule, by the end of the read interval under way.
				if until-from > slow && w.sleepPeriod(slow) < until-from {
					if u := monotonic() + int64(wakegrid.Until(time.Duration(slow))); u < until {
						until = u
						w.sleptUntil.Store(until)
						timer.Reset(time.Duration(until - monotonic()))
					}
				}
				continue
			}
			timer.Stop()
			return min(max(int((monotonic()-from)/step), 0), int((until-from)/step)), false
		}
	}
}

// sleepPeriod is how long (ns) a worker without ticks waits between two
// reads: the read interval (slow), or, when every socket it reads on its
// schedule is relaxed, the greatest common divisor of their periods (all
// multiples of slow), so that every one's grid instants are wake-ups.
func (w *pollWorker) sleepPeriod(slow int64) int64 {
	period := int64(0)
	for _, m := range *w.list.Load() {
		if m.owned.Load() || m.live.Load() {
			continue
		}
		p := m.relax.Load()
		if p <= 0 {
			return slow
		}
		for period != 0 {
			p, period = period, p%period
		}
		period = p
	}
	return max(period, slow)
}

// readDue drains the sockets due in rounds from+1 to to (each once),
// unless their owner or their own reader drains them (as round). A relaxed
// socket (SetRelaxed) is due instead when the wake-up (at wall-clock now,
// ns) falls in the first read interval (slow, ns) of its period: on that
// period's grid, a wake-up being late by less than a read interval.
func (w *pollWorker) readDue(from, to int, now, slow int64) {
	for _, m := range *w.list.Load() {
		if m.owned.Load() || m.live.Load() {
			continue
		}
		if p := m.relax.Load(); p > 0 {
			if now%p < slow {
				w.drain(m)
			}
			continue
		}
		if m.dueIn(from, to) {
			w.drain(m)
		}
	}
}

// runRoundFuncs runs the Poller's round functions (AddRoundFunc).
func (w *pollWorker) runRoundFuncs() {
	for _, f := range *w.rounds0.Load() {
		f.fn()
	}
}

// AddRoundFunc runs fn after every round of every worker (each read
// interval on a worker without ticks, each interval on one with ticks)
// until remove is called: periodic work that needs no timer of its own,
// so the process wakes once for the packets and that work together. fn
// runs on the workers, possibly on several at once, so it must be brief,
// must not block, and must bound its own rate (a worker with ticks runs
// it every interval). It does not wake a parked (idle) worker. remove may
// be called from fn; fn may still run once on another worker after it
// returns.
func (p *Poller) AddRoundFunc(fn func()) (remove func()) {
	f := &roundFunc{fn: fn}
	p.roundMu.Lock()
	fns := append(slices.Clone(*p.roundFns.Load()), f)
	p.roundFns.Store(&fns)
	p.roundMu.Unlock()
	return func() {
		p.roundMu.Lock()
		defer p.roundMu.Unlock()
		old := *p.roundFns.Load()
		if i := slices.Index(old, f); i >= 0 {
			fns := slices.Delete(slices.Clone(old), i, i+1)
			p.roundFns.Store(&fns)
		}
	}
}

// dueIn reports whether m is read in one of the rounds from+1 to to: round
// reads it in rounds where (round+phase)%every == 0.
func (m *member) dueIn(from, to int) bool {
	x := (from + 1 + m.phase) % m.every
	return from+1+(m.every-x)%m.every <= to
}

// monotonic is CLOCK_MONOTONIC in ns, read through the vDSO (time.Since)
// from one clock_gettime at start: a raw clock_gettime is a syscall
// through the scheduler, two per round, and one that finds the runtime's
// monitor thread asleep wakes it and resets it to polling every 20 µs.
func monotonic() int64 { return monoBase + int64(time.Since(monoStart)) }

var monoBase, monoStart = func() (int64, time.Time) {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano(), time.Now()
}()

// round drains the sockets whose phase has come (a tenth of them each
// round, with the defaults) unless their owner drains them, then runs the
// ticks due.
func (w *pollWorker) round(round int) {
	for _, m := range *w.list.Load() {
		if !m.owned.Load() && !m.live.Load() && (round+m.phase)%m.every == 0 {
			w.drain(m)
		}
	}
	for _, t := range *w.ticks.Load() {
		if !t.paused.Load() && (round+t.phase)%t.every == 0 {
			t.mu.Lock()
			if !t.removed {
				t.fn()
			}
			t.mu.Unlock()
		}
	}
}

type tick struct {
	mu      sync.Mutex // held while fn runs
	removed bool
	paused  atomic.Bool // changed under the worker's mu (SetPaused); read by round without t.mu
	every   int
	phase   int
	fn      func()
}

// Tick is a function added to a Poller with AddTick.
type Tick struct {
	w *pollWorker
	t *tick
}

// AddTick runs fn on a worker every period (rounded to a multiple of the
// interval), after that round's reads: one clock for every bridge instead
// of a timer goroutine each. fn must be brief and must not block.
func (p *Poller) AddTick(period time.Duration, fn func()) *Tick {
	w := p.workers[int(p.next.Add(1))%len(p.workers)]
	every := max(int((period+p.interval/2)/p.interval), 1)
	t := &tick{every: every, fn: fn}
	w.mu.Lock()
	t.phase = w.nextID % every
	w.nextID++
	ticks := append(slices.Clone(*w.ticks.Load()), t)
	w.ticks.Store(&ticks)
	w.active.Add(1)
	w.mu.Unlock()
	w.poke()
	return &Tick{w: w, t: t}
}

// SetPaused stops running fn (on) or runs it again (off), on its schedule,
// without removing the tick. A worker whose ticks are all paused sleeps
// through the read interval as one without ticks: a bridge that forwards
// its parties' frames as they arrive (and whose tick would find nothing
// to do) does not make its worker wake every interval.
//
// SetPaused does not wait for fn, so it may be called from fn and with
// locks that fn takes (a bridge pauses its clock holding the lock its mix
// takes). What it guarantees when it returns with on: no round that
// begins afterwards calls fn until SetPaused(false). The worker's round
// under way, if it looked at the tick before the pause, still calls fn
// once: that call may be running when SetPaused returns, or even start
// just after. A caller that must know fn has stopped uses Remove, which
// waits for it.
func (k *Tick) SetPaused(on bool) {
	w := k.w
	w.mu.Lock()
	if k.t.paused.Load() == on || !slices.Contains(*w.ticks.Load(), k.t) {
		w.mu.Unlock()
		return
	}
	k.t.paused.Store(on)
	if on {
		w.active.Add(-1)
	} else {
		w.active.Add(1)
	}
	w.mu.Unlock()
	if !on {
		w.poke()
	}
}

// Paused reports whether the tick is paused (SetPaused).
func (k *Tick) Paused() bool { return k.t.paused.Load() }

// Remove stops the tick; when it returns fn is not running and will not run
// again. It must not be called from fn; it is idempotent.
func (k *Tick) Remove() {
	w := k.w
	w.mu.Lock()
	old := *w.ticks.Load()
	if i := slices.Index(old, k.t); i >= 0 {
		ticks := slices.Delete(slices.Clone(old), i, i+1)
		w.ticks.Store(&ticks)
		if !k.t.paused.Load() {
			w.active.Add(-1)
		}
	}
	w.mu.Unlock()
	k.t.mu.Lock()
	k.t.removed = true
	k.t.mu.Unlock()
}

// drain reads one socket until it is empty.
func (w *pollWorker) drain(m *member) {
	m.busy.Lock()
	defer m.busy.Unlock()
	if !m.removed {
		m.holder.Store(w.gid)
		w.b.read(m)
		m.holder.Store(0)
	}
}

// Drain delivers, on the calling goroutine, what the socket holds now,
// without waiting for its next round: the last packets before a hangup
// belong to the recording. It waits for a read in progress, so it must not
// be called from the socket's own handler.
func (r *Registration) Drain() {
	r.m.busy.Lock()
	defer r.m.busy.Unlock()
	r.drainLocked()
}

// TryDrain is Drain that is safe from the socket's own handler. When the
// socket is being read at this moment by its worker, it waits until the
// worker has delivered the packets it holds (a packet already read belongs
// before whatever the caller is about to do), then drains the rest; called
// from the handler (on the worker, or inside another Drain), it returns at
// once, as those packets are being delivered already. Two drainers on
// different goroutines do not wait for each other: the second returns at
// once.
func (r *Registration) TryDrain() {
	m := r.m
	var self int64
	for !m.busy.TryLock() {
		// Contended (rare): the goroutine id is only computed here, never
		// on the uncontended path.
		switch h := m.holder.Load(); {
		case h == 0: // just taken or being released: look again
			runtime.Gosched()
			continue
		case h == drainerHolds:
			return // another drainer is delivering (or we are its handler)
		}
		if self == 0 {
			self = goid()
		}
		if m.holder.Load() == self {
			return // our own handler, on the worker
		}
		m.busy.Lock() // the worker, mid-batch: wait for its packets
		break
	}
	defer m.busy.Unlock()
	r.drainLocked()
}

// drainerHolds is member.holder while Drain or TryDrain reads the socket.
const drainerHolds = -1

func (r *Registration) drainLocked() {
	if r.m.removed {
		return
	}
	r.m.holder.Store(drainerHolds)
	b := batches.Get().(*batch)
	b.read(r.m)
	batches.Put(b)
	r.m.holder.Store(0)
}

// read drains m's socket with recvmmsg; m.busy is held.
func (b *batch) read(m *member) {
	fd := m.sock.fd
	for {
		for i := range b.hdrs[:b.dirty] {
			h := &b.hdrs[i].Hdr
			h.Namelen = uint32(unsafe.Sizeof(b.names[i]))
			h.SetControllen(b.ctrlSz)
			h.Flags = 0
		}
		b.dirty = 0
		// Raw: with MSG_DONTWAIT recvmmsg never blocks, so the scheduler
		// need not know. Through Syscall6 each read entered its syscall
		// state, and the first one after the node had been idle woke the
		// runtime's monitor from its deep sleep with its back-off reset:
		// it then polled every 20 µs through the whole round (most of
		// the nanosleeps strace counted; bench/RESULTS.md).
		r, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(len(b.hdrs)), unix.MSG_DONTWAIT, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return // EAGAIN: empty; anything else: try again next round
		}
		n := int(r)
		b.dirty = min(n+1, len(b.hdrs))
		for i := range n {
			h := &b.hdrs[i].Hdr
			if h.Flags&unix.MSG_TRUNC != 0 {
				continue
			}
			from, ok := rawsock.AddrPort(&b.names[i])
			if !ok {
				continue
			}
			at := b.stamp(i, h)
			size := int(b.hdrs[i].Len)
			m.fn(b.bufs[i*pollBufSize:i*pollBufSize+size], from, at)
		}
		if n < len(b.hdrs) {
			return
		}
	}
}

// stamp is the SO_TIMESTAMPNS time of datagram i, or now if absent.
func (b *batch) stamp(i int, h *unix.Msghdr) time.Time {
	ctrl := b.ctrl[i*b.ctrlSz : i*b.ctrlSz+int(h.Controllen)]
	hdrLen := unix.CmsgLen(0)
	for len(ctrl) >= hdrLen {
		c := (*unix.Cmsghdr)(unsafe.Pointer(&ctrl[0]))
		l := int(c.Len)
		if l < hdrLen || l > len(ctrl) {
			break
		}
		if c.Level == unix.SOL_SOCKET && c.Type == unix.SO_TIMESTAMPNS && l-hdrLen >= int(unsafe.Sizeof(unix.Timespec{})) {
			ts := (*unix.Timespec)(unsafe.Pointer(&ctrl[hdrLen]))
			return time.Unix(ts.Unix())
		}
		next := unix.CmsgSpace(l - hdrLen)
		if next > len(ctrl) {
			break
		}
		ctrl = ctrl[next:]
	}
	return time.Now()
}
