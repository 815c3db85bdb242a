package catalog

import (
	"context"
	"errors"
	"fmt"

	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// ErrNameInProgress: another node is recording under the name.
var ErrNameInProgress = errors.New("catalog: recording name in progress on another node")

// ErrNameStored: a stored recording of another node has the name.
var ErrNameStored = errors.New("catalog: recording name stored by another node")

// nameClaimer is the part of a metadata store that claims recording names
// cluster-wide (the SQL stores); Shared says whether other nodes use the
// database (PostgreSQL): only then are there claims to make.
type nameClaimer interface {
	Shared() bool
	ClaimRecordingName(ctx context.Context, name, node string) (string, error)
	ReleaseRecordingName(ctx context.Context, name, node string) error
	ReleaseNodeRecordingNames(ctx context.Context, node string) error
}

// ClaimName claims an ARI recording name for this node before it records
// under it, so that nodes sharing the catalog behave as one Asterisk: a
// name another node is recording under is ErrNameInProgress; with
// failIfStored (ifExists=fail), a name another node's stored recording has
// is ErrNameStored (this node's own are its files, which the caller
// checks). A successful claim is released by ReleaseName.
//
// A catalog no other node uses (SQLite) claims nothing: the node's own live
// recordings already keep a name to one recording, and two statements per
// recording are saved.
func (s *Service) ClaimName(ctx context.Context, name string, failIfStored bool) error {
	c, ok := s.Meta.(nameClaimer)
	if !ok || !c.Shared() {
		return nil
	}
	holder, err := c.ClaimRecordingName(ctx, name, s.Node)
	if errors.Is(err, meta.ErrConflict) {
		return fmt.Errorf("recording %q is being recorded on node %s: %w", name, holder, ErrNameInProgress)
	}
	if err != nil {
		return err
	}
	if failIfStored {
		row, err := s.Meta.RecordingByName(ctx, name)
		if err == nil && row.Node != s.Node && !row.Status.Live() && row.Status != meta.StatusDeleted && row.Status != "" {
			s.ReleaseName(ctx, name)
			return fmt.Errorf("recording %q is stored (node %s): %w", name, row.Node, ErrNameStored)
		}
	}
	return nil
}

// ReleaseName drops this node's claim on a recording name, once the
// recording's catalog row is final.
func (s *Service) ReleaseName(ctx context.Context, name string) {
	if c, ok := s.Meta.(nameClaimer); ok && c.Shared() {
		if err := c.ReleaseRecordingName(ctx, name, s.Node); err != nil {
			s.log().Warn("catalog: releasing a recording name", "name", name, "err", err)
		}
	}
}

// ReleaseNodeNames drops every name claim of this node: at its start none
// of its recordings is live (those a crash interrupted are settled by
// Reconcile from their rows and files).
func (s *Service) ReleaseNodeNames(ctx context.Context) error {
	if c, ok := s.Meta.(nameClaimer); ok {
		return c.ReleaseNodeRecordingNames(ctx, s.Node)
	}
	return nil
}
