package meta

import (
	"context"
	"database/sql"
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

// RegistrationChange is what one REGISTER (or several of one user,
// coalesced) changed: the contacts it bound or refreshed and those it
// removed. A node writes changes, never a user's whole set, so that the
// contacts other nodes hold for the same user survive its writes.
type RegistrationChange struct {
	Username string
	// ClearAll removes every contact of the user, whichever node took
	// it, before Upsert (a REGISTER with Contact: *).
	ClearAll bool
	// Upsert binds or refreshes contacts (keyed by username and contact).
	Upsert []Registration
	// Remove unbinds contacts (expires=0).
	Remove []string
}

// Registrations is the SIP location store in the catalog database, shared
// by the nodes that use it. The SQL stores implement it; a Store that
// does not has no location store (assert with a type switch).
type Registrations interface {
	// ApplyRegistrations applies the changes in order, in one
	// transaction.
	ApplyRegistrations(ctx context.Context, changes []RegistrationChange) error
	// ActiveRegistrations lists the registrations that have not expired at
	// now, by username then contact.
	ActiveRegistrations(ctx context.Context, now time.Time) ([]Registration, error)
	// UserRegistrations lists one user's registrations that have not
	// expired at now, by contact.
	UserRegistrations(ctx context.Context, username string, now time.Time) ([]Registration, error)
	// PruneRegistrations deletes those expired at now and says how many.
	PruneRegistrations(ctx context.Context, now time.Time) (int64, error)
}

var _ Registrations = (*sqlStore)(nil)

const regCols = `username, contact, expires, call_id, cseq, source, transport, user_agent, node`

func (s *sqlStore) ApplyRegistrations(ctx context.Context, changes []RegistrationChange) error {
	for _, ch := range changes {
		if ch.Username == "" {
			return fmt.Errorf("%w: empty username", ErrInvalid)
		}
		for _, r := range ch.Upsert {
			if r.Username != ch.Username || r.Contact == "" {
				return fmt.Errorf("%w: registration %q/%q for user %q", ErrInvalid, r.Username, r.Contact, ch.Username)
			}
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.mapErr(err, "registrations")
	}
	defer tx.Rollback()
	for _, ch := range changes {
		if ch.ClearAll {
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM registrations WHERE username = $1`), ch.Username); err != nil {
				return s.mapErr(err, "registrations")
			}
		}
		for _, c := range ch.Remove {
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM registrations WHERE username = $1 AND contact = $2`), ch.Username, c); err != nil {
				return s.mapErr(err, "registrations")
			}
		}
		for _, r := range ch.Upsert {
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO registrations (`+regCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
				ON CONFLICT (username, contact) DO UPDATE SET expires = excluded.expires, call_id = excluded.call_id,
				cseq = excluded.cseq, source = excluded.source, transport = excluded.transport,
				user_agent = excluded.user_agent, node = excluded.node`),
				r.Username, r.Contact, s.timeArg(r.Expires), r.CallID, r.CSeq, r.Source, r.Transport, r.UserAgent, r.Node)
			if err != nil {
				return s.mapErr(err, "registrations")
			}
		}
	}
	return s.mapErr(tx.Commit(), "registrations")
}

func (s *sqlStore) UserRegistrations(ctx context.Context, username string, now time.Time) ([]Registration, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+regCols+` FROM registrations WHERE username = $1 AND expires > $2 ORDER BY contact`),
		username, s.timeArg(now))
	if err != nil {
		return nil, s.mapErr(err, "registrations")
	}
	return s.scanRegistrations(rows)
}

func (s *sqlStore) ActiveRegistrations(ctx context.Context, now time.Time) ([]Registration, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+regCols+` FROM registrations WHERE expires > $1 ORDER BY username, contact`), s.timeArg(now))
	if err != nil {
		return nil, s.mapErr(err, "registrations")
	}
	return s.scanRegistrations(rows)
}

func (s *sqlStore) scanRegistrations(rows *sql.Rows) ([]Registration, error) {
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
