package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MaxNodeIDLen bounds node_id: it is part of every channel id.
const MaxNodeIDLen = 32

// DefaultNodeID derives a node id from the host name: its first label,
// lower-cased, with anything outside [a-z0-9_-] replaced by '-' ("tapedeck"
// when nothing is left).
func DefaultNodeID() string {
	host, _ := os.Hostname()
	return nodeIDFromHost(host)
}

func nodeIDFromHost(host string) string {
	host, _, _ = strings.Cut(strings.ToLower(host), ".")
	b := []byte(host)
	for i, c := range b {
		if !nodeIDChar(c) {
			b[i] = '-'
		}
	}
	id := strings.Trim(string(b), "-_")
	if len(id) > MaxNodeIDLen {
		id = strings.TrimRight(id[:MaxNodeIDLen], "-_")
	}
	if id == "" {
		return "tapedeck"
	}
	return id
}

func nodeIDChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// CheckNodeID validates a node id: 1-32 characters of letters, digits, '-'
// and '_', starting with a letter or digit. It goes into channel ids
// ("node-1733300000.1") and ${UNIQUEID}, which name recording files.
func CheckNodeID(id string) error {
	if id == "" || len(id) > MaxNodeIDLen {
		return fmt.Errorf("node_id: %q must be 1-%d characters", id, MaxNodeIDLen)
	}
	if c := id[0]; c == '-' || c == '_' {
		return fmt.Errorf("node_id: %q must start with a letter or digit", id)
	}
	for i := 0; i < len(id); i++ {
		if !nodeIDChar(id[i]) {
			return fmt.Errorf("node_id: %q may hold only letters, digits, '-' and '_'", id)
		}
	}
	return nil
}

// NodeIDFile is the file in the data directory that keeps a derived node
// id, so that it stays the same across restarts (and host renames).
const NodeIDFile = "node_id"

// nodeSuffixLen is the length of the random hex suffix of a derived id.
const nodeSuffixLen = 8

// ResolveNodeID fills c.NodeID when it is not configured: the id kept in
// DataDir/node_id, or, on a first start, one derived from the host name
// with a random suffix ("pbx1-3f9c20ab"), written there. Two nodes on one
// host (each with its own data directory, as they must have) so never share
// an id, which ari-proxy's MAC-derived ids did (CyCoreSystems/ari-proxy#47);
// and a node keeps its id when the host's name or network cards change
// (#31). The data directory must exist.
func ResolveNodeID(c *Config) error {
	if c.NodeID != "" {
		return CheckNodeID(c.NodeID)
	}
	path := filepath.Join(c.DataDir, NodeIDFile)
	if b, err := os.ReadFile(path); err == nil {
		id := strings.TrimSpace(string(b))
		if err := CheckNodeID(id); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		c.NodeID = id
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	id, err := derivedNodeID(DefaultNodeID())
	if err != nil {
		return err
	}
	// O_EXCL: of two processes starting on one data directory at once,
	// both end up with the id the first one wrote.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return ResolveNodeID(c)
	}
	if err != nil {
		return err
	}
	if _, err := f.WriteString(id + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	c.NodeID = id
	return nil
}

// derivedNodeID is host (a DefaultNodeID) with a random hex suffix, cut to
// fit MaxNodeIDLen.
func derivedNodeID(host string) (string, error) {
	var b [nodeSuffixLen / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	if max := MaxNodeIDLen - 1 - nodeSuffixLen; len(host) > max {
		host = strings.TrimRight(host[:max], "-_")
	}
	if host == "" {
		host = "tapedeck"
	}
	return host + "-" + hex.EncodeToString(b[:]), nil
}
