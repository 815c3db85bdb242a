package meta

// Users, feature extensions and wazo-auth tokens: the data behind the
// Wazo-style users API (internal/api/confd) and the per-user recording
// policy (internal/users). They live in the catalog database, so that every
// node sharing a PostgreSQL catalog sees the same users, codes and tokens.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// User is one PBX user: who they are, the extension that reaches them, the
// digest credentials of their phone and the recording flags of Wazo's call
// recording (seed 002).
type User struct {
	ID         int64  // assigned by the store
	UUID       string // assigned by CreateUser when empty
	TenantUUID string

	Firstname, Lastname, Email, Username string
	MobilePhoneNumber                    string
	// PasswordHash is the user's wazo-auth password, hashed by the caller
	// (internal/users: bcrypt); empty: the user cannot log in.
	PasswordHash string

	Exten, Context string // e.g. "1001", "default"

	SIPUsername, SIPPassword string // digest credentials of the user's phone

	CallRecordOutgoingExternal, CallRecordOutgoingInternal bool
	CallRecordIncomingExternal, CallRecordIncomingInternal bool
	OnlineCallRecord                                       bool

	Created time.Time // UTC; set by CreateUser
}

// CallRecordEnabled is Wazo's deprecated call_record_enabled: all four
// call_record_*_enabled flags on.
func (u User) CallRecordEnabled() bool {
	return u.CallRecordOutgoingExternal && u.CallRecordOutgoingInternal &&
		u.CallRecordIncomingExternal && u.CallRecordIncomingInternal
}

// SetCallRecord sets the four call_record_*_enabled flags, as Wazo's
// call_record_enabled and *26 do.
func (u *User) SetCallRecord(on bool) {
	u.CallRecordOutgoingExternal, u.CallRecordOutgoingInternal = on, on
	u.CallRecordIncomingExternal, u.CallRecordIncomingInternal = on, on
}

// User list sort fields (UserQuery.Order).
var userOrderColumns = map[string]string{
	"id": "id", "uuid": "uuid", "firstname": "firstname", "lastname": "lastname",
	"email": "email", "username": "username", "exten": "exten", "context": "context",
}

// UserOrderFields lists the accepted UserQuery.Order values.
func UserOrderFields() []string {
	return []string{"id", "uuid", "firstname", "lastname", "email", "username", "exten", "context"}
}

// UserQuery selects a page of users.
type UserQuery struct {
	// TenantUUIDs restricts the list to these tenants; empty: all.
	TenantUUIDs []string
	// Search matches, without regard to case, a part of the first or last
	// name, email, username, extension or uuid.
	Search string
	// Order is a field of UserOrderFields (default "firstname"); ties are
	// broken by id.
	Order string
	Desc  bool
	// Limit <= 0: no limit (as wazo-confd); Offset rows are skipped.
	Limit, Offset int
}

// UserPage is one page of ListUsers.
type UserPage struct {
	Items []User
	Total int // users matching TenantUUIDs and Search, ignoring paging
}

// Feature is one feature extension: a code in a context owned by a feature
// (wazo-confd's /extensions/features).
type Feature struct {
	UUID    string
	Context string // "xivo-features"
	Exten   string // "*26"
	Feature string // "callrecord"
	Enabled bool
}

// Feature names.
const (
	FeatureCallRecord = "callrecord"
)

// FeaturesContext is the context of the feature extensions.
const FeaturesContext = "xivo-features"

// DefaultFeatures are the feature extensions a new catalog starts with.
// Only those tapedeck implements are listed.
var DefaultFeatures = []Feature{
	{Context: FeaturesContext, Exten: "*26", Feature: FeatureCallRecord, Enabled: true},
}

// Token is one wazo-auth token as stored: Hash is the hex SHA-256 of the
// token itself, which is never stored.
type Token struct {
	Hash       string
	AuthID     string // the user's uuid, or the admin's name
	UserUUID   string // empty for an admin
	TenantUUID string
	Admin      bool
	ACL        string // JSON list
	IssuedAt   time.Time
	ExpiresAt  time.Time
}

