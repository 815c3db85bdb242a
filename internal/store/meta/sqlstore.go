package meta

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// dialect holds what differs between the SQL backends; the queries are
// written once with PostgreSQL-style $n placeholders.
type dialect struct {
	name     string
	rebind   func(string) string // $n -> the driver's placeholder
	timeArg  func(time.Time) any // how a time is bound
	boolCast string              // appended to a bare bool parameter
	timeCast string              // appended to a bare time parameter
	isUnique func(error) bool
	isFKey   func(error) bool
	putChunk int  // rows per INSERT statement in PutRecordings
	rowid    bool // tables have a rowid, which indexes hold
}

var dollarParam = regexp.MustCompile(`\$(\d+)`)

// sqlStore implements Store over database/sql.
type sqlStore struct {
	w       *sql.DB // writes (SQLite: one connection)
	r       *sql.DB // reads (may be w)
	d       *dialect
	closeFn func() error
	tokens  cipher.AEAD // seals auth tokens (tokens.go)

	upsert string
	narrow string // SQLite: the upsert as an UPDATE of the columns a row's life changes (narrowPut)
	start  string // StartRecording's statement
	cdrPut string // PutCDR's statement ($n placeholders, times cast)
	// recCDR is PutRecordingCDR's one statement on PostgreSQL (empty on
	// SQLite): the recording's upsert and, only when it wrote the row, the
	// call's CDR.
	recCDR string
	// recCDRRelease is recCDR that also drops the recording's name claim
	// (PutRecordingCDRReleasing; empty on SQLite).
	recCDRRelease string

	// Statements run for every recording are prepared once per database
	// (database/sql re-prepares them per connection as needed): preparing
	// the upsert costs SQLite more than running it.
	stmtMu sync.Mutex
	stmts  map[stmtKey]*sql.Stmt

	// pingConn is Ping's own connection on PostgreSQL (held between
	// checks, so that the pool's liveness ping before reusing a
	// connection idle over a second does not double every readiness
	// check), taken at pingTaken; guarded by pingMu.
	pingMu    sync.Mutex
	pingConn  *sql.Conn
	pingTaken time.Time

	// group shares commits between recorded calls' row writes (SQLite;
	// nil elsewhere): group.go.
	group *commitGroup
}

type stmtKey struct {
	db    *sql.DB
	query string
	raw   bool // query has $n placeholders, rebound when prepared
}

// stmt returns the prepared form of a (rebound) query on db.
func (s *sqlStore) stmt(ctx context.Context, db *sql.DB, query string) (*sql.Stmt, error) {
	return s.prepared(ctx, db, stmtKey{db, query, false})
}

// rawStmt is stmt for a query written with $n placeholders: it is rebound
// once, when first prepared, not at every execution (SQLite's rebinding is
// a regular expression).
func (s *sqlStore) rawStmt(ctx context.Context, db *sql.DB, query string) (*sql.Stmt, error) {
	return s.prepared(ctx, db, stmtKey{db, query, true})
}

// prepared returns k's statement, preparing it the first time. stmtMu is
// not held while it prepares: a prepare waits for the database (on
// PostgreSQL for the locks of the tables it names, e.g. an outbox locked by
// another session), and every other statement's caller would wait for it
// on the mutex, past its own deadline. Two callers preparing k at once
// keep the first stored, the other closed.
func (s *sqlStore) prepared(ctx context.Context, db *sql.DB, k stmtKey) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	st := s.stmts[k]
	s.stmtMu.Unlock()
	if st != nil {
		return st, nil
	}
	query := k.query
	if k.raw {
		query = s.q(query)
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if prev := s.stmts[k]; prev != nil {
		_ = st.Close()
		return prev, nil
	}
	if s.stmts == nil {
		s.stmts = map[stmtKey]*sql.Stmt{}
	}
	s.stmts[k] = st
	return st, nil
}

func newSQLStore(w, r *sql.DB, d *dialect, closeFn func() error) *sqlStore {
	s := &sqlStore{w: w, r: r, d: d, closeFn: closeFn}
	s.upsert = s.q(`INSERT INTO recordings (` + recCols + `)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)` +
		fmt.Sprintf(upsertSet,
			`CASE WHEN $27`+d.boolCast+` THEN recordings.date_created ELSE excluded.date_created END`,
			28, d.timeCast))
	if d.name == "sqlite" {
		s.narrow = s.q(narrowUpdate)
	}
	s.cdrPut = strings.NewReplacer("$9,", "$9"+d.timeCast+",", "$10,", "$10"+d.timeCast+",", "$11,", "$11"+d.timeCast+",").Replace(cdrUpsert)
	s.start = s.q(`INSERT INTO recordings (` + recCols + `, status_callback)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)` + startSet)
	if d.name == "postgres" {
		s.recCDR = recordingCDRStatement(s.upsert, s.cdrPut)
		s.recCDRRelease = releasingStatement(s.recCDR)
	}
	return s
}

// recordingCDRStatement is the recording's upsert (upsertArgs' 28
// parameters) and the CDR's (cdrArgs', numbered from 29) as one
// PostgreSQL statement: a data-modifying WITH whose CDR insert selects
// from the upsert's RETURNING, so that the CDR is written only with the
// row (none when the row belongs to another account: 0 rows affected).
// One statement is one transaction and one round trip, where BEGIN, two
// statements and COMMIT are four: a cluster node writes this at the end of
// every recorded call.
func recordingCDRStatement(upsert, cdrPut string) string {
	cdr := regexp.MustCompile(`\$(\d+)`).ReplaceAllStringFunc(cdrPut, func(p string) string {
		n, _ := strconv.Atoi(p[1:])
		return "$" + strconv.Itoa(n+recUpsertArgs)
	})
	last := "$" + strconv.Itoa(recUpsertArgs+cdrColCount)
	cdr = strings.Replace(cdr, ") VALUES (", ") SELECT ", 1)
	cdr = strings.Replace(cdr, last+")\nON CONFLICT", last+" FROM rec\nON CONFLICT", 1)
	return "WITH rec AS (" + upsert + "\nRETURNING 1)\n" + cdr
}

// releasingStatement is recordingCDRStatement with the node's claim on the
// recording's name (recording_claims, ClaimRecordingName) dropped in the
// same statement: its two parameters follow the CDR's. A data-modifying
// WITH runs whether or not the main statement reads it, so the claim goes
// whatever the row's fate, as the separate DELETE after the final row did.
func releasingStatement(recCDR string) string {
	n := recUpsertArgs + cdrColCount
	return strings.Replace(recCDR, "\nRETURNING 1)\n",
		fmt.Sprintf("\nRETURNING 1),\nrel AS (DELETE FROM recording_claims WHERE name = $%d AND node = $%d)\n", n+1, n+2), 1)
}

