package sip

import (
	"github.com/emiago/sipgo/sip"
)

// checkRequest validates what tapedeck's handlers read from a request,
// before they read it. It returns 0 for a usable request, or the status
// and reason to answer with: 505 for a SIP version other than 2.0 (RFC 3261
// 21.5.7), 400 for a missing mandatory header (8.1.1), a CSeq
// whose method is not the request's (8.1.1.5) or an INVITE whose Contact is
// missing or the wildcard (8.1.1.8, 10.2.2: '*' belongs to REGISTER).
func checkRequest(req *sip.Request) (int, string) {
	if req.SipVersion != "SIP/2.0" {
		return 505, "Version Not Supported"
	}
	switch {
	case req.Via() == nil:
		return 400, "Bad Request (missing Via)"
	case req.From() == nil:
		return 400, "Bad Request (missing From)"
	case req.To() == nil:
		return 400, "Bad Request (missing To)"
	case req.CallID() == nil || req.CallID().Value() == "":
		return 400, "Bad Request (missing Call-ID)"
	case req.CSeq() == nil:
		return 400, "Bad Request (missing CSeq)"
	}
	if req.CSeq().MethodName != req.Method {
		return 400, "Bad Request (CSeq method does not match the request)"
	}
	if req.Method == sip.INVITE {
		c := req.Contact()
		if c == nil {
			return 400, "Bad Request (missing Contact)"
		}
		if c.Address.Wildcard {
			return 400, "Bad Request (Contact * is only allowed in REGISTER)"
		}
	}
	return 0, ""
}
