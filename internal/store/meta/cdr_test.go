package meta

import (
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
