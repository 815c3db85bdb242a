package call

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/tapedeck/tapedeck/internal/recname"
	"github.com/tapedeck/tapedeck/internal/users"
)

// PolicyRecording configures the recordings made by users' flags (Wazo's
// call recording).
type PolicyRecording struct {
	// Namer names the files from call_recording.filename_template (and
	// gives their format, filename_extension). Nil:
	// "user-<srcnum>-<dstnum>-<timestamp>.wav", Wazo's default.
	Namer *recname.Namer
	// Stereo records the caller left, the callee right (wav only).
	Stereo bool
}

// SetPolicyRecording sets how policy recordings are named and made
// (before use).
func (m *Manager) SetPolicyRecording(p PolicyRecording) { m.opts.Policy = p }

// toUser is the users package's view of a directory user (for Decide).
func toUser(u *DirUser) *users.User {
	if u == nil {
		return nil
	}
	return &users.User{UUID: u.UUID, TenantUUID: u.TenantUUID, Exten: u.Exten, Context: u.Context, SIPUsername: u.SIPUsername,
		CallRecordOutgoingExternal: u.CallRecordOutgoingExternal, CallRecordOutgoingInternal: u.CallRecordOutgoingInternal,
		CallRecordIncomingExternal: u.CallRecordIncomingExternal, CallRecordIncomingInternal: u.CallRecordIncomingInternal,
		OnlineCallRecord: u.OnlineCallRecord}
}

// recordByPolicy starts the one recording of a connected call when the
// callee's or the caller's flags ask for it (users.Decide); names that are
// taken get a suffix, never overwrite. first is the caller's channel (the
// catalog's caller when the bridge is still empty).
func (m *Manager) recordByPolicy(br *Bridge, first *Channel, kind users.CallKind, from, to *DirUser, src, dst, context string) *LiveRecording {
	rec, owners := users.Decide(toUser(from), toUser(to), kind)
	if !rec {
		return nil
	}
	tenant := owners[0].TenantUUID
	now := m.now()
	release := func() {}
	base, root, format := recname.DefaultName(src, dst, now), "", "wav"
	if n := m.opts.Policy.Namer; n != nil {
		format = n.Extension()
		path, err := n.Name(recname.NameVars{SrcNum: src, DstNum: dst, Time: now, BaseContext: context, TenantUUID: tenant})
		if err != nil {
			m.log.Error("policy recording: the filename template failed; recording under the default name", "err", err)
		} else {
			stem := strings.TrimSuffix(path, "."+format)
			if rel, ok := n.Rel(stem); ok {
				base = rel
			} else { // an allowed directory outside the recordings root
				root, base = filepath.Dir(stem), filepath.Base(stem)
			}
			release = func() { n.Release(path) }
		}
	}
	stereo := m.opts.Policy.Stereo && format == "wav"
	for i := 0; i < 100; i++ {
		name := base
		if i > 0 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		owner := make([]string, len(owners))
		for i, o := range owners {
			owner[i] = o.UUID
		}
		r, err := br.record(RecordOptions{Name: name, Format: format, IfExists: "fail", Root: root,
			policy: policyInfo{tenant: tenant, direction: kind.String(), owners: strings.Join(owner, ",")}, first: first}, stereo, "policy")
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			m.log.Error("policy recording not started", "name", name, "err", err)
			release()
			return nil
		}
		r.afterDone(release)
		m.log.Info("recording the call by policy", "name", name, "kind", kind, "owners", owner, "tenant", tenant)
		return r
	}
	m.log.Error("policy recording: 100 names taken", "name", base)
	release()
	return nil
}
