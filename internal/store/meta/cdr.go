package meta

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// CDR is one call leg's detail record, written when it ends (migration
// 00006), one per channel (ChannelID is the key); Sid is the call's
// CallSid, shared by its legs.
type CDR struct {
	Sid         string
	AccountSid  string
	CallID      string // SIP Call-ID
	ChannelID   string // ARI channel id
	From, To    string
	Direction   string // inbound, outbound-api
	Status      string // completed, no-answer, busy, failed, canceled (Restcomm's Call statuses)
	StartTime   time.Time
	AnswerTime  time.Time // zero: never answered
	EndTime     time.Time
	Duration    float64 // seconds from start to end
	Billsec     float64 // seconds from answer to end
	Cause       int     // Q.850
	CauseText   string
	RTPReceived int64
	RTPLost     int64
	JitterMs    float64
	Node        string
}

// CDRQuery selects one page of an account's CDRs, newest first.
type CDRQuery struct {
	AccountSid string // required
	Offset     int
	Limit      int // <= 0: DefaultPageSize; capped at MaxPageSize
}

// CDRs stores call detail records. Every Store of this package implements
// it.
type CDRs interface {
	// PutCDR inserts the record (or replaces the one of its ChannelID).
	PutCDR(ctx context.Context, c CDR) error
	// PutRecordingCDR is PutRecording of r and PutCDR of c in one
	// transaction (a recording ended by its call's hangup and that call's
	// record: one commit for both); when it fails neither is written.
	PutRecordingCDR(ctx context.Context, r Recording, c CDR) error
	// ListCDRs returns one page and the number of the account's records.
	ListCDRs(ctx context.Context, q CDRQuery) ([]CDR, int, error)
}

var _ CDRs = (*sqlStore)(nil)

const cdrCols = `sid, account_sid, call_id, channel_id, from_number, to_number, direction, status, start_time, answer_time, end_time, duration, billsec, cause, cause_text, rtp_received, rtp_lost, jitter_ms, node`

// cdrUpsert replaces the record of the same channel in one statement (one
// commit on its own; a DELETE and an INSERT were two).
// cdrColCount is how many columns (and cdrArgs) a CDR has.
const cdrColCount = 19

