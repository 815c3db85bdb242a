package config

import (
	"fmt"
	"os"
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