// UserStore holds users, feature extensions and tokens. The SQLite and
// PostgreSQL stores implement it (see Users).
type UserStore interface {
	// CreateUser inserts u (a new UUID when empty) and returns it with its
	// ID and Created. ErrConflict when the uuid, username, SIP username or
	// extension (in that context) is taken.
	CreateUser(ctx context.Context, u User) (User, error)
	// UserByID, UserByUUID: ErrNotFound when there is no such user.
	UserByID(ctx context.Context, id int64) (User, error)
	UserByUUID(ctx context.Context, uuid string) (User, error)
	// UserByExten is the user reached by exten in context.
	UserByExten(ctx context.Context, context, exten string) (User, error)
	UserBySIPUsername(ctx context.Context, name string) (User, error)
	UserByUsername(ctx context.Context, name string) (User, error)
	ListUsers(ctx context.Context, q UserQuery) (UserPage, error)
	// UpdateUser writes every field of u but ID, UUID, TenantUUID and
	// Created over the row with u.UUID. ErrNotFound, ErrConflict.
	UpdateUser(ctx context.Context, u User) error
	DeleteUser(ctx context.Context, uuid string) error
	// SetCallRecord sets the user's four call_record_*_enabled flags.
	SetCallRecord(ctx context.Context, uuid string, on bool) error
	// ToggleCallRecord (*26) turns the four flags off when all are on, and
	// all on otherwise, in one statement; it returns the new state.
	ToggleCallRecord(ctx context.Context, uuid string) (bool, error)

	// Features lists the feature extensions by feature name.
	Features(ctx context.Context) ([]Feature, error)
	Feature(ctx context.Context, uuid string) (Feature, error)
	// CreateFeature adds a feature extension (a new UUID when empty).
	// ErrConflict when the feature or the exten is taken.
	CreateFeature(ctx context.Context, f Feature) (Feature, error)
	// UpdateFeature writes Exten and Enabled of the feature with f.UUID.
	// ErrConflict when another feature has that exten.
	UpdateFeature(ctx context.Context, f Feature) error
	// FeatureByExten is the enabled feature owning exten; ErrNotFound when
	// none does (or it is disabled).
	FeatureByExten(ctx context.Context, exten string) (Feature, error)

	PutToken(ctx context.Context, t Token) error
	// TokenByHash returns the token even when expired; the caller checks.
	TokenByHash(ctx context.Context, hash string) (Token, error)
	DeleteToken(ctx context.Context, hash string) error
	// DeleteExpiredTokens removes the tokens that expired before now.
	DeleteExpiredTokens(ctx context.Context, now time.Time) (int64, error)
}

// Users returns the user store of a catalog opened by OpenSQLite or
// OpenPostgres.
func Users(s Store) (UserStore, error) {
	us, ok := s.(UserStore)
	if !ok {
		return nil, fmt.Errorf("%w: %T holds no users", ErrInvalid, s)
	}
	return us, nil
}

// NewUUID returns a random (version 4) UUID in its canonical form.
func NewUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("meta: crypto/rand: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ------------------------------------------------------------- users

const userCols = `id, uuid, tenant_uuid, firstname, lastname, email, username, password_hash,
mobile_phone_number, exten, context, sip_username, sip_password,
call_record_outgoing_external, call_record_outgoing_internal,
call_record_incoming_external, call_record_incoming_internal, online_call_record, created`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var created dbTime
	err := row.Scan(&u.ID, &u.UUID, &u.TenantUUID, &u.Firstname, &u.Lastname, &u.Email, &u.Username, &u.PasswordHash,
		&u.MobilePhoneNumber, &u.Exten, &u.Context, &u.SIPUsername, &u.SIPPassword,
		&u.CallRecordOutgoingExternal, &u.CallRecordOutgoingInternal,
		&u.CallRecordIncomingExternal, &u.CallRecordIncomingInternal, &u.OnlineCallRecord, &created)
	u.Created = created.t
	return u, err
}

func (s *sqlStore) CreateUser(ctx context.Context, u User) (User, error) {
	if u.UUID == "" {
		u.UUID = NewUUID()
	}
	if u.TenantUUID == "" {
		return User{}, fmt.Errorf("%w: user without a tenant", ErrInvalid)
	}
	if u.Context == "" {
		u.Context = "default"
	}
	u.Created = normTime(time.Now())
	err := s.w.QueryRowContext(ctx, s.q(`INSERT INTO users (uuid, tenant_uuid, firstname, lastname, email, username,
password_hash, mobile_phone_number, exten, context, sip_username, sip_password,
call_record_outgoing_external, call_record_outgoing_internal,
call_record_incoming_external, call_record_incoming_internal, online_call_record, created)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) RETURNING id`),
		u.UUID, u.TenantUUID, u.Firstname, u.Lastname, u.Email, u.Username, u.PasswordHash, u.MobilePhoneNumber,
		u.Exten, u.Context, u.SIPUsername, u.SIPPassword,
		u.CallRecordOutgoingExternal, u.CallRecordOutgoingInternal,
		u.CallRecordIncomingExternal, u.CallRecordIncomingInternal, u.OnlineCallRecord, s.timeArg(u.Created)).Scan(&u.ID)
	if err != nil {
		return User{}, s.mapErr(err, "create user")
	}
	return u, nil
}

