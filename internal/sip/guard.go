package sip

import (
	"fmt"
	"runtime/debug"
	"sync/atomic"
)

// Stats are counters of what the endpoint refused, dropped or survived.
type Stats struct {
	// PanicsRecovered counts panics in a message's or a call's goroutine
	// that were recovered; each failed only that message or call.
	PanicsRecovered uint64 `json:"panics_recovered"`
	// MalformedDropped counts messages the parser could not read.
	MalformedDropped uint64 `json:"malformed_dropped"`
	// InvalidRejected counts parsed requests refused for a missing or bad
	// mandatory header or SIP version (400, 505).
	InvalidRejected uint64 `json:"invalid_rejected"`
	// TCPOpen is the number of accepted SIP TCP connections open now.
	TCPOpen int64 `json:"tcp_open"`
	// TCPRefused counts TCP connections closed on accept because of the
	// global or the per-source cap.
	TCPRefused uint64 `json:"tcp_refused"`
	// TCPIdleClosed counts TCP connections closed for being idle.
	TCPIdleClosed uint64 `json:"tcp_idle_closed"`
	// TCPAcceptErrors counts failed accepts (e.g. out of descriptors),
	// each retried after a back-off.
	TCPAcceptErrors uint64 `json:"tcp_accept_errors"`
	// Registered counts successful REGISTERs; RegisterRejected those
	// refused (4xx other than the 401 challenge); RegisterFlooded those
	// dropped by the per-source rate limit.
	Registered       uint64 `json:"registered"`
	RegisterRejected uint64 `json:"register_rejected"`
	RegisterFlooded  uint64 `json:"register_flooded"`
	// AuthFailures counts wrong digest credentials (REGISTER and INVITE);
	// AuthDropped requests dropped because their source failed too often.
	AuthFailures uint64 `json:"auth_failures"`
	AuthDropped  uint64 `json:"auth_dropped"`
	// AuthReplayed counts right credentials refused because their nonce
	// count did not increase (a replayed Authorization), challenged again.
	AuthReplayed uint64 `json:"auth_replayed"`
}

type counters struct {
	panics, malformed, invalid       atomic.Uint64
	tcpRefused, tcpIdle, tcpAcceptEr atomic.Uint64
	tcpOpen                          atomic.Int64
}

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() Stats {
	c := &e.stats
	st := Stats{
		PanicsRecovered:  c.panics.Load(),
		MalformedDropped: c.malformed.Load(),
		InvalidRejected:  c.invalid.Load(),
		TCPOpen:          c.tcpOpen.Load(),
		TCPRefused:       c.tcpRefused.Load(),
		TCPIdleClosed:    c.tcpIdle.Load(),
		TCPAcceptErrors:  c.tcpAcceptEr.Load(),
	}
	if r := e.registrar.Load(); r != nil {
		st.Registered, st.RegisterRejected, st.RegisterFlooded = r.Registered.Load(), r.Rejected.Load(), r.Flooded.Load()
		st.AuthFailures, st.AuthDropped, st.AuthReplayed = r.auth.Failures.Load(), r.auth.Dropped.Load(), r.auth.Replayed.Load()
	}
	return st
}

// recovered is deferred at the top of every goroutine that runs for one
// message or one call: a panic there is logged with its stack, counted, and
// handed to fail (which fails that message or call only), never allowed to
// take the process down.
func (e *Endpoint) recovered(what string, fail func()) {
	v := recover()
	if v == nil {
		return
	}
	e.stats.panics.Add(1)
	e.log.Error("sip: recovered from a panic; only this "+what+" failed", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	if fail != nil {
		func() {
			defer func() {
				if v := recover(); v != nil {
					e.stats.panics.Add(1)
					e.log.Error("sip: panic while failing a "+what, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				}
			}()
			fail()
		}()
	}
}

// goSafe runs f in a goroutine of its own under recovered.
func (e *Endpoint) goSafe(what string, f func(), fail func()) {
	go func() {
		defer e.recovered(what, fail)
		f()
	}()
}
