package meta

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Transient reports whether err, from a write of the catalog, may succeed
// if the same write is tried again later: a deadline or cancelled context
// (the database was slow), SQLite's busy, locked or interrupted, a
// PostgreSQL serialization failure, deadlock, lock or resource shortage,
// shutdown, or a lost or refused connection. A refused value (ErrInvalid,
// ErrConflict, a constraint, a syntax error) is not transient.
func Transient(err error) bool {
	if err == nil || errors.Is(err, ErrInvalid) || errors.Is(err, ErrConflict) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_INTERRUPT:
			return true
		}
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "40"),  // serialization failure, deadlock
			strings.HasPrefix(pe.Code, "53"),  // insufficient resources
			pe.Code == "55P03",                // lock not available
			pe.Code == "57014",                // statement timeout / cancelled
			strings.HasPrefix(pe.Code, "57P"): // shutdown, cannot connect now
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}
