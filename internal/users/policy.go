package users

import "fmt"

// CallKind is how a call crosses the PBX's edge, which decides whose
// recording flags apply (Wazo's call_record_{incoming,outgoing}_{internal,
// external}_enabled).
type CallKind int

// Call kinds.
const (
	// Internal: a user calls another user.
	Internal CallKind = iota
	// IncomingExternal: a call from a trunk reaches a user (an incoming
	// route, DID -> user). The caller is not a user.
	IncomingExternal
	// OutgoingExternal: a user dials a number that is no extension and the
	// call leaves through a trunk. The callee is not a user.
	OutgoingExternal
)

func (k CallKind) String() string {
	switch k {
	case Internal:
		return "internal"
	case IncomingExternal:
		return "incoming-external"
	case OutgoingExternal:
		return "outgoing-external"
	}
	return fmt.Sprintf("CallKind(%d)", int(k))
}

// Decide says whether a call is recorded automatically and for whom, as
// Wazo does: the caller's outgoing flag for that kind of call
// (call_record_outgoing_internal_enabled on internal calls,
// call_record_outgoing_external_enabled on outgoing external ones) and the
// callee's incoming flag (call_record_incoming_internal_enabled on internal
// calls, call_record_incoming_external_enabled on incoming external ones).
// A call is recorded once, whoever asks: owners lists the users whose flag
// asked (the caller first), so the one recording can be filed under both.
// A nil caller or callee (the trunk's side) asks nothing. Decide does not
// allocate when nobody asks.
func Decide(caller, callee *User, kind CallKind) (record bool, owners []*User) {
	var byCaller, byCallee bool
	switch kind {
	case Internal:
		byCaller = caller != nil && caller.CallRecordOutgoingInternal
		byCallee = callee != nil && callee.CallRecordIncomingInternal
	case IncomingExternal:
		byCallee = callee != nil && callee.CallRecordIncomingExternal
	case OutgoingExternal:
		byCaller = caller != nil && caller.CallRecordOutgoingExternal
	}
	switch {
	case byCaller && byCallee && caller.UUID == callee.UUID:
		// A user calling themselves owns the recording once.
		return true, []*User{caller}
	case byCaller && byCallee:
		return true, []*User{caller, callee}
	case byCaller:
		return true, []*User{caller}
	case byCallee:
		return true, []*User{callee}
	}
	return false, nil
}
