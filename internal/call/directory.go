package call

import (
	"context"
	"errors"
)

// DirUser is a user of the PBX as the call model needs it: who a
// registered phone is, which extension reaches it, and its recording
// flags (Wazo's).
type DirUser struct {
	UUID, TenantUUID         string
	Firstname, Lastname      string
	Exten, Context           string
	SIPUsername, SIPPassword string

	CallRecordOutgoingExternal, CallRecordOutgoingInternal bool
	CallRecordIncomingExternal, CallRecordIncomingInternal bool
	OnlineCallRecord                                       bool
}

// Name is "Firstname Lastname" for caller ids.
func (u *DirUser) Name() string {
	switch {
	case u.Firstname == "":
		return u.Lastname
	case u.Lastname == "":
		return u.Firstname
	}
	return u.Firstname + " " + u.Lastname
}

// Directory finds users (the users store in the catalog database).
type Directory interface {
	// UserBySIPUsername finds the user whose phone authenticates as name;
	// ErrNoUser when none.
	UserBySIPUsername(ctx context.Context, name string) (*DirUser, error)
	// UserByExten finds the user reached by exten (in any context when
	// context is empty); ErrNoUser when none.
	UserByExten(ctx context.Context, context, exten string) (*DirUser, error)
}

// ErrNoUser: the directory has no such user.
var ErrNoUser = errors.New("no such user")
