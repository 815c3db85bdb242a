// Package meta is tapedeck's recording catalog: one row per recording that
// tapedeck makes, owned by an account (AccountSid/AuthToken), listed by the
// Restcomm-style Recordings API with filters (StartTime/EndTime on
// DateCreated, CallSid), sorting (DateCreated, Duration, CallSid; ties broken
// by Sid) and paging (offset and keyset via AfterSid).
//
// Two implementations share one contract (Store): SQLite (OpenSQLite, pure
// Go, for a single node) and PostgreSQL (OpenPostgres, for shared catalogs).
// Schema migrations are embedded and applied when a store is opened.
//
// Tenant isolation is enforced in the queries: every recording read, list
// and delete of the API takes the caller's AccountSid, and a Sid that belongs
// to another account behaves exactly like a Sid that does not exist
// (ErrNotFound).
package meta

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Sentinel errors. Implementations wrap them; test with errors.Is.
var (
	// ErrNotFound: no such account/recording (or it belongs to another
	// account), or AfterSid does not name a recording of the account.
	ErrNotFound = errors.New("meta: not found")
	// ErrConflict: a unique value is taken (account name, recording name),
	// or PutRecording tried to move an existing Sid to another account.
	ErrConflict = errors.New("meta: conflict")
	// ErrUnauthorized: Authenticate got an unknown AccountSid or a wrong
	// AuthToken (the two are not told apart).
	ErrUnauthorized = errors.New("meta: unauthorized")
	// ErrInvalid: an argument is malformed (empty Sid, unknown SortBy,
	// negative Offset, a recording for an account that does not exist...).
	ErrInvalid = errors.New("meta: invalid argument")
)

// APIVersion is the Restcomm API version stored on new recordings.
const APIVersion = "2012-04-24"

// Paging defaults and limits applied by ListRecordings.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// Recording sources.
const (
	SourceARI     = "ari"
	SourceCommand = "command"
	SourcePolicy  = "policy"
	SourceScript  = "script"
)

// Status is a catalog row's status (Restcomm's Status, with tapedeck's
// failed and recovered).
type Status string

func (s Status) String() string { return string(s) }

// Live reports whether the recording is still being made (in progress or
// paused).
func (s Status) Live() bool { return s == StatusInProgress || s == StatusPaused }

// Recording statuses.
const (
	StatusInProgress Status = "in-progress"
	// StatusPaused: in progress, paused on its call (Twilio's "paused").
	StatusPaused    Status = "paused"
	StatusCompleted Status = "completed"
	StatusFailed    Status = "failed"
	StatusRecovered Status = "recovered"
	StatusDeleted   Status = "deleted"
	// StatusAbsent: the recording ended without audio (no frame was
	// received), as Twilio's "absent"; its (empty) file is kept.
	StatusAbsent Status = "absent"
	// StatusMissing: the recording was stored (completed or recovered) but
	// its file has since been removed behind the server's back.
	StatusMissing Status = "missing"
)

// Sort fields of Query.SortBy (the Restcomm SortBy names).
const (
	SortDateCreated = "DateCreated"
	SortDuration    = "Duration"
	SortCallSid     = "CallSid"
)

