//go:build !linux

package rtp

import (
	"errors"
	"net/netip"
	"time"
)

var errNoPoller = errors.New("rtp: batched socket reads need Linux; set rtp.read_interval to 0")

// PacketFunc receives one datagram read by a Poller.
type PacketFunc func(b []byte, from netip.AddrPort, at time.Time)

// Socket is only implemented on Linux.
type Socket struct{}

// ListenSocket is only implemented on Linux.
func ListenSocket(netip.AddrPort) (*Socket, error) { return nil, errNoPoller }

// LocalAddr is only implemented on Linux.
func (*Socket) LocalAddr() netip.AddrPort { return netip.AddrPort{} }

// WriteTo is only implemented on Linux.
func (*Socket) WriteTo([]byte, netip.AddrPort) (int, error) { return 0, errNoPoller }

// Close is only implemented on Linux.
func (*Socket) Close() error { return nil }

// SetReadBuffer is only implemented on Linux.
func (*Socket) SetReadBuffer(int) error { return errNoPoller }

// Poller is only implemented on Linux.
type Poller struct{}

// Registration is only implemented on Linux.
type Registration struct{}

// NewPoller is only implemented on Linux.
func NewPoller(time.Duration, time.Duration, int) (*Poller, error) { return nil, errNoPoller }

// SlowInterval is only implemented on Linux.
func (*Poller) SlowInterval() time.Duration { return 0 }

// SetOwned is only implemented on Linux.
func (*Registration) SetOwned(bool) {}

// TryDrain is only implemented on Linux.
func (*Registration) TryDrain() {}

// Interval is only implemented on Linux.
func (*Poller) Interval() time.Duration { return 0 }

// Add is only implemented on Linux.
func (*Poller) Add(*Socket, PacketFunc) (*Registration, error) { return nil, errNoPoller }

// AddEvery is only implemented on Linux.
func (*Poller) AddEvery(*Socket, PacketFunc, time.Duration) (*Registration, error) {
	return nil, errNoPoller
}

// Close is only implemented on Linux.
func (*Poller) Close() {}

// Drain is only implemented on Linux.
func (*Registration) Drain() {}

// Remove is only implemented on Linux.
func (*Registration) Remove() {}

// Tick is only implemented on Linux.
type Tick struct{}

// AddRoundFunc is only implemented on Linux.
func (*Poller) AddRoundFunc(func()) func() { return func() {} }

// AddTick is only implemented on Linux.
func (*Poller) AddTick(time.Duration, func()) *Tick { return &Tick{} }

// Remove is only implemented on Linux.
func (*Tick) Remove() {}

// SetPaused is only implemented on Linux.
func (*Tick) SetPaused(bool) {}

// Paused is only implemented on Linux.
func (*Tick) Paused() bool { return false }

// SetLive is only implemented on Linux.
func (*Registration) SetLive(bool) error { return nil }

// Live is only implemented on Linux.
func (*Registration) Live() bool { return false }

// SetRelaxed does nothing off Linux.
func (*Registration) SetRelaxed(time.Duration) {}

// Relaxed is always 0 off Linux.
func (*Registration) Relaxed() time.Duration { return 0 }
