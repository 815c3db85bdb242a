package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapedeck/tapedeck/internal/gopool"
)

// Group commit (SQLite). A recorded call writes two rows: its recording's
// live row when it starts and its final row with the call's CDR when it
// hangs up. Each was a transaction of its own, and each commit appends to
// the WAL one frame per page it changed: the table's and every index's
// (13 pages for a live row: the recordings table has eleven indexes). Rows
// written together sit together — the same right-most leaves of the table
// and of its date-ordered indexes, the same account count — so one commit
// for several calls' rows writes those pages once: with the rows of three
// calls per commit a call's rows cost about 12 pages instead of 27, and
// their commits a third (RESULTS.md, cat13).
//
// Writes go through commitGroup.do. A write that its caller lets wait
// (WithCommitDelay: a dialplan recording's live row, which nobody is
// answered after and only its RecordingStarted follows) waits up to the window for others to
// share its commit, but only while such writes are arriving (the previous
// one came within the window); any other write commits at once, taking
// along whatever is waiting. A write of a shared commit that fails is
// rolled back alone and returns its error, the others commit: the batch
// runs without savepoints, and only when one of its writes fails is it
// rolled back and run again with a savepoint per write (commitPlain). A write returns once its commit is done: a row
// is as durable as before when its caller hears of it. One writer's
// deadline ends no other's write: the shared transaction lasts until the
// latest of theirs, and a write whose deadline passes before its turn in
// it is left out, its writer told so at its deadline (commit).

// commitDelayKey marks a context whose write may wait for others.
type commitDelayKey struct{}

// WithCommitDelay returns a context under which a catalog write of a
// recording's row may wait (on SQLite, at most the store's group-commit
// window, 40 ms) for other calls' rows to share its commit. Use it only for
// writes that nothing is answered after at once (a recording's live row
// that no API call waits for); not for a hangup's final row, which
// RecordingFinished, StasisEnd and ChannelDestroyed follow. The others
// commit at once, taking the waiting ones along.
func WithCommitDelay(ctx context.Context) context.Context {
	return context.WithValue(ctx, commitDelayKey{}, true)
}

// CommitDelayed reports whether ctx comes from WithCommitDelay.
func CommitDelayed(ctx context.Context) bool {
	v, _ := ctx.Value(commitDelayKey{}).(bool)
	return v
}

// groupWindow is how long a write that may wait waits for others at most.
// At loadgen's 50 calls a second (a call's start or end every 20 ms) it
// gathers two or three rows per commit; a delayed live row's
// RecordingStarted waits as long.
const groupWindow = 40 * time.Millisecond

// groupMax bounds the writes of one commit.
const groupMax = 32

type commitJob struct {
	ctx    context.Context
	run    func(ctx context.Context, tx *sql.Tx) error
	linger bool
	at     time.Time
	// state: jobQueued until the leader takes it (its statements are
	// about to run in a transaction) or its writer drops it (its context
	// ended first): one of the two, never both (see commit).
	state atomic.Int32
	err   error
	done  chan struct{}
}

// A job's states.
const (
	jobQueued  int32 = iota
	jobTaken         // the leader's: it tells the writer the outcome
	jobDropped       // its writer's, who went away with its own error
	jobSettled       // taken, and told its outcome
)

// take makes j the leader's, unless its writer dropped it.
func (j *commitJob) take() bool {
	return j.state.CompareAndSwap(jobQueued, jobTaken) || j.state.Load() == jobTaken
}

// settle tells the writer of a job taken its outcome: err, unless it has
// an error of its own.
func (j *commitJob) settle(err error) {
	if j.err == nil {
		j.err = err
	}
	j.state.Store(jobSettled)
	close(j.done)
}

type commitGroup struct {
	db     *sql.DB
	window time.Duration

	mu      sync.Mutex
	jobs    []*commitJob
	eager   int       // queued jobs that do not wait
	leading bool      // a leader is running commits
	last    time.Time // when the previous job arrived
	wake    chan struct{}

	// commits counts the transactions committed (tests).
	commits int64

	// The savepoint statements, prepared once (by the leader, before its
	// transaction: the writer connection is then the transaction's).
	sp, rollback, release *sql.Stmt
}

