package config

import (
	"strings"
	"testing"
)

// TestSIPLimits: the SIP-over-TCP limits and the malformed-message log
// level have defaults, are read from YAML and are validated.
func TestSIPLimits(t *testing.T) {
	d := Default()
	if d.SIP.TCP != (SIPTCP{IdleTimeoutSeconds: 120, MaxConnectionsPerSource: 64}) || d.SIP.MalformedLogLevel != "info" {
		t.Fatalf("defaults: %+v %q", d.SIP.TCP, d.SIP.MalformedLogLevel)
	}
	c := Default()
	err := Parse([]byte("sip:\n  malformed_log_level: debug\n  tcp:\n    idle_timeout_seconds: 0\n    max_connections: 500\n    max_connections_per_source: 5\n"), &c)
	if err != nil {
		t.Fatal(err)
	}
	if c.SIP.TCP != (SIPTCP{IdleTimeoutSeconds: 0, MaxConnections: 500, MaxConnectionsPerSource: 5}) || c.SIP.MalformedLogLevel != "debug" {
		t.Fatalf("parsed %+v %q", c.SIP.TCP, c.SIP.MalformedLogLevel)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.SIP.TCP.IdleTimeoutSeconds = -1 },
		func(c *Config) { c.SIP.TCP.MaxConnections = -1 },
		func(c *Config) { c.SIP.TCP.MaxConnectionsPerSource = -1 },
		func(c *Config) { c.SIP.MalformedLogLevel = "loud" },
	} {
		c := Default()
		bad(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "sip.") {
			t.Fatalf("%+v validated: %v", c.SIP, err)
		}
	}
}
