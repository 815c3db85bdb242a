// Package users is tapedeck's PBX users as Wazo has them (seed 002): who
// they are, the extension that reaches them, their phone's digest
// credentials, and the flags that say which of their calls are recorded
// automatically (Decide); the feature extensions users dial (*26 toggles
// their call recording); and the Jinja2 file names of those recordings
// (Namer).
//
// The data lives in the catalog database (meta.UserStore, SQLite or
// PostgreSQL); Service adds the rules: validation, password hashing,
// partial updates, id-or-uuid lookups.
package users

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// User is one PBX user (see meta.User for the fields).
type User = meta.User

// Feature is one feature extension (see meta.Feature).
type Feature = meta.Feature

// Query selects a page of users (see meta.UserQuery).
type Query = meta.UserQuery

// Page is one page of users.
type Page = meta.UserPage

// Errors: the store's sentinels, so callers test with errors.Is against
// one set.
var (
	ErrNotFound = meta.ErrNotFound
	ErrConflict = meta.ErrConflict
	ErrInvalid  = meta.ErrInvalid
	// ErrBadPassword: Authenticate got an unknown username or a wrong
	// password (not told apart).
	ErrBadPassword = errors.New("users: wrong username or password")
)

// FeatureCallRecord is the feature name of *26.
const FeatureCallRecord = meta.FeatureCallRecord

// Service is the users' domain: the store plus the rules.
type Service struct {
	store meta.UserStore
	// BcryptCost hashes passwords (default bcrypt.DefaultCost; tests lower
	// it).
	BcryptCost int
}

// New returns the service over a catalog's user store.
func New(store meta.UserStore) *Service { return &Service{store: store} }

// Store is the underlying store.
func (s *Service) Store() meta.UserStore { return s.store }

// Extension rules: wazo-confd's EXTEN_REGEX for feature codes (patterns
// allowed), plain digits, * and # for a user's number.
var (
	featureExtenRe = regexp.MustCompile(`^(_[*#0-9_XxZzNn\[\].!-]{1,39}|[*#0-9]{1,40})$`)
	userExtenRe    = regexp.MustCompile(`^[*#0-9]{1,40}$`)
	contextRe      = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,79}$`)
	sipUserRe      = regexp.MustCompile(`^[a-zA-Z0-9_.!~*'()&=+$,;?/-]{1,128}$`)
)

// ValidFeatureExten reports whether exten is a valid feature code.
func ValidFeatureExten(exten string) bool { return featureExtenRe.MatchString(exten) }

// FieldError is a validation problem of one field, named as the API names
// it.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Msg) }

// Unwrap makes a FieldError an ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Validate checks a user's fields.
func Validate(u *User) error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, &FieldError{field, msg}) }
	if u.Exten != "" && !userExtenRe.MatchString(u.Exten) {
		bad("exten", "must be 1 to 40 digits, * or #")
	}
	if u.Context != "" && !contextRe.MatchString(u.Context) {
		bad("context", "must be 1 to 79 letters, digits, _ or -")
	}
	if u.SIPUsername != "" && !sipUserRe.MatchString(u.SIPUsername) {
		bad("sip_username", "is not a valid SIP user name")
	}
	if u.SIPUsername != "" && u.SIPPassword == "" {
		bad("sip_password", "is required with a SIP username")
	}
	for _, f := range []struct{ name, v string }{{"firstname", u.Firstname}, {"lastname", u.Lastname}, {"email", u.Email}} {
		if len(f.v) > 254 {
			bad(f.name, "is longer than 254 characters")
		}
	}
	if u.Email != "" && (!strings.Contains(u.Email, "@") || strings.ContainsAny(u.Email, " \t\r\n")) {
		bad("email", "Not a valid email address.")
	}
	return errors.Join(errs...)
}

// HashPassword hashes a wazo-auth password for User.PasswordHash.
func (s *Service) HashPassword(password string) (string, error) {
	cost := s.BcryptCost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", &FieldError{"password", err.Error()}
	}
	return string(h), nil
}

// Create validates and inserts u (u.TenantUUID required); ErrConflict when
// its uuid, username, SIP username or extension is taken.
func (s *Service) Create(ctx context.Context, u User) (User, error) {
	if u.Context == "" {
		u.Context = "default"
	}
	if err := Validate(&u); err != nil {
		return User{}, err
	}
	return s.store.CreateUser(ctx, u)
}

