package meta

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// testCDRs: records are stored per channel (a second put replaces), listed
// newest first per account with the total, an unanswered call keeps a zero
// answer time.
func testCDRs(t *testing.T, s Store) {
	cs, ok := s.(CDRs)
	if !ok {
		t.Fatal("the store does not implement CDRs")
	}
	ctx := tctx(t)
	a := mustAccount(t, s, "cdr-a")
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for i, c := range []CDR{
		{Sid: "CA1", ChannelID: "n-1.1", AccountSid: a.Sid, From: "100", To: "2001", Direction: "inbound", Status: "completed",
			StartTime: t0, AnswerTime: t0.Add(time.Second), EndTime: t0.Add(6 * time.Second), Duration: 6, Billsec: 5, Cause: 16, CauseText: "Normal Clearing", RTPReceived: 250, JitterMs: 1.5},
		{Sid: "CA2", ChannelID: "n-1.2", AccountSid: a.Sid, Status: "no-answer", StartTime: t0.Add(time.Minute), EndTime: t0.Add(2 * time.Minute), Cause: 19},
		{Sid: "CA3", ChannelID: "n-1.3", AccountSid: "ACother", StartTime: t0, EndTime: t0},
	} {
		if err := cs.PutCDR(ctx, c); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	// Replacing by channel id.
	if err := cs.PutCDR(ctx, CDR{Sid: "CA1", ChannelID: "n-1.1", AccountSid: a.Sid, Status: "completed", StartTime: t0, AnswerTime: t0.Add(time.Second), EndTime: t0.Add(6 * time.Second), Duration: 6, Billsec: 5, Cause: 16, RTPReceived: 251}); err != nil {
		t.Fatal(err)
	}
	got, total, err := cs.ListCDRs(ctx, CDRQuery{AccountSid: a.Sid})
	if err != nil {
		t.Fatal(err)
	}
	if total != 2 || len(got) != 2 || got[0].Sid != "CA2" || got[1].Sid != "CA1" {
		t.Fatalf("list: total %d, %+v", total, got)
	}
	if !got[0].AnswerTime.IsZero() || got[1].AnswerTime != t0.Add(time.Second) || got[1].RTPReceived != 251 || got[1].EndTime != t0.Add(6*time.Second) {
		t.Errorf("rows: %+v", got)
	}
	if page, total, _ := cs.ListCDRs(ctx, CDRQuery{AccountSid: a.Sid, Offset: 1, Limit: 1}); total != 2 || len(page) != 1 || page[0].Sid != "CA1" {
		t.Errorf("second page: %d %+v", total, page)
	}
	if err := cs.PutCDR(ctx, CDR{Sid: "CA4"}); err == nil {
		t.Error("a CDR without channel id was stored")
	}
}

// testPutRecordingCDR: a recording's final row and its call's record are
// written in one transaction: both, or (the CDR refused by the database,
// a trigger raising on its insert) neither — the recording's row stays as
// it was — and a CDR without a channel id is refused before anything is
// written.
func testPutRecordingCDR(t *testing.T, s Store) {
	ctx := tctx(t)
	cs := s.(CDRs)
	a := mustAccount(t, s, "cdr-rec")
	r := sampleRec(a.Sid, 1)
	r.Status, r.Duration = StatusInProgress, 0
	mustPut(t, s, r)
	t0 := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	c := CDR{Sid: "CA9", ChannelID: "n-9.1", AccountSid: a.Sid, Status: "completed", StartTime: t0, AnswerTime: t0.Add(time.Second),
		EndTime: t0.Add(9 * time.Second), Duration: 9, Billsec: 8, Cause: 16}
	done := r
	done.Status, done.Duration = StatusCompleted, 8

	db := s.(*sqlStore).w
	install, remove := `CREATE TRIGGER cdr_refused BEFORE INSERT ON cdr BEGIN SELECT RAISE(ABORT, 'cdr refused by the test'); END`, []string{`DROP TRIGGER cdr_refused`}
	if s.(*sqlStore).d.name != "sqlite" {
		if _, err := db.ExecContext(ctx, `CREATE FUNCTION cdr_refused() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN RAISE EXCEPTION 'cdr refused by the test'; END $f$`); err != nil {
			t.Fatal(err)
		}
		install = `CREATE TRIGGER cdr_refused BEFORE INSERT ON cdr FOR EACH ROW EXECUTE FUNCTION cdr_refused()`
		remove = []string{`DROP TRIGGER cdr_refused ON cdr`, `DROP FUNCTION cdr_refused()`}
	}
	if _, err := db.ExecContext(ctx, install); err != nil {
		t.Fatal(err)
	}
	if err := cs.PutRecordingCDR(ctx, done, c); err == nil || !strings.Contains(err.Error(), "cdr refused by the test") {
		t.Fatalf("with the CDR refused: %v, want its error", err)
	}
	if got, err := s.RecordingBySid(ctx, r.Sid); err != nil || got.Status != StatusInProgress {
		t.Fatalf("the recording after the refused CDR: %+v %v; want it as it was", got, err)
	}
	for _, q := range remove {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := cs.PutRecordingCDR(ctx, done, CDR{Sid: "CA9"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a CDR without a channel id: %v, want ErrInvalid", err)
	}
	if got, _ := s.RecordingBySid(ctx, r.Sid); got.Status != StatusInProgress {
		t.Fatalf("the recording after an invalid CDR: %+v", got)
	}
	if err := cs.PutRecordingCDR(ctx, done, c); err != nil {
		t.Fatal(err)
	}
	if got, err := s.RecordingBySid(ctx, r.Sid); err != nil || got.Status != StatusCompleted || got.Duration != 8 {
		t.Fatalf("the recording: %+v %v", got, err)
	}
	got, total, err := cs.ListCDRs(ctx, CDRQuery{AccountSid: a.Sid})
	if err != nil || total != 1 || got[0].ChannelID != c.ChannelID || got[0].Billsec != 8 {
		t.Fatalf("the CDR: %+v %d %v", got, total, err)
	}
}