// userWhere runs a prepared lookup: the per-call lookups (by exten, by
// SIP username) would otherwise spend more on parsing than on running.
func (s *sqlStore) userWhere(ctx context.Context, where string, args ...any) (User, error) {
	st, err := s.stmt(ctx, s.r, s.q(`SELECT `+userCols+` FROM users WHERE `+where))
	if err != nil {
		return User{}, s.mapErr(err, "user")
	}
	u, err := scanUser(st.QueryRowContext(ctx, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, s.mapErr(err, "user")
	}
	return u, nil
}

func (s *sqlStore) UserByID(ctx context.Context, id int64) (User, error) {
	return s.userWhere(ctx, `id = $1`, id)
}

func (s *sqlStore) UserByUUID(ctx context.Context, uuid string) (User, error) {
	return s.userWhere(ctx, `uuid = $1`, uuid)
}

// The lookups by exten, SIP username and username repeat their partial
// unique index's condition (<> ''), without which SQLite's planner cannot
// use the index for a bound parameter and scans the table.

func (s *sqlStore) UserByExten(ctx context.Context, context, exten string) (User, error) {
	if exten == "" {
		return User{}, ErrNotFound
	}
	return s.userWhere(ctx, `context = $1 AND exten = $2 AND exten <> ''`, context, exten)
}

func (s *sqlStore) UserBySIPUsername(ctx context.Context, name string) (User, error) {
	if name == "" {
		return User{}, ErrNotFound
	}
	return s.userWhere(ctx, `sip_username = $1 AND sip_username <> ''`, name)
}

func (s *sqlStore) UserByUsername(ctx context.Context, name string) (User, error) {
	if name == "" {
		return User{}, ErrNotFound
	}
	return s.userWhere(ctx, `username = $1 AND username <> ''`, name)
}

// likeEscape escapes LIKE's wildcards (with \ as the escape character).
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func (s *sqlStore) ListUsers(ctx context.Context, q UserQuery) (UserPage, error) {
	order := q.Order
	if order == "" {
		order = "firstname"
	}
	col, ok := userOrderColumns[order]
	if !ok {
		return UserPage{}, fmt.Errorf("%w: order %q", ErrInvalid, q.Order)
	}
	if q.Offset < 0 || q.Limit < 0 {
		return UserPage{}, fmt.Errorf("%w: negative limit or offset", ErrInvalid)
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if len(q.TenantUUIDs) > 0 {
		ph := make([]string, len(q.TenantUUIDs))
		for i, t := range q.TenantUUIDs {
			ph[i] = arg(t)
		}
		where = append(where, `tenant_uuid IN (`+strings.Join(ph, ", ")+`)`)
	}
	if q.Search != "" {
		p := arg("%" + likeEscape(strings.ToLower(q.Search)) + "%")
		var ors []string
		for _, c := range []string{"firstname", "lastname", "email", "username", "exten", "uuid"} {
			ors = append(ors, `lower(`+c+`) LIKE `+p+` ESCAPE '\'`)
		}
		where = append(where, "("+strings.Join(ors, " OR ")+")")
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	var page UserPage
	if err := s.r.QueryRowContext(ctx, s.q(`SELECT count(*) FROM users`+cond), args...).Scan(&page.Total); err != nil {
		return UserPage{}, s.mapErr(err, "count users")
	}
	dir := " ASC"
	if q.Desc {
		dir = " DESC"
	}
	query := `SELECT ` + userCols + ` FROM users` + cond + ` ORDER BY ` + col + dir + `, id` + dir
	if q.Limit > 0 {
		query += ` LIMIT ` + arg(q.Limit)
	} else if q.Offset > 0 {
		query += ` LIMIT ` + arg(int64(1)<<62)
	}
	if q.Offset > 0 {
		query += ` OFFSET ` + arg(q.Offset)
	}
	rows, err := s.r.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return UserPage{}, s.mapErr(err, "list users")
	}
	defer rows.Close()
	page.Items = []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return UserPage{}, s.mapErr(err, "list users")
		}
		page.Items = append(page.Items, u)
	}
	if err := rows.Err(); err != nil {
		return UserPage{}, s.mapErr(err, "list users")
	}
	return page, nil
}

