package meta

import (
	"context"
	"time"
)

// Shared reports whether other nodes may use this database: PostgreSQL,
// which the nodes of a cluster share. A SQLite catalog lives in one node's
// data_dir and is that node's alone, so name claims in it guard against
// nothing the node's own live recordings do not.
func (s *sqlStore) Shared() bool { return s.d.name == "postgres" }

// ClaimRecordingName claims an ARI recording name for node, cluster-wide:
// the recording_claims row's primary key lets one node at a time hold it.
// A claim node already holds (one its earlier run left) is renewed. It
// returns the node holding the name when another does, with ErrConflict.
func (s *sqlStore) ClaimRecordingName(ctx context.Context, name, node string) (string, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	res, err := s.w.ExecContext(ctx, s.q(`INSERT INTO recording_claims (name, node, claimed_at) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET claimed_at = excluded.claimed_at WHERE recording_claims.node = excluded.node`), name, node, now)
	if err != nil {
		return "", s.mapErr(err, "claim recording name")
	}
	if n, err := res.RowsAffected(); err != nil {
		return "", s.mapErr(err, "claim recording name")
	} else if n == 1 {
		return node, nil
	}
	var holder string
	if err := s.w.QueryRowContext(ctx, s.q(`SELECT node FROM recording_claims WHERE name = $1`), name).Scan(&holder); err != nil {
		return "", s.mapErr(err, "claim recording name")
	}
	return holder, ErrConflict
}

// ReleaseRecordingName drops node's claim on name.
func (s *sqlStore) ReleaseRecordingName(ctx context.Context, name, node string) error {
	_, err := s.w.ExecContext(ctx, s.q(`DELETE FROM recording_claims WHERE name = $1 AND node = $2`), name, node)
	return s.mapErr(err, "release recording name")
}

// ReleaseNodeRecordingNames drops every claim of node: at its start, none
// of its recordings is live.
func (s *sqlStore) ReleaseNodeRecordingNames(ctx context.Context, node string) error {
	_, err := s.w.ExecContext(ctx, s.q(`DELETE FROM recording_claims WHERE node = $1`), node)
	return s.mapErr(err, "release recording names")
}
