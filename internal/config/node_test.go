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
	if err := c.Validate(); err != nil || c.NodeID != "" {
		t.Errorf("default: %q, %v; want it left to ResolveNodeID", c.NodeID, err)
	}
}

// TestResolveNodeID: an unconfigured node id is the host's name with a
// random suffix, kept in the data directory: the same on the next start,
// different for another data directory on the same host.
func TestResolveNodeID(t *testing.T) {
	a, b := Default(), Default()
	a.DataDir, b.DataDir = t.TempDir(), t.TempDir()
	if err := ResolveNodeID(&a); err != nil {
		t.Fatal(err)
	}
	if err := ResolveNodeID(&b); err != nil {
		t.Fatal(err)
	}
	if a.NodeID == b.NodeID {
		t.Errorf("two data directories on one host share node id %q", a.NodeID)
	}
	for _, id := range []string{a.NodeID, b.NodeID} {
		if err := CheckNodeID(id); err != nil || !strings.HasPrefix(id, DefaultNodeID()[:min(len(DefaultNodeID()), 8)]) {
			t.Errorf("derived id %q: %v (host part %q)", id, err, DefaultNodeID())
		}
	}
	again := Default()
	again.DataDir = a.DataDir
	if err := ResolveNodeID(&again); err != nil || again.NodeID != a.NodeID {
		t.Errorf("restart: %q, %v; want %q", again.NodeID, err, a.NodeID)
	}
	set := Default()
	set.DataDir, set.NodeID = a.DataDir, "pbx-2"
	if err := ResolveNodeID(&set); err != nil || set.NodeID != "pbx-2" {
		t.Errorf("configured: %q, %v", set.NodeID, err)
	}
	long, err := derivedNodeID(strings.Repeat("h", 40))
	if err != nil || len(long) > MaxNodeIDLen || CheckNodeID(long) != nil {
		t.Errorf("long host: %q, %v", long, err)
	}
}