// prepare prepares the savepoint statements if they are not yet. Those
// prepared before one that fails are closed: the next shared commit
// prepares the three again.
func (g *commitGroup) prepare(ctx context.Context) error {
	if g.release != nil {
		return nil
	}
	var stmts [3]*sql.Stmt
	for i, q := range [...]string{"SAVEPOINT w", "ROLLBACK TO w", "RELEASE w"} {
		st, err := g.db.PrepareContext(ctx, q)
		if err != nil {
			for _, st := range stmts[:i] {
				_ = st.Close()
			}
			return err
		}
		stmts[i] = st
	}
	g.sp, g.rollback, g.release = stmts[0], stmts[1], stmts[2]
	return nil
}

func newCommitGroup(db *sql.DB, window time.Duration) *commitGroup {
	return &commitGroup{db: db, window: window, wake: make(chan struct{}, 1)}
}

// do runs fn in a write transaction, possibly shared with other writes,
// and returns fn's error or the commit's. Statements fn uses must be
// prepared before do (tx.StmtContext): the writer connection is the
// transaction's.
func (g *commitGroup) do(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	j := &commitJob{ctx: ctx, run: fn, at: time.Now(), done: make(chan struct{})}
	g.mu.Lock()
	j.linger = g.window > 0 && CommitDelayed(ctx) && j.at.Sub(g.last) < g.window
	g.last = j.at
	g.jobs = append(g.jobs, j)
	if !j.linger {
		g.eager++
	}
	if !j.linger || len(g.jobs) >= groupMax {
		select {
		case g.wake <- struct{}{}:
		default:
		}
	}
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if lead {
		// The caller commits (no hand-over when nothing else is
		// queued); once its own write is done, a kept goroutine
		// commits what came meanwhile.
		if g.lead(j) {
			gopool.Go(func() { g.lead(nil) })
		}
	}
	select {
	case <-j.done:
		return j.err
	case <-ctx.Done():
		if j.state.CompareAndSwap(jobQueued, jobDropped) {
			// Not taken: nothing of it is written.
			return fmt.Errorf("meta(sqlite): the write ended while it waited for a shared commit: %w", ctx.Err())
		}
		<-j.done // taken: its statements run, and it hears the outcome
		return j.err
	}
}

// lead commits batches until the queue is empty, or (own != nil) until
// own is done: it then reports whether jobs are left to lead.
func (g *commitGroup) lead(own *commitJob) (more bool) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		g.mu.Lock()
		for len(g.jobs) > 0 && g.eager == 0 && len(g.jobs) < groupMax {
			wait := time.Until(g.jobs[0].at.Add(g.window))
			if wait <= 0 {
				break
			}
			g.mu.Unlock()
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-timer.C:
			case <-g.wake:
				timer.Stop() // (no stale tick is delivered after Stop)
			}
			g.mu.Lock()
		}
		if len(g.jobs) == 0 {
			g.leading = false
			g.mu.Unlock()
			return false
		}
		n := min(len(g.jobs), groupMax)
		batch := append([]*commitJob(nil), g.jobs[:n]...)
		g.jobs = append(g.jobs[:0], g.jobs[n:]...)
		for _, j := range batch {
			if !j.linger {
				g.eager--
			}
		}
		// A wake-up for jobs of this batch is spent.
		select {
		case <-g.wake:
		default:
		}
		g.mu.Unlock()
		g.commit(batch)
		if own != nil && isDone(own) {
			g.mu.Lock()
			more = len(g.jobs) > 0
			if !more {
				g.leading = false
			}
			g.mu.Unlock()
			return more
		}
	}
}

