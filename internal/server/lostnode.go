package server

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// When a node settles the recordings of a lost node (catalog.settleLost),
// it says so on {prefix}tapedeck.lost; every node then tells the ARI
// applications connected to it that were following those recordings
// (their events came from the lost node: cluster.learn) with a
// RecordingFailed, cause "node lost", and forgets where they were, so that
// a request naming them is answered here (404) instead of being relayed to
// a node that is gone.

// lostRecording is one recording of a lost node, as it is announced.
type lostRecording struct {
	Node   string `json:"node"` // the lost node's id
	Name   string `json:"name"`
	Format string `json:"format"`
	Status string `json:"status"` // failed, or recovered (from a shared directory)
	Cause  string `json:"cause"`
}

func lostSubject(prefix string) string { return prefix + "tapedeck.lost" }

// publishLost announces a recording settled for its lost node (the
// catalog's OnLost; lost is the node that made it).
func (c *cluster) publishLost(lost string, row meta.Recording) {
	if row.Name == "" {
		return
	}
	lr := lostRecording{Node: lost, Name: row.Name, Format: row.Format, Status: string(row.Status), Cause: row.StatusDetail}
	b, _ := json.Marshal(lr)
	_ = c.nc.Publish(lostSubject(c.prefix), b)
	// The node's own connection does not echo its messages (nats.NoEcho):
	// an application here that followed the recording is told here.
	c.lost(lr)
}

// onLost tells the local application that followed the recording.
func (c *cluster) onLost(m *nats.Msg) {
	var lr lostRecording
	if json.Unmarshal(m.Data, &lr) != nil {
		return
	}
	c.lost(lr)
}

func (c *cluster) lost(lr lostRecording) {
	if lr.Name == "" || lr.Node == c.nodeID {
		return
	}
	key := "recordings:" + lr.Name
	c.mu.Lock()
	l, ok := c.where[key]
	entity := c.ids[lr.Node]
	if ok && (entity == "" || l.entity == entity) && l.entity != c.entity {
		delete(c.where, key)
	} else {
		ok = false
	}
	c.mu.Unlock()
	if !ok || l.app == "" || l.app == noApp || !c.bus.Connected(l.app) {
		return
	}
	if lr.Status != string(meta.StatusFailed) {
		return // recovered from a shared directory: its file is stored
	}
	ev := map[string]any{
		"type": "RecordingFailed", "timestamp": time.Now().Format(event.TimeFormat),
		"application": l.app, "asterisk_id": l.entity,
		"recording": map[string]any{"name": lr.Name, "format": lr.Format, "state": "failed", "cause": lr.Cause},
	}
	b, _ := json.Marshal(ev)
	if c.bus.Deliver(l.app, b) {
		c.log.Warn("cluster: told an application that a recording of a lost node failed", "app", l.app, "recording", lr.Name, "node", lr.Node)
	}
}

// rememberID keeps which entity a node id announced (onAnnounce): a lost
// node is named by its id, its resources by its entity.
func (c *cluster) rememberID(nodeID, entity string) {
	if nodeID == "" {
		return
	}
	if len(c.ids) >= maxLocations {
		clear(c.ids)
	}
	c.ids[nodeID] = entity
}
