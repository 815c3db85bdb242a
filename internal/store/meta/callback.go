package meta

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// StatusCallback is where a recording's status goes (Twilio's
// RecordingStatusCallback, …Method and …Event), kept with the recording
// in the catalog (migration 00015) so that any node of a cluster can send
// its final status: the node that settles the recordings of a lost node
// sends their failed callback.
type StatusCallback struct {
	URL    string   `json:"url"`
	Method string   `json:"method"` // POST or GET
	Events []string `json:"events"`
	// Base is the media URL base the recording's URL is made from.
	Base string `json:"base,omitempty"`
	// Track is the audio recorded (Twilio's RecordingTrack).
	Track string `json:"track,omitempty"`
	// Kind is the notification the recording's end sends: empty for
	// Twilio's status callback, RecordCompleted for Ozeki's FinishedUrl.
	Kind string `json:"kind,omitempty"`
	// CallID is the call the notification names (Ozeki's CallId: the
	// channel id), where the row's CallSid is not it.
	CallID string `json:"call_id,omitempty"`
}

// StatusCallbacks stores recordings' status callbacks.
type StatusCallbacks interface {
	// SetStatusCallback keeps the status callback of the recording sid
	// (ErrNotFound without such a row).
	// The notes (its in-progress callback) are queued in the webhook
	// outbox in the same transaction: the callback is kept with its
	// first notification queued, or neither is (a refused or failed
	// insert, a node dying between them), so that nothing the API has
	// answered for lives only in its memory.
	SetStatusCallback(ctx context.Context, sid string, cb StatusCallback, notes ...OutboxItem) error
	// StatusCallback returns the status callback of the recording sid;
	// false when it has none (ErrNotFound without such a row).
	StatusCallback(ctx context.Context, sid string) (StatusCallback, bool, error)
	// NoteLive sets the status (StatusInProgress or StatusPaused) of the
	// live recording name, and its quality when q is not nil (as
	// SetLiveStatus), and queues notes (its paused, resumed or degraded
	// callback) in the same transaction: the row tells what the
	// notifications tell, or neither is written. A recording no longer
	// live (its final row written: its terminal callback already queued)
	// is ErrNotFound, and nothing is queued: no callback after the
	// terminal one.
	NoteLive(ctx context.Context, name string, st Status, q *Quality, notes ...OutboxItem) error
}

func (s *sqlStore) SetStatusCallback(ctx context.Context, sid string, cb StatusCallback, notes ...OutboxItem) (err error) {
	if cb.URL == "" {
		return fmt.Errorf("%w: a status callback without a URL", ErrInvalid)
	}
	b, err := json.Marshal(cb)
	if err != nil {
		return fmt.Errorf("%w: status callback: %v", ErrInvalid, err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.mapErr(err, "set a recording's status callback")
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	res, err := tx.ExecContext(ctx, s.q(`UPDATE recordings SET status_callback = $1 WHERE sid = $2`), string(b), sid)
	if err != nil {
		return s.mapErr(err, "set a recording's status callback")
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.mapErr(err, "set a recording's status callback")
	} else if n == 0 {
		return ErrNotFound
	}
	for _, it := range notes {
		if _, err := s.enqueue(ctx, tx, it); err != nil {
			return fmt.Errorf("set a recording's status callback: queuing its notification: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return s.mapErr(err, "set a recording's status callback")
	}
	return nil
}

func (s *sqlStore) StatusCallback(ctx context.Context, sid string) (StatusCallback, bool, error) {
	var raw string
	err := s.r.QueryRowContext(ctx, s.q(`SELECT status_callback FROM recordings WHERE sid = $1`), sid).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return StatusCallback{}, false, ErrNotFound
	}
	if err != nil {
		return StatusCallback{}, false, s.mapErr(err, "a recording's status callback")
	}
	if raw == "" {
		return StatusCallback{}, false, nil
	}
	var cb StatusCallback
	if err := json.Unmarshal([]byte(raw), &cb); err != nil {
		return StatusCallback{}, false, fmt.Errorf("recording %s: status callback: %w", sid, err)
	}
	return cb, true, nil
}

func (s *sqlStore) NoteLive(ctx context.Context, name string, st Status, q *Quality, notes ...OutboxItem) (err error) {
	if !st.Live() || name == "" {
		return fmt.Errorf("%w: live status %q of %q", ErrInvalid, st, name)
	}
	what := "note live recording " + name
	set, args := "status = $1, date_updated = $2", []any{string(st), s.timeArg(normTime(time.Now()))}
	if q != nil {
		b, err := json.Marshal(q)
		if err != nil {
			return fmt.Errorf("%w: quality: %v", ErrInvalid, err)
		}
		set, args = set+", quality = $3", append(args, string(b))
	}
	args = append(args, name)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.mapErr(err, what)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	res, err := tx.ExecContext(ctx, s.q(`UPDATE recordings SET `+set+` WHERE name = $`+strconv.Itoa(len(args))+` AND status IN ('in-progress', 'paused')`), args...)
	if err != nil {
		return s.mapErr(err, what)
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.mapErr(err, what)
	} else if n == 0 {
		return ErrNotFound
	}
	for _, it := range notes {
		if _, err := s.enqueue(ctx, tx, it); err != nil {
			return fmt.Errorf("%s: queuing its notification: %w", what, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return s.mapErr(err, what)
	}
	return nil
}