// Get finds a user by integer id or uuid, as wazo-confd's /users/{user_id}.
func (s *Service) Get(ctx context.Context, idOrUUID string) (User, error) {
	if id, err := strconv.ParseInt(idOrUUID, 10, 64); err == nil {
		return s.store.UserByID(ctx, id)
	}
	if idOrUUID == "" {
		return User{}, ErrNotFound
	}
	return s.store.UserByUUID(ctx, idOrUUID)
}

// GetByUUID finds a user by uuid.
func (s *Service) GetByUUID(ctx context.Context, uuid string) (User, error) {
	return s.store.UserByUUID(ctx, uuid)
}

// List returns a page of users.
func (s *Service) List(ctx context.Context, q Query) (Page, error) { return s.store.ListUsers(ctx, q) }

// Update applies change to the stored user and writes it back (a partial
// update: change sets what the request names). The id, uuid, tenant and
// creation time cannot change.
func (s *Service) Update(ctx context.Context, uuid string, change func(*User) error) (User, error) {
	u, err := s.store.UserByUUID(ctx, uuid)
	if err != nil {
		return User{}, err
	}
	keep := u
	if err := change(&u); err != nil {
		return User{}, err
	}
	u.ID, u.UUID, u.TenantUUID, u.Created = keep.ID, keep.UUID, keep.TenantUUID, keep.Created
	if err := Validate(&u); err != nil {
		return User{}, err
	}
	if err := s.store.UpdateUser(ctx, u); err != nil {
		return User{}, err
	}
	return u, nil
}

// Delete removes a user. Their recordings stay in the catalog.
func (s *Service) Delete(ctx context.Context, uuid string) error {
	return s.store.DeleteUser(ctx, uuid)
}

// ByExten is the user reached by exten in context.
func (s *Service) ByExten(ctx context.Context, context, exten string) (User, error) {
	return s.store.UserByExten(ctx, context, exten)
}

// BySIPUsername is the user whose phone authenticates as name.
func (s *Service) BySIPUsername(ctx context.Context, name string) (User, error) {
	return s.store.UserBySIPUsername(ctx, name)
}

// SetCallRecord sets the user's four call_record_*_enabled flags.
func (s *Service) SetCallRecord(ctx context.Context, uuid string, on bool) error {
	return s.store.SetCallRecord(ctx, uuid, on)
}

// ToggleCallRecord is *26: all four flags off when all are on, else all
// on. It returns the new state.
func (s *Service) ToggleCallRecord(ctx context.Context, uuid string) (bool, error) {
	return s.store.ToggleCallRecord(ctx, uuid)
}

// Authenticate checks a user's wazo-auth credentials.
func (s *Service) Authenticate(ctx context.Context, username, password string) (User, error) {
	u, err := s.store.UserByUsername(ctx, username)
	if errors.Is(err, ErrNotFound) || err == nil && u.PasswordHash == "" {
		// Same work for unknown users as for known ones.
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return User{}, ErrBadPassword
	}
	if err != nil {
		return User{}, err
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		return User{}, ErrBadPassword
	}
	return u, nil
}

var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("tapedeck"), bcrypt.MinCost)

// Features lists the feature extensions.
func (s *Service) Features(ctx context.Context) ([]Feature, error) { return s.store.Features(ctx) }

// Feature finds a feature extension by uuid.
func (s *Service) Feature(ctx context.Context, uuid string) (Feature, error) {
	return s.store.Feature(ctx, uuid)
}

// UpdateFeature sets a feature's exten and enabled state. A new exten
// replaces the old one; one already used by another feature is
// ErrConflict.
func (s *Service) UpdateFeature(ctx context.Context, f Feature) error {
	if !ValidFeatureExten(f.Exten) {
		return &FieldError{"exten", "String does not match expected pattern."}
	}
	return s.store.UpdateFeature(ctx, f)
}

// FeatureByExten reports which enabled feature owns the dialled code: ok
// is false when none does (unknown or disabled: the code is not routable).
func (s *Service) FeatureByExten(ctx context.Context, exten string) (f Feature, ok bool, err error) {
	f, err = s.store.FeatureByExten(ctx, exten)
	if errors.Is(err, ErrNotFound) {
		return Feature{}, false, nil
	}
	if err != nil {
		return Feature{}, false, err
	}
	return f, true, nil
}
