package call

import (
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/wakegrid"
)

// recSyncer makes recordings durable against a power cut: one goroutine
// for the whole node that, every fsync interval, syncs each file system a
// recording wrote to since the previous pass, with one syncfs(2) per file
// system. It replaces an fsync(2) per recording per interval, issued by each
// recording's writer: those cost the server ~250 µs of CPU each on ext4
// (the writeback ran on the writer's thread, and every journal commit made
// the other writers' pwrite and open wait and spin), which was the largest
// part of the recording pipeline's CPU. With syncfs the kernel's flusher
// threads do the writeback once for all the files, and no writer ever waits
// for it: a slow or stalled sync delays only the next pass.
//
// What it costs in guarantees: a writeback error found by syncfs cannot be
// pinned on one recording, so it is logged (every pass that sees one) and
// does not fail a recording; a write error seen by a writer's own pwrite
// still fails that recording alone.
type recSyncer struct {
	interval time.Duration
	log      *slog.Logger
	// syncFS syncs the file system holding the open directory d
	// (syncfs(2) on Linux); tests replace it.
	syncFS func(d *os.File) error

	// dirs holds the directories marked in the last pass open, with their
	// file system's id, so that a pass costs one syncfs per file system
	// and no stat, open and close of each directory (syscalls that also
	// woke the runtime's monitor off the wake-up grid). A directory not
	// marked in a pass is closed at its end, all of them when the
	// goroutine stops. syncMu serializes the passes and flush over dirs.
	syncMu sync.Mutex
	dirs   map[string]*syncDir

	mu      sync.Mutex
	dirty   map[string]struct{} // directories written to since the last pass
	running bool                // the goroutine is up (it stops when a pass finds nothing dirty)
	passes  int                 // passes that synced something, for tests
}

// mark notes that a recording in dir wrote; the next pass syncs its file
// system. It never waits for a sync.
func (s *recSyncer) mark(dir string) {
	if s.interval <= 0 {
		return
	}
	s.mu.Lock()
	if s.dirty == nil {
		s.dirty = map[string]struct{}{}
	}
	s.dirty[dir] = struct{}{}
	start := !s.running
	s.running = true
	s.mu.Unlock()
	if start {
		go s.loop()
	}
}

// loop runs passes every interval until a pass finds nothing to sync.
func (s *recSyncer) loop() {
	// On the node's wake-up grid (wakegrid), as the writer clock.
	t := time.NewTimer(wakegrid.Until(s.interval))
	defer t.Stop()
	for {
		<-t.C
		if !s.pass() {
			return
		}
		t.Reset(wakegrid.Until(s.interval))
	}
}

// pass syncs the file systems of the directories marked since the last
// pass, each once; false (and the goroutine ends) when none was marked.
func (s *recSyncer) pass() bool {
	s.mu.Lock()
	dirty := s.dirty
	s.dirty = nil
	if len(dirty) == 0 {
		s.running = false
		s.mu.Unlock()
		s.syncDirs(nil) // closes the directories held open
		return false
	}
	s.passes++
	s.mu.Unlock()
	s.syncDirs(dirty)
	return true
}

// flush syncs now, on the caller's goroutine, what was marked since the
// last pass: the server's last step at shutdown, so that audio written in
// the final interval (and the headers that closing files rewrote) does not
// wait for a pass that may never come. The goroutine, if running, finds
// nothing left at its next pass and ends.
func (s *recSyncer) flush() {
	if s.interval <= 0 {
		return
	}
	s.mu.Lock()
	dirty := s.dirty
	s.dirty = nil
	if len(dirty) > 0 {
		s.passes++
	}
	s.mu.Unlock()
	s.syncDirs(dirty)
}

// syncDir is a directory the syncer holds open.
type syncDir struct {
	f      *os.File
	dev    uint64 // its file system (when devOK)
	devOK  bool
	marked bool // marked in the current pass
}

