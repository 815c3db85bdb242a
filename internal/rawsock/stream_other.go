//go:build !linux

package rawsock

import (
	"context"
	"net"
)

// Stream returns c: outside Linux its reads and writes are its own.
func Stream(c net.Conn) net.Conn { return c }

// WrapDial returns dial.
func WrapDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return dial
}