// Recording is one catalog row.
type Recording struct {
	Sid          string // "RE" + 32 lowercase hex (NewRecordingSid)
	AccountSid   string
	CallSid      string
	DateCreated  time.Time // UTC; zero on PutRecording: now (insert) / unchanged (update)
	DateUpdated  time.Time // UTC; see PutRecording
	StartTime    time.Time // UTC; zero = unknown (stored as NULL)
	Duration     float64   // seconds, with decimals
	Channels     int
	Format       string
	Size         int64
	SHA256       string // hex
	Source       string // ari, command, policy, script
	Status       Status // in-progress, completed, failed, recovered, deleted
	Name         string // ARI recording name, unique when not empty: the link to the file
	FilePath     string // relative to the recordings root, or blob key
	S3URI        string
	CallerNumber string
	CalledNumber string
	ApiVersion   string // "2012-04-24" (APIVersion) when empty on PutRecording
	// StatusDetail says in words why the recording failed (e.g. "Disk
	// full: ..."), or how a row left in progress was settled; empty when
	// there is nothing to say.
	StatusDetail string
	// Node is the node that makes the recording (its entity id); empty on
	// rows made before it was recorded.
	Node string
	// TenantUUID, Direction (internal, incoming-external,
	// outgoing-external) and Owners (user UUIDs) describe a recording made
	// by the users' policy (Wazo); empty otherwise. Owners are
	// comma-separated.
	TenantUUID string
	Direction  string
	Owners     string
	// Quality is how complete the recording is (nil: not measured, e.g.
	// rows made before it was, or recovered from a file).
	Quality *Quality
	// EndReason is why the recording ended (hangup, stopped, duration,
	// inactivity, finish-digit, failed, interrupted); empty while it is
	// live, and on rows written before it was kept (migration 00017).
	EndReason string
	// Callback, on StartRecording, is the status callback kept with the
	// row from its first write (StatusCallbacks), so that no crash after
	// the start can leave the recording without it: Ozeki's FinishedUrl.
	// Nil: none (a row of the same name that is replaced loses its
	// own). Only StartRecording writes it, and no read fills it in (read
	// it with StatusCallback).
	Callback *StatusCallback
}

// Quality is a recording's completeness: what the network delivered of
// what was sent while it recorded, and where it was paused. Stored as one
// JSON document in the row (migration 00009).
type Quality struct {
	PacketsExpected   int64 `json:"packets_expected"`
	PacketsReceived   int64 `json:"packets_received"`
	PacketsLost       int64 `json:"packets_lost"`
	PacketsLate       int64 `json:"packets_late"`
	PacketsDuplicated int64 `json:"packets_duplicated"`
	// LossSilenceMs is the silence inserted where packets were missing.
	LossSilenceMs int64   `json:"loss_silence_ms"`
	JitterMs      float64 `json:"jitter_ms"`
	// RecordedMs is the audio in the file; CallMs the time the recording
	// ran on the call (from its start to its end, pauses included).
	RecordedMs int64 `json:"recorded_ms"`
	CallMs     int64 `json:"call_ms"`
	// Degraded: the loss passed the configured threshold.
	Degraded bool     `json:"degraded"`
	Paused   []Paused `json:"paused_intervals"`
	// Parties (tapedeck's extension) are a bridge recording's parties,
	// each with its own packet figures; the packet figures above are
	// their sums (JitterMs the worst party's, LossSilenceMs the silence
	// played for each party's missing packets, added up).
	Parties []PartyQuality `json:"parties,omitempty"`
}

// PartyQuality is one party's packet figures in a bridge recording, from
// its first packet in the recording to its leave (or the recording's end).
type PartyQuality struct {
	Channel           string  `json:"channel" xml:"Channel"`
	CallSid           string  `json:"call_sid,omitempty" xml:"CallSid,omitempty"`
	PacketsExpected   int64   `json:"packets_expected" xml:"PacketsExpected"`
	PacketsReceived   int64   `json:"packets_received" xml:"PacketsReceived"`
	PacketsLost       int64   `json:"packets_lost" xml:"PacketsLost"`
	PacketsLate       int64   `json:"packets_late" xml:"PacketsLate"`
	PacketsDuplicated int64   `json:"packets_duplicated" xml:"PacketsDuplicated"`
	LossSilenceMs     int64   `json:"loss_silence_ms" xml:"LossSilenceMs"`
	JitterMs          float64 `json:"jitter_ms" xml:"JitterMs"`
}

// Paused is one paused stretch of a recording.
type Paused struct {
	Start    time.Time `json:"start"`     // UTC
	LengthMs int64     `json:"length_ms"` // to the resume (or the end)
	Behavior string    `json:"behavior"`  // skip (left out of the file) or silence (written as silence)
	By       string    `json:"by"`        // who asked: "ari:<app>", "twilio:<AccountSid>", "web:<user>"...
}

