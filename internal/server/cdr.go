package server

import (
	"context"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// writeCDR stores a call's detail record in the catalog (listed by the
// Restcomm Calls resource), unless it went there with a recording's final
// row (r.Stored). A failure is logged; the call is over anyway.
func (s *Server) writeCDR(r call.CallRecord) {
	cs, ok := s.meta.(meta.CDRs)
	if !ok || r.Stored {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c := r.CDR()
	if c.AccountSid == "" {
		if a, err := s.catalog.DefaultAccount(ctx); err == nil {
			c.AccountSid = a.Sid
		}
	}
	c.Node = s.cfg.NodeID
	if err := cs.PutCDR(ctx, c); err != nil {
		s.log.Warn("CDR not stored", "call_sid", r.CallSid, "channel", r.ChannelID, "err", err)
	}
}
