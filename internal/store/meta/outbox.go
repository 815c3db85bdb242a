package meta

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// OutboxItem is one outgoing notification (a webhook POST).
type OutboxItem struct {
	ID          int64
	Node        string // the node that sends it
	Kind        string // e.g. RecordCompleted
	CallID      string
	URL         string
	ContentType string // "": a GET, its parameters in URL (IsGET)
	Body        []byte
	Status      string // pending, delivered, failed
	Attempts    int
	NextAt      time.Time
	Created     time.Time
	LastError   string
	// ClaimedBy and ClaimUntil, when set at Enqueue, store the item
	// already claimed (a sender that delivers it at once from memory); the
	// item is then not due before ClaimUntil. Read back as stored (empty
	// and zero when unclaimed).
	ClaimedBy  string
	ClaimUntil time.Time
	// OrderKey, when set, delivers the items of one key one at a time, in
	// the order they were stored (by id): Claim does not take an item
	// while an older one of its key is pending (in flight, or waiting for
	// its retry); one given up lets the next go. A Twilio recording's
	// status callbacks are ordered by their recording.
	OrderKey string
}

// IsGET reports whether the notification is sent as a GET (no content
// type, no body: its parameters are in its URL).
func (it OutboxItem) IsGET() bool { return it.ContentType == "" && len(it.Body) == 0 }

// Outbox states.
const (
	OutboxPending   = "pending"
	OutboxDelivered = "delivered"
	OutboxFailed    = "failed"
)

// Outbox is the webhook sender's durable queue, kept in the catalog
// database (migration 00005). Every Store of this package implements it.
type Outbox interface {
	// Enqueue stores a pending item and returns its id. A zero NextAt is
	// now. With ClaimedBy set the item is stored claimed by it until
	// ClaimUntil, and due then (NextAt is ignored).
	Enqueue(ctx context.Context, it OutboxItem) (int64, error)
	// ReleaseClaims makes the pending items claimed by claimant due now and
	// unclaimed (a sender that stopped, or restarted after dying, with
	// items it had claimed but not settled); it returns how many.
	ReleaseClaims(ctx context.Context, claimant string, now time.Time) (int64, error)
	// Due lists up to limit of node's pending items whose time has come,
	// oldest first.
	Due(ctx context.Context, node string, now time.Time, limit int) ([]OutboxItem, error)
	// NextDue is the earliest NextAt of node's pending items (ok false when
	// there are none).
	NextDue(ctx context.Context, node string) (t time.Time, ok bool, err error)
	// Settle records an attempt: status delivered, failed (given up) or
	// pending again at next.
	Settle(ctx context.Context, id int64, status string, attempts int, next time.Time, lastErr string) error
	// SettleDelivered marks items delivered in one statement (attempts
	// incremented).
	SettleDelivered(ctx context.Context, ids []int64, at time.Time) error
	// OutboxItem reads one item.
	OutboxItem(ctx context.Context, id int64) (OutboxItem, error)
	// PendingCount counts node's pending items.
	PendingCount(ctx context.Context, node string) (int, error)
	// Heartbeat records that node is alive at at (webhook_nodes).
	Heartbeat(ctx context.Context, node string, at time.Time) error
	// Claim takes up to limit due pending items for node to deliver, until
	// now+lease: node's own, and those of nodes not seen since deadBefore
	// (a node that died with notifications queued). An item claimed by
	// another node whose claim has not expired is never taken, so two
	// nodes never deliver one item at once. Settle and SettleDelivered
	// release the claim. Oldest first.
	Claim(ctx context.Context, node string, now time.Time, lease time.Duration, deadBefore time.Time, limit int) ([]OutboxItem, error)
	// NextClaimable is the earliest NextAt of the pending items Claim could
	// take for node (ok false when there are none).
	NextClaimable(ctx context.Context, node string, deadBefore time.Time) (t time.Time, ok bool, err error)
}

var _ Outbox = (*sqlStore)(nil)

const outboxCols = `id, node, kind, call_id, url, content_type, body, status, attempts, next_at, created, last_error, claimed_by, claim_until, order_key`

