package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// TestNodesShareCatalog: two nodes on one PostgreSQL catalog, each taking
// its first call in the same second with Record(calls/${UNIQUEID},wav).
// Their channel ids, and so the recordings' names, differ by node_id (with
// epoch.serial alone both would be calls/EPOCH.1 and collide), and each
// catalog row names the node that made it.
func TestNodesShareCatalog(t *testing.T) {
	dsn := pgFreshDatabase(t)
	nodes := map[string]*node{}
	for _, id := range []string{"node-a", "node-b"} {
		nodes[id] = startNode(t, withRoute("2001", "Record(calls/${UNIQUEID},wav)"), func(c *config.Config) {
			c.NodeID = id
			c.Catalog.Database = dsn
		})
	}
	phone := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			call, err := phone.Dial(ctx, n.target("2001"), sipua.CallOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			if err := call.SendAudio(ctx, sweep(4000)); err != nil {
				t.Error(err)
			}
			if err := call.Hangup(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	st := nodes["node-a"].srv.Catalog().Meta
	acc := defaultAccount(t, nodes["node-a"])
	var page meta.Page
	pollFor(t, 10*time.Second, func() bool {
		var err error
		page, err = st.ListRecordings(ctx, meta.Query{AccountSid: acc.Sid, Limit: 10, SortBy: meta.SortDateCreated})
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, r := range page.Items {
			if r.Status == meta.StatusCompleted {
				done++
			}
		}
		return done == 2
	}, "both recordings completed in the shared catalog")
	seen := map[string]string{}
	for _, r := range page.Items {
		if !strings.HasPrefix(r.Name, "calls/"+r.Node+"-") {
			t.Errorf("recording %q made on node %q: its name does not carry the node", r.Name, r.Node)
		}
		seen[r.Node] = r.Name
	}
	if len(seen) != 2 || seen["node-a"] == "" || seen["node-b"] == "" || seen["node-a"] == seen["node-b"] {
		t.Errorf("rows by node: %v", seen)
	}
}