// LossPercent is the share of expected packets that were lost (0 when none
// were expected).
func (q *Quality) LossPercent() float64 {
	if q == nil || q.PacketsExpected <= 0 {
		return 0
	}
	return 100 * float64(q.PacketsLost) / float64(q.PacketsExpected)
}

// QualityView is Quality as the APIs show it (JSON), with the loss and the
// completeness worked out.
type QualityView struct {
	*Quality
	LossPercent float64 `json:"loss_percent"` // lost over expected, in percent, 2 decimals
	// RecordedOverCall is recorded time over call time (0 to 1, 3 decimals).
	RecordedOverCall float64 `json:"recorded_over_call"`
}

// View returns the API view of q; nil for nil.
func (q *Quality) View() *QualityView {
	if q == nil {
		return nil
	}
	return &QualityView{Quality: q, LossPercent: math.Round(q.LossPercent()*100) / 100,
		RecordedOverCall: math.Round(q.Completeness()*1000) / 1000}
}

// RecordedPercent is RecordedOverCall in percent, rounded.
func (v *QualityView) RecordedPercent() int { return int(math.Round(v.RecordedOverCall * 100)) }

// Completeness is recorded time over call time (1 when nothing is known).
func (q *Quality) Completeness() float64 {
	if q == nil || q.CallMs <= 0 {
		return 1
	}
	return min(float64(q.RecordedMs)/float64(q.CallMs), 1)
}

// Account owns recordings and authenticates API calls.
type Account struct {
	Sid       string // "AC" + 32 lowercase hex
	AuthToken string // 32 lowercase hex
	Name      string // unique
	Created   time.Time
	Default   bool
}

// Query selects a page of one account's recordings.
type Query struct {
	AccountSid string // required
	CallSid    string // exact match when not empty
	// StartFrom/StartTo bound DateCreated, both inclusive (the API's
	// StartTime/EndTime). A date-only EndTime should be passed as the last
	// instant of that day (see EndOfDay).
	StartFrom, StartTo *time.Time
	// SortBy is SortDateCreated (default), SortDuration or SortCallSid,
	// optionally with the API's ":asc"/":desc" suffix, which then overrides
	// Desc (see ParseSortBy). Ties are broken by Sid, in the same direction.
	SortBy string
	Desc   bool
	Offset int // rows to skip (Page*PageSize); applied after AfterSid
	Limit  int // page size; <= 0: DefaultPageSize; capped at MaxPageSize
	// AfterSid, when set, starts the page right after that recording in the
	// sort order (keyset paging; stable and cheap for deep pages). The Sid
	// must be one of the account's recordings, else ErrNotFound.
	AfterSid string
	// BeforeSid, when set, is the page right before that recording in the
	// sort order (keyset paging backwards, for a "previous" link); the rows
	// still come in the sort order. Not with AfterSid, Offset or
	// IncludeDeleted.
	BeforeSid string
	// From/To: exact caller (CallerNumber) and callee (CalledNumber)
	// numbers when not empty.
	From, To string
	// Status and Source: exact status and source when not empty. Owner: a
	// user UUID among the comma-separated Owners when not empty (served by
	// the owners tables of migration 00014: a range scan of the user's
	// recordings, however few among the account's).
	Status Status
	Source string
	Owner  string
	// CountLimit, when > 0, stops counting matching rows past it: Total is
	// then at most CountLimit+1 and TotalCapped says it was cut (a big
	// result's count costs as much as reading it). Negative: no count at
	// all (Total -1, TotalCapped).
	CountLimit int
	// IncludeDeleted lists soft-deleted recordings too (status deleted),
	// as Twilio's IncludeSoftDeleted.
	IncludeDeleted bool
}

// Page is one page of ListRecordings.
type Page struct {
	Items []Recording
	Total int // rows matching the filters (ignores paging)
	// TotalCapped: more than Query.CountLimit rows match; Total is a lower
	// bound.
	TotalCapped bool
}

