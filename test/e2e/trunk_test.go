package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/users"
)

// sipp runs SIPp (Debian's sip-tester) on 127.0.0.1:port for one call and
// returns a channel that gets its exit error (nil: the call went through
// the scenario).
func sipp(t *testing.T, port int, args ...string) <-chan error {
	t.Helper()
	bin := testutil.RequireTool(t, "sipp")
	dir := t.TempDir()
	args = append([]string{"-i", "127.0.0.1", "-p", strconv.Itoa(port), "-m", "1", "-nostdin", "-trace_err",
		"-timeout", "30s", "-timeout_error"}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	done := make(chan error, 1)
	out := &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		if err != nil {
			logs, _ := filepath.Glob(filepath.Join(dir, "*errors.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("sipp %s:\n%s", l, b)
			}
			t.Logf("sipp output:\n%s", out.String())
		}
		done <- err
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return done
}

func waitSipp(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sipp: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("sipp did not finish")
	}
}

// TestTrunkCalls: SIPp stands in for an operator's trunk. A call from it
// to a DID reaches the DID's user (incoming external, recorded by the
// callee's incoming_external flag, without any authentication); a user
// dialling a number that is no extension goes out through it (outgoing
// external, recorded by the caller's outgoing_external flag), answering
// the trunk's digest challenge with the configured credentials.
func TestTrunkCalls(t *testing.T) {
	port := testutil.FreeSIPPort(t)
	n := startNodeWith(t, nil, func(c *config.Config) {
		c.SIP.DigestAlgorithms = []string{"MD5"}
		c.Trunks = []config.Trunk{{Name: "op", Address: "127.0.0.1", Port: port, Username: "tapedeck", Password: "trunkpw",
			DIDs: map[string]string{"+3312345": "1002"}}}
	})
	for _, u := range []users.User{
		{Firstname: "Alice", Exten: "1001", CallRecordOutgoingExternal: true},
		{Firstname: "Bob", Exten: "1002", CallRecordIncomingExternal: true},
	} {
		u.TenantUUID, u.SIPUsername, u.SIPPassword = "tenant-1", "sip"+u.Exten, "pw-"+u.Exten
		if _, err := n.srv.Users().Create(context.Background(), u); err != nil {
			t.Fatal(err)
		}
	}
	alice := registeredPhone(t, n, "1001", 440, "manual")
	bob := registeredPhone(t, n, "1002", 1000, "auto")

	// Incoming external: SIPp's built-in UAC calls the DID, holds 2 s,
	// hangs up.
	done := sipp(t, port, "-sn", "uac", "-s", "+3312345", "-d", "2000", n.srv.SIPAddr())
	in, err := bob.WaitEvent("CALL_ESTABLISHED", 10*time.Second) // auto answer: no CALL_INCOMING
	if err != nil {
		t.Fatal(err)
	}
	if peer := in["peeruri"].(string); !strings.Contains(peer, "sipp") {
		t.Fatalf("bob sees the trunk's call from %q, want the trunk's caller (sipp)", peer)
	}
	waitSipp(t, done)
	if _, err := bob.WaitEvent("CALL_CLOSED", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(n.recDir(), "user-sipp-1002-*.wav")); len(files) != 1 {
		all, _ := filepath.Glob(filepath.Join(n.recDir(), "*"))
		t.Fatalf("incoming external call: recordings %v, want user-sipp-1002-<ts>.wav", all)
	}

	// Outgoing external: alice dials a number; the trunk challenges, then
	// answers.
	scen, _ := filepath.Abs("testdata/sipp/trunk_uas_auth.xml")
	done = sipp(t, port, "-sf", scen)
	if err := alice.Dial(n.userURI("0612345678")); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitEvent("CALL_ESTABLISHED", 15*time.Second); err != nil {
		t.Fatal("the call out through the trunk was not answered: ", err)
	}
	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	waitSipp(t, done)
	if files, _ := filepath.Glob(filepath.Join(n.recDir(), "user-1001-0612345678-*.wav")); len(files) != 1 {
		all, _ := filepath.Glob(filepath.Join(n.recDir(), "*"))
		t.Fatalf("outgoing external call: recordings %v, want user-1001-0612345678-<ts>.wav", all)
	}
}
