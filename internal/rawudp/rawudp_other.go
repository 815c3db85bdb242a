//go:build !linux

package rawudp

import "net"

// Conn is a *net.UDPConn; outside Linux its reads and writes are
// net.UDPConn's own.
type Conn struct{ *net.UDPConn }

// New wraps c.
func New(c *net.UDPConn) (*Conn, error) { return &Conn{c}, nil }
