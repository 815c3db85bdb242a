package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Audit is one row of the recordings' audit trail: who did what to which
// recording, and when.
type Audit struct {
	At           time.Time // UTC; zero: now
	AccountSid   string
	RecordingSid string
	Action       string // "delete", "purge"
	Actor        string // the credentials used (an AccountSid, an ARI user)
	API          string // "twilio", "restcomm", "ari", ...
	Remote       string // the client's address
}

// Audit actions.
const (
	AuditDelete = "delete"
)

// deletedCols are recCols as the deleted_recordings table gives them.
var deletedCols = recCols

func (s *sqlStore) SoftDeleteRecording(ctx context.Context, accountSid, sid string, a Audit) (err error) {
	if a.At.IsZero() {
		a.At = time.Now()
	}
	now := normTime(a.At) // deleted_at: when the audit says it was deleted
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.mapErr(err, "begin")
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	// The status becomes deleted; the row keeps everything else.
	cols := strings.Replace(recCols, "status, ", "", 1)
	res, err := tx.ExecContext(ctx, s.q(`INSERT INTO deleted_recordings (`+cols+`, status, deleted_at)
SELECT `+cols+`, 'deleted', $3 FROM recordings WHERE account_sid = $1 AND sid = $2`), accountSid, sid, s.timeArg(now))
	if err != nil {
		return s.mapErr(err, "soft-delete recording")
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.mapErr(err, "soft-delete recording")
	} else if n == 0 {
		return ErrNotFound
	}
	if _, err = tx.ExecContext(ctx, s.q(`DELETE FROM recordings WHERE account_sid = $1 AND sid = $2`), accountSid, sid); err != nil {
		return s.mapErr(err, "soft-delete recording")
	}
	if err = s.insertAudit(ctx, tx, a); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return s.mapErr(err, "commit")
	}
	return nil
}

func (s *sqlStore) insertAudit(ctx context.Context, ex execer, a Audit) error {
	if a.At.IsZero() {
		a.At = time.Now()
	}
	_, err := ex.ExecContext(ctx, s.q(`INSERT INTO recording_audit (at, account_sid, recording_sid, action, actor, api, remote)
VALUES ($1, $2, $3, $4, $5, $6, $7)`), s.timeArg(a.At), a.AccountSid, a.RecordingSid, a.Action, a.Actor, a.API, a.Remote)
	return s.mapErr(err, "audit")
}

func (s *sqlStore) DeletedRecording(ctx context.Context, accountSid, sid string) (Recording, error) {
	r, err := scanRecording(s.r.QueryRowContext(ctx, s.q(`SELECT `+deletedCols+` FROM deleted_recordings WHERE account_sid = $1 AND sid = $2`), accountSid, sid))
	if errors.Is(err, sql.ErrNoRows) {
		return Recording{}, ErrNotFound
	}
	if err != nil {
		return Recording{}, s.mapErr(err, "deleted recording")
	}
	return r, nil
}

func (s *sqlStore) PurgeDeleted(ctx context.Context, before time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, s.q(`DELETE FROM deleted_recordings WHERE deleted_at < $1`), s.timeArg(before))
	if err != nil {
		return 0, s.mapErr(err, "purge deleted recordings")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, s.mapErr(err, "purge deleted recordings")
	}
	return int(n), nil
}

func (s *sqlStore) AuditTrail(ctx context.Context, accountSid, sid string) ([]Audit, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT at, account_sid, recording_sid, action, actor, api, remote
FROM recording_audit WHERE account_sid = $1 AND recording_sid = $2 ORDER BY id`), accountSid, sid)
	if err != nil {
		return nil, s.mapErr(err, "audit trail")
	}
	defer rows.Close()
	var out []Audit
	for rows.Next() {
		var a Audit
		var at dbTime
		if err := rows.Scan(&at, &a.AccountSid, &a.RecordingSid, &a.Action, &a.Actor, &a.API, &a.Remote); err != nil {
			return nil, s.mapErr(err, "audit trail")
		}
		a.At = at.t
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("meta(%s): audit trail: %w", s.d.name, err)
	}
	return out, nil
}
