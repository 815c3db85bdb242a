package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// FinalRows writes a recording's final row with the notifications of its
// end (its Twilio status callback) in one transaction: a node that dies
// between the row and the callback's queuing, or an outbox insert that
// fails, can no longer leave the row final and the callback lost (nothing
// redoes a final row's callback).
type FinalRows interface {
	// PutFinal writes r as PutRecording does, with the call's record c
	// when it is not nil (as PutRecordingCDR: ErrInvalid without its Sid
	// or channel id), and queues notes in the webhook outbox, all in one
	// transaction: all are written or none. The notes are queued only
	// when the row was live (in progress or paused) or not there before
	// the write: writing a row that is already final (a retry of a write
	// that was in fact committed, a row another node settled meanwhile)
	// queues nothing again. It reports whether the notes were queued;
	// when they were, the row's kept status callback (StatusCallbacks) is
	// cleared in the same transaction: its final status is on its way,
	// and whoever reads it afterwards (the node that made the recording)
	// knows not to send it again.
	PutFinal(ctx context.Context, r Recording, c *CDR, notes ...OutboxItem) (bool, error)
}

func (s *sqlStore) PutFinal(ctx context.Context, r Recording, c *CDR, notes ...OutboxItem) (queued bool, err error) {
	if c != nil && (c.Sid == "" || c.ChannelID == "") {
		return false, ErrInvalid
	}
	what := "put recording " + r.Sid + " and its notifications"
	// Prepared before the transaction: SQLite's only writer connection is
	// the transaction's until it ends.
	_, _, err = s.rowStmts(ctx)
	if err != nil {
		return false, s.mapErr(err, what)
	}
	var cst *sql.Stmt
	if c != nil {
		if cst, err = s.cdrStmt(ctx); err != nil {
			return false, s.mapErr(err, "cdr")
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return false, s.mapErr(err, what)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	live := true
	if len(notes) > 0 {
		// The row as it is before this write, locked until the commit
		// (PostgreSQL; SQLite's writer is this transaction alone), so that
		// a node settling it meanwhile (SettleLost) waits for it or wins.
		lock := ""
		if s.d.name != "sqlite" {
			lock = " FOR UPDATE"
		}
		var st string
		err := tx.QueryRowContext(ctx, s.q(`SELECT status FROM recordings WHERE sid = $1`+lock), r.Sid).Scan(&st)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return false, s.mapErr(err, what)
		default:
			live = Status(st).Live()
		}
	}
	if err := s.putRow(ctx, tx, r, time.Now()); err != nil {
		return false, err
	}
	if c != nil {
		if _, err := tx.StmtContext(ctx, cst).ExecContext(ctx, s.cdrArgs(*c)...); err != nil {
			return false, s.mapErr(err, "cdr")
		}
	}
	if live && len(notes) > 0 {
		for _, it := range notes {
			if _, err := s.enqueue(ctx, tx, it); err != nil {
				return false, fmt.Errorf("%s: queuing its notification: %w", what, err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE recordings SET status_callback = '' WHERE sid = $1`), r.Sid); err != nil {
			return false, s.mapErr(err, what)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, s.mapErr(err, what)
	}
	return live && len(notes) > 0, nil
}