// q rewrites a query for the dialect.
func (s *sqlStore) q(query string) string { return s.d.rebind(query) }

func (s *sqlStore) Close() error {
	s.pingMu.Lock()
	if s.pingConn != nil {
		s.pingConn.Close()
		s.pingConn = nil
	}
	s.pingMu.Unlock()
	s.stmtMu.Lock()
	for k, st := range s.stmts {
		st.Close()
		delete(s.stmts, k)
	}
	s.stmtMu.Unlock()
	return s.closeFn()
}

// mapErr turns constraint violations into the sentinel errors.
func (s *sqlStore) mapErr(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case s.d.isUnique(err):
		return fmt.Errorf("%w: %s: %v", ErrConflict, what, err)
	case s.d.isFKey(err):
		return fmt.Errorf("%w: %s: unknown account: %v", ErrInvalid, what, err)
	}
	return fmt.Errorf("meta(%s): %s: %w", s.d.name, what, err)
}

// ------------------------------------------------------------- times

// dbTime scans the dialects' time columns (SQLite: integer microseconds
// since the epoch; PostgreSQL: timestamptz) and NULL (zero time).
type dbTime struct{ t time.Time }

func (d *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		d.t = time.Time{}
	case int64:
		d.t = time.UnixMicro(v).UTC()
	case time.Time:
		d.t = v.UTC()
	case string:
		return d.parse(v)
	case []byte:
		return d.parse(string(v))
	default:
		return fmt.Errorf("meta: cannot scan %T as time", src)
	}
	return nil
}

func (d *dbTime) parse(v string) error {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		d.t = time.UnixMicro(n).UTC()
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return fmt.Errorf("meta: cannot scan %q as time", v)
	}
	d.t = t.UTC()
	return nil
}

func (s *sqlStore) timeArg(t time.Time) any { return s.d.timeArg(normTime(t)) }

// nullTimeArg binds the zero time as NULL.
func (s *sqlStore) nullTimeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.timeArg(t)
}

// ---------------------------------------------------------- accounts

// accCols are the accounts' columns as read: auth_token is empty once the
// store has sealed it (tokens.go); a plaintext one is read only until then.
const accCols = `sid, auth_token, token_hash, token_enc, name, created, is_default`

// scanAccount reads an account, opening its sealed token.
func (s *sqlStore) scanAccount(row interface{ Scan(...any) error }) (Account, string, error) {
	var a Account
	var created dbTime
	var plain, hash, enc string
	if err := row.Scan(&a.Sid, &plain, &hash, &enc, &a.Name, &created, &a.Default); err != nil {
		return Account{}, "", err
	}
	a.Created = created.t
	switch {
	case enc != "":
		tok, err := s.openToken(a.Sid, enc)
		if err != nil {
			return Account{}, "", err
		}
		a.AuthToken = tok
	default:
		a.AuthToken, hash = plain, hashToken(plain)
	}
	return a, hash, nil
}

func (s *sqlStore) accountWhere(ctx context.Context, db *sql.DB, where string, args ...any) (Account, error) {
	a, _, err := s.accountHashWhere(ctx, db, where, args...)
	return a, err
}

// accountHashWhere is accountWhere with the token's hash.
func (s *sqlStore) accountHashWhere(ctx context.Context, db *sql.DB, where string, args ...any) (Account, string, error) {
	a, hash, err := s.scanAccount(db.QueryRowContext(ctx, s.q(`SELECT `+accCols+` FROM accounts WHERE `+where), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, "", ErrNotFound
	}
	if errors.Is(err, ErrTokenKey) {
		return Account{}, "", err
	}
	if err != nil {
		return Account{}, "", s.mapErr(err, "account")
	}
	return a, hash, nil
}

func (s *sqlStore) insertAccount(ctx context.Context, name string, def bool, ignoreConflict bool) (Account, error) {
	if strings.TrimSpace(name) == "" {
		return Account{}, fmt.Errorf("%w: empty account name", ErrInvalid)
	}
	a := Account{Sid: NewAccountSid(), AuthToken: NewAuthToken(), Name: name, Created: normTime(time.Now()), Default: def}
	query := `INSERT INTO accounts (` + accCols + `) VALUES ($1, '', $2, $3, $4, $5, $6)`
	if ignoreConflict {
		query += ` ON CONFLICT DO NOTHING`
	}
	if _, err := s.w.ExecContext(ctx, s.q(query), a.Sid, hashToken(a.AuthToken), s.sealToken(a.Sid, a.AuthToken),
		a.Name, s.timeArg(a.Created), a.Default); err != nil {
		return Account{}, s.mapErr(err, "create account "+strconv.Quote(name))
	}
	return a, nil
}

func (s *sqlStore) CreateAccount(ctx context.Context, name string) (Account, error) {
	return s.insertAccount(ctx, name, false, false)
}

func (s *sqlStore) EnsureDefaultAccount(ctx context.Context) (Account, error) {
	for attempt := 0; ; attempt++ {
		a, err := s.accountWhere(ctx, s.w, `is_default = $1`, true)
		if !errors.Is(err, ErrNotFound) || attempt == 2 {
			return a, err
		}
		if attempt == 0 {
			// Loses quietly to a concurrent creator (unique is_default).
			if _, err := s.insertAccount(ctx, "default", true, true); err != nil {
				return Account{}, err
			}
			continue
		}
		// An ordinary account already took the name "default": promote it.
		if _, err := s.w.ExecContext(ctx, s.q(`UPDATE accounts SET is_default = $1
WHERE name = 'default' AND NOT EXISTS (SELECT 1 FROM accounts WHERE is_default = $1)`), true); err != nil {
			return Account{}, s.mapErr(err, "promote default account")
		}
	}
}

func (s *sqlStore) ListAccounts(ctx context.Context) ([]Account, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+accCols+` FROM accounts ORDER BY is_default DESC, created, sid`)
	if err != nil {
		return nil, s.mapErr(err, "list accounts")
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, _, err := s.scanAccount(rows)
		if errors.Is(err, ErrTokenKey) {
			return nil, err
		}
		if err != nil {
			return nil, s.mapErr(err, "list accounts")
		}
		out = append(out, a)
	}
	return out, s.mapErr(rows.Err(), "list accounts")
}

func (s *sqlStore) Ping(ctx context.Context) error {
	// One index entry of accounts at most (its primary key), on the
	// readers' pool as the API's queries: not ListAccounts, which reads and
	// unseals every account.
	if s.d.name == "postgres" {
		return s.pingHeld(ctx)
	}
	var n int
	err := s.r.QueryRowContext(ctx, pingQuery).Scan(&n)
	return s.mapErr(err, "ping")
}

