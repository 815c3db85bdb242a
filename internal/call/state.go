package call

// State is an Asterisk channel state.
type State int

// Channel states, as Asterisk names them.
const (
	StateDown State = iota
	StateRsrved
	StateOffHook
	StateDialing
	StateRing
	StateRinging
	StateUp
	StateBusy
	StateDialingOffhook
	StatePreRing
	StateUnknown
)

var stateNames = [...]string{"Down", "Rsrved", "OffHook", "Dialing", "Ring", "Ringing", "Up", "Busy", "Dialing Offhook", "Pre-ring", "Unknown"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "Unknown"
	}
	return stateNames[s]
}

// outboundOnly are the states in which ARI media operations answer 412.
func (s State) outboundOnly() bool {
	return s == StateDown || s == StateRsrved || s == StateRinging
}

// Cause is a Q.850 hangup cause (ARI's cause, chan_pjsip's mapping to SIP).
type Cause int

// String is Asterisk's ast_cause2str text.
func (c Cause) String() string { return CauseText(c) }

// Hangup causes (Q.850) that ARI's hangup reasons map to.
const (
	CauseUnallocated       Cause = 1
	CauseNoRoute           Cause = 3
	CauseNormalClearing    Cause = 16
	CauseUserBusy          Cause = 17
	CauseNoUserResponse    Cause = 18
	CauseNoAnswer          Cause = 19
	CauseCallRejected      Cause = 21
	CauseAnsweredElsewhere Cause = 26
	CauseInvalidNumber     Cause = 28
	CauseNormalUnspecified Cause = 31
	CauseCongestion        Cause = 34
	CauseChanUnavailable   Cause = 44
	CauseFailure           Cause = 38
	CauseBearerNotAvail    Cause = 58
	CauseTimerExpiry       Cause = 102
	CauseInterworking      Cause = 127
)

// HangupReasons maps ARI's hangup reason names to causes.
var HangupReasons = map[string]Cause{
	"normal":             CauseNormalClearing,
	"busy":               CauseUserBusy,
	"congestion":         CauseCongestion,
	"no_answer":          CauseNoAnswer,
	"timeout":            CauseNoUserResponse,
	"rejected":           CauseCallRejected,
	"unallocated":        CauseUnallocated,
	"normal_unspecified": CauseNormalUnspecified,
	"number_incomplete":  CauseInvalidNumber,
	"codec_mismatch":     CauseBearerNotAvail,
	"interworking":       CauseInterworking,
	"failure":            CauseFailure,
	"answered_elsewhere": CauseAnsweredElsewhere,
}

// CauseText is Asterisk's ast_cause2str text for a cause.
func CauseText(cause Cause) string {
	switch cause {
	case 0:
		return "Unknown"
	case CauseUnallocated:
		return "Unallocated (unassigned) number"
	case CauseNoRoute:
		return "No route to destination"
	case CauseNormalClearing:
		return "Normal Clearing"
	case CauseUserBusy:
		return "User busy"
	case CauseNoUserResponse:
		return "No user responding"
	case CauseNoAnswer:
		return "User alerting, no answer"
	case CauseCallRejected:
		return "Call Rejected"
	case CauseAnsweredElsewhere:
		return "Answered elsewhere"
	case CauseInvalidNumber:
		return "Invalid number format (addr incomplete)"
	case CauseNormalUnspecified:
		return "Normal, unspecified"
	case CauseCongestion:
		return "Circuit/channel congestion"
	case CauseChanUnavailable:
		return "Requested channel not available"
	case CauseFailure:
		return "Network out of order"
	case CauseBearerNotAvail:
		return "Bearer capability not available"
	case CauseTimerExpiry:
		return "Recovery on timer expiry"
	case CauseInterworking:
		return "Interworking, unspecified"
	}
	return "Unknown"
}

// CauseToSIP maps a hangup cause to the final response for an unanswered
// inbound call, as chan_pjsip does (603 when nothing fits).
func CauseToSIP(cause Cause) (int, string) {
	switch cause {
	case CauseUnallocated, CauseNoRoute:
		return 404, "Not Found"
	case CauseUserBusy:
		return 486, "Busy Here"
	case CauseNoUserResponse:
		return 408, "Request Timeout"
	case CauseNoAnswer, CauseNormalUnspecified:
		return 480, "Temporarily Unavailable"
	case CauseCallRejected:
		return 403, "Forbidden"
	case CauseInvalidNumber:
		return 484, "Address Incomplete"
	case CauseCongestion:
		return 503, "Service Unavailable"
	case CauseFailure, CauseInterworking:
		return 500, "Server Internal Error"
	case CauseBearerNotAvail:
		return 488, "Not Acceptable Here"
	}
	return 603, "Decline"
}
