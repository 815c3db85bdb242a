package meta

import (
	"context"
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
	// ListCDRs returns one page and the number of the account's records.
	ListCDRs(ctx context.Context, q CDRQuery) ([]CDR, int, error)
}

var _ CDRs = (*sqlStore)(nil)

const cdrCols = `sid, account_sid, call_id, channel_id, from_number, to_number, direction, status, start_time, answer_time, end_time, duration, billsec, cause, cause_text, rtp_received, rtp_lost, jitter_ms, node`

func (s *sqlStore) PutCDR(ctx context.Context, c CDR) error {
	if c.Sid == "" || c.ChannelID == "" {
		return ErrInvalid
	}
	_, err := s.w.ExecContext(ctx, s.q(`DELETE FROM cdr WHERE channel_id = $1`), c.ChannelID)
	if err != nil {
		return s.mapErr(err, "cdr")
	}
	_, err = s.w.ExecContext(ctx, s.q(`INSERT INTO cdr (`+cdrCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9`+s.d.timeCast+`, $10`+s.d.timeCast+`, $11`+s.d.timeCast+`, $12, $13, $14, $15, $16, $17, $18, $19)`),
		c.Sid, c.AccountSid, c.CallID, c.ChannelID, c.From, c.To, c.Direction, c.Status,
		s.timeArg(c.StartTime), s.nullTimeArg(c.AnswerTime), s.timeArg(c.EndTime),
		c.Duration, c.Billsec, c.Cause, c.CauseText, c.RTPReceived, c.RTPLost, c.JitterMs, c.Node)
	return s.mapErr(err, "cdr")
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