func isDone(j *commitJob) bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// commit runs batch in one transaction and tells each job its result:
// when there are several, first without savepoints (commitPlain), and,
// when one fails, again with each job in a savepoint of its own.
//
// The transaction is the batch's, not any one writer's: it ends by the
// latest of their deadlines (none if one of them has none), and not when
// a writer goes away, so that a short deadline (a hangup's) fails no other
// writer's rows. A job is taken at its turn, once the transaction is open:
// one whose writer's context ended before is not written, and its writer
// hears its own error (do drops a job still queued when its context ends,
// so the writer need not wait for the transaction); one taken hears the
// transaction's outcome, however long its commit takes after its
// statements ran.
func (g *commitGroup) commit(batch []*commitJob) {
	live := batch[:0:0]
	var dl time.Time
	unbounded := false
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			if j.take() {
				j.settle(err)
			}
			continue
		}
		live = append(live, j)
		if d, ok := j.ctx.Deadline(); !ok {
			unbounded = true
		} else if d.After(dl) {
			dl = d
		}
	}
	if len(live) == 0 {
		return
	}
	ctx := context.WithoutCancel(live[0].ctx)
	if !unbounded {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl)
		defer cancel()
	}
	// finish tells the jobs not yet told (and not dropped) err.
	finish := func(err error) {
		for _, j := range live {
			if j.state.Load() != jobSettled && j.take() {
				j.settle(err)
			}
		}
	}
	shared := len(live) > 1
	if shared {
		if err := g.prepare(ctx); err != nil {
			finish(fmt.Errorf("meta(sqlite): savepoints: %w", err))
			return
		}
	}
	if shared && g.commitPlain(ctx, live, finish) {
		return
	}
	tx, err := g.db.BeginTx(ctx, nil)
	if err != nil {
		finish(fmt.Errorf("meta(sqlite): begin: %w", err))
		return
	}
	var sp, rollback, release *sql.Stmt
	if shared {
		sp, rollback, release = tx.StmtContext(ctx, g.sp), tx.StmtContext(ctx, g.rollback), tx.StmtContext(ctx, g.release)
	}
	for _, j := range live {
		if !j.take() {
			continue // dropped by its writer meanwhile
		}
		if err := j.ctx.Err(); err != nil {
			j.settle(err)
			continue
		}
		if !shared {
			if j.err = j.run(ctx, tx); j.err != nil {
				_ = tx.Rollback()
				finish(nil)
				return
			}
			continue
		}
		if _, err := sp.ExecContext(ctx); err != nil {
			_ = tx.Rollback()
			finish(fmt.Errorf("meta(sqlite): savepoint: %w", err))
			return
		}
		if j.err = j.run(ctx, tx); j.err != nil {
			if _, err := rollback.ExecContext(ctx); err != nil {
				_ = tx.Rollback()
				finish(errors.Join(errors.New("meta(sqlite): the shared commit was lost"), err))
				return
			}
		}
		if _, err := release.ExecContext(ctx); err != nil {
			_ = tx.Rollback()
			finish(fmt.Errorf("meta(sqlite): release: %w", err))
			return
		}
	}
	finish(commitErr(tx.Commit()))
	g.count()
}

// commitPlain runs a shared batch as commit does, but without a savepoint
// per write: it reports whether the batch is done (committed, or every
// job told why not). When a write fails it rolls the whole transaction
// back, forgets every outcome and returns false: commit then runs the
// batch again, each write in its own savepoint, so that the failed one
// is rolled back alone. A savepoint per write cost two statements and
// kept SQLite's statement sub-journal open across the write's statements:
// the pages a write changes were copied to it (a live row's 13 pages,
// a final row's and its CDR's) and, past 64 KiB, to a temporary file
// opened, written and closed at each commit (RESULTS.md, call13).
// Writes rarely fail, so the plain run is the one that commits.
func (g *commitGroup) commitPlain(ctx context.Context, live []*commitJob, finish func(error)) (done bool) {
	tx, err := g.db.BeginTx(ctx, nil)
	if err != nil {
		finish(fmt.Errorf("meta(sqlite): begin: %w", err))
		return true
	}
	for _, j := range live {
		if !j.take() {
			continue // dropped by its writer meanwhile
		}
		if err := j.ctx.Err(); err != nil {
			j.settle(err)
			continue
		}
		if j.err = j.run(ctx, tx); j.err != nil {
			_ = tx.Rollback()
			for _, j := range live {
				if j.state.Load() == jobTaken {
					j.err = nil
				}
			}
			return false
		}
	}
	finish(commitErr(tx.Commit()))
	g.count()
	return true
}

func commitErr(err error) error {
	if err != nil {
		return fmt.Errorf("meta(sqlite): commit: %w", err)
	}
	return nil
}

// writeTx runs fn in a write transaction: on SQLite through the commit
// group (shared with other writes; see WithCommitDelay), elsewhere alone.
func (s *sqlStore) writeTx(ctx context.Context, what string, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if s.group != nil {
		return s.group.do(ctx, fn)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.mapErr(err, what)
	}
	if err := fn(ctx, tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return s.mapErr(tx.Commit(), what)
}

func (g *commitGroup) count() {
	g.mu.Lock()
	g.commits++
	g.mu.Unlock()
}
