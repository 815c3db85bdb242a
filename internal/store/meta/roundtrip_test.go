package meta

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil"
)

// countedPostgres opens the test PostgreSQL through a CountingProxy, so
// that the test can count the store's requests to the server.
func countedPostgres(t *testing.T) (Store, *testutil.CountingProxy) {
	t.Helper()
	u, err := url.Parse(pgTestDSN(t))
	if err != nil || u.Host == "" {
		t.Skipf("SKIP: the test DSN is not a URL with a host: %v", err)
	}
	p := testutil.StartCountingProxy(t, u.Host)
	u.Host = p.Addr()
	s, err := OpenPostgres(tctx(t), u.String(), WithTokenKey(testTokenKey))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, p
}

// TestPostgresRecordingCDROneRoundTrip: on PostgreSQL a recording's final
// row and its call's CDR (written at the end of every recorded call) are
// one request to the server, not a transaction's four (BEGIN, two
// statements, COMMIT); and still neither when the row belongs to another
// account.
func TestPostgresRecordingCDROneRoundTrip(t *testing.T) {
	s, p := countedPostgres(t)
	ctx := tctx(t)
	cs := s.(CDRs)
	a := mustAccount(t, s, "cdr-one")
	t0 := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	final := func(i int) (Recording, CDR) {
		r := sampleRec(a.Sid, i)
		r.Status, r.Duration = StatusInProgress, 0
		mustPut(t, s, r)
		r.Status, r.Duration = StatusCompleted, 8
		return r, CDR{Sid: "CA1", ChannelID: "n-1." + r.Sid, AccountSid: a.Sid, Status: "completed", StartTime: t0,
			AnswerTime: t0.Add(time.Second), EndTime: t0.Add(9 * time.Second), Duration: 9, Billsec: 8, Cause: 16}
	}
	// The first one prepares the statement on the connection.
	for i := 1; i <= 3; i++ {
		r, c := final(i)
		before := p.Writes()
		if err := cs.PutRecordingCDR(ctx, r, c); err != nil {
			t.Fatal(err)
		}
		if n := p.Writes() - before; i > 1 && n != 1 {
			t.Fatalf("recording %d's final row and CDR: %d requests to the server, want 1", i, n)
		}
		if got, err := s.RecordingBySid(ctx, r.Sid); err != nil || got.Status != StatusCompleted {
			t.Fatalf("the recording: %+v %v", got, err)
		}
	}
	if _, total, err := cs.ListCDRs(ctx, CDRQuery{AccountSid: a.Sid}); err != nil || total != 3 {
		t.Fatalf("CDRs: %d %v, want 3", total, err)
	}

	// A row of another account under the same Sid: a conflict, and no CDR.
	b := mustAccount(t, s, "cdr-other")
	r, c := final(4)
	r.AccountSid, c.AccountSid, c.ChannelID = b.Sid, b.Sid, "n-other"
	if err := cs.PutRecordingCDR(ctx, r, c); !errors.Is(err, ErrConflict) {
		t.Fatalf("another account's row: %v, want ErrConflict", err)
	}
	if got, err := s.RecordingBySid(ctx, r.Sid); err != nil || got.AccountSid != a.Sid || got.Status != StatusInProgress {
		t.Fatalf("the row after the conflict: %+v %v", got, err)
	}
	if _, total, err := cs.ListCDRs(ctx, CDRQuery{AccountSid: b.Sid}); err != nil || total != 0 {
		t.Fatalf("the other account's CDRs: %d %v, want none", total, err)
	}
}

// TestPostgresPingOneRoundTrip: the readiness check (Ping, every second)
// is one request to PostgreSQL, also when its connection has been idle for
// over a second (the pool's driver pings such a connection before handing
// it out: two requests, two wake-ups of the node, every other second). A
// broken connection (PostgreSQL restarted) does not make a check fail
// while the database answers.
func TestPostgresPingOneRoundTrip(t *testing.T) {
	s, p := countedPostgres(t)
	ctx := tctx(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		// Idle for over a second, as between two readiness checks.
		idle := time.NewTimer(1100 * time.Millisecond)
		<-idle.C
		before := p.Writes()
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		if n := p.Writes() - before; n != 1 {
			t.Fatalf("check %d after 1.1 s idle: %d requests to the server, want 1", i+2, n)
		}
	}
	p.Drop()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("check after the connections broke, the database up: %v; want nil", err)
	}
	before := p.Writes()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if n := p.Writes() - before; n != 1 {
		t.Fatalf("check after the new connection: %d requests, want 1", n)
	}
}
