package call

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"time"

	"github.com/tapedeck/tapedeck/internal/contain"
	"github.com/tapedeck/tapedeck/internal/users"
)

// Trunk is a SIP peer for external calls (config.Trunk).
type Trunk struct {
	Name      string
	Host      string // IP address or host name
	Port      int
	Transport string // udp, tcp
	// Username and Password answer the trunk's challenge on calls out.
	Username, Password string
	// DIDs map numbers dialled from the trunk to users' extensions.
	DIDs map[string]string

	ips []net.IP // Host resolved (SetTrunks)
}

// SetTrunks sets the trunks (before use); host names are resolved now.
func (m *Manager) SetTrunks(ts []Trunk) error {
	out := make([]Trunk, len(ts))
	for i, t := range ts {
		if ip := net.ParseIP(t.Host); ip != nil {
			t.ips = []net.IP{ip}
		} else {
			ips, err := net.LookupIP(t.Host)
			if err != nil {
				return fmt.Errorf("trunk %s: %w", t.Name, err)
			}
			t.ips = ips
		}
		out[i] = t
	}
	m.opts.Trunks = out
	return nil
}

// trunkFrom is the trunk whose address and port a request came from.
func (m *Manager) trunkFrom(source string) *Trunk {
	if len(m.opts.Trunks) == 0 {
		return nil
	}
	host, portStr, err := net.SplitHostPort(source)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	port, _ := strconv.Atoi(portStr)
	for i := range m.opts.Trunks {
		t := &m.opts.Trunks[i]
		if t.Port != port {
			continue
		}
		for _, a := range t.ips {
			if a.Equal(ip) {
				return t
			}
		}
	}
	return nil
}

func (m *Manager) trunk(name string) *Trunk {
	for i := range m.opts.Trunks {
		if m.opts.Trunks[i].Name == name {
			return &m.opts.Trunks[i]
		}
	}
	return nil
}

var externalNumberRe = regexp.MustCompile(`^\+?[0-9]{2,32}$`)

// trunkNumber: only numbers go out, never feature-like codes.
func trunkNumber(s string) bool { return externalNumberRe.MatchString(s) }

// DialTrunk(trunk,number) calls number through the trunk for an
// authenticated user: an outgoing external call.
var dialTrunkApp = Application{
	Name:         "DialTrunk",
	Authenticate: true,
	Check: func(args []string, _ CheckEnv) error {
		if len(args) != 2 || args[0] == "" || args[1] == "" {
			return errors.New("want DialTrunk(trunk,number)")
		}
		return nil
	},
	Admit: func(inv *Invocation) *Decline {
		if len(inv.Args) != 2 || inv.manager().trunk(inv.Args[0]) == nil {
			inv.Log.Warn("rejecting call: no such trunk", "args", inv.Args)
			return &Decline{404, "Not Found"}
		}
		return nil
	},
	Run: func(inv *Invocation) {
		contain.Go(inv.Log, "dial", func() { inv.ch.runDialTrunk(inv) }, func() { inv.ch.hangup(CauseFailure, false) })
	},
}

func (ch *Channel) runDialTrunk(inv *Invocation) {
	m := ch.m
	t := m.trunk(inv.Args[0])
	number := inv.Args[1]
	var caller *DirUser
	if inv.CallerUser != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		caller, _ = m.opts.Directory.UserBySIPUsername(ctx, inv.CallerUser)
		cancel()
	}
	uri := fmt.Sprintf("sip:%s@%s", number, net.JoinHostPort(t.Host, strconv.Itoa(t.Port)))
	if t.Transport == "tcp" {
		uri += ";transport=tcp"
	}
	inv.Log.Info("DialTrunk: calling out", "trunk", t.Name, "number", number)
	ch.connect(inv, dialSpec{targets: []dialTarget{{endpoint: "PJSIP/" + uri, username: t.Username, password: t.Password}},
		timeout: DefaultDialTimeout, kind: users.OutgoingExternal, caller: caller, dst: number})
}
