package server

import (
	"context"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// writeCDR stores a call's detail record in the catalog (listed by the
// Restcomm Calls resource). A failure is logged; the call is over anyway.
func (s *Server) writeCDR(r call.CallRecord) {
	cs, ok := s.meta.(meta.CDRs)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	acc := r.AccountSid
	if acc == "" {
		if a, err := s.catalog.DefaultAccount(ctx); err == nil {
			acc = a.Sid
		}
	}
	billsec := 0.0
	if !r.Answered.IsZero() {
		billsec = r.Ended.Sub(r.Answered).Seconds()
	}
	err := cs.PutCDR(ctx, meta.CDR{
		Sid: r.CallSid, AccountSid: acc, CallID: r.CallID, ChannelID: r.ChannelID,
		From: r.From, To: r.To, Direction: r.Direction, Status: r.Status,
		StartTime: r.Created, AnswerTime: r.Answered, EndTime: r.Ended,
		Duration: r.Ended.Sub(r.Created).Seconds(), Billsec: billsec,
		Cause: int(r.Cause), CauseText: call.CauseText(r.Cause),
		RTPReceived: int64(r.RTP.Received), RTPLost: max(r.RTP.Lost, 0), JitterMs: r.RTP.Jitter / 8,
		Node: s.cfg.NodeID,
	})
	if err != nil {
		s.log.Warn("CDR not stored", "call_sid", r.CallSid, "channel", r.ChannelID, "err", err)
	}
}
