package call

import (
	"context"
	"errors"
	"time"

	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/recorder"
)

// nameClaimer is a catalog that claims recording names across the nodes
// sharing it (catalog.Service).
type nameClaimer interface {
	ClaimName(ctx context.Context, name string, failIfStored bool) error
	ReleaseName(ctx context.Context, name string)
}

// claimTimeout bounds the catalog's name claim at a recording's start.
const claimTimeout = 5 * time.Second

// claimName claims rec's name in a shared catalog once it holds it among
// this node's live recordings: a name another node records under, or (with
// ifExists=fail) stores, is the same 409 as one of this node's. On a
// conflict rec leaves the live set. A catalog that cannot be reached does
// not stop the recording (it is logged): recordings never depend on the
// database being up.
func (m *Manager) claimName(rec *LiveRecording, mode recorder.IfExists) error {
	c, ok := m.opts.Catalog.(nameClaimer)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), claimTimeout)
	defer cancel()
	err := c.ClaimName(ctx, rec.name, mode == recorder.Fail)
	if err == nil {
		// A recording that ended meanwhile (its call hung up while the
		// claim was made) has released what it held: the claim is this
		// call's to drop.
		rec.mu.Lock()
		ended := rec.finished
		rec.claimed = !ended
		rec.mu.Unlock()
		if ended {
			c.ReleaseName(ctx, rec.name)
		}
		return nil
	}
	var conflict error
	switch {
	case errors.Is(err, catalog.ErrNameInProgress):
		conflict = errf(ErrConflict, "Recording with the same name is already in progress")
	case errors.Is(err, catalog.ErrNameStored):
		conflict = errf(ErrConflict, "Recording already exists")
	default:
		m.log.Warn("recording name not claimed in the catalog; recording anyway", "name", rec.name, "err", err)
		return nil
	}
	m.recMu.Lock()
	if m.live[rec.name] == rec {
		delete(m.live, rec.name)
	}
	m.recMu.Unlock()
	return conflict
}

// releaseName drops rec's claim once its catalog row is final.
func (r *LiveRecording) releaseName() {
	r.mu.Lock()
	claimed := r.claimed
	r.claimed = false
	r.mu.Unlock()
	if !claimed {
		return
	}
	if c, ok := r.m.opts.Catalog.(nameClaimer); ok {
		ctx, cancel := context.WithTimeout(context.Background(), claimTimeout)
		defer cancel()
		c.ReleaseName(ctx, r.name)
	}
}
