package baresip_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil/baresip"
)

// Two phones call each other directly on loopback, without tapedeck: proves
// the helper (config, ports, ctrl_tcp, events, DTMF) works.
func TestDirectCallWithDTMF(t *testing.T) {
	a := baresip.Start(t, baresip.Options{User: "userA", AnswerMode: "manual"})
	b := baresip.Start(t, baresip.Options{User: "userB", AnswerMode: "auto", Record: true})

	if err := a.Dial(b.URI()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*baresip.Phone{a, b} {
		ev, err := p.WaitEvent("CALL_ESTABLISHED", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %v", p.User, ev)
	}
	ev, _ := b.WaitEvent("CALL_ESTABLISHED", 0)
	if ev != nil {
		t.Fatalf("second CALL_ESTABLISHED on B: %v", ev)
	}

	// Sent right after CALL_ESTABLISHED, as tests against the server will.
	if err := a.SendDTMF("12#"); err != nil {
		t.Fatal(err)
	}
	got, err := b.WaitDTMF(3, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got != "12#" {
		t.Fatalf("B received DTMF %q, want %q", got, "12#")
	}

	if err := a.Hangup(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*baresip.Phone{a, b} {
		ev, err := p.WaitEvent("CALL_CLOSED", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s closed: %v", p.User, ev["direction"], ev["param"])
	}

	// B recorded what it received (A's microphone tone).
	b.Close()
	dec, _ := filepath.Glob(filepath.Join(b.RecordDir, "*-dec.wav"))
	if len(dec) != 1 {
		t.Fatalf("B recordings: %v, want one *-dec.wav", dec)
	}
	if st, err := os.Stat(dec[0]); err != nil || st.Size() <= 44 {
		t.Fatalf("B's received-audio dump %s is empty (%v)", dec[0], err)
	}
}

// A manually answering phone rings (CALL_INCOMING) until Accept.
func TestManualAccept(t *testing.T) {
	a := baresip.Start(t, baresip.Options{User: "caller"})
	b := baresip.Start(t, baresip.Options{User: "callee"})

	if err := a.Dial(b.URI()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WaitEvent("CALL_INCOMING", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WaitEvent("CALL_RINGING", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := b.Accept(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*baresip.Phone{a, b} {
		if _, err := p.WaitEvent("CALL_ESTABLISHED", 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// The callee hangs up this time.
	if err := b.Hangup(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*baresip.Phone{a, b} {
		if _, err := p.WaitEvent("CALL_CLOSED", 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// The Request-URI user must match the callee's account user: otherwise
// baresip answers 404 and the caller gets CALL_CLOSED.
func TestWrongUserIsRejected(t *testing.T) {
	a := baresip.Start(t, baresip.Options{User: "caller"})
	b := baresip.Start(t, baresip.Options{User: "callee", AnswerMode: "auto"})

	if err := a.Dial("sip:nobody@127.0.0.1:" + strconv.Itoa(b.SIPPort)); err != nil {
		t.Fatal(err)
	}
	ev, err := a.WaitEvent("CALL_CLOSED", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("closed: %v", ev["param"])
	if _, err := b.WaitEvent("CALL_ESTABLISHED", 0); err == nil {
		t.Fatal("callee established a call for the wrong user")
	}
}