const pingQuery = `SELECT COUNT(*) FROM (SELECT 1 FROM accounts LIMIT 1) AS a`

// pingHeld is Ping on a connection of its own, held from one check to the
// next (the readiness loop checks every second). A pooled connection idle
// for over a second is pinged by the driver (pgx's stdlib) before it is
// handed out: every other readiness check was two round trips, each one a
// wake-up of the node. A held connection is not pinged; if the check
// fails on it (PostgreSQL restarted, the connection broke) it is closed
// and the answer is the pool's, on a connection the driver checks, as
// before: a database that is back is never reported down by a stale
// connection. The held one is renewed after the pool's connection
// lifetime.
func (s *sqlStore) pingHeld(ctx context.Context) error {
	s.pingMu.Lock()
	defer s.pingMu.Unlock()
	if s.pingConn != nil && time.Since(s.pingTaken) > pgConnLifetime {
		s.pingConn.Close()
		s.pingConn = nil
	}
	var n int
	if s.pingConn != nil {
		err := s.pingConn.QueryRowContext(ctx, pingQuery).Scan(&n)
		if err == nil {
			return nil
		}
		// Closed, not returned to the pool (the driver is told it is bad).
		_ = s.pingConn.Raw(func(any) error { return driver.ErrBadConn })
		s.pingConn.Close()
		s.pingConn = nil
		if ctx.Err() != nil {
			return s.mapErr(err, "ping")
		}
	}
	c, err := s.r.Conn(ctx)
	if err != nil {
		return s.mapErr(err, "ping")
	}
	if err := c.QueryRowContext(ctx, pingQuery).Scan(&n); err != nil {
		c.Close()
		return s.mapErr(err, "ping")
	}
	s.pingConn, s.pingTaken = c, time.Now()
	return nil
}

func (s *sqlStore) Account(ctx context.Context, sid string) (Account, error) {
	return s.accountWhere(ctx, s.r, `sid = $1`, sid)
}

func (s *sqlStore) AccountByName(ctx context.Context, name string) (Account, error) {
	return s.accountWhere(ctx, s.r, `name = $1`, name)
}

