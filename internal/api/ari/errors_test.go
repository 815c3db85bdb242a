package ari

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tapedeck/tapedeck/internal/call"
)

// TestKindTable pins the status each call error kind answers with, as
// Asterisk answers (412 only for a channel's state).
func TestKindTable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{call.ErrChannelNotFound, 404},
		{call.ErrBridgeNotFound, 404},
		{fmt.Errorf("playback x: %w", call.ErrPlaybackNotFound), 404},
		{call.ErrNotInApplication, 409},
		{call.ErrChannelState, 412},
		{call.ErrInvalidState, 409},
		{call.ErrConflict, 409},
		{call.ErrInvalidArgument, 400},
		{call.ErrUnsupported, 422},
		{call.ErrUnavailable, 503},
		{call.ErrNotImplemented, 501},
		{errors.New("disk on fire"), 500},
		{apiErr(415, "x"), 415},
	} {
		if got := statusOf(nil, c.err); got != c.want {
			t.Errorf("%v: %d, want %d", c.err, got, c.want)
		}
	}
}

// TestOpOverrides: bridges addChannel answers 400 for a missing channel and
// 404 for a missing bridge, and 422 for a channel outside Stasis.
func TestOpOverrides(t *testing.T) {
	s := New(Options{})
	ops := map[string]*Op{}
	for _, res := range s.resources {
		for i := range res.Ops {
			ops[res.Name+"."+res.Ops[i].Nickname] = &res.Ops[i]
		}
	}
	add, remove, answer := ops["bridges.addChannel"], ops["bridges.removeChannel"], ops["channels.answer"]
	if add == nil || remove == nil || answer == nil {
		t.Fatal("operations missing from the route table")
	}
	for _, c := range []struct {
		op   *Op
		err  error
		want int
	}{
		{add, call.ErrChannelNotFound, 400},
		{add, call.ErrBridgeNotFound, 404},
		{add, call.ErrNotInApplication, 422},
		{add, call.ErrConflict, 409},
		{remove, call.ErrChannelNotFound, 400},
		{remove, call.ErrInvalidState, 422},
		{remove, call.ErrBridgeNotFound, 404},
		{answer, call.ErrChannelNotFound, 404},
		{answer, call.ErrNotInApplication, 409},
		{answer, call.ErrChannelState, 412},
	} {
		if got := statusOf(c.op, c.err); got != c.want {
			t.Errorf("%s: %v: %d, want %d", c.op.Nickname, c.err, got, c.want)
		}
	}
}

// TestOpCodesDocumented: every per-operation status override is a status
// the operation declares in its Swagger errorResponses.
func TestOpCodesDocumented(t *testing.T) {
	s := New(Options{})
	n := 0
	for _, res := range s.resources {
		for _, op := range res.Ops {
			for _, kc := range op.Codes {
				n++
				found := false
				for _, e := range op.Errors {
					found = found || e.Code == kc.Code
				}
				if !found {
					t.Errorf("%s %s answers %d for %v but does not declare it", op.Method, op.Path, kc.Code, kc.Kind)
				}
			}
		}
	}
	if n == 0 {
		t.Error("no operation overrides the kind table")
	}
}