// The outbox's statements run for every notification: they are prepared
// once per database (parsing one costs SQLite more than running it), and
// are given written with $n placeholders (rebound once, when prepared).
func (s *sqlStore) outboxExec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := s.rawStmt(ctx, s.w, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (s *sqlStore) outboxQuery(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.rawStmt(ctx, s.w, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (s *sqlStore) outboxRow(ctx context.Context, query string, args ...any) rowScanner {
	st, err := s.rawStmt(ctx, s.w, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

type rowScanner interface{ Scan(...any) error }

// errRow is a row whose Scan fails with err (its statement did not prepare).
type errRow struct{ err error }

func (e errRow) Scan(...any) error { return e.err }

func scanOutbox(row rowScanner) (OutboxItem, error) {
	var it OutboxItem
	var next, created, claimUntil dbTime
	err := row.Scan(&it.ID, &it.Node, &it.Kind, &it.CallID, &it.URL, &it.ContentType, &it.Body, &it.Status,
		&it.Attempts, &next, &created, &it.LastError, &it.ClaimedBy, &claimUntil, &it.OrderKey)
	it.NextAt, it.Created, it.ClaimUntil = next.t, created.t, claimUntil.t
	return it, err
}

func (s *sqlStore) Enqueue(ctx context.Context, it OutboxItem) (int64, error) {
	return s.enqueue(ctx, nil, it)
}

// enqueue is Enqueue, inside tx when it is not nil (a row written with its
// notifications: SettleLost).
func (s *sqlStore) enqueue(ctx context.Context, tx *sql.Tx, it OutboxItem) (int64, error) {
	row := func(query string, args ...any) rowScanner {
		if tx == nil {
			return s.outboxRow(ctx, query, args...)
		}
		// Not prepared: preparing on s.w would wait for the connection
		// the transaction holds (SQLite's only writer).
		return tx.QueryRowContext(ctx, s.q(query), args...)
	}
	now := time.Now()
	if it.NextAt.IsZero() {
		it.NextAt = now
	}
	var id int64
	var err error
	if it.ClaimedBy != "" {
		if it.OrderKey != "" {
			// Claimed at once, it could pass an older one of its key.
			return 0, fmt.Errorf("%w: an ordered notification (%s) stored claimed", ErrInvalid, it.OrderKey)
		}
		err = row(`INSERT INTO webhook_outbox (node, kind, call_id, url, content_type, body, status, attempts, next_at, created, last_error, claimed_by, claim_until)
VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7`+s.d.timeCast+`, $8`+s.d.timeCast+`, '', $9, $7`+s.d.timeCast+`) RETURNING id`,
			it.Node, it.Kind, it.CallID, it.URL, it.ContentType, it.Body, s.timeArg(it.ClaimUntil), s.timeArg(now), it.ClaimedBy).Scan(&id)
	} else {
		err = row(`INSERT INTO webhook_outbox (node, kind, call_id, url, content_type, body, status, attempts, next_at, created, last_error, order_key)
VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7`+s.d.timeCast+`, $8`+s.d.timeCast+`, '', $9) RETURNING id`,
			it.Node, it.Kind, it.CallID, it.URL, it.ContentType, it.Body, s.timeArg(it.NextAt), s.timeArg(now), it.OrderKey).Scan(&id)
	}
	if err != nil {
		return 0, s.mapErr(err, "outbox enqueue")
	}
	return id, nil
}

func (s *sqlStore) Due(ctx context.Context, node string, now time.Time, limit int) ([]OutboxItem, error) {
	rows, err := s.outboxQuery(ctx, (`SELECT ` + outboxCols + ` FROM webhook_outbox
WHERE status = 'pending' AND node = $1 AND next_at <= $2` + s.d.timeCast + ` ORDER BY next_at, id LIMIT $3`),
		node, s.timeArg(now), limit)
	if err != nil {
		return nil, s.mapErr(err, "outbox due")
	}
	defer rows.Close()
	var out []OutboxItem
	for rows.Next() {
		it, err := scanOutbox(rows)
		if err != nil {
			return nil, s.mapErr(err, "outbox due")
		}
		out = append(out, it)
	}
	return out, s.mapErr(rows.Err(), "outbox due")
}

func (s *sqlStore) NextDue(ctx context.Context, node string) (time.Time, bool, error) {
	var t dbTime
	var n int
	err := s.outboxRow(ctx, (`SELECT COUNT(*), MIN(next_at) FROM webhook_outbox WHERE status = 'pending' AND node = $1`), node).Scan(&n, &t)
	if err != nil {
		return time.Time{}, false, s.mapErr(err, "outbox next")
	}
	return t.t, n > 0, nil
}

func (s *sqlStore) Settle(ctx context.Context, id int64, status string, attempts int, next time.Time, lastErr string) error {
	_, err := s.outboxExec(ctx, (`UPDATE webhook_outbox SET status = $1, attempts = $2, next_at = $3` + s.d.timeCast + `, last_error = $4, claimed_by = '', claim_until = NULL WHERE id = $5`),
		status, attempts, s.timeArg(next), lastErr, id)
	return s.mapErr(err, "outbox settle")
}

func (s *sqlStore) OutboxItem(ctx context.Context, id int64) (OutboxItem, error) {
	it, err := scanOutbox(s.outboxRow(ctx, (`SELECT ` + outboxCols + ` FROM webhook_outbox WHERE id = $1`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return OutboxItem{}, ErrNotFound
	}
	return it, s.mapErr(err, "outbox item")
}

func (s *sqlStore) PendingCount(ctx context.Context, node string) (int, error) {
	var n int
	err := s.outboxRow(ctx, (`SELECT COUNT(*) FROM webhook_outbox WHERE status = 'pending' AND node = $1`), node).Scan(&n)
	return n, s.mapErr(err, "outbox count")
}

func (s *sqlStore) SettleDelivered(ctx context.Context, ids []int64, at time.Time) error {
	for len(ids) > 0 {
		n := min(len(ids), maxSettle)
		if err := s.settleDelivered(ctx, ids[:n], at); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// maxSettle bounds the ids of one settling statement.
const maxSettle = 128

// settleDelivered settles up to maxSettle ids in one statement. The list
// is padded to a power of two with its last id (a repeat in IN changes
// nothing), so that a handful of prepared statements serve every batch.
func (s *sqlStore) settleDelivered(ctx context.Context, ids []int64, at time.Time) error {
	size := 1
	for size < len(ids) {
		size *= 2
	}
	var b strings.Builder
	args := make([]any, 0, size+1)
	args = append(args, s.timeArg(at))
	for i := range size {
		if i > 0 {
			b.WriteString(", ")
		}
		args = append(args, ids[min(i, len(ids)-1)])
		b.WriteString("$" + strconv.Itoa(len(args)))
	}
	_, err := s.outboxExec(ctx, `UPDATE webhook_outbox SET status = 'delivered', attempts = attempts + 1, next_at = $1`+s.d.timeCast+`, last_error = '', claimed_by = '', claim_until = NULL WHERE id IN (`+b.String()+`)`, args...)
	return s.mapErr(err, "outbox settle delivered")
}

func (s *sqlStore) ReleaseClaims(ctx context.Context, claimant string, now time.Time) (int64, error) {
	res, err := s.outboxExec(ctx, `UPDATE webhook_outbox SET claimed_by = '', claim_until = NULL, next_at = $2`+s.d.timeCast+`
WHERE claimed_by = $1 AND status = 'pending'`, claimant, s.timeArg(now))
	if err != nil {
		return 0, s.mapErr(err, "outbox release claims")
	}
	n, err := res.RowsAffected()
	return n, s.mapErr(err, "outbox release claims")
}

func (s *sqlStore) Heartbeat(ctx context.Context, node string, at time.Time) error {
	_, err := s.outboxExec(ctx, (`INSERT INTO webhook_nodes (node, seen) VALUES ($1, $2` + s.d.timeCast + `)
ON CONFLICT (node) DO UPDATE SET seen = excluded.seen`), node, s.timeArg(at))
	return s.mapErr(err, "outbox heartbeat")
}

// claimable is the condition on the items Claim may take ($1 the node, $2
// now, $3 deadBefore). An ordered item waits while an older one of its key
// is pending (OutboxItem.OrderKey), whichever node holds that one.
const claimable = `status = 'pending'
  AND (claimed_by = '' OR claimed_by = $1 OR claim_until IS NULL OR claim_until < $2)
  AND (node = $1 OR node IN (SELECT node FROM webhook_nodes WHERE seen < $3))
  AND (order_key = '' OR NOT EXISTS (SELECT 1 FROM webhook_outbox older
    WHERE older.order_key = webhook_outbox.order_key AND older.order_key <> '' AND older.status = 'pending' AND older.id < webhook_outbox.id))`

func (s *sqlStore) Claim(ctx context.Context, node string, now time.Time, lease time.Duration, deadBefore time.Time, limit int) ([]OutboxItem, error) {
	lock := ""
	if s.d.name == "postgres" {
		// Two nodes taking over the same dead node's items: each skips
		// the rows the other is claiming instead of waiting for them.
		lock = " FOR UPDATE SKIP LOCKED"
	}
	cond := strings.NewReplacer("$2", "$2"+s.d.timeCast, "$3", "$3"+s.d.timeCast).Replace(claimable)
	rows, err := s.outboxQuery(ctx, (`UPDATE webhook_outbox SET claimed_by = $1, claim_until = $4` + s.d.timeCast + `
WHERE id IN (SELECT id FROM webhook_outbox WHERE ` + cond + ` AND next_at <= $2` + s.d.timeCast + `
  ORDER BY next_at, id LIMIT $5` + lock + `)
RETURNING ` + outboxCols),
		node, s.timeArg(now), s.timeArg(deadBefore), s.timeArg(now.Add(lease)), limit)
	if err != nil {
		return nil, s.mapErr(err, "outbox claim")
	}
	defer rows.Close()
	var out []OutboxItem
	for rows.Next() {
		it, err := scanOutbox(rows)
		if err != nil {
			return nil, s.mapErr(err, "outbox claim")
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, s.mapErr(err, "outbox claim")
	}
	slices.SortFunc(out, func(a, b OutboxItem) int {
		if c := a.NextAt.Compare(b.NextAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

func (s *sqlStore) NextClaimable(ctx context.Context, node string, deadBefore time.Time) (time.Time, bool, error) {
	var t dbTime
	var n int
	cond := strings.NewReplacer("$2", "$2"+s.d.timeCast, "$3", "$3"+s.d.timeCast).Replace(claimable)
	// (Claims are left out of the condition here: an item claimed by a
	// live node is due when that claim ends, which is soon enough.)
	err := s.outboxRow(ctx, (`SELECT COUNT(*), MIN(next_at) FROM webhook_outbox WHERE `+cond),
		node, s.timeArg(time.Now().Add(100*365*24*time.Hour)), s.timeArg(deadBefore)).Scan(&n, &t)
	if err != nil {
		return time.Time{}, false, s.mapErr(err, "outbox next claimable")
	}
	return t.t, n > 0, nil
}
