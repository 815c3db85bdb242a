package call

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tapedeck/tapedeck/internal/users"
)

// PolicyRecording configures the recordings made by users' flags (Wazo's
// call recording).
type PolicyRecording struct {
	// Name makes a recording's name (relative to the recordings root,
	// without extension) from Wazo's template variables: srcnum, dstnum,
	// timestamp, local_time, utc_time, base_context, tenant_uuid. Nil:
	// "user-<srcnum>-<dstnum>-<timestamp>", Wazo's default.
	Name func(vars map[string]string) (string, error)
	// Format is the file format (Wazo's filename_extension); default wav.
	Format string
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

// policyVars are Wazo's filename template variables for a call.
func policyVars(src, dst, context, tenant string, at time.Time) map[string]string {
	return map[string]string{
		"srcnum": src, "dstnum": dst, "base_context": context, "tenant_uuid": tenant,
		"timestamp":  strconv.FormatInt(at.Unix(), 10),
		"local_time": at.Local().Format("2006-01-02T15:04:05"),
		"utc_time":   at.UTC().Format("2006-01-02T15:04:05Z"),
	}
}

// recordByPolicy starts the one recording of a connected call when the
// callee's or the caller's flags ask for it (users.Decide); names that are
// taken get a suffix, never overwrite.
func (m *Manager) recordByPolicy(br *Bridge, kind users.CallKind, from, to *DirUser, src, dst, context string) *LiveRecording {
	rec, owners := users.Decide(toUser(from), toUser(to), kind)
	if !rec {
		return nil
	}
	tenant := owners[0].TenantUUID
	vars := policyVars(src, dst, context, tenant, m.now())
	var base string
	var err error
	if m.opts.Policy.Name != nil {
		base, err = m.opts.Policy.Name(vars)
	} else {
		base = fmt.Sprintf("user-%s-%s-%s", src, dst, vars["timestamp"])
	}
	if err != nil {
		m.log.Error("policy recording: the filename template failed; recording under the default name", "err", err)
		base = fmt.Sprintf("user-%s-%s-%s", src, dst, vars["timestamp"])
	}
	format := nonEmpty(m.opts.Policy.Format, "wav")
	stereo := m.opts.Policy.Stereo && format == "wav"
	for i := 0; i < 100; i++ {
		name := base
		if i > 0 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		r, err := br.record(RecordOptions{Name: name, Format: format, IfExists: "fail"}, stereo, "policy")
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			m.log.Error("policy recording not started", "name", name, "err", err)
			return nil
		}
		owner := make([]string, len(owners))
		for i, o := range owners {
			owner[i] = o.UUID
		}
		m.log.Info("recording the call by policy", "name", name, "kind", kind, "owners", owner, "tenant", tenant)
		return r
	}
	m.log.Error("policy recording: 100 names taken", "name", base)
	return nil
}
