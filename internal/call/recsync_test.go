package call

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// untilEach waits until cond(i) holds for each i below n, polling every
// millisecond until deadline; then it fails with msgf (which names i).
func untilEach(t *testing.T, deadline time.Time, n int, cond func(i int) bool, msgf string) {
	t.Helper()
	for i := range n {
		for !cond(i) {
			if time.Now().After(deadline) {
				t.Fatalf(msgf, i)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// One pass syncs each file system once, however many recordings (and
// directories on it) wrote; a pass with nothing written syncs nothing and
// ends the syncer's goroutine.
func TestRecSyncerOnePerFileSystem(t *testing.T) {
	root := t.TempDir()
	dirs := []string{filepath.Join(root, "a"), filepath.Join(root, "b")}
	for _, d := range dirs {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var synced []string
	s := &recSyncer{interval: 1 << 62, log: slog.New(slog.DiscardHandler), syncFS: func(d *os.File) error {
		mu.Lock()
		synced = append(synced, d.Name())
		mu.Unlock()
		return nil
	}}
	for i := 0; i < 100; i++ { // 100 recordings' writes
		s.mark(dirs[i%2])
	}
	if !s.pass() {
		t.Fatal("pass found nothing to sync")
	}
	if len(synced) != 1 {
		t.Fatalf("synced %v: want one sync for the one file system", synced)
	}
	if s.pass() {
		t.Fatal("a pass with nothing written synced")
	}
	if len(synced) != 1 {
		t.Fatalf("synced %v after an idle pass", synced)
	}
	s.mu.Lock()
	running := s.running
	s.mu.Unlock()
	if running {
		t.Fatal("the syncer still counts as running after an idle pass")
	}
}

// A sync that stalls (a slow disk) never makes a writer wait: mark returns
// while a pass is blocked in the sync, and the next pass syncs what was
// marked meanwhile.
func TestRecSyncerStallDoesNotBlockWriters(t *testing.T) {
	dir := t.TempDir()
	entered, release := make(chan struct{}), make(chan struct{})
	calls := 0
	s := &recSyncer{interval: 1 << 62, log: slog.New(slog.DiscardHandler), syncFS: func(*os.File) error {
		calls++
		if calls == 1 {
			close(entered)
			<-release
		}
		return nil
	}}
	s.mark(dir)
	done := make(chan bool)
	go func() { done <- s.pass() }()
	<-entered
	for i := 0; i < 1000; i++ {
		s.mark(dir) // would deadlock if a writer waited for the sync
	}
	close(release)
	if !<-done {
		t.Fatal("first pass synced nothing")
	}
	if !s.pass() || calls != 2 {
		t.Fatalf("the writes marked during a stalled sync were not synced by the next pass (%d syncs)", calls)
	}
}

// With the policy off (interval <= 0) nothing is marked and no goroutine
// starts.
func TestRecSyncerOff(t *testing.T) {
	s := &recSyncer{interval: -1, syncFS: func(*os.File) error { t.Fatal("synced with fsync off"); return nil }}
	s.mark(t.TempDir())
	if s.running || len(s.dirty) != 0 {
		t.Fatal("a write was marked with the policy off")
	}
}

// The shared clock wakes every registered writer on one tick and stops
// when none is left.
func TestWriterClockWakesAll(t *testing.T) {
	var c writerClock
	qs := make([]*recQueue, 50)
	c.mu.Lock()
	c.running = true // no goroutine: the test ticks by hand
	c.mu.Unlock()
	var ran [50]atomic.Int32
	for i := range qs {
		qs[i] = &recQueue{}
		qs[i].init(160)
		qs[i].run = func() { ran[i].Add(1) }
		c.add(qs[i])
	}
	if !c.tick() {
		t.Fatal("tick with writers registered stopped the clock")
	}
	untilEach(t, time.Now().Add(10*time.Second), len(qs), func(i int) bool { return ran[i].Load() > 0 },
		"writer %d did not run after the tick")
	for _, q := range qs {
		c.remove(q)
	}
	if c.tick() {
		t.Fatal("the clock kept ticking with no writer")
	}
}

// A queue's buffers grow with what is queued, up to its bound, instead of
// being allocated at the bound (2 s of audio, twice) for every recording.
func TestRecQueueGrowsOnDemand(t *testing.T) {
	var q recQueue
	q.init(16000)
	if cap(q.pending) != 0 {
		t.Fatalf("init allocated %d samples", cap(q.pending))
	}
	frame := make([]int16, 160)
	for i := 0; i < int(writerTick/(20*time.Millisecond)); i++ { // one writerTick
		if !q.push(frame) {
			t.Fatal("overflow")
		}
	}
	if c := cap(q.pending); c >= 16000/2 {
		t.Fatalf("a writerTick queued holds a buffer of %d samples, want well under the bound of 16000", c)
	}
	batch, _, _ := q.take(nil, nil)
	if cap(q.pending) != 0 {
		t.Fatal("take left a buffer in the queue: an idle recording would hold two")
	}
	recBufs.put(batch)
	for len(q.pending)+160 <= q.hard {
		if !q.push(frame) {
			t.Fatalf("overflow at %d of %d samples", len(q.pending), q.hard)
		}
	}
	if q.push(frame) {
		t.Fatal("the queue grew past its bound")
	}
	if cap(q.pending) > q.hard {
		t.Fatalf("buffer of %d samples, past the bound %d", cap(q.pending), q.hard)
	}
}

// A written batch goes back to the shared free list and the next push
// (of any recording) takes it: the steady state allocates nothing.
func TestRecQueueReusesBuffers(t *testing.T) {
	var a, b recQueue
	a.init(16000)
	b.init(16000)
	frame := make([]int16, 160)
	cycle := func(q *recQueue) {
		for i := 0; i < int(writerTick/(20*time.Millisecond)); i++ {
			if !q.push(frame) {
				t.Fatal("overflow")
			}
		}
		batch, _, _ := q.take(nil, nil)
		recBufs.put(batch)
	}
	cycle(&a)
	cycle(&b)
	if n := testing.AllocsPerRun(50, func() { cycle(&a); cycle(&b) }); n != 0 {
		t.Fatalf("%v allocations per writer cycle, want 0", n)
	}
}

// Writer steps that block (stalled disks) hold their pool workers and
// delay no other recording's step, even when they hold every worker the
// pool keeps (GOMAXPROCS): the pool starts another one. A blocked queue,
// signaled again meanwhile, runs once more after its step returns, never
// twice at once.
func TestWriterPoolBlockedStepDelaysNoOther(t *testing.T) {
	release := make(chan struct{})
	nBlocked := runtime.GOMAXPROCS(0) + 1
	blocked := make([]*recQueue, nBlocked)
	runs := make([]atomic.Int32, nBlocked)
	var running, maxRunning atomic.Int32 // of blocked[0]
	for i := range blocked {
		blocked[i] = &recQueue{}
		blocked[i].init(160)
		blocked[i].run = func() {
			if i == 0 {
				if n := running.Add(1); n > maxRunning.Load() {
					maxRunning.Store(n)
				}
				defer running.Add(-1)
			}
			if runs[i].Add(1) == 1 {
				<-release
			}
		}
		blocked[i].signal()
	}
	deadline := time.Now().Add(10 * time.Second)
	untilEach(t, deadline, len(blocked), func(i int) bool { return runs[i].Load() > 0 },
		"blocked step %d never started: it waited for the others")
	blocked[0].signal() // while its step is blocked: once more after it
	blocked[0].signal()
	qs := make([]*recQueue, 20)
	var ran [20]atomic.Int32
	for i := range qs {
		qs[i] = &recQueue{}
		qs[i].init(160)
		qs[i].run = func() { ran[i].Add(1) }
		qs[i].signal()
	}
	untilEach(t, deadline, len(qs), func(i int) bool { return ran[i].Load() > 0 },
		"recording %d's step waited for the blocked ones")
	if n := runs[0].Load(); n != 1 {
		t.Fatalf("the blocked step ran %d times before it returned", n)
	}
	close(release)
	for runs[0].Load() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the blocked queue's later signals ran %d steps, want one more", runs[0].Load()-1)
		}
		time.Sleep(time.Millisecond)
	}
	if maxRunning.Load() != 1 {
		t.Fatal("two steps of one queue ran at once")
	}
}

// With the poller reading each socket every 200 ms, a recording's queue
// takes a writerTick of audio plus a 200 ms burst between two takes: its
// buffer holds that without growing, and the steady state allocates
// nothing (before, the buffer grew, and was dropped, on most ticks: the
// RSS per call at read_interval_ms 200, bench/RESULTS.md).
func TestRecQueueHoldsReadIntervalBursts(t *testing.T) {
	var q recQueue
	q.initFor(16000, 200*time.Millisecond)
	frame := make([]int16, 160)
	cycle := func() {
		// A tick's worth and one burst, then the writer's take.
		for i := 0; i < int((writerTick+200*time.Millisecond)/(20*time.Millisecond)); i++ {
			if !q.push(frame) {
				t.Fatal("overflow")
			}
		}
		if c := cap(q.pending); c != q.chunk {
			t.Fatalf("the buffer grew to %d samples (chunk %d)", c, q.chunk)
		}
		batch, _, _ := q.take(nil, nil)
		recBufs.put(batch)
	}
	cycle()
	if n := testing.AllocsPerRun(50, cycle); n != 0 {
		t.Fatalf("%v allocations per writer cycle, want 0", n)
	}
	if recChunkFor(100*time.Millisecond) != recChunk {
		t.Fatalf("the default read interval's chunk changed: %v, was %v", recChunkFor(100*time.Millisecond), recChunk)
	}
}

// Closing a recording (its last audio and its rewritten header) marks its
// directory, and SyncRecordings syncs what is marked at once, on the
// caller's goroutine, whatever the interval: without both, what a
// recording wrote in its last interval waited for a pass that never came
// when the server stopped.
func TestRecordingCloseIsSyncedAtShutdown(t *testing.T) {
	r := newRig(t, func(o *Options) { o.FsyncInterval = time.Hour })
	var mu sync.Mutex
	var synced []string
	r.m.syncer.syncFS = func(d *os.File) error {
		mu.Lock()
		synced = append(synced, d.Name())
		mu.Unlock()
		return nil
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(synced)
	}
	ch, _, fm := r.inbound("app", offer(t, 5000, ""))
	rec := startRecording(t, r, ch, RecordOptions{Name: "calls/synced", Format: "wav", IfExists: "fail"})
	feed(ch, fm, 1, 0, 10, 0x10)
	// Wait for the writer to have written (and marked) the audio, then
	// sync it: nothing of the recording is left unsynced before the stop.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.m.SyncRecordings()
		if count() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the recording's writes were never marked for a sync")
		}
		time.Sleep(5 * time.Millisecond)
	}
	before := count()
	rec.Stop()
	r.ev.expect("RecordingFinished")
	r.m.SyncRecordings()
	if count() != before+1 {
		t.Fatalf("syncs after the recording closed: %d, want 1 (synced %v)", count()-before, synced)
	}
	mu.Lock()
	dir := synced[len(synced)-1]
	mu.Unlock()
	if want := filepath.Join(r.m.opts.RecordingsDir, "calls"); dir != want {
		t.Fatalf("synced %s, want the recording's directory %s", dir, want)
	}
}

// With a Poller the recordings' clock ticks from the Poller's rounds: no
// goroutine or timer of its own, and every writer is woken about every
// writerTick; with no writer left it stops (the Poller no longer calls it).
func TestWriterClockRidesThePoller(t *testing.T) {
	poller, err := rtp.NewPoller(10*time.Millisecond, 100*time.Millisecond, 1)
	if err != nil {
		t.Skip("no Poller here:", err)
	}
	defer poller.Close()
	s, err := rtp.ListenSocket(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reg, err := poller.Add(s, func([]byte, netip.AddrPort, time.Time) {}) // (the worker runs rounds while it has a socket)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Remove()
	c := writerClock{poller: poller}
	var q recQueue
	q.init(160)
	var ran atomic.Int32
	q.run = func() { ran.Add(1) }
	// The goroutines add starts inherit this label, unique to c: the scan
	// below finds a ticker of this clock, not one that another test's
	// Manager left running (a scan for any writerClock.loop failed
	// under load whenever an earlier test's clock was still ticking).
	label := fmt.Sprintf("%p", &c)
	start := time.Now()
	pprof.Do(context.Background(), pprof.Labels("writerClock", label), func(context.Context) { c.add(&q) })
	deadline := time.Now().Add(10 * time.Second)
	for ran.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the writer was woken %d times in 10 s", ran.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if d := time.Since(start); d < 2*(writerTick-50*time.Millisecond) {
		t.Fatalf("3 ticks in %v: more often than every %v", d, writerTick-50*time.Millisecond)
	}
	if labelledGoroutine(t, "writerClock", label, "writerClock).loop") {
		t.Fatal("the clock runs a ticker goroutine with a Poller")
	}
	c.remove(&q)
	testutil.Eventually(t, 10*time.Second, time.Millisecond, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return !c.running
	}, "the clock kept running with no writer")
}

