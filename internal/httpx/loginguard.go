package httpx

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Failed logins from one address: past LoginMaxFailures within
// LoginFailWindow, the address is refused (429) until the window ends.
const (
	LoginMaxFailures = 10
	LoginFailWindow  = time.Minute
	loginMaxTracked  = 10000 // addresses remembered at most (oldest windows dropped first)
)

// LoginGuard counts failed logins per source address, for the sign-in
// forms and token endpoints that must slow down a password guesser. The
// zero value is ready to use.
type LoginGuard struct {
	mu   sync.Mutex
	byIP map[string]*loginFailures
}

type loginFailures struct {
	n     int
	since time.Time
}

// SourceIP is the request's remote address without its port.
func SourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Blocked reports whether ip is refused now, and for how long.
func (g *LoginGuard) Blocked(ip string, now time.Time) (time.Duration, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.byIP[ip]
	if f == nil || now.Sub(f.since) >= LoginFailWindow {
		return 0, false
	}
	if f.n >= LoginMaxFailures {
		return LoginFailWindow - now.Sub(f.since), true
	}
	return 0, false
}

// Fail counts a failed login from ip.
func (g *LoginGuard) Fail(ip string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.byIP == nil {
		g.byIP = map[string]*loginFailures{}
	}
	f := g.byIP[ip]
	if f == nil || now.Sub(f.since) >= LoginFailWindow {
		if len(g.byIP) >= loginMaxTracked {
			for k, v := range g.byIP {
				if now.Sub(v.since) >= LoginFailWindow || len(g.byIP) >= loginMaxTracked {
					delete(g.byIP, k)
				}
				if len(g.byIP) < loginMaxTracked/2 {
					break
				}
			}
		}
		f = &loginFailures{since: now}
		g.byIP[ip] = f
	}
	f.n++
}
