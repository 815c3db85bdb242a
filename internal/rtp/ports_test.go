package rtp

import (
	"net"
	"testing"
)

// TestPortsStartAtRandomPair: allocators over one range (processes sharing
// it, or a restarted server) do not all hand out the bottom pair first: a
// peer of the previous user of that pair may still be sending to it. Each
// first pair is an even port of the range, and the allocator goes on round
// robin from there.
func TestPortsStartAtRandomPair(t *testing.T) {
	const min, max = 48000, 48999
	first := map[int]bool{}
	for range 8 {
		p, err := NewPorts("127.0.0.1", min, max)
		if err != nil {
			t.Fatal(err)
		}
		a, b, err := p.Listen()
		if err != nil {
			t.Fatal(err)
		}
		port := a.LocalAddr().(*net.UDPAddr).Port
		if port < min || port+1 > max || port%2 != 0 || b.LocalAddr().(*net.UDPAddr).Port != port+1 {
			t.Errorf("pair %d/%d is not an even port and the one above it in %d-%d", port, b.LocalAddr().(*net.UDPAddr).Port, min, max)
		}
		c, d, err := p.Listen()
		if err != nil {
			t.Fatal(err)
		}
		if next := c.LocalAddr().(*net.UDPAddr).Port; next != port+2 && !(port+3 > max && next == min) {
			t.Errorf("after %d the allocator handed out %d, want the next pair", port, next)
		}
		for _, s := range []interface{ Close() error }{a, b, c, d} {
			s.Close()
		}
		first[port] = true
	}
	if len(first) == 1 {
		t.Errorf("8 allocators over %d-%d all started at the same pair %v", min, max, first)
	}
}