// labelledGoroutine reports whether a goroutine labelled key=value (see
// pprof.Do) is running fn (a stack frame's function name, or part of it).
func labelledGoroutine(t *testing.T, key, value, fn string) bool {
	t.Helper()
	want := fmt.Sprintf("%q:%q", key, value)
	for _, rec := range goroutinesRunning(t, fn) {
		if strings.Contains(rec, want) {
			return true
		}
	}
	return false
}

// goroutinesRunning returns the goroutine profile's records whose stack
// runs fn, whatever their labels.
func goroutinesRunning(t *testing.T, fn string) []string {
	t.Helper()
	var b strings.Builder
	if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
		t.Fatal(err)
	}
	// debug=1: one record per stack and label set, blank-line separated,
	// its labels on a "# labels: {...}" line.
	var recs []string
	for _, rec := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(rec, fn) {
			recs = append(recs, rec)
		}
	}
	return recs
}

// The steps a clock tick asks for arm no rescue timer (a timer armed on
// every tick fired 50 ms later for nothing: a wake-up a tick): the clock's
// next tick rescues them when every worker is stuck in a write.
func TestClockTickArmsNoRescueTimer(t *testing.T) {
	// This test's clock has no goroutine (it ticks by hand), but the pool
	// is the process's: another Manager's clock still ticking (a recording
	// still closing, or one that a failed test left running) checks it for
	// stuck workers at each of its ticks and queues its own steps there;
	// either can get the step below run before this clock's next tick
	// rescues it. Wait until no other clock ticks; one that never stops is
	// named, rather than failing an assertion below for it. (A clock on a
	// Poller's rounds has no goroutine of its own: not seen here.)
	deadline := time.Now().Add(5 * time.Second)
	for {
		others := goroutinesRunning(t, "writerClock).loop")
		if len(others) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("another writer clock still ticks (left running by an earlier test?), sharing the writer pool:\n%s", strings.Join(others, "\n\n"))
		}
		time.Sleep(time.Millisecond)
	}
	release := make(chan struct{})
	n := runtime.GOMAXPROCS(0)
	var started atomic.Int32
	for range n {
		q := &recQueue{}
		q.init(160)
		q.run = func() { started.Add(1); <-release }
		q.signal()
	}
	defer close(release)
	deadline = time.Now().Add(10 * time.Second)
	for started.Load() < int32(n) {
		if time.Now().After(deadline) {
			t.Fatal("the blocked steps did not start")
		}
		time.Sleep(time.Millisecond)
	}
	// A timer armed while they were handed out fires within writerStuck.
	testutil.Eventually(t, 10*time.Second, time.Millisecond, func() bool {
		recWriters.mu.Lock()
		defer recWriters.mu.Unlock()
		return !recWriters.armed
	}, "the rescue timer stayed armed")
	var c writerClock
	c.mu.Lock()
	c.running = true // no goroutine: the test ticks by hand
	c.mu.Unlock()
	q := &recQueue{}
	q.init(160)
	var ran atomic.Int32
	q.run = func() { ran.Add(1) }
	c.add(q)
	defer func() { c.remove(q); c.tick() }()
	c.tick()
	recWriters.mu.Lock()
	armed := recWriters.armed
	recWriters.mu.Unlock()
	if armed {
		t.Fatal("the clock's tick armed the rescue timer")
	}
	time.Sleep(writerStuck)
	if ran.Load() != 0 {
		t.Fatal("the step ran with every worker blocked before a rescue")
	}
	c.tick()
	for ran.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the clock's next tick did not rescue the step")
		}
		time.Sleep(time.Millisecond)
	}
}

