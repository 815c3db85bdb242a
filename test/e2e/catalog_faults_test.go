package e2e

// Faults found by attacking a running server (issue 12), catalog and
// recording-lifecycle parts.

import (
	"strings"
	"testing"
)

// TestRestcommListBadPaging: an AfterSid that names no recording of the
// account, and Page values whose offset (Page*PageSize) does not fit, are
// the client's mistakes: 400 with a message saying which, never 500.
func TestRestcommListBadPaging(t *testing.T) {
	n := startNode(t)
	acc := defaultAccount(t, n)
	list := "/restcomm/2012-04-24/Accounts/" + acc.Sid + "/Recordings"
	for _, tc := range []struct{ query, want string }{
		{"AfterSid=RE00000000000000000000000000000000", "AfterSid"},
		{"AfterSid=nonsense", "AfterSid"},
		{"Page=9999999999999999999", "Page"},
		{"Page=9223372036854775807&PageSize=2", "Page"},
		{"Page=4611686018427387904&PageSize=1000", "Page"},
		{"Page=2147483647&PageSize=1000", "Page"},
		{"PageSize=9223372036854775807", "PageSize"},
		{"Limit=99999999999999999999", "Limit"},
	} {
		for _, ext := range []string{".json", ""} {
			code, body := rc(t, n, acc, "GET", list+ext+"?"+tc.query)
			if code != 400 || !strings.Contains(string(body), tc.want) {
				t.Errorf("%s%s?%s = %d %s, want 400 naming %s", list, ext, tc.query, code, body, tc.want)
			}
		}
	}
	// The largest page that fits is an empty page, not an error.
	if code, body := rc(t, n, acc, "GET", list+".json?Page=2147483647&PageSize=1"); code != 200 {
		t.Errorf("Page=2147483647&PageSize=1: %d %s", code, body)
	}
}
