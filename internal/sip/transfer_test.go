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

// TestNotifyAcceptsWithTheStateUpdated: a NOTIFY's 200 goes out with the
// transfer's state updated under the same lock, so a NOTIFY its sender
// sends on receiving the 200 of a final one finds the transfer ended
// (481), never still in progress (TestAriRedirectReferFailureKeepsChannel
// failed once on that race: the 200 went out before the state changed).
func TestNotifyAcceptsWithTheStateUpdated(t *testing.T) {
	var s referState
	progress, err := s.begin()
	if err != nil {
		t.Fatal(err)
	}
	// A provisional status: the transfer goes on.
	if !s.notify(100, false, func() {}) || !s.active() || <-progress != 100 {
		t.Fatal("NOTIFY 100 did not pass on its status with the transfer in progress")
	}
	later := make(chan bool)
	if !s.notify(486, false, func() {
		// The 200 is out: the sender's next NOTIFY is checked now.
		go func() { later <- s.active() }()
	}) {
		t.Fatal("NOTIFY 486 of a transfer in progress refused")
	}
	if <-later {
		t.Fatal("a NOTIFY sent on the 200 of a final one found the transfer still in progress")
	}
	if code, ok := <-progress; code != 486 || !ok {
		t.Fatalf("status %d, %v; want 486", code, ok)
	}
	if _, ok := <-progress; ok {
		t.Fatal("progress not closed after a final status")
	}
	if s.notify(200, false, func() { t.Fatal("a NOTIFY after the end accepted") }) {
		t.Fatal("notify after the end = true")
	}
}
