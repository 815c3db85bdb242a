package config

import (
	"fmt"
	"net"
	"regexp"

	"github.com/tapedeck/tapedeck/internal/netguard"
)

// Trunk is a SIP peer of the PBX (an operator's or another PBX's): an
// INVITE from its address to one of its DIDs is an incoming external call
// to that DID's user; a user dialling a number that is no extension goes
// out through the first trunk.
type Trunk struct {
	Name string `yaml:"name"`
	// Address and Port identify the peer (calls from it are recognised by
	// source address and port) and are where calls out are sent. Port
	// default 5060.
	Address string `yaml:"address"`
	Port    int    `yaml:"port"`
	// Transport is udp (default) or tcp.
	Transport string `yaml:"transport"`
	// Username and Password answer the peer's digest challenge on calls
	// out (optional).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// DIDs map a dialled number from the trunk to a user's extension,
	// e.g. {"+3312345": "1001"}.
	DIDs map[string]string `yaml:"dids"`
}

var trunkNumberRe = regexp.MustCompile(`^\+?[0-9*#]{1,40}$`)

func (c *Config) checkTrunks() []error {
	var errs []error
	names := map[string]bool{}
	for i := range c.Trunks {
		t := &c.Trunks[i]
		field := fmt.Sprintf("trunks[%d]", i)
		if t.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name: empty", field))
		} else if names[t.Name] {
			errs = append(errs, fmt.Errorf("%s.name: %q is used twice", field, t.Name))
		}
		names[t.Name] = true
		if t.Address == "" || net.ParseIP(t.Address) == nil && !netguard.ValidHostName(t.Address) {
			errs = append(errs, fmt.Errorf("%s.address: %q is not an IP address or host name", field, t.Address))
		}
		if t.Port == 0 {
			t.Port = 5060
		}
		if t.Port < 1 || t.Port > 65535 {
			errs = append(errs, fmt.Errorf("%s.port: %d is not a port", field, t.Port))
		}
		switch t.Transport {
		case "":
			t.Transport = "udp"
		case "udp", "tcp":
		default:
			errs = append(errs, fmt.Errorf("%s.transport: %q is not udp or tcp", field, t.Transport))
		}
		if t.Password != "" && t.Username == "" {
			errs = append(errs, fmt.Errorf("%s.username: empty while a password is set", field))
		}
		for did, ext := range t.DIDs {
			if !trunkNumberRe.MatchString(did) {
				errs = append(errs, fmt.Errorf("%s.dids: %q is not a number", field, did))
			}
			if !trunkNumberRe.MatchString(ext) {
				errs = append(errs, fmt.Errorf("%s.dids[%q]: %q is not an extension", field, did, ext))
			}
		}
	}
	return errs
}
