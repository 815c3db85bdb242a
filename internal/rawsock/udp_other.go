//go:build !linux

package rawsock

import "net"

// UDPConn is a *net.UDPConn; outside Linux its reads and writes are
// net.UDPConn's own.
type UDPConn struct{ *net.UDPConn }

// NewUDP wraps c.
func NewUDP(c *net.UDPConn) (*UDPConn, error) { return &UDPConn{c}, nil }