// affected maps "no row changed" to ErrNotFound.
func (s *sqlStore) affected(res sql.Result, err error, what string) error {
	if err != nil {
		return s.mapErr(err, what)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.mapErr(err, what)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *sqlStore) UpdateUser(ctx context.Context, u User) error {
	if u.Context == "" {
		u.Context = "default"
	}
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE users SET firstname = $1, lastname = $2, email = $3, username = $4,
password_hash = $5, mobile_phone_number = $6, exten = $7, context = $8, sip_username = $9, sip_password = $10,
call_record_outgoing_external = $11, call_record_outgoing_internal = $12,
call_record_incoming_external = $13, call_record_incoming_internal = $14, online_call_record = $15
WHERE uuid = $16`),
		u.Firstname, u.Lastname, u.Email, u.Username, u.PasswordHash, u.MobilePhoneNumber, u.Exten, u.Context,
		u.SIPUsername, u.SIPPassword, u.CallRecordOutgoingExternal, u.CallRecordOutgoingInternal,
		u.CallRecordIncomingExternal, u.CallRecordIncomingInternal, u.OnlineCallRecord, u.UUID)
	return s.affected(res, err, "update user")
}

func (s *sqlStore) DeleteUser(ctx context.Context, uuid string) error {
	res, err := s.w.ExecContext(ctx, s.q(`DELETE FROM users WHERE uuid = $1`), uuid)
	return s.affected(res, err, "delete user")
}

func (s *sqlStore) SetCallRecord(ctx context.Context, uuid string, on bool) error {
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE users SET call_record_outgoing_external = $1,
call_record_outgoing_internal = $1, call_record_incoming_external = $1, call_record_incoming_internal = $1
WHERE uuid = $2`), on, uuid)
	return s.affected(res, err, "set call record")
}

func (s *sqlStore) ToggleCallRecord(ctx context.Context, uuid string) (bool, error) {
	// One statement: two toggles at once cannot both read the old state.
	var on bool
	err := s.w.QueryRowContext(ctx, s.q(`UPDATE users SET
call_record_outgoing_external = NOT (call_record_outgoing_external AND call_record_outgoing_internal AND call_record_incoming_external AND call_record_incoming_internal),
call_record_outgoing_internal = NOT (call_record_outgoing_external AND call_record_outgoing_internal AND call_record_incoming_external AND call_record_incoming_internal),
call_record_incoming_external = NOT (call_record_outgoing_external AND call_record_outgoing_internal AND call_record_incoming_external AND call_record_incoming_internal),
call_record_incoming_internal = NOT (call_record_outgoing_external AND call_record_outgoing_internal AND call_record_incoming_external AND call_record_incoming_internal)
WHERE uuid = $1 RETURNING call_record_outgoing_external`), uuid).Scan(&on)
	if errors.Is(err, sql.ErrNoRows) {
		return false, ErrNotFound
	}
	if err != nil {
		return false, s.mapErr(err, "toggle call record")
	}
	return on, nil
}

// ---------------------------------------------------------- features

const featureCols = `uuid, context, exten, feature, enabled`

func scanFeature(row interface{ Scan(...any) error }) (Feature, error) {
	var f Feature
	err := row.Scan(&f.UUID, &f.Context, &f.Exten, &f.Feature, &f.Enabled)
	return f, err
}

// seedFeatures inserts the DefaultFeatures a catalog lacks (by feature
// name); an operator's changes to existing ones are kept.
func (s *sqlStore) seedFeatures(ctx context.Context) error {
	for _, f := range DefaultFeatures {
		_, err := s.w.ExecContext(ctx, s.q(`INSERT INTO feature_extensions (`+featureCols+`)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`), NewUUID(), f.Context, f.Exten, f.Feature, f.Enabled)
		if err != nil {
			return s.mapErr(err, "seed feature "+f.Feature)
		}
	}
	return nil
}

