package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/testutil"
)

// nodeInfo is what /ari/asterisk/info says about a node: its node id
// (config.name, Asterisk's system name) and asterisk_id (system.entity_id,
// the id ari-proxy names a node by).
func nodeInfo(t *testing.T, base string) (name, entity string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/ari/asterisk/info", nil)
	req.SetBasicAuth("asterisk", "asterisk")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var info struct {
		Config struct {
			Name string `json:"name"`
		} `json:"config"`
		System struct {
			EntityID string `json:"entity_id"`
		} `json:"system"`
	}
	if err := json.NewDecoder(res.Body).Decode(&info); err != nil {
		t.Fatal(err)
	}
	return info.Config.Name, info.System.EntityID
}

// TestNodeIDsUniqueOnOneHost: two tapedeck processes on one host, neither
// with node_id configured, get different node ids and asterisk_ids (with
// ids derived from the host alone they collided: ari-proxy#47), and a node
// restarted on its data directory keeps its id.
func TestNodeIDsUniqueOnOneHost(t *testing.T) {
	type node struct {
		dir, cfg, base string
		p              *proc
	}
	start := func(n *node) {
		n.p = startBinary(t, "-config", n.cfg)
		waitHTTP(t, n.base)
	}
	var nodes [2]*node
	for i := range nodes {
		sipPort, httpPort := testutil.FreeSIPPort(t), testutil.FreeTCPPort(t)
		rtpLo, rtpHi := testutil.FreeUDPPortRange(t, 200)
		n := &node{dir: t.TempDir(), base: fmt.Sprintf("http://127.0.0.1:%d", httpPort)}
		n.cfg = filepath.Join(t.TempDir(), "tapedeck.yaml")
		yaml := fmt.Sprintf("data_dir: %s\nsip:\n  listen: 127.0.0.1:%d\nhttp:\n  listen: 127.0.0.1:%d\nrtp:\n  port_min: %d\n  port_max: %d\n",
			n.dir, sipPort, httpPort, rtpLo, rtpHi)
		if err := os.WriteFile(n.cfg, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		nodes[i] = n
		start(n)
	}
	nameA, entA := nodeInfo(t, nodes[0].base)
	nameB, entB := nodeInfo(t, nodes[1].base)
	if nameA == "" || nameA == nameB {
		t.Errorf("node ids %q and %q on one host", nameA, nameB)
	}
	if entA == "" || entA == entB {
		t.Errorf("asterisk_ids %q and %q on one host", entA, entB)
	}
	if b, err := os.ReadFile(filepath.Join(nodes[0].dir, "node_id")); err != nil || strings.TrimSpace(string(b)) != nameA {
		t.Errorf("data dir node_id: %q, %v; want %q", b, err, nameA)
	}

	// Restart A on its data directory: same ids.
	if err := nodes[0].p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-nodes[0].p.done:
	case <-time.After(20 * time.Second):
		t.Fatal("node A did not exit on SIGTERM")
	}
	start(nodes[0])
	if name, ent := nodeInfo(t, nodes[0].base); name != nameA || ent != entA {
		t.Errorf("after restart: %q %q; want %q %q", name, ent, nameA, entA)
	}
}
