package server

import (
	"context"
	"errors"
	"time"

	"github.com/tapedeck/tapedeck/internal/api/ari"
	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/sip"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/users"
)

// SetDirectory gives the node its users: who may register and be called
// by extension. Call it before Start.
func (s *Server) SetDirectory(d call.Directory) { s.dir = d }

// Registrar is the node's SIP registrar.
func (s *Server) Registrar() *sip.Registrar { return s.reg }

// sipPassword is the registrar's credentials lookup.
func (s *Server) sipPassword(ctx context.Context, name string) (string, error) {
	if s.dir == nil {
		return "", sip.ErrUnknownUser
	}
	u, err := s.dir.UserBySIPUsername(ctx, name)
	if errors.Is(err, call.ErrNoUser) || err == nil && u.SIPPassword == "" {
		return "", sip.ErrUnknownUser
	}
	if err != nil {
		return "", err
	}
	return u.SIPPassword, nil
}

// pruneRegistrations deletes expired contacts every interval.
func (s *Server) pruneRegistrations(every time.Duration) {
	defer close(s.pruned)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stopPrune:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := s.reg.Prune(ctx); err != nil {
				s.log.Warn("registrar: pruning expired contacts failed", "err", err)
			}
			cancel()
		}
	}
}

// locationStore keeps the registrar's bindings in the catalog database.
type locationStore struct {
	rs   meta.Registrations
	node string
}

func (l locationStore) ApplyBindings(ctx context.Context, changes []sip.BindingChange) error {
	out := make([]meta.RegistrationChange, len(changes))
	for i, c := range changes {
		out[i] = meta.RegistrationChange{Username: c.User, ClearAll: c.ClearAll, Upsert: toRegistrations(c.Upsert, l.node), Remove: c.Remove}
	}
	return l.rs.ApplyRegistrations(ctx, out)
}

func (l locationStore) LoadBindings(ctx context.Context, now time.Time) ([]sip.Binding, error) {
	rs, err := l.rs.ActiveRegistrations(ctx, now)
	return fromRegistrations(rs), err
}

func (l locationStore) UserBindings(ctx context.Context, user string, now time.Time) ([]sip.Binding, error) {
	rs, err := l.rs.UserRegistrations(ctx, user, now)
	return fromRegistrations(rs), err
}

func toRegistrations(bs []sip.Binding, node string) []meta.Registration {
	rs := make([]meta.Registration, len(bs))
	for i, b := range bs {
		rs[i] = meta.Registration{Username: b.User, Contact: b.Contact, Expires: b.Expires, CallID: b.CallID, CSeq: int64(b.CSeq),
			Source: b.Source, Transport: b.Transport, UserAgent: b.UserAgent, Node: node}
	}
	return rs
}

func fromRegistrations(rs []meta.Registration) []sip.Binding {
	bs := make([]sip.Binding, len(rs))
	for i, r := range rs {
		bs[i] = sip.Binding{User: r.Username, Contact: r.Contact, Expires: r.Expires, CallID: r.CallID, CSeq: uint32(r.CSeq),
			Source: r.Source, Transport: r.Transport, UserAgent: r.UserAgent}
	}
	return bs
}

func (l locationStore) PruneBindings(ctx context.Context, now time.Time) (int64, error) {
	return l.rs.PruneRegistrations(ctx, now)
}

// storeDirectory is the users store of the catalog database as the call
// model's Directory.
type storeDirectory struct{ us meta.UserStore }

func dirUser(u meta.User, err error) (*call.DirUser, error) {
	if errors.Is(err, meta.ErrNotFound) {
		return nil, call.ErrNoUser
	}
	if err != nil {
		return nil, err
	}
	return &call.DirUser{UUID: u.UUID, TenantUUID: u.TenantUUID, Firstname: u.Firstname, Lastname: u.Lastname,
		Exten: u.Exten, Context: u.Context, SIPUsername: u.SIPUsername, SIPPassword: u.SIPPassword,
		CallRecordOutgoingExternal: u.CallRecordOutgoingExternal, CallRecordOutgoingInternal: u.CallRecordOutgoingInternal,
		CallRecordIncomingExternal: u.CallRecordIncomingExternal, CallRecordIncomingInternal: u.CallRecordIncomingInternal,
		OnlineCallRecord: u.OnlineCallRecord}, nil
}

func (d storeDirectory) UserBySIPUsername(ctx context.Context, name string) (*call.DirUser, error) {
	return dirUser(d.us.UserBySIPUsername(ctx, name))
}

func (d storeDirectory) UserByExten(ctx context.Context, context, exten string) (*call.DirUser, error) {
	if context == "" {
		context = "default"
	}
	return dirUser(d.us.UserByExten(ctx, context, exten))
}

// lateDirectory reads the server's directory at each call, so that
// SetDirectory may replace it after New.
type lateDirectory struct{ s *Server }

func (d lateDirectory) UserBySIPUsername(ctx context.Context, name string) (*call.DirUser, error) {
	if d.s.dir == nil {
		return nil, call.ErrNoUser
	}
	return d.s.dir.UserBySIPUsername(ctx, name)
}

func (d lateDirectory) UserByExten(ctx context.Context, context, exten string) (*call.DirUser, error) {
	if d.s.dir == nil {
		return nil, call.ErrNoUser
	}
	return d.s.dir.UserByExten(ctx, context, exten)
}

func (d storeDirectory) FeatureByExten(ctx context.Context, exten string) (string, error) {
	f, err := d.us.FeatureByExten(ctx, exten)
	if errors.Is(err, meta.ErrNotFound) {
		return "", call.ErrNoFeature
	}
	return f.Feature, err
}

func (d storeDirectory) ToggleCallRecord(ctx context.Context, userUUID string) (bool, error) {
	return d.us.ToggleCallRecord(ctx, userUUID)
}

func (d lateDirectory) FeatureByExten(ctx context.Context, exten string) (string, error) {
	fc, ok := d.s.dir.(call.FeatureCodes)
	if !ok {
		return "", call.ErrNoFeature
	}
	return fc.FeatureByExten(ctx, exten)
}

func (d lateDirectory) ToggleCallRecord(ctx context.Context, userUUID string) (bool, error) {
	fc, ok := d.s.dir.(call.FeatureCodes)
	if !ok {
		return false, call.ErrNoFeature
	}
	return fc.ToggleCallRecord(ctx, userUUID)
}

// endpoints are ARI's endpoints: every user with SIP credentials, online
// while one of their phones is registered.
func (s *Server) endpoints(ctx context.Context) ([]ari.Endpoint, error) {
	out := []ari.Endpoint{}
	if s.users == nil {
		return out, nil
	}
	page, err := s.users.List(ctx, users.Query{})
	if err != nil {
		return nil, err
	}
	online := s.reg.Online(ctx)
	for _, u := range page.Items {
		if u.SIPUsername == "" {
			continue
		}
		state := "offline"
		if online[u.SIPUsername] {
			state = "online"
		}
		out = append(out, ari.Endpoint{Technology: "PJSIP", Resource: u.SIPUsername, State: state})
	}
	return out, nil
}
