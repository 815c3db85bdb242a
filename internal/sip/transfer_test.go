package sip

import "testing"

func TestSipfragStatus(t *testing.T) {
	for body, want := range map[string]int{
		"SIP/2.0 200 OK\r\n":                  200,
		"SIP/2.0 100 Trying":                  100,
		"SIP/2.0 486 Busy Here\r\nVia: x\r\n": 486,
		"":                                    0,
		"HTTP/1.1 200 OK":                     0,
		"SIP/2.0 abc":                         0,
		"SIP/2.0 99 Low":                      0,
		"SIP/2.0 700 High":                    0,
		"SIP/2.0":                             0,
		"  SIP/2.0 603 Decline  \r\n":         603,
	} {
		got, ok := sipfragStatus([]byte(body))
		if got != want || ok != (want != 0) {
			t.Errorf("%q: %d %v, want %d", body, got, ok, want)
		}
	}
}