func (s *sqlStore) RotateToken(ctx context.Context, sid string) (Account, error) {
	tok := NewAuthToken()
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE accounts SET auth_token = '', token_hash = $1, token_enc = $2 WHERE sid = $3`),
		hashToken(tok), s.sealToken(sid, tok), sid)
	if err != nil {
		return Account{}, s.mapErr(err, "rotate token")
	}
	if n, err := res.RowsAffected(); err != nil {
		return Account{}, s.mapErr(err, "rotate token")
	} else if n == 0 {
		return Account{}, ErrNotFound
	}
	return s.accountWhere(ctx, s.w, `sid = $1`, sid)
}

// dummyToken keeps Authenticate's timing alike for unknown Sids.
var dummyHash = hashToken(NewAuthToken())

func (s *sqlStore) Authenticate(ctx context.Context, sid, token string) (Account, error) {
	a, hash, err := s.accountHashWhere(ctx, s.r, `sid = $1`, sid)
	if errors.Is(err, ErrNotFound) {
		tokenMatches(token, dummyHash)
		return Account{}, ErrUnauthorized
	}
	if err != nil {
		return Account{}, err
	}
	if token == "" || !tokenMatches(token, hash) {
		return Account{}, ErrUnauthorized
	}
	return a, nil
}

// -------------------------------------------------------- recordings

// recCols are the columns of recordings; deleted_recordings (migration
// 00007) has them too: a column added to recordings is added there as well.
const recCols = `sid, account_sid, call_sid, date_created, date_updated, start_time, duration, channels, format, size, sha256, source, status, name, file_path, s3_uri, caller_number, called_number, api_version, status_detail, node, tenant_uuid, direction, owners, quality, end_reason`

func scanRecording(row interface{ Scan(...any) error }) (Recording, error) {
	var r Recording
	var created, updated, start dbTime
	var quality string
	err := row.Scan(&r.Sid, &r.AccountSid, &r.CallSid, &created, &updated, &start,
		&r.Duration, &r.Channels, &r.Format, &r.Size, &r.SHA256, &r.Source, &r.Status,
		&r.Name, &r.FilePath, &r.S3URI, &r.CallerNumber, &r.CalledNumber, &r.ApiVersion, &r.StatusDetail, &r.Node,
		&r.TenantUUID, &r.Direction, &r.Owners, &quality, &r.EndReason)
	if err != nil {
		return Recording{}, err
	}
	if quality != "" {
		r.Quality = new(Quality)
		if err := json.Unmarshal([]byte(quality), r.Quality); err != nil {
			return Recording{}, fmt.Errorf("recording %s: quality: %w", r.Sid, err)
		}
	}
	r.DateCreated, r.DateUpdated, r.StartTime = created.t, updated.t, start.t
	return r, nil
}

func (s *sqlStore) upsertArgs(r Recording, now time.Time) ([]any, error) {
	if r.Sid == "" {
		return nil, fmt.Errorf("%w: recording without Sid", ErrInvalid)
	}
	if r.AccountSid == "" {
		return nil, fmt.Errorf("%w: recording %s without AccountSid", ErrInvalid, r.Sid)
	}
	keepCreated := r.DateCreated.IsZero()
	if keepCreated {
		r.DateCreated = now
	}
	if r.DateUpdated.IsZero() {
		r.DateUpdated = now
	}
	if r.ApiVersion == "" {
		r.ApiVersion = APIVersion
	}
	if strings.ContainsFunc(r.Owners, unicode.IsControl) {
		// The SQLite triggers that index the owners (00014) read them as
		// JSON strings, which cannot hold control characters.
		return nil, fmt.Errorf("%w: recording %s: control character in Owners %q", ErrInvalid, r.Sid, r.Owners)
	}
	quality := ""
	if r.Quality != nil {
		b, err := json.Marshal(r.Quality)
		if err != nil {
			return nil, fmt.Errorf("%w: recording %s: quality: %v", ErrInvalid, r.Sid, err)
		}
		quality = string(b)
	}
	return []any{
		r.Sid, r.AccountSid, r.CallSid, s.timeArg(r.DateCreated), s.timeArg(r.DateUpdated),
		s.nullTimeArg(r.StartTime), r.Duration, r.Channels, r.Format, r.Size, r.SHA256,
		r.Source, r.Status, r.Name, r.FilePath, r.S3URI, r.CallerNumber, r.CalledNumber,
		r.ApiVersion, r.StatusDetail, r.Node, r.TenantUUID, r.Direction, r.Owners, quality, r.EndReason,
		keepCreated, s.timeArg(now),
	}, nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *sqlStore) put(ctx context.Context, ex execer, query string, r Recording, now time.Time) error {
	args, err := s.upsertArgs(r, now)
	if err != nil {
		return err
	}
	res, err := ex.ExecContext(ctx, query, args...)
	if err != nil {
		return s.mapErr(err, "put recording "+r.Sid)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.mapErr(err, "put recording "+r.Sid)
	}
	if n == 0 {
		return fmt.Errorf("%w: recording %s belongs to another account", ErrConflict, r.Sid)
	}
	return nil
}

func (s *sqlStore) PutRecording(ctx context.Context, r Recording) error {
	if s.group == nil {
		return s.putRow(ctx, nil, r, time.Now())
	}
	// Prepared before the transaction (rowStmts).
	if _, _, err := s.rowStmts(ctx); err != nil {
		return s.mapErr(err, "put recording "+r.Sid)
	}
	return s.writeTx(ctx, "put recording "+r.Sid, func(ctx context.Context, tx *sql.Tx) error {
		return s.putRow(ctx, tx, r, time.Now())
	})
}

// narrowUpdate is the upsert of an existing row whose indexed columns keep
// their values, as an UPDATE that names in its SET only columns that no
// index holds, and the three (duration, status, node) that a recording's
// end changes. SQLite rewrites an index's entry whenever its UPDATE sets
// one of the index's columns, changed or not, so the upsert, which sets
// them all, appended a WAL frame for each of the recordings table's eleven
// indexes at every final row; this one touches the table and the four
// indexes whose keys do change (RESULTS.md, cpu13). The WHERE clause holds
// the other indexed columns to the row's values: when it matches no row
// (a new row, another account's Sid, a changed name or date), putRow runs
// the upsert, so the result is the upsert's in every case. Parameters are
// upsertArgs'.
const narrowUpdate = `UPDATE recordings SET
	date_updated = CASE WHEN $5 > date_updated THEN $5 ELSE $28 END,
	start_time = $6,
	duration = $7,
	channels = $8,
	format = $9,
	size = $10,
	sha256 = $11,
	status = $13,
	file_path = $15,
	s3_uri = $16,
	api_version = $19,
	status_detail = $20,
	node = $21,
	tenant_uuid = $22,
	direction = $23,
	quality = $25,
	end_reason = $26
WHERE sid = $1 AND account_sid = $2 AND call_sid = $3 AND ($27 OR date_created = $4) AND source = $12
	AND name = $14 AND caller_number = $17 AND called_number = $18 AND owners = $24`

// rowStmts returns putRow's prepared statements (narrow is nil but on
// SQLite). A caller that gives putRow a transaction calls it before the
// transaction begins: SQLite's only writer connection is the
// transaction's until it ends, so a statement cannot be prepared on it
// meanwhile.
func (s *sqlStore) rowStmts(ctx context.Context) (upsert, narrow *sql.Stmt, err error) {
	if upsert, err = s.stmt(ctx, s.w, s.upsert); err != nil || s.narrow == "" {
		return upsert, nil, err
	}
	narrow, err = s.stmt(ctx, s.w, s.narrow)
	return upsert, narrow, err
}

// putRow writes r as PutRecording does, in tx when it is not nil. On
// SQLite it tries narrowUpdate first.
func (s *sqlStore) putRow(ctx context.Context, tx *sql.Tx, r Recording, now time.Time) error {
	st, nst, err := s.rowStmts(ctx)
	if err != nil {
		return s.mapErr(err, "put recording "+r.Sid)
	}
	if tx != nil {
		st = tx.StmtContext(ctx, st)
		if nst != nil {
			nst = tx.StmtContext(ctx, nst)
		}
	}
	if nst != nil {
		args, err := s.upsertArgs(r, now)
		if err != nil {
			return err
		}
		res, err := nst.ExecContext(ctx, args...)
		if err != nil {
			return s.mapErr(err, "put recording "+r.Sid)
		}
		if n, err := res.RowsAffected(); err != nil {
			return s.mapErr(err, "put recording "+r.Sid)
		} else if n == 1 {
			return nil
		}
	}
	return s.put(ctx, stmtExecer{st}, "", r, now)
}

// startSet replaces a row of the same name, keeping its Sid and date_created.
const startSet = `
ON CONFLICT (name) WHERE name <> '' DO UPDATE SET
	call_sid = excluded.call_sid,
	date_updated = excluded.date_updated,
	start_time = excluded.start_time,
	duration = excluded.duration,
	channels = excluded.channels,
	format = excluded.format,
	size = excluded.size,
	sha256 = excluded.sha256,
	source = excluded.source,
	status = excluded.status,
	file_path = excluded.file_path,
	s3_uri = excluded.s3_uri,
	caller_number = excluded.caller_number,
	called_number = excluded.called_number,
	api_version = excluded.api_version,
	status_detail = excluded.status_detail,
	node = excluded.node,
	tenant_uuid = excluded.tenant_uuid,
	direction = excluded.direction,
	owners = excluded.owners,
	quality = excluded.quality,
	end_reason = excluded.end_reason,
	status_callback = excluded.status_callback
WHERE recordings.account_sid = excluded.account_sid
RETURNING sid, date_created`

func (s *sqlStore) StartRecording(ctx context.Context, r Recording) (string, time.Time, error) {
	now := time.Now()
	if r.DateCreated.IsZero() {
		r.DateCreated = now
	}
	args, err := s.upsertArgs(r, now)
	if err != nil {
		return "", time.Time{}, err
	}
	cb := ""
	if r.Callback != nil {
		if r.Callback.URL == "" {
			return "", time.Time{}, fmt.Errorf("%w: recording %s: a status callback without a URL", ErrInvalid, r.Sid)
		}
		b, err := json.Marshal(r.Callback)
		if err != nil {
			return "", time.Time{}, fmt.Errorf("%w: recording %s: status callback: %v", ErrInvalid, r.Sid, err)
		}
		cb = string(b)
	}
	st, err := s.stmt(ctx, s.w, s.start)
	if err != nil {
		return "", time.Time{}, s.mapErr(err, "start recording "+r.Sid)
	}
	var sid string
	var created dbTime
	insert := func(ctx context.Context, st *sql.Stmt) error {
		err := st.QueryRowContext(ctx, append(args[:recColCount:recColCount], cb)...).Scan(&sid, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: recording %q belongs to another account", ErrConflict, r.Name)
		}
		return s.mapErr(err, "start recording "+r.Sid)
	}
	if s.group != nil {
		err = s.group.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
			return insert(ctx, tx.StmtContext(ctx, st))
		})
	} else {
		err = insert(ctx, st)
	}
	if err != nil {
		return "", time.Time{}, err
	}
	return sid, created.t, nil
}

// upsertSet is the ON CONFLICT clause; $%d is "now".
const upsertSet = `
ON CONFLICT (sid) DO UPDATE SET
	call_sid = excluded.call_sid,
	date_created = %s,
	date_updated = CASE WHEN excluded.date_updated > recordings.date_updated THEN excluded.date_updated ELSE $%d%s END,
	start_time = excluded.start_time,
	duration = excluded.duration,
	channels = excluded.channels,
	format = excluded.format,
	size = excluded.size,
	sha256 = excluded.sha256,
	source = excluded.source,
	status = excluded.status,
	name = excluded.name,
	file_path = excluded.file_path,
	s3_uri = excluded.s3_uri,
	caller_number = excluded.caller_number,
	called_number = excluded.called_number,
	api_version = excluded.api_version,
	status_detail = excluded.status_detail,
	node = excluded.node,
	tenant_uuid = excluded.tenant_uuid,
	direction = excluded.direction,
	owners = excluded.owners,
	quality = excluded.quality,
	end_reason = excluded.end_reason
WHERE recordings.account_sid = excluded.account_sid`

const recColCount = 26

// recUpsertArgs is how many arguments upsertArgs gives: the columns, then
// keep-date-created and now.
const recUpsertArgs = recColCount + 2

// multiUpsert is the upsert of n rows that all have a DateCreated.
func (s *sqlStore) multiUpsert(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO recordings (` + recCols + `) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range recColCount {
			if c > 0 {
				b.WriteString(", ")
			}
			b.WriteString("$" + strconv.Itoa(i*recColCount+c+1))
		}
		b.WriteByte(')')
	}
	b.WriteString(fmt.Sprintf(upsertSet, "excluded.date_created", n*recColCount+1, s.d.timeCast))
	return s.q(b.String())
}

func (s *sqlStore) PutRecordings(ctx context.Context, rs []Recording) (err error) {
	if len(rs) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.mapErr(err, "begin")
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	now := time.Now()
	stmts := map[int]*sql.Stmt{} // by rows per statement; 0: s.upsert
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	stmt := func(n int) (*sql.Stmt, error) {
		if st := stmts[n]; st != nil {
			return st, nil
		}
		query := s.upsert
		if n > 0 {
			query = s.multiUpsert(n)
		}
		st, err := tx.PrepareContext(ctx, query)
		if err != nil {
			return nil, s.mapErr(err, "prepare")
		}
		stmts[n] = st
		return st, nil
	}

	// Rows go in multi-row statements; a row whose Sid is already in the
	// pending chunk starts a new one (one statement cannot upsert a row
	// twice), and rows without DateCreated (keep the stored one) go alone.
	var chunk []any
	rows := 0
	seen := map[string]bool{}
	flush := func() error {
		if rows == 0 {
			return nil
		}
		st, err := stmt(rows)
		if err != nil {
			return err
		}
		res, err := st.ExecContext(ctx, append(chunk, s.timeArg(now))...)
		if err != nil {
			return s.mapErr(err, "put recordings")
		}
		if n, err := res.RowsAffected(); err != nil {
			return s.mapErr(err, "put recordings")
		} else if n != int64(rows) {
			return fmt.Errorf("%w: a recording of the batch belongs to another account", ErrConflict)
		}
		chunk, rows = chunk[:0], 0
		clear(seen)
		return nil
	}
	for _, r := range rs {
		if r.DateCreated.IsZero() {
			if err = flush(); err != nil {
				return err
			}
			st, err := stmt(0)
			if err != nil {
				return err
			}
			if err = s.put(ctx, stmtExecer{st}, "", r, now); err != nil {
				return err
			}
			continue
		}
		if seen[r.Sid] || rows == max(1, s.d.putChunk) {
			if err = flush(); err != nil {
				return err
			}
		}
		args, err := s.upsertArgs(r, now)
		if err != nil {
			return err
		}
		chunk = append(chunk, args[:recColCount]...)
		rows++
		seen[r.Sid] = true
	}
	if err = flush(); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return s.mapErr(err, "commit")
	}
	return nil
}

type stmtExecer struct{ *sql.Stmt }

func (e stmtExecer) ExecContext(ctx context.Context, _ string, args ...any) (sql.Result, error) {
	return e.Stmt.ExecContext(ctx, args...)
}

func (s *sqlStore) recordingWhere(ctx context.Context, where string, args ...any) (Recording, error) {
	st, err := s.stmt(ctx, s.r, s.q(`SELECT `+recCols+` FROM recordings WHERE `+where))
	if err != nil {
		return Recording{}, s.mapErr(err, "recording")
	}
	r, err := scanRecording(st.QueryRowContext(ctx, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Recording{}, ErrNotFound
	}
	if err != nil {
		return Recording{}, s.mapErr(err, "recording")
	}
	return r, nil
}

func (s *sqlStore) Recording(ctx context.Context, accountSid, sid string) (Recording, error) {
	return s.recordingWhere(ctx, `account_sid = $1 AND sid = $2`, accountSid, sid)
}

func (s *sqlStore) RecordingBySid(ctx context.Context, sid string) (Recording, error) {
	return s.recordingWhere(ctx, `sid = $1`, sid)
}

func (s *sqlStore) RecordingByName(ctx context.Context, name string) (Recording, error) {
	if name == "" {
		return Recording{}, ErrNotFound
	}
	return s.recordingWhere(ctx, `name = $1`, name)
}

func (s *sqlStore) deleteWhere(ctx context.Context, where string, args ...any) error {
	res, err := s.w.ExecContext(ctx, s.q(`DELETE FROM recordings WHERE `+where), args...)
	if err != nil {
		return s.mapErr(err, "delete recording")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.mapErr(err, "delete recording")
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *sqlStore) DeleteRecording(ctx context.Context, accountSid, sid string) error {
	return s.deleteWhere(ctx, `account_sid = $1 AND sid = $2`, accountSid, sid)
}

func (s *sqlStore) DeleteRecordingByName(ctx context.Context, name string) error {
	if name == "" {
		return ErrNotFound
	}
	return s.deleteWhere(ctx, `name = $1`, name)
}

func (s *sqlStore) SetLiveStatus(ctx context.Context, name string, st Status, q *Quality) error {
	if !st.Live() || name == "" {
		return fmt.Errorf("%w: live status %q of %q", ErrInvalid, st, name)
	}
	quality := ""
	if q != nil {
		b, err := json.Marshal(q)
		if err != nil {
			return fmt.Errorf("%w: quality: %v", ErrInvalid, err)
		}
		quality = string(b)
	}
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE recordings SET status = $1, quality = $2, date_updated = $3
WHERE name = $4 AND status IN ('in-progress', 'paused')`), string(st), quality, s.timeArg(normTime(time.Now())), name)
	if err != nil {
		return s.mapErr(err, "set live status of "+name)
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.mapErr(err, "set live status of "+name)
	} else if n == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *sqlStore) SetChecksum(ctx context.Context, sid, filePath string, size int64, sum string, now time.Time) (bool, error) {
	if sum == "" {
		return false, fmt.Errorf("%w: empty checksum for %s", ErrInvalid, sid)
	}
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE recordings SET size = $1, sha256 = $2, date_updated = $3
WHERE sid = $4 AND file_path = $5 AND sha256 = ''`), size, sum, s.timeArg(now), sid, filePath)
	if err != nil {
		return false, s.mapErr(err, "set checksum of "+sid)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.mapErr(err, "set checksum of "+sid)
	}
	return n > 0, nil
}

func (s *sqlStore) InProgress(ctx context.Context, node string, limit int) ([]Recording, error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	// Literal statuses, so that the partial indexes recordings_in_progress
	// and recordings_paused serve it.
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+recCols+` FROM (
SELECT `+recCols+` FROM recordings WHERE status = 'in-progress' AND node IN ($1, '')
UNION ALL SELECT `+recCols+` FROM recordings WHERE status = 'paused' AND node IN ($1, '')) AS live ORDER BY name LIMIT $2`),
		node, limit)
	if err != nil {
		return nil, s.mapErr(err, "in-progress recordings")
	}
	defer rows.Close()
	var out []Recording
	for rows.Next() {
		r, err := scanRecording(rows)
		if err != nil {
			return nil, s.mapErr(err, "in-progress recordings")
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.mapErr(err, "in-progress recordings")
	}
	return out, nil
}

func (s *sqlStore) Stored(ctx context.Context, node, afterName string, limit int) ([]Recording, error) {
	return s.byNode(ctx, `status IN ('completed', 'recovered', 'absent') AND node IN ($1, '')`, node, afterName, limit)
}

func (s *sqlStore) Finished(ctx context.Context, node, afterName string, limit int) ([]Recording, error) {
	return s.byNode(ctx, `status IN ('completed', 'recovered', 'absent', 'failed') AND ($1 = '*' OR node IN ($1, '') OR file_path LIKE 'blob:%')`, node, afterName, limit)
}

// byNode pages through the rows matching where ($1 is node) by name.
func (s *sqlStore) byNode(ctx context.Context, where, node, afterName string, limit int) ([]Recording, error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+recCols+` FROM recordings WHERE `+where+` AND name > $2 ORDER BY name LIMIT $3`),
		node, afterName, limit)
	if err != nil {
		return nil, s.mapErr(err, "stored recordings")
	}
	defer rows.Close()
	var out []Recording
	for rows.Next() {
		r, err := scanRecording(rows)
		if err != nil {
			return nil, s.mapErr(err, "stored recordings")
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.mapErr(err, "stored recordings")
	}
	return out, nil
}

func (s *sqlStore) ListRecordings(ctx context.Context, q Query) (Page, error) {
	if q.AccountSid == "" {
		return Page{}, fmt.Errorf("%w: Query without AccountSid", ErrInvalid)
	}
	field, desc, err := ParseSortBy(q.SortBy)
	if err != nil {
		return Page{}, err
	}
	if !strings.Contains(q.SortBy, ":") {
		desc = q.Desc
	}
	col := sortColumns[field]
	if q.Offset < 0 {
		return Page{}, fmt.Errorf("%w: negative Offset %d", ErrInvalid, q.Offset)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultPageSize
	}
	limit = min(limit, MaxPageSize)
	if q.BeforeSid != "" && (q.AfterSid != "" || q.Offset > 0 || q.IncludeDeleted) {
		return Page{}, fmt.Errorf("%w: BeforeSid with AfterSid, Offset or IncludeDeleted", ErrInvalid)
	}

	args := []any{q.AccountSid}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	// The rows are r (recordings, or deleted_recordings). With an Owner, the
	// owners table o (recording_owners, or deleted_recording_owners) drives
	// the query: the user's rows of the account, in (date_created, sid)
	// order on its key; date_created and sid are then read from o, so that
	// a date window, the date order and a keyset cursor stay on that key.
	// rWhere are the conditions on r's other columns; oWhere, on the
	// driving table (o, or r without an Owner).
	owner := q.Owner != ""
	d := "r."
	var oWhere, rWhere []string
	if owner {
		d = "o."
		oWhere = append(oWhere, `o.user_uuid = `+arg(q.Owner), `o.account_sid = $1`)
	} else {
		oWhere = append(oWhere, `r.account_sid = $1`)
	}
	if q.StartFrom != nil {
		oWhere = append(oWhere, d+`date_created >= `+arg(s.timeArg(*q.StartFrom)))
	}
	if q.StartTo != nil {
		oWhere = append(oWhere, d+`date_created <= `+arg(s.timeArg(*q.StartTo)))
	}
	if q.CallSid != "" {
		rWhere = append(rWhere, `r.call_sid = `+arg(q.CallSid))
	}
	if q.From != "" {
		rWhere = append(rWhere, `r.caller_number = `+arg(q.From))
	}
	if q.To != "" {
		rWhere = append(rWhere, `r.called_number = `+arg(q.To))
	}
	if q.Status != "" {
		rWhere = append(rWhere, `r.status = `+arg(string(q.Status)))
	}
	if q.Source != "" {
		rWhere = append(rWhere, `r.source = `+arg(q.Source))
	}
	// The sort key and the tie-breaking sid, as read: from o when it has
	// them (the date order under an Owner).
	key, sidCol := "r."+col, "r.sid"
	if owner && col == "date_created" {
		key, sidCol = "o.date_created", "o.sid"
	}

	type tables struct{ rows, owners string }
	live := tables{"recordings", "recording_owners"}
	gone := tables{"deleted_recordings", "deleted_recording_owners"}
	// from is the FROM and WHERE of the matching rows of t; needR false:
	// r is left out where nothing reads it (an Owner, no condition on r's
	// columns, the date order), e.g. for a count.
	from := func(t tables, needR bool, where string) string {
		w := slices.Concat(oWhere, rWhere)
		var f string
		switch {
		case !owner:
			f = t.rows + ` AS r`
		case needR || len(rWhere) > 0:
			// CROSS JOIN: SQLite keeps o as the outer loop (PostgreSQL
			// plans it as any join).
			f = t.owners + ` AS o CROSS JOIN ` + t.rows + ` AS r`
			w = append(w, `r.sid = o.sid`, `r.account_sid = $1`)
		default:
			f = t.owners + ` AS o`
		}
		if where != "" {
			w = append(w, where)
		}
		return f + ` WHERE ` + strings.Join(w, ` AND `)
	}

	var page Page
	// exact: the count has no filter but the account, so it is the
	// account's kept count (recording_counts, migration 00019: a few rows
	// kept by triggers), not a count of the account's rows in an index
	// (~240 leaf pages per 10,000 rows, one random read each on a cold
	// cache).
	exact := keptCounts && !owner && q.StartFrom == nil && q.StartTo == nil && len(rWhere) == 0
	// deep: the page is found by skipping Offset rows in the index alone
	// (see the deferred join below).
	deep := q.Offset >= 4*limit && deferredOffset && !q.IncludeDeleted
	// On PostgreSQL a deep offset page counts in the page's order where an
	// index gives it (the date order, or the duration's), so that the count
	// reads the index range that the offset then skips: on a cold cache its
	// pages are read from disk once, not twice (the plain COUNT reads the
	// smallest index, recordings_account_duration: 1M rows in 100 accounts,
	// offset 7,000 of 10,000, 254 pages read instead of 420, EXPLAIN
	// (BUFFERS) in RESULTS.md). Shallow pages keep the plain COUNT: they
	// read a few index pages, fewer than the date index holds beyond the
	// smallest one. Not under an Owner with another order: that count reads
	// o alone. In the page's direction too: a count cut at CountLimit then
	// reads the rows the offset skips (the newest, newest first), not the
	// oldest.
	// windowSort: a date window sorted by duration (Restcomm's
	// StartTime/EndTime with SortBy=Duration) sorts the window's (duration,
	// sid) in recordings_account_created_duration alone and reads only the
	// page's rows from the table (a deferred sort), instead of reading every
	// row of the window to sort them: ~200 rows of a week in an account of
	// 10,000, one random read each on a cold cache. Not with conditions on
	// other columns (they are not in that index) nor an Owner.
	windowSort := col == "duration" && (q.StartFrom != nil || q.StartTo != nil) && !owner && len(rWhere) == 0 &&
		!q.IncludeDeleted && deferredSort
	countOrder := ""
	if deep && !exact && !windowSort && s.d.name == "postgres" && col != "call_sid" && (!owner || key == "o.date_created") {
		d := " ASC"
		if desc {
			d = " DESC"
		}
		countOrder = ` ORDER BY ` + key + d + `, ` + sidCol + d
	}
	count := func(t tables) (int, error) {
		var n int
		if exact {
			c := "live"
			if t == gone {
				c = "deleted"
			}
			query := s.q(`SELECT COALESCE(SUM(` + c + `), 0) FROM recording_counts WHERE account_sid = $1`)
			if countHook != nil {
				countHook(query, []any{q.AccountSid})
			}
			err := s.r.QueryRowContext(ctx, query, q.AccountSid).Scan(&n)
			return n, err
		}
		query := `SELECT COUNT(*) FROM ` + from(t, false, "")
		if countOrder != "" {
			query = `SELECT COUNT(*) FROM (SELECT 1 FROM ` + from(t, false, "") + countOrder + `) AS c`
		}
		cargs := args
		if q.CountLimit > 0 {
			// Counting stops at CountLimit+1 rows: on the filter's index, a
			// bounded range instead of the whole account.
			query = `SELECT COUNT(*) FROM (SELECT 1 FROM ` + from(t, false, "") + countOrder + ` LIMIT ` +
				"$" + strconv.Itoa(len(args)+1) + `) AS c`
			cargs = append(args[:len(args):len(args)], q.CountLimit+1)
		}
		if countHook != nil {
			countHook(s.q(query), cargs)
		}
		err := s.r.QueryRowContext(ctx, s.q(query), cargs...).Scan(&n)
		return n, err
	}
	n, err := 0, error(nil)
	if q.CountLimit >= 0 {
		n, err = count(live)
	}
	if err != nil {
		return Page{}, s.mapErr(err, "count recordings")
	}
	page.Total = n
	// A page past the middle of the account, by offset, is read from the
	// other end, where it is the nearer: in the opposite order, skipping
	// the rows after it, then turned round (an offset of 9,000 of 10,000
	// skips 950 rows instead of 9,000: on a cold cache, a quarter of the
	// index pages). This needs the exact count (the count and the page are
	// two statements, as before: rows written between them shift the page
	// by as many rows, at the other end).
	offset, flip := q.Offset, false
	if exact && flipOffset && q.CountLimit >= 0 && !q.IncludeDeleted && q.AfterSid == "" && q.BeforeSid == "" &&
		offset > n/2 && offset < n {
		end := min(offset+limit, n)
		offset, limit, flip = n-end, end-offset, true
		deep = offset >= 4*limit && deferredOffset
	}
	if q.CountLimit < 0 {
		page.Total, page.TotalCapped = -1, true
	} else if q.IncludeDeleted {
		n, err := count(gone)
		if err != nil {
			return Page{}, s.mapErr(err, "count deleted recordings")
		}
		page.Total += n
	}
	if q.CountLimit > 0 && page.Total > q.CountLimit {
		page.Total, page.TotalCapped = q.CountLimit+1, true
	}

	dir, cmp := "ASC", ">"
	if desc {
		dir, cmp = "DESC", "<"
	}
	backwards := q.BeforeSid != "" || flip
	if backwards {
		// The rows before the key: the opposite comparison and order, then
		// turned round.
		dir, cmp = map[string]string{"ASC": "DESC", "DESC": "ASC"}[dir], map[string]string{">": "<", "<": ">"}[cmp]
	}
	var keyset string
	if keySid := q.AfterSid + q.BeforeSid; keySid != "" {
		// Keyset: the rows after (key, sid) in the sort order, written so
		// that the (account_sid, col, sid) index (or the owners' key) gives
		// a range scan.
		var k any
		keyQuery := `SELECT ` + col + ` FROM recordings WHERE account_sid = $1 AND sid = $2`
		if q.IncludeDeleted {
			keyQuery += ` UNION ALL SELECT ` + col + ` FROM deleted_recordings WHERE account_sid = $1 AND sid = $2`
		}
		err := s.r.QueryRowContext(ctx, s.q(keyQuery), q.AccountSid, keySid).Scan(&k)
		if errors.Is(err, sql.ErrNoRows) {
			return Page{}, fmt.Errorf("%w: AfterSid/BeforeSid %q", ErrNotFound, keySid)
		}
		if err != nil {
			return Page{}, s.mapErr(err, "AfterSid")
		}
		ka, sa := arg(k), arg(keySid)
		keyset = fmt.Sprintf(`%s %s= %s AND (%s %s %s OR %s %s %s)`, key, cmp, ka, key, cmp, ka, sidCol, cmp, sa)
	}
	order := fmt.Sprintf(`ORDER BY %s %s, %s %s`, key, dir, sidCol, dir)
	var query string
	switch {
	case q.IncludeDeleted:
		// Each table gives its first Offset+Limit rows in order (on its
		// index), and the union is ordered and cut again.
		n := arg(limit + offset)
		query = fmt.Sprintf(`SELECT %s FROM (SELECT * FROM (SELECT %s FROM %s %s LIMIT %s) AS live
UNION ALL SELECT * FROM (SELECT %s FROM %s %s LIMIT %s) AS gone) AS u ORDER BY %s %s, sid %s LIMIT %s`,
			recCols, recColsR, from(live, true, keyset), order, n, recColsR, from(gone, true, keyset), order, n,
			col, dir, dir, arg(limit))
		if offset > 0 {
			query += ` OFFSET ` + arg(offset)
		}
	case windowSort && !s.d.rowid:
		// PostgreSQL: the page's (duration, sid) are found in the index
		// alone (p); the page's rows are then those of the window between
		// p's first and last keys, read in the same index range (the pages
		// just read), the bounds checked in the index, so only the page's
		// rows are read from the table, with no search of the sid index per
		// row. An empty p gives NULL bounds and no rows.
		lim, off := arg(limit), arg(offset)
		query = fmt.Sprintf(`WITH p AS MATERIALIZED (SELECT r.duration AS k, r.sid AS sid FROM %s %s LIMIT %s OFFSET %s)
SELECT %s FROM %s %s`,
			from(live, false, keyset), order, lim, off,
			recColsR, from(live, true, `(r.duration, r.sid) >= (SELECT k, sid FROM p ORDER BY k, sid LIMIT 1)
AND (r.duration, r.sid) <= (SELECT k, sid FROM p ORDER BY k DESC, sid DESC LIMIT 1)`), order)
	case deep && !s.d.rowid:
		// PostgreSQL: the rows skipped by the offset are read in the index
		// alone (index-only scan of the sort key and sid) to find the
		// page's first row, b; the page is then the keyset page from b on
		// the same index (the same pages, just read), its rows read in the
		// table. Joining the page's sids to the table instead costs a
		// search of the sid index per row: 50 more pages, read from disk
		// on a cold cache. b is read once (MATERIALIZED); no b (an offset
		// past the end) gives NULL bounds and no rows.
		bk, bs := `(SELECT k FROM b)`, `(SELECT sid FROM b)`
		bound := fmt.Sprintf(`%s %s= %s AND (%s %s %s OR %s %s= %s)`, key, cmp, bk, key, cmp, bk, sidCol, cmp, bs)
		if keyset != "" {
			bound = keyset + ` AND ` + bound
		}
		query = fmt.Sprintf(`WITH b AS MATERIALIZED (SELECT %s AS k, %s AS sid FROM %s %s LIMIT 1 OFFSET %s)
SELECT %s FROM %s %s LIMIT %s`,
			key, sidCol, from(live, key == "r."+col, keyset), order, arg(offset),
			recColsR, from(live, true, bound), order, arg(limit))
	case deep || windowSort:
		// SQLite: a deferred join: the rows skipped by the offset are read
		// in the covering index alone, and only the page's rows in the
		// table, by rowid, which its indexes hold (by sid would be a search
		// of the sid index and then of the table). Each of those costs a
		// search of the table instead of the next entry of the scan, so
		// shallower offsets keep the plain OFFSET. The same for a window
		// sorted by duration (windowSort): the window's keys are sorted in
		// the covering index, and only the page's rows read.
		rowKey, join := sidCol, `r.sid = p.id`
		if s.d.rowid && sidCol == "r.sid" {
			rowKey, join = `r.rowid`, `r.rowid = p.id`
		}
		inner := from(live, key == "r."+col, keyset)
		if windowSort {
			// SQLite's planner, from its statistics, at times walks the
			// account's rows in duration order (recordings_account_duration,
			// no sort) and reads each row to test its date: up to the whole
			// account for a page of a narrow window.
			inner = strings.Replace(inner, `recordings AS r `, `recordings AS r INDEXED BY recordings_account_created_duration `, 1)
		}
		query = fmt.Sprintf(`SELECT %s FROM (SELECT %s AS id, %s AS sid, %s AS k FROM %s %s LIMIT %s OFFSET %s) AS p
CROSS JOIN recordings AS r WHERE %s ORDER BY p.k %s, p.sid %s`,
			recColsR, rowKey, sidCol, key, inner, order, arg(limit), arg(offset), join, dir, dir)
	default:
		query = fmt.Sprintf(`SELECT %s FROM %s %s LIMIT %s`, recColsR, from(live, true, keyset), order, arg(limit))
		if offset > 0 {
			query += ` OFFSET ` + arg(offset)
		}
	}
	if listHook != nil {
		listHook(s.q(query), args)
	}
	rows, err := s.r.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return Page{}, s.mapErr(err, "list recordings")
	}
	defer rows.Close()
	page.Items = make([]Recording, 0, min(limit, 64))
	for rows.Next() {
		r, err := scanRecording(rows)
		if err != nil {
			return Page{}, s.mapErr(err, "list recordings")
		}
		page.Items = append(page.Items, r)
	}
	if err := rows.Err(); err != nil {
		return Page{}, s.mapErr(err, "list recordings")
	}
	if backwards {
		slices.Reverse(page.Items)
	}
	return page, nil
}

// deferredOffset: offset pages are read by a deferred join (always, but
// for the benchmark that compares it with the plain OFFSET).
var deferredOffset = true

// keptCounts: an unfiltered count reads recording_counts, and flipOffset:
// a page past the middle is read from the other end (always, but for the
// benchmark and tests that compare them with the counts of the rows).
var keptCounts, flipOffset = true, true

// deferredSort: a date window sorted by duration is sorted in the index
// (windowSort; always, but for the benchmark that compares it with the
// plain sort of the window's rows).
var deferredSort = true

// listHook, when set (by tests), sees each page query of ListRecordings
// and its arguments before it runs: the plan tests EXPLAIN it.
var listHook func(query string, args []any)

// countHook, when set (by tests), sees each count query of ListRecordings
// and its arguments before it runs.
var countHook func(query string, args []any)

// recColsR is recCols read from the table aliased r.
var recColsR = "r." + strings.ReplaceAll(recCols, ", ", ", r.")