const cdrUpsert = `INSERT INTO cdr (` + cdrCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
ON CONFLICT (channel_id) DO UPDATE SET sid = excluded.sid, account_sid = excluded.account_sid, call_id = excluded.call_id,
  from_number = excluded.from_number, to_number = excluded.to_number, direction = excluded.direction, status = excluded.status,
  start_time = excluded.start_time, answer_time = excluded.answer_time, end_time = excluded.end_time, duration = excluded.duration,
  billsec = excluded.billsec, cause = excluded.cause, cause_text = excluded.cause_text, rtp_received = excluded.rtp_received,
  rtp_lost = excluded.rtp_lost, jitter_ms = excluded.jitter_ms, node = excluded.node`

func (s *sqlStore) cdrArgs(c CDR) []any {
	return []any{c.Sid, c.AccountSid, c.CallID, c.ChannelID, c.From, c.To, c.Direction, c.Status,
		s.timeArg(c.StartTime), s.nullTimeArg(c.AnswerTime), s.timeArg(c.EndTime),
		c.Duration, c.Billsec, c.Cause, c.CauseText, c.RTPReceived, c.RTPLost, c.JitterMs, c.Node}
}

// cdrStmt is the prepared upsert (its time parameters cast for the
// dialect once, in newSQLStore).
func (s *sqlStore) cdrStmt(ctx context.Context) (*sql.Stmt, error) {
	return s.rawStmt(ctx, s.w, s.cdrPut)
}

func (s *sqlStore) PutCDR(ctx context.Context, c CDR) error {
	if c.Sid == "" || c.ChannelID == "" {
		return ErrInvalid
	}
	st, err := s.cdrStmt(ctx)
	if err != nil {
		return s.mapErr(err, "cdr")
	}
	_, err = st.ExecContext(ctx, s.cdrArgs(c)...)
	return s.mapErr(err, "cdr")
}

func (s *sqlStore) PutRecordingCDR(ctx context.Context, r Recording, c CDR) (err error) {
	if c.Sid == "" || c.ChannelID == "" {
		return ErrInvalid
	}
	if s.recCDR != "" {
		return s.putRecordingCDROne(ctx, r, c)
	}
	// Prepared before the transaction: SQLite's only writer connection is
	// the transaction's until it ends.
	_, _, err = s.rowStmts(ctx)
	if err != nil {
		return s.mapErr(err, "put recording "+r.Sid)
	}
	cst, err := s.cdrStmt(ctx)
	if err != nil {
		return s.mapErr(err, "cdr")
	}
	return s.writeTx(ctx, "put recording "+r.Sid+" and its call's cdr", func(ctx context.Context, tx *sql.Tx) error {
		if err := s.putRow(ctx, tx, r, time.Now()); err != nil {
			return err
		}
		if _, err := tx.StmtContext(ctx, cst).ExecContext(ctx, s.cdrArgs(c)...); err != nil {
			return s.mapErr(err, "cdr")
		}
		return nil
	})
}

// ClaimReleasingCDRs is implemented by the stores that can drop a
// recording's name claim (ClaimRecordingName) in the statement that writes
// its final row and its call's record (PostgreSQL): a cluster node's
// recorded call then ends with one request to the database, not two.
type ClaimReleasingCDRs interface {
	// PutRecordingCDRReleasing is PutRecordingCDR that also drops node's
	// claim on name, in the same statement. ok is false when the store
	// cannot (SQLite: nothing was written; use PutRecordingCDR and
	// ReleaseRecordingName). released is true when the statement ran (the
	// claim is gone even when err is ErrConflict: the row belongs to
	// another account).
	PutRecordingCDRReleasing(ctx context.Context, r Recording, c CDR, name, node string) (ok, released bool, err error)
}

var _ ClaimReleasingCDRs = (*sqlStore)(nil)

func (s *sqlStore) PutRecordingCDRReleasing(ctx context.Context, r Recording, c CDR, name, node string) (ok, released bool, err error) {
	if s.recCDRRelease == "" {
		return false, false, nil
	}
	if c.Sid == "" || c.ChannelID == "" {
		return true, false, ErrInvalid
	}
	released, err = s.putRecordingCDRStmt(ctx, s.recCDRRelease, r, c, name, node)
	return true, released, err
}

// putRecordingCDROne is PutRecordingCDR as one statement (recCDR).
func (s *sqlStore) putRecordingCDROne(ctx context.Context, r Recording, c CDR) error {
	_, err := s.putRecordingCDRStmt(ctx, s.recCDR, r, c)
	return err
}

// putRecordingCDRStmt runs recCDR or recCDRRelease (extra: the claim's
// name and node); ran is true when the statement ran.
func (s *sqlStore) putRecordingCDRStmt(ctx context.Context, query string, r Recording, c CDR, extra ...any) (ran bool, err error) {
	args, err := s.upsertArgs(r, time.Now())
	if err != nil {
		return false, err
	}
	st, err := s.stmt(ctx, s.w, query)
	if err != nil {
		return false, s.mapErr(err, "put recording "+r.Sid+" and its call's cdr")
	}
	res, err := st.ExecContext(ctx, append(append(args, s.cdrArgs(c)...), extra...)...)
	if err != nil {
		return false, s.mapErr(err, "put recording "+r.Sid+" and its call's cdr")
	}
	if n, err := res.RowsAffected(); err != nil {
		return true, s.mapErr(err, "put recording "+r.Sid+" and its call's cdr")
	} else if n == 0 {
		return true, fmt.Errorf("%w: recording %s belongs to another account", ErrConflict, r.Sid)
	}
	return true, nil
}

func (s *sqlStore) ListCDRs(ctx context.Context, q CDRQuery) ([]CDR, int, error) {
	if q.AccountSid == "" {
		return nil, 0, ErrInvalid
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultPageSize
	}
	limit = min(limit, MaxPageSize)
	var total int
	if err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM cdr WHERE account_sid = $1`), q.AccountSid).Scan(&total); err != nil {
		return nil, 0, s.mapErr(err, "cdr count")
	}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+cdrCols+` FROM cdr WHERE account_sid = $1 ORDER BY start_time DESC, channel_id DESC LIMIT $2 OFFSET $3`),
		q.AccountSid, limit, max(q.Offset, 0))
	if err != nil {
		return nil, 0, s.mapErr(err, "cdr list")
	}
	defer rows.Close()
	var out []CDR
	for rows.Next() {
		var c CDR
		var start, answer, end dbTime
		if err := rows.Scan(&c.Sid, &c.AccountSid, &c.CallID, &c.ChannelID, &c.From, &c.To, &c.Direction, &c.Status,
			&start, &answer, &end, &c.Duration, &c.Billsec, &c.Cause, &c.CauseText, &c.RTPReceived, &c.RTPLost, &c.JitterMs, &c.Node); err != nil {
			return nil, 0, s.mapErr(err, "cdr scan")
		}
		c.StartTime, c.AnswerTime, c.EndTime = start.t, answer.t, end.t
		out = append(out, c)
	}
	return out, total, s.mapErr(rows.Err(), "cdr list")
}
