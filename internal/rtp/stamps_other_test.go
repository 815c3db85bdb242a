//go:build !linux

package rtp

import "testing"

// awaitArrivalStamps has nothing to wait for where receive timestamps are
// not switched on system-wide on first use (Linux's deferred static key).
func awaitArrivalStamps(t *testing.T) { t.Helper() }
