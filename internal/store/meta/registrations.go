package meta

import (
	"context"
	"fmt"
	"time"
)

// Registration is one registered SIP contact of a user (the location
// store of the registrar).
type Registration struct {
	Username  string
	Contact   string
	Expires   time.Time
	CallID    string
	CSeq      int64
	Source    string
	Transport string
	UserAgent string
	// Node is the node that took the REGISTER.
	Node string
}

// Registrations is the SIP location store in the catalog database, so that
// several nodes can share it. The SQL stores implement it; a Store that
// does not has no location store (assert with a type switch).
type Registrations interface {
	// ReplaceRegistrations makes sets[username] each username's
	// registrations (none: the user is unregistered), all in one
	// transaction.
	ReplaceRegistrations(ctx context.Context, sets map[string][]Registration) error
	// ActiveRegistrations lists the registrations that have not expired at
	// now, by username then contact.
	ActiveRegistrations(ctx context.Context, now time.Time) ([]Registration, error)
	// PruneRegistrations deletes those expired at now and says how many.
	PruneRegistrations(ctx context.Context, now time.Time) (int64, error)
}

var _ Registrations = (*sqlStore)(nil)

const regCols = `username, contact, expires, call_id, cseq, source, transport, user_agent, node`

func (s *sqlStore) ReplaceRegistrations(ctx context.Context, sets map[string][]Registration) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.mapErr(err, "registrations")
	}
	defer tx.Rollback()
	del, err := tx.PrepareContext(ctx, s.q(`DELETE FROM registrations WHERE username = $1`))
	if err != nil {
		return s.mapErr(err, "registrations")
	}
	defer del.Close()
	ins, err := tx.PrepareContext(ctx, s.q(`INSERT INTO registrations (`+regCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`))
	if err != nil {
		return s.mapErr(err, "registrations")
	}
	defer ins.Close()
	for username, rs := range sets {
		if username == "" {
			return fmt.Errorf("%w: empty username", ErrInvalid)
		}
		if _, err := del.ExecContext(ctx, username); err != nil {
			return s.mapErr(err, "registrations")
		}
		for _, r := range rs {
			if r.Username != username || r.Contact == "" {
				return fmt.Errorf("%w: registration %q/%q for user %q", ErrInvalid, r.Username, r.Contact, username)
			}
			_, err := ins.ExecContext(ctx, r.Username, r.Contact, s.timeArg(r.Expires), r.CallID, r.CSeq, r.Source, r.Transport, r.UserAgent, r.Node)
			if err != nil {
				return s.mapErr(err, "registrations")
			}
		}
	}
	return s.mapErr(tx.Commit(), "registrations")
}

func (s *sqlStore) ActiveRegistrations(ctx context.Context, now time.Time) ([]Registration, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+regCols+` FROM registrations WHERE expires > $1 ORDER BY username, contact`), s.timeArg(now))
	if err != nil {
		return nil, s.mapErr(err, "registrations")
	}
	defer rows.Close()
	var out []Registration
	for rows.Next() {
		var r Registration
		var exp dbTime
		if err := rows.Scan(&r.Username, &r.Contact, &exp, &r.CallID, &r.CSeq, &r.Source, &r.Transport, &r.UserAgent, &r.Node); err != nil {
			return nil, s.mapErr(err, "registrations")
		}
		r.Expires = exp.t
		out = append(out, r)
	}
	return out, s.mapErr(rows.Err(), "registrations")
}

func (s *sqlStore) PruneRegistrations(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, s.q(`DELETE FROM registrations WHERE expires <= $1`), s.timeArg(now))
	if err != nil {
		return 0, s.mapErr(err, "registrations")
	}
	return res.RowsAffected()
}
