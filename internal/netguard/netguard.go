// Package netguard decides which network addresses the server may connect
// to on a user's behalf (media fetched for `sound:http(s)://...`), so that
// an ARI client cannot make the server reach loopback services, the
// server's own APIs or the private network behind it (server-side request
// forgery).
//
// The check runs at connect time, on the address actually dialled after DNS
// resolution: a name that resolves (or re-resolves, DNS rebinding) to a
// refused address is refused, and so is every hop of a redirect, since each
// hop dials anew.
//
// By default public unicast addresses are allowed and everything else is
// refused: loopback, RFC 1918 and IPv6 ULA private ranges, link-local,
// unspecified, multicast and broadcast, CGNAT (100.64.0.0/10) and the other
// special-purpose ranges. A Policy lists exceptions: addresses, networks or
// host names (optionally with a port) that may be reached even so.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	neturl "net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrRefused: the destination is not allowed by the policy.
var ErrRefused = errors.New("netguard: destination not allowed")

// Policy is a parsed allow-list. The zero value and nil allow public
// addresses only.
type Policy struct {
	nets      []netip.Prefix
	addrPorts map[netip.AddrPort]bool
	hosts     map[string]bool // lower-case host names
	hostPorts map[string]bool // lower-case "name:port"
	resolver  *net.Resolver   // nil: net.DefaultResolver
}

// WithResolver returns a copy of p (nil: public addresses only) whose
// dialer and LookupNetIP resolve names with r (nil: net.DefaultResolver).
func (p *Policy) WithResolver(r *net.Resolver) *Policy {
	var c Policy
	if p != nil {
		c = *p
	}
	c.resolver = r
	return &c
}

// LookupNetIP resolves host with the policy's resolver, as its dialer
// does.
func (p *Policy) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r := net.DefaultResolver
	if p != nil && p.resolver != nil {
		r = p.resolver
	}
	return r.LookupNetIP(ctx, network, host)
}

// Parse reads allow-list entries: an IP ("127.0.0.1", "::1"), a network in
// CIDR notation ("10.0.0.0/8", "fd00::/8"), an IP with a port
// ("127.0.0.1:8080", "[::1]:8080"), a host name ("media.example.com": any
// address it resolves to) or a host name with a port.
func Parse(entries []string) (*Policy, error) {
	p := &Policy{addrPorts: map[netip.AddrPort]bool{}, hosts: map[string]bool{}, hostPorts: map[string]bool{}}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			return nil, errors.New("empty entry")
		}
		if pfx, err := netip.ParsePrefix(e); err == nil {
			p.nets = append(p.nets, pfx.Masked())
			continue
		}
		if a, err := netip.ParseAddr(e); err == nil {
			a = a.Unmap()
			p.nets = append(p.nets, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		if ap, err := netip.ParseAddrPort(e); err == nil {
			if ap.Port() == 0 {
				return nil, fmt.Errorf("%q: port 0", e)
			}
			p.addrPorts[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())] = true
			continue
		}
		host, port := e, ""
		if h, pt, err := net.SplitHostPort(e); err == nil {
			host, port = h, pt
			if n, err := strconv.Atoi(pt); err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("%q: bad port", e)
			}
		}
		if !ValidHostName(host) {
			return nil, fmt.Errorf("%q is not an IP address, a CIDR network or a host name", e)
		}
		host = strings.ToLower(strings.TrimSuffix(host, "."))
		if port == "" {
			p.hosts[host] = true
		} else {
			p.hostPorts[host+":"+port] = true
		}
	}
	return p, nil
}

// ValidHostName reports whether h is a syntactically valid DNS name (letters,
// digits, hyphens not at a label's ends, and underscores; a trailing dot
// allowed).
func ValidHostName(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// special are the non-public IPv4 and IPv6 ranges refused by default, on
// top of what netip.Addr's predicates cover.
var special = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
}

// nat64 addresses carry an IPv4 address a gateway connects to; the
// embedded address is checked instead (as for 6to4).
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Public reports whether ip is a public unicast address (allowed without
// an allow-list entry).
func Public(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return false
	}
	if ip.Is6() && nat64.Contains(ip) {
		b := ip.As16()
		return Public(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
	}
	if ip.Is6() && netip.MustParsePrefix("2002::/16").Contains(ip) { // 6to4
		b := ip.As16()
		return Public(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
	}
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || !ip.IsGlobalUnicast() {
		return false
	}
	for _, p := range special {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// Allows reports whether a connection to ip:port, dialled for the URL host
// name host (an IP literal or a name), is allowed.
func (p *Policy) Allows(host string, ip netip.Addr, port uint16) bool {
	ip = ip.Unmap()
	if Public(ip) {
		return true
	}
	if p == nil {
		return false
	}
	for _, n := range p.nets {
		if n.Contains(ip) {
			return true
		}
	}
	if p.addrPorts[netip.AddrPortFrom(ip, port)] {
		return true
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host != "" && net.ParseIP(host) == nil {
		if p.hosts[host] || p.hostPorts[host+":"+strconv.Itoa(int(port))] {
			return true
		}
	}
	return false
}

type hostKey struct{}

// Dialer returns a DialContext function that connects only where p allows,
// checking the resolved address of each connection attempt.
func (p *Policy) Dialer(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if p != nil {
		d.Resolver = p.resolver
	}
	d.ControlContext = func(ctx context.Context, network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", ErrRefused, address)
		}
		host, _ := ctx.Value(hostKey{}).(string)
		if !p.Allows(host, ap.Addr(), ap.Port()) {
			if host != "" && host != ap.Addr().String() {
				return fmt.Errorf("%w: %s resolves to %s, which is not a public address and not in the allow-list", ErrRefused, host, ap)
			}
			return fmt.Errorf("%w: %s is not a public address and not in the allow-list", ErrRefused, ap)
		}
		return nil
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		return d.DialContext(context.WithValue(ctx, hostKey{}, host), network, addr)
	}
}

// MaxRedirects is how many redirects a Client follows.
const MaxRedirects = 5

// Client returns an HTTP client that connects only where p allows (every
// redirect hop included), uses no proxy, follows at most MaxRedirects
// redirects, and refuses URLs carrying credentials or a scheme other than
// http and https, in the first request as in redirects.
func (p *Policy) Client() *http.Client {
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would be the only address checked
		DialContext:           p.Dialer(10 * time.Second),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   16, // a webhook sender's workers share one host
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: &checkURL{next: tr},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > MaxRedirects {
				return fmt.Errorf("%w: more than %d redirects", ErrRefused, MaxRedirects)
			}
			return CheckURL(req.URL)
		},
	}
}

// CheckURL refuses URLs that are not plain http(s) or that carry
// credentials.
func CheckURL(u *neturl.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: scheme %q (only http and https)", ErrRefused, u.Scheme)
	}
	if u.User != nil {
		return fmt.Errorf("%w: URLs with credentials are not fetched", ErrRefused)
	}
	if u.Host == "" {
		return fmt.Errorf("%w: no host", ErrRefused)
	}
	return nil
}

// checkURL runs CheckURL on every request a Client sends.
type checkURL struct{ next http.RoundTripper }

func (c *checkURL) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := CheckURL(r.URL); err != nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, err
	}
	return c.next.RoundTrip(r)
}