// Store is the recording catalog.
type Store interface {
	// CreateAccount makes an account with a new Sid and AuthToken.
	// ErrConflict when the name is taken.
	CreateAccount(ctx context.Context, name string) (Account, error)
	// EnsureDefaultAccount returns the default account, creating it (named
	// "default") the first time. Safe to call concurrently and on every start.
	EnsureDefaultAccount(ctx context.Context) (Account, error)
	// ListAccounts: the default account first, then by creation time.
	ListAccounts(ctx context.Context) ([]Account, error)
	Account(ctx context.Context, sid string) (Account, error)
	AccountByName(ctx context.Context, name string) (Account, error)
	// RotateToken gives the account a new AuthToken; the old one stops
	// working at once.
	RotateToken(ctx context.Context, sid string) (Account, error)
	// Authenticate checks an AccountSid/AuthToken pair (constant-time
	// compare). ErrUnauthorized when either is wrong.
	Authenticate(ctx context.Context, sid, token string) (Account, error)

	// PutRecording inserts the recording, or updates the row with its Sid.
	// Sid and AccountSid are required. An update never moves a row to
	// another account (ErrConflict). On insert a zero DateCreated/DateUpdated
	// become now; on update a zero DateCreated keeps the stored one, and
	// DateUpdated becomes now unless the given one is later than the stored
	// one. Times are stored in UTC, truncated to microseconds. ErrConflict
	// when Name is used by another recording; ErrInvalid when the account
	// does not exist.
	PutRecording(ctx context.Context, r Recording) error
	// StartRecording inserts r (a recording that starts) or, when a row
	// has r's Name (a name reused, ifExists=overwrite), replaces that
	// row's content with r's, keeping its Sid and DateCreated: one
	// statement, no look-up. r.Callback is kept with the row in the same
	// statement (ErrInvalid without its URL). It returns the Sid and DateCreated stored.
	// ErrConflict when the named row belongs to another account.
	StartRecording(ctx context.Context, r Recording) (sid string, created time.Time, err error)
	// PutRecordings is PutRecording for many rows in one transaction (all
	// or nothing); for imports and recovery scans.
	PutRecordings(ctx context.Context, rs []Recording) error
	// Recording returns the account's recording; ErrNotFound when the Sid
	// does not exist or belongs to another account.
	Recording(ctx context.Context, accountSid, sid string) (Recording, error)
	// RecordingBySid finds a recording by Sid alone, in any account: for
	// the media URLs that Restcomm serves without credentials (the caller
	// does its own checks, e.g. a signature), not for account-scoped API
	// paths, which use Recording.
	RecordingBySid(ctx context.Context, sid string) (Recording, error)
	// RecordingByName finds a recording by its (node-unique) name, in any
	// account: for the recorder, not for the API.
	RecordingByName(ctx context.Context, name string) (Recording, error)
	// DeleteRecording removes the row (the caller removes the file);
	// ErrNotFound when the Sid does not exist or belongs to another account.
	DeleteRecording(ctx context.Context, accountSid, sid string) error
	DeleteRecordingByName(ctx context.Context, name string) error
	// ListRecordings returns one page of the account's recordings.
	ListRecordings(ctx context.Context, q Query) (Page, error)
	// SoftDeleteRecording moves the account's recording to the deleted
	// recordings (status deleted, kept until PurgeDeleted) and writes the
	// audit row a, in one transaction; the caller removes the file.
	// ErrNotFound as DeleteRecording.
	SoftDeleteRecording(ctx context.Context, accountSid, sid string, a Audit) error
	// DeletedRecording returns a soft-deleted recording of the account;
	// ErrNotFound when there is none with that Sid.
	DeletedRecording(ctx context.Context, accountSid, sid string) (Recording, error)
	// PurgeDeleted forgets soft-deleted recordings deleted before t; it
	// returns how many. Their audit rows stay.
	PurgeDeleted(ctx context.Context, before time.Time) (int, error)
	// AuditTrail returns the audit rows of one recording, oldest first.
	AuditTrail(ctx context.Context, accountSid, sid string) ([]Audit, error)
	// SetLiveStatus sets the status (StatusInProgress or StatusPaused) and
	// the quality of the recording named name, only while it is live (in
	// progress or paused): a recording that has finished meanwhile keeps
	// its final row. ErrNotFound when there is no live row of that name;
	// ErrInvalid for another status.
	SetLiveStatus(ctx context.Context, name string, st Status, q *Quality) error
	// SetChecksum sets the size and checksum of the recording sid, and its
	// DateUpdated to now, in one statement, only while its file is still
	// filePath and it has no checksum yet; false when no row was changed
	// (none such, moved, or already checksummed).
	SetChecksum(ctx context.Context, sid, filePath string, size int64, sum string, now time.Time) (bool, error)
	// InProgress returns up to limit (<= 0: DefaultPageSize) recordings of
	// any account whose status is in-progress and whose Node is node or
	// empty, by name: for the node's reconciler, which settles those whose
	// recording is no longer live.
	InProgress(ctx context.Context, node string, limit int) ([]Recording, error)
	// Stored returns up to limit (<= 0: DefaultPageSize) recordings of any
	// account whose status is completed or recovered and whose Node is
	// node or empty, with names after afterName, by name: for the node's
	// reconciler, which checks that their files are still there.
	Stored(ctx context.Context, node, afterName string, limit int) ([]Recording, error)
	// Finished returns up to limit (<= 0: DefaultPageSize) recordings of
	// any account whose status is completed, recovered or failed and that
	// this node can serve (its Node is node or empty, or its file is in
	// object storage), with names after afterName, by name: ARI's stored
	// recordings. Node "*" is every node's (a cluster whose nodes relay
	// each other's local files).
	Finished(ctx context.Context, node, afterName string, limit int) ([]Recording, error)

	// Ping checks that the catalog answers: a round trip to the database
	// that reads one row of its tables (so a database that answers without
	// the catalog's schema fails too), whatever the catalog's size. For
	// readiness checks.
	Ping(ctx context.Context) error

	Close() error
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("meta: crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// NewRecordingSid returns "RE" + 32 random lowercase hex digits.
func NewRecordingSid() string { return "RE" + randomHex(16) }

// NewAccountSid returns "AC" + 32 random lowercase hex digits.
func NewAccountSid() string { return "AC" + randomHex(16) }

// NewAuthToken returns 32 random lowercase hex digits.
func NewAuthToken() string { return randomHex(16) }

func isSid(s, prefix string) bool {
	if len(s) != 34 || !strings.HasPrefix(s, prefix) {
		return false
	}
	for _, c := range s[2:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// IsRecordingSid reports whether s looks like a recording Sid.
func IsRecordingSid(s string) bool { return isSid(s, "RE") }

// IsAccountSid reports whether s looks like an account Sid.
func IsAccountSid(s string) bool { return isSid(s, "AC") }

// ParseSortBy parses the API's SortBy value, "Field" or "Field:asc" /
// "Field:desc", Field one of DateCreated, Duration, CallSid (matched without
// regard to case). Empty means DateCreated ascending.
func ParseSortBy(s string) (field string, desc bool, err error) {
	f, dir, hasDir := strings.Cut(strings.TrimSpace(s), ":")
	switch {
	case f == "" && !hasDir:
		return SortDateCreated, false, nil
	case strings.EqualFold(f, SortDateCreated):
		field = SortDateCreated
	case strings.EqualFold(f, SortDuration):
		field = SortDuration
	case strings.EqualFold(f, SortCallSid):
		field = SortCallSid
	default:
		return "", false, fmt.Errorf("%w: SortBy %q", ErrInvalid, s)
	}
	switch {
	case !hasDir, strings.EqualFold(dir, "asc"):
	case strings.EqualFold(dir, "desc"):
		desc = true
	default:
		return "", false, fmt.Errorf("%w: SortBy %q", ErrInvalid, s)
	}
	return field, desc, nil
}

// EndOfDay returns the last microsecond (the stores' precision) of t's UTC
// day: the inclusive upper bound for a date-only EndTime.
func EndOfDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC).Add(-time.Microsecond)
}

// normTime is how the stores keep times: UTC, microseconds.
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// sortColumns maps the SortBy fields to their columns.
var sortColumns = map[string]string{
	SortDateCreated: "date_created",
	SortDuration:    "duration",
	SortCallSid:     "call_sid",
}