func (s *sqlStore) Features(ctx context.Context) ([]Feature, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+featureCols+` FROM feature_extensions ORDER BY feature, uuid`)
	if err != nil {
		return nil, s.mapErr(err, "features")
	}
	defer rows.Close()
	out := []Feature{}
	for rows.Next() {
		f, err := scanFeature(rows)
		if err != nil {
			return nil, s.mapErr(err, "features")
		}
		out = append(out, f)
	}
	return out, s.mapErr(rows.Err(), "features")
}

func (s *sqlStore) featureWhere(ctx context.Context, where string, args ...any) (Feature, error) {
	st, err := s.stmt(ctx, s.r, s.q(`SELECT `+featureCols+` FROM feature_extensions WHERE `+where))
	if err != nil {
		return Feature{}, s.mapErr(err, "feature")
	}
	f, err := scanFeature(st.QueryRowContext(ctx, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Feature{}, ErrNotFound
	}
	if err != nil {
		return Feature{}, s.mapErr(err, "feature")
	}
	return f, nil
}

func (s *sqlStore) Feature(ctx context.Context, uuid string) (Feature, error) {
	return s.featureWhere(ctx, `uuid = $1`, uuid)
}

func (s *sqlStore) CreateFeature(ctx context.Context, f Feature) (Feature, error) {
	if f.UUID == "" {
		f.UUID = NewUUID()
	}
	if f.Context == "" {
		f.Context = FeaturesContext
	}
	if f.Feature == "" || f.Exten == "" {
		return Feature{}, fmt.Errorf("%w: feature without a name or exten", ErrInvalid)
	}
	_, err := s.w.ExecContext(ctx, s.q(`INSERT INTO feature_extensions (`+featureCols+`) VALUES ($1, $2, $3, $4, $5)`),
		f.UUID, f.Context, f.Exten, f.Feature, f.Enabled)
	if err != nil {
		return Feature{}, s.mapErr(err, "create feature")
	}
	return f, nil
}

func (s *sqlStore) FeatureByExten(ctx context.Context, exten string) (Feature, error) {
	return s.featureWhere(ctx, `exten = $1 AND enabled = $2`+s.d.boolCast, exten, true)
}

func (s *sqlStore) UpdateFeature(ctx context.Context, f Feature) error {
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE feature_extensions SET exten = $1, enabled = $2 WHERE uuid = $3`),
		f.Exten, f.Enabled, f.UUID)
	return s.affected(res, err, "update feature")
}

// ------------------------------------------------------------ tokens

func (s *sqlStore) PutToken(ctx context.Context, t Token) error {
	if t.Hash == "" || t.AuthID == "" {
		return fmt.Errorf("%w: token without hash or auth id", ErrInvalid)
	}
	if t.ACL == "" {
		t.ACL = "[]"
	}
	_, err := s.w.ExecContext(ctx, s.q(`INSERT INTO auth_tokens (token_hash, auth_id, user_uuid, tenant_uuid, is_admin, acl, issued_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`),
		t.Hash, t.AuthID, t.UserUUID, t.TenantUUID, t.Admin, t.ACL, s.timeArg(t.IssuedAt), s.timeArg(t.ExpiresAt))
	return s.mapErr(err, "put token")
}

func (s *sqlStore) TokenByHash(ctx context.Context, hash string) (Token, error) {
	var t Token
	var issued, expires dbTime
	err := s.r.QueryRowContext(ctx, s.q(`SELECT token_hash, auth_id, user_uuid, tenant_uuid, is_admin, acl, issued_at, expires_at
FROM auth_tokens WHERE token_hash = $1`), hash).Scan(&t.Hash, &t.AuthID, &t.UserUUID, &t.TenantUUID, &t.Admin, &t.ACL, &issued, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, ErrNotFound
	}
	if err != nil {
		return Token{}, s.mapErr(err, "token")
	}
	t.IssuedAt, t.ExpiresAt = issued.t, expires.t
	return t, nil
}

func (s *sqlStore) DeleteToken(ctx context.Context, hash string) error {
	res, err := s.w.ExecContext(ctx, s.q(`DELETE FROM auth_tokens WHERE token_hash = $1`), hash)
	return s.affected(res, err, "delete token")
}

func (s *sqlStore) DeleteExpiredTokens(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, s.q(`DELETE FROM auth_tokens WHERE expires_at < $1`), s.timeArg(now))
	if err != nil {
		return 0, s.mapErr(err, "delete expired tokens")
	}
	return res.RowsAffected()
}
