package catalog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tapedeck/tapedeck/internal/recorder"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// NodeLostPrefix starts the StatusDetail of a recording settled because
// its node was lost (LostAfter without a heartbeat).
const NodeLostPrefix = "Node lost: "

// Details of the rows settled for a lost node.
const (
	DetailNodeLost = NodeLostPrefix + "node %s stopped while recording (no heartbeat for %s); what it recorded stayed on its disk"
	// DetailNodeLostRecovered: the file was reachable here (a recordings
	// directory shared by the nodes).
	DetailNodeLostRecovered = NodeLostPrefix + "node %s stopped while recording (no heartbeat for %s); node %s recovered the file from the shared recordings directory"
)

// IsNodeLost reports whether a row was settled because its node was lost.
func IsNodeLost(r meta.Recording) bool { return strings.HasPrefix(r.StatusDetail, NodeLostPrefix) }

// settleLost settles the live recordings of the nodes not heard from for
// LostAfter (their heartbeats, meta.NodeLiveness): each becomes failed,
// "node lost", unless its file is reachable here with the marker of a
// recording in progress beside it (a shared recordings directory): then
// it is repaired, measured and recovered by this node, checksummed, and
// uploaded when object storage is configured. The row is written only while it is still
// live (meta.SettleLost), with the notifications LostNotices makes for it
// in the same transaction: a node that finishes it meanwhile wins, and so
// does one that comes back with the file (its recovery at start completes
// the failed row). The name's claim is released.
func (s *Service) settleLost(ctx context.Context) error {
	nl, ok := s.Meta.(meta.NodeLiveness)
	if !ok || s.LostAfter <= 0 {
		return nil
	}
	now := s.now()
	nodes, err := nl.LostNodes(ctx, s.Node, now.Add(-s.LostAfter))
	if err != nil {
		return err
	}
	var errs []error
	for _, node := range nodes {
		rows, err := s.Meta.InProgress(ctx, node, 500)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, row := range rows {
			if row.Node != node {
				continue // a row without a node: its own node's to settle
			}
			if err := s.settleLostRow(ctx, nl, row, now); err != nil {
				errs = append(errs, fmt.Errorf("recording %q of lost node %s: %w", row.Name, node, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (s *Service) settleLostRow(ctx context.Context, nl meta.NodeLiveness, row meta.Recording, now time.Time) error {
	lost := row.Node
	out := row
	out.DateUpdated, out.EndReason = now, EndInterrupted
	p := s.abs(row.FilePath)
	shared := false
	if p != "" && !s.busy(row.Name) {
		if inProgressHere(s.Root, lost, p) {
			if size, dur, err := measure(p, row.Format); err == nil {
				shared = true
				out.Status, out.StatusDetail = meta.StatusRecovered, fmt.Sprintf(DetailNodeLostRecovered, lost, s.LostAfter, s.Node)
				out.Size, out.SHA256, out.Duration, out.Node = size, "", dur.Seconds(), s.Node
			}
		}
	}
	if !shared {
		out.Status, out.StatusDetail = meta.StatusFailed, fmt.Sprintf(DetailNodeLost, lost, s.LostAfter)
		out.Size, out.SHA256, out.Duration = 0, "", 0
	}
	// Its notifications are queued with the row, in one transaction.
	var notes []meta.OutboxItem
	if s.LostNotices != nil {
		var err error
		if notes, err = s.LostNotices(ctx, out); err != nil {
			return fmt.Errorf("its notifications: %w", err)
		}
	}
	done, err := nl.SettleLost(ctx, out, lost, notes...)
	if err != nil || !done {
		return err
	}
	if c, ok := s.Meta.(nameClaimer); ok && row.Name != "" {
		if err := c.ReleaseRecordingName(ctx, row.Name, lost); err != nil {
			s.log().Warn("catalog: releasing a lost node's recording name", "name", row.Name, "node", lost, "err", err)
		}
	}
	if s.OnLost != nil {
		s.OnLost(lost, out)
	}
	s.log().Warn("catalog: settled a recording of a lost node", "name", row.Name, "sid", row.Sid, "node", lost,
		"silent_for", s.LostAfter, "status", out.Status)
	if shared {
		// This node keeps it now: the lost node's recovery, if it comes
		// back, leaves it alone.
		_ = os.Remove(recorder.InProgressMarker(p))
		_ = recorder.EndInJournal(s.Root, lost, p)
		// The checksum job, and the upload when object storage is
		// configured.
		ct := ""
		if f, err := recorder.Lookup(out.Format); err == nil {
			ct = f.ContentType
		}
		s.startUpload(out, ct)
	}
	return nil
}

// inProgressHere reports whether p, a lost node's recording, is reachable
// here as a file that node was still writing: its in-progress marker is
// beside it, or the node's journal in the shared recordings directory
// lists it.
func inProgressHere(root, node, p string) bool {
	if _, err := os.Stat(recorder.InProgressMarker(p)); err == nil {
		return true
	}
	return root != "" && recorder.InJournal(root, node, p)
}