// heldFDs lists the descriptors of the process open on dir
// (/proc/self/fd), by number.
func heldFDs(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	var fds []string
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == dir {
			fds = append(fds, e.Name())
		}
	}
	return fds
}

// The syncer keeps a marked directory open from pass to pass (one syncfs
// per file system a pass, no stat, open and close of the directory each
// time) and closes it after a pass in which it was not marked, and every
// one when its goroutine stops.
func TestRecSyncerKeepsDirectoriesOpen(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("syncfs is Linux's")
	}
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	syncs := 0
	s := &recSyncer{interval: 1 << 62, log: slog.New(slog.DiscardHandler), syncFS: func(d *os.File) error {
		syncs++
		return syncFS(d) // the real syncfs(2) on the held descriptor
	}}
	s.mark(a)
	s.mark(b)
	if !s.pass() || syncs != 1 {
		t.Fatalf("first pass: %d syncs, want 1 (one file system)", syncs)
	}
	fa, fb := heldFDs(t, a), heldFDs(t, b)
	if len(fa) != 1 || len(fb) != 1 {
		t.Fatalf("after a pass the syncer holds %v on a and %v on b: want one descriptor each", fa, fb)
	}
	for i := 0; i < 5; i++ {
		s.mark(a)
		s.mark(b)
		if !s.pass() {
			t.Fatal("pass found nothing to sync")
		}
		if ga, gb := heldFDs(t, a), heldFDs(t, b); !slices.Equal(ga, fa) || !slices.Equal(gb, fb) {
			t.Fatalf("pass %d: descriptors %v and %v, were %v and %v: the directories were reopened", i+2, ga, gb, fa, fb)
		}
	}
	if syncs != 6 {
		t.Fatalf("%d syncs in 6 passes", syncs)
	}
	s.mark(a) // b not written to in this pass: closed at its end
	s.pass()
	if ga, gb := heldFDs(t, a), heldFDs(t, b); !slices.Equal(ga, fa) || len(gb) != 0 {
		t.Fatalf("after a pass that marked only a: %v on a (was %v), %v on b (want none)", ga, fa, gb)
	}
	if s.pass() {
		t.Fatal("a pass with nothing marked synced")
	}
	if ga := heldFDs(t, a); len(ga) != 0 {
		t.Fatalf("the stopped syncer still holds %v on a", ga)
	}
}
