package config

import (
	"strings"
	"testing"
)

func TestNodeIDFromHost(t *testing.T) {
	for host, want := range map[string]string{
		"Rec-01.example.com":    "rec-01",
		"box":                   "box",
		"":                      "tapedeck",
		"..":                    "tapedeck",
		"a b+c":                 "a-b-c",
		"-x-":                   "x",
		strings.Repeat("a", 40): strings.Repeat("a", 32),
	} {
		got := nodeIDFromHost(host)
		if got != want {
			t.Errorf("%q: %q, want %q", host, got, want)
		}
		if err := CheckNodeID(got); err != nil {
			t.Errorf("%q: derived %q is invalid: %v", host, got, err)
		}
	}
}

func TestNodeIDValidated(t *testing.T) {
	for _, bad := range []string{"a.b", "a/b", "-a", "_a", "a b", "é", strings.Repeat("x", 33)} {
		c := Default()
		c.NodeID = bad
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "node_id: ") {
			t.Errorf("node_id %q: %v, want a node_id error", bad, err)
		}
	}
	c := Default()
	c.NodeID = "rec_2-b"
	if err := c.Validate(); err != nil {
		t.Errorf("rec_2-b: %v", err)
	}
	c = Default()
	if err := c.Validate(); err != nil || c.NodeID != DefaultNodeID() {
		t.Errorf("default: %q, %v; want %q", c.NodeID, err, DefaultNodeID())
	}
}
