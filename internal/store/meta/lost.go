package meta

import (
	"context"
	"fmt"
	"time"
)

// NodeLiveness settles the recordings of a node that is gone for good:
// the nodes sharing a catalog say they are alive in webhook_nodes (the
// webhook sender's heartbeats, migration 00012), and the live rows of a
// node silent for too long are settled by another node.
type NodeLiveness interface {
	// LostNodes returns the nodes other than self whose last heartbeat is
	// before before and that still have live (in-progress or paused)
	// recordings.
	LostNodes(ctx context.Context, self string, before time.Time) ([]string, error)
	// SettleLost writes the status, status detail, size, checksum,
	// duration, end reason, node and DateUpdated of the row r.Sid, only while it is
	// still live and made by node from: false when it is not (its node
	// finished it meanwhile, or another node settled it first). The
	// notifications of the change (notes: its status callback) are queued
	// in the webhook outbox in the same transaction, so that the row is
	// settled with its notifications queued, or not at all: a node that
	// dies between the two, or an insert that fails, leaves the row live
	// for the next settling pass, which queues them once. When notes are
	// queued, the row's kept status callback (StatusCallbacks) is cleared
	// in the same transaction, as PutFinal clears it: a recording gets
	// exactly one terminal callback. Should the lost node come back and
	// finish the recording, its final row (PutFinal) still replaces the
	// settled one, so that the recording's real end (its file, size and
	// duration) is what the API shows, but it queues nothing and its API
	// sends nothing: the callback already queued (failed) stays the only
	// terminal one.
	SettleLost(ctx context.Context, r Recording, from string, notes ...OutboxItem) (bool, error)
}

func (s *sqlStore) LostNodes(ctx context.Context, self string, before time.Time) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT node FROM webhook_nodes WHERE seen < $1`+s.d.timeCast+` AND node <> $2
  AND node IN (SELECT node FROM recordings WHERE status IN ('in-progress', 'paused')) ORDER BY node`), s.timeArg(before), self)
	if err != nil {
		return nil, s.mapErr(err, "lost nodes")
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, s.mapErr(err, "lost nodes")
		}
		out = append(out, n)
	}
	return out, s.mapErr(rows.Err(), "lost nodes")
}

func (s *sqlStore) SettleLost(ctx context.Context, r Recording, from string, notes ...OutboxItem) (done bool, err error) {
	if r.DateUpdated.IsZero() {
		r.DateUpdated = time.Now()
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return false, s.mapErr(err, "settle a lost node's recording")
	}
	defer func() {
		if err != nil || !done {
			_ = tx.Rollback()
		}
	}()
	res, err := tx.ExecContext(ctx, s.q(`UPDATE recordings SET status = $1, status_detail = $2, size = $3, sha256 = $4, duration = $5,
  node = $6, date_updated = $7, end_reason = $10 WHERE sid = $8 AND node = $9 AND status IN ('in-progress', 'paused')`),
		string(r.Status), r.StatusDetail, r.Size, r.SHA256, r.Duration, r.Node, s.timeArg(normTime(r.DateUpdated)), r.Sid, from, r.EndReason)
	if err != nil {
		return false, s.mapErr(err, "settle a lost node's recording")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.mapErr(err, "settle a lost node's recording")
	}
	if n != 1 {
		return false, nil
	}
	for _, it := range notes {
		if _, err := s.enqueue(ctx, tx, it); err != nil {
			return false, fmt.Errorf("settle a lost node's recording: queuing its notification: %w", err)
		}
	}
	if len(notes) > 0 {
		// Its final status is on its way: the lost node, should it come
		// back and finish the recording, finds no callback kept and
		// sends none (PutFinal queues nothing for a row already final,
		// and its API sends from memory only a callback still kept).
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE recordings SET status_callback = '' WHERE sid = $1`), r.Sid); err != nil {
			return false, s.mapErr(err, "settle a lost node's recording")
		}
	}
	if err := tx.Commit(); err != nil {
		return false, s.mapErr(err, "settle a lost node's recording")
	}
	return true, nil
}
