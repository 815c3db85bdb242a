package netguard

import (
	"net/netip"
	"testing"
)

func TestPublic(t *testing.T) {
	for _, s := range []string{"8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "64:ff9b::808:808"} {
		if !Public(netip.MustParseAddr(s)) {
			t.Errorf("%s refused, want public", s)
		}
	}
	for _, s := range []string{
		"127.0.0.1", "127.0.0.2", "::1", "0.0.0.0", "::", "10.1.2.3", "172.16.0.1", "192.168.1.1",
		"169.254.169.254", "100.64.0.1", "100.127.255.254", "224.0.0.1", "255.255.255.255", "fd00::1", "fc00::1",
		"fe80::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1",
		"198.18.0.1", "192.0.2.1", "0.1.2.3",
	} {
		if Public(netip.MustParseAddr(s)) {
			t.Errorf("%s allowed, want refused", s)
		}
	}
}

func TestPolicy(t *testing.T) {
	p, err := Parse([]string{"127.0.0.1:8080", "10.0.0.0/8", "::1", "media.example.com", "Intra.Example.com:9000", "192.168.1.7"})
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr
	cases := []struct {
		host string
		ip   string
		port uint16
		want bool
	}{
		{"127.0.0.1", "127.0.0.1", 8080, true},
		{"127.0.0.1", "127.0.0.1", 8088, false}, // another port of the same host
		{"127.0.0.2", "127.0.0.2", 8080, false},
		{"x", "10.200.0.1", 80, true},
		{"::1", "::1", 1, true},
		{"192.168.1.7", "::ffff:192.168.1.7", 80, true},
		{"192.168.1.8", "192.168.1.8", 80, false},
		{"media.example.com", "172.16.0.5", 443, true},
		{"MEDIA.example.com.", "172.16.0.5", 443, true},
		{"evil.example.com", "172.16.0.5", 443, false},
		{"intra.example.com", "172.16.0.5", 9000, true},
		{"intra.example.com", "172.16.0.5", 9001, false},
		{"localhost", "127.0.0.1", 80, false},
		{"anything", "8.8.8.8", 80, true},
	}
	for _, c := range cases {
		if got := p.Allows(c.host, a(c.ip), c.port); got != c.want {
			t.Errorf("Allows(%s, %s, %d) = %v, want %v", c.host, c.ip, c.port, got, c.want)
		}
	}
	var none *Policy
	if none.Allows("localhost", a("127.0.0.1"), 80) || !none.Allows("x", a("8.8.4.4"), 80) {
		t.Error("nil policy: want public only")
	}
	for _, bad := range []string{"", "http://x", "a b", "1.2.3.4:0", "host:99999", "-bad-.com", "10.0.0.0/33"} {
		if _, err := Parse([]string{bad}); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}
