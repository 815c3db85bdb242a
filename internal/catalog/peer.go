package catalog

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/store/blob"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// The owner's side of PeerFiles: another node asks for a recording's file
// by Sid and key; this node serves it only when the catalog row says that
// this node keeps exactly that file (never another file under a stale or
// forged key).

// ownRow returns the row sid when this node keeps its file under key.
func (s *Service) ownRow(ctx context.Context, sid, key string) (meta.Recording, error) {
	row, err := s.Meta.RecordingBySid(ctx, sid)
	if err != nil {
		return meta.Recording{}, err
	}
	if row.FilePath != key || isRemote(row) || row.Node != s.Node && row.Node != "" {
		return meta.Recording{}, fmt.Errorf("recording %s: its file is not %q on node %s: %w", sid, key, s.Node, ErrNotFound)
	}
	return row, nil
}

// OwnFile opens the file of the recording sid, kept here under key, for
// another node (PeerFiles.OpenFile). ErrNotFound unless the catalog says
// this node keeps it there and the file is there.
func (s *Service) OwnFile(ctx context.Context, sid, key string) (blob.Reader, error) {
	if _, err := s.ownRow(ctx, sid, key); err != nil {
		return nil, err
	}
	l, err := s.local()
	if err != nil {
		return nil, err
	}
	r, err := l.Open(ctx, key)
	if errors.Is(err, blob.ErrNotFound) || errors.Is(err, blob.ErrInvalidKey) {
		return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return r, err
}

// DeleteOwnFile removes the file of the recording sid, kept here under
// key, for another node deleting the recording (PeerFiles.DeleteFile),
// with the marker a crash recovery left beside it. ErrNotFound as OwnFile;
// meta.ErrConflict while this node is recording under the name again (the
// file is being rewritten: Asterisk's 409 "Recording is in progress").
func (s *Service) DeleteOwnFile(ctx context.Context, sid, key string) error {
	row, err := s.ownRow(ctx, sid, key)
	if err != nil {
		return err
	}
	s.mu.Lock()
	active := s.active[row.Name]
	s.mu.Unlock()
	if active {
		return fmt.Errorf("recording %q is being recorded again on node %s: %w", row.Name, s.Node, meta.ErrConflict)
	}
	l, err := s.local()
	if err != nil {
		return err
	}
	if err := l.Delete(ctx, key); err != nil {
		if errors.Is(err, blob.ErrNotFound) || errors.Is(err, blob.ErrInvalidKey) {
			return fmt.Errorf("%w: %v", ErrNotFound, err)
		}
		return err
	}
	if p, err := l.Path(key); err == nil {
		_ = os.Remove(recorder.RecoveredMarker(p))
	}
	return nil
}