// syncDirs syncs the file system of each directory once, through the
// descriptors it keeps; then it closes those of the directories that were
// not marked in this pass.
func (s *recSyncer) syncDirs(dirty map[string]struct{}) {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	done := map[uint64]bool{} // file systems synced in this pass
	for dir := range dirty {
		d := s.dirs[dir]
		if d == nil {
			f, err := os.Open(dir)
			if err != nil {
				s.log.Error("recording: syncing the recordings' file system failed; audio of the last seconds may not survive a power cut",
					"dir", dir, "err", err)
				continue
			}
			d = &syncDir{f: f}
			d.dev, d.devOK = fsID(f)
			if s.dirs == nil {
				s.dirs = map[string]*syncDir{}
			}
			s.dirs[dir] = d
		}
		d.marked = true
		if d.devOK && done[d.dev] {
			continue
		}
		if err := s.syncFS(d.f); err != nil {
			s.log.Error("recording: syncing the recordings' file system failed; audio of the last seconds may not survive a power cut",
				"dir", dir, "err", err)
			continue
		}
		if d.devOK {
			done[d.dev] = true
		}
	}
	for dir, d := range s.dirs {
		if !d.marked {
			d.f.Close()
			delete(s.dirs, dir)
		}
		d.marked = false
	}
}

// writerClock wakes every recording's writer on one shared tick (each
// writerTick), instead of a ticker per recording: the writers then run
// back to back after one wake-up of the process, not each after its own
// (on a VM a wake-up from idle costs more than what a writer does). With
// a Poller (poller set) the clock has no timer of its own: it ticks from
// the Poller's rounds (AddRoundFunc), so the writers are woken by the
// same wake-up that reads the packets (four wake-ups of the process a
// second fewer, each of which, on this VM, also woke the runtime's
// monitor thread).
type writerClock struct {
	poller  *rtp.Poller // nil: a ticker goroutine
	mu      sync.Mutex
	queues  map[*recQueue]struct{}
	running bool
	remove_ func() // stops the Poller's calls (poller set)
	// aligned: ticks fall on the writerTick grid, the wake-ups that read
	// the relaxed sockets of recorded calls (relax.go).
	aligned bool
	last    atomic.Int64 // monotonic ns of the last tick from the Poller
}

// add makes the clock wake q's writer each tick until remove.
func (c *writerClock) add(q *recQueue) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.queues == nil {
		c.queues = map[*recQueue]struct{}{}
	}
	c.queues[q] = struct{}{}
	if c.running {
		return
	}
	c.running = true
	if c.poller != nil {
		c.last.Store(int64(time.Since(clockEpoch)))
		c.remove_ = c.poller.AddRoundFunc(c.fromRound)
		return
	}
	go c.loop()
}

func (c *writerClock) remove(q *recQueue) {
	c.mu.Lock()
	delete(c.queues, q)
	c.mu.Unlock()
}

// clockEpoch is the origin of writerClock.last.
var clockEpoch = time.Now()

// fromRound ticks when a writerTick has passed since the last tick (less
// half a read interval, so that rounds every 100 ms tick every 200 ms
// rather than every 300). The Poller calls it after each round, from any
// of its workers.
//
// Aligned, it ticks only in the first read interval of each writerTick of
// the wall clock (the wake-up that reads the relaxed sockets, right after
// their reads): what a relaxed socket held is written at once. Rounds late
// by a read interval (a starved process) tick after 2 writerTicks anyway.
func (c *writerClock) fromRound() {
	now := int64(time.Since(clockEpoch))
	last := c.last.Load()
	if time.Duration(now-last) < writerTick-50*time.Millisecond {
		return
	}
	if c.aligned && time.Duration(now-last) < 2*writerTick && time.Duration(time.Now().UnixNano()%int64(writerTick)) >= c.poller.SlowInterval() {
		return // (a worker late by a read interval or more ticks anyway)
	}
	if !c.last.CompareAndSwap(last, now) {
		return
	}
	c.tick()
}

// loop ticks until no writer is left.
func (c *writerClock) loop() {
	// On the node's wake-up grid (wakegrid): its ticks fall on RTP poller
	// reads, in the same wake-up of the process.
	t := time.NewTimer(wakegrid.Until(writerTick))
	defer t.Stop()
	for range t.C {
		if !c.tick() {
			return
		}
		t.Reset(wakegrid.Until(writerTick))
	}
}

// tick wakes every writer and lets the pool check for workers stuck in
// a write; false (and the clock stops) when there is no writer.
func (c *writerClock) tick() bool {
	recWriters.checkStuck()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queues) == 0 {
		c.running = false
		if c.remove_ != nil {
			c.remove_()
			c.remove_ = nil
		}
		return false
	}
	for q := range c.queues {
		q.signalBy(true)
	}
	return true
}
