// Package rawsock makes a socket's reads and writes as raw system calls,
// outside the Go scheduler's syscall state.
//
// A read or write on a non-blocking socket never waits, so the scheduler
// need not know about it. Made through package syscall (as package net
// makes them), each one enters and leaves the syscall state, and when the
// process was idle that entry wakes the runtime's monitor thread (sysmon),
// which then polls every 20 µs for a while, preempting whatever runs on
// the CPU. On a node behind Kamailio, the dispatcher's OPTIONS probe each
// second did that once a second: 1.5–2 ms of CPU a second per node, a
// fifth of what a node recording 50 calls costs (bench/RESULTS.md,
// 2026-12-07); a cluster node's PostgreSQL and NATS connections did it at
// each reply that found the node idle. The sockets stay in the network
// poller, which parks a reader or writer until the socket is ready and
// honours deadlines and Close; only the system calls are raw. The RTP path
// has made its own reads and writes raw since b6c57a8 and ebbc37e.
package rawsock

import (
	"errors"
	"net"
)

// ErrFamily is SendTo's error for an IPv6 destination on an IPv4 socket.
var ErrFamily = errors.New("IPv6 destination on an IPv4 socket")

// unwrapOp takes the cause out of the *net.OpError that a RawConn's Read
// or Write returns (Op "raw-read"), so that the caller's own OpError says
// "read" or "write" as net.UDPConn's do.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Err
	}
	return err
}
