package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/server"
	"github.com/tapedeck/tapedeck/internal/testutil"
	"github.com/tapedeck/tapedeck/internal/testutil/baresip"
)

// staticDir is a users directory held in memory (the users store's
// stand-in until it is wired).
type staticDir struct {
	mu    sync.Mutex
	users []*call.DirUser
}

func (d *staticDir) UserBySIPUsername(_ context.Context, name string) (*call.DirUser, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, u := range d.users {
		if u.SIPUsername == name {
			c := *u
			return &c, nil
		}
	}
	return nil, call.ErrNoUser
}

func (d *staticDir) UserByExten(_ context.Context, ctx, exten string) (*call.DirUser, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, u := range d.users {
		if u.Exten == exten && (ctx == "" || u.Context == ctx) {
			c := *u
			return &c, nil
		}
	}
	return nil, call.ErrNoUser
}

func wazoUsers(exts ...string) *staticDir {
	d := &staticDir{}
	for _, e := range exts {
		d.users = append(d.users, &call.DirUser{UUID: "uuid-" + e, TenantUUID: "tenant-1", Firstname: "User", Lastname: e,
			Exten: e, Context: "default", SIPUsername: "sip" + e, SIPPassword: "pw-" + e})
	}
	return d
}

func startPBX(t *testing.T, dir *staticDir) *node {
	// baresip 1.0 (libre 1.x) knows only MD5 and fails the whole
	// REGISTER ("Function not implemented") when any challenge names
	// another algorithm: the operator offers MD5 alone.
	return startNodeWith(t, func(s *server.Server) { s.SetDirectory(dir) }, func(c *config.Config) {
		c.SIP.DigestAlgorithms = []string{"MD5"}
	})
}

// TestRegisterBaresip: real phones register with digest authentication
// (baresip answers the SHA-256 challenge); a wrong password binds nothing
// and is counted.
func TestRegisterBaresip(t *testing.T) {
	n := startPBX(t, wazoUsers("1001", "1002"))
	reg := n.srv.Registrar()
	good := baresip.Start(t, baresip.Options{User: "sip1001", Registrar: n.srv.SIPAddr(), Password: "pw-1001"})
	bad := baresip.Start(t, baresip.Options{User: "sip1002", Registrar: n.srv.SIPAddr(), Password: "wrong"})
	err := testutil.Poll(10*time.Second, 20*time.Millisecond, func() bool { return len(reg.Contacts("sip1001")) == 1 })
	if err != nil {
		t.Fatalf("baresip did not register: %v", reg.Contacts("sip1001"))
	}
	c := reg.Contacts("sip1001")[0]
	if !strings.Contains(c.Contact, fmt.Sprintf(":%d", good.SIPPort)) || c.UserAgent == "" {
		t.Fatalf("binding %+v, want the phone's contact on port %d", c, good.SIPPort)
	}
	if left := time.Until(c.Expires); left < 500*time.Second || left > 601*time.Second {
		t.Fatalf("granted %v, want the phone's 600 s", left)
	}
	if err := testutil.Poll(10*time.Second, 20*time.Millisecond, func() bool { return reg.Auth().Failures.Load() > 0 }); err != nil {
		t.Fatal("the wrong password was not counted as a failure")
	}
	if cs := reg.Contacts("sip1002"); len(cs) != 0 {
		t.Fatalf("a phone with a wrong password is bound: %v", cs)
	}
	_ = bad
}
