package e2e

// A node joining a running cluster behind Kamailio takes calls within
// seconds: the dispatcher's OPTIONS probing marks it up.

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

// TestKamailioNodeJoins: Kamailio's dispatcher set lists nodes A and B
// while B is down (its address never answers): once the probes have marked
// B inactive, every call lands on A and none is tried on B. B then starts on its
// listed address and, within a few seconds (the probe interval of
// packaging/kamailio/kamailio.cfg), new calls land on B too.
func TestKamailioNodeJoins(t *testing.T) {
	route := withRoute("2001", "Record(calls/${UNIQUEID},wav)")
	a := startNode(t, route)
	bAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreeSIPPort(t))
	kam := startKamailio(t, a.srv.SIPAddr(), bAddr)
	phone := newPhone(t, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	var b *node
	nodes := func() []*node {
		if b == nil {
			return []*node{a}
		}
		return []*node{a, b}
	}
	// place dials 2001 through Kamailio, finds the node whose channel
	// count rose, hangs up and waits for the channel to go.
	place := func() *node {
		t.Helper()
		base := map[*node]int{}
		for _, n := range nodes() {
			base[n] = channelCount(t, n)
		}
		call, err := phone.Dial(ctx, sipua.Target("2001", kam), sipua.CallOptions{})
		if err != nil {
			t.Fatalf("call through kamailio: %v", err)
		}
		var on *node
		pollFor(t, 5*time.Second, func() bool {
			for _, n := range nodes() {
				if channelCount(t, n) > base[n] {
					on = n
					return true
				}
			}
			return false
		}, "the call's channel on a node")
		must(t, call.Hangup(ctx))
		pollFor(t, 5*time.Second, func() bool { return channelCount(t, on) == base[on] }, "the call's channel gone")
		return on
	}

	// B is down: its address is a socket that reads and never answers (a
	// hung host). Kamailio's probes reach it and time out, which marks B
	// inactive: then calls land on A without even being tried on B. (A call
	// tried on B first times out and fails over to A, marking B down too.)
	hole, err := net.ListenPacket("udp", bAddr)
	if err != nil {
		t.Fatal(err)
	}
	var options, invites atomic.Int64
	go func() {
		buf := make([]byte, 8192)
		for {
			n, _, err := hole.ReadFrom(buf)
			if err != nil {
				return
			}
			switch {
			case strings.HasPrefix(string(buf[:n]), "OPTIONS "):
				options.Add(1)
			case strings.HasPrefix(string(buf[:n]), "INVITE "):
				invites.Add(1)
			}
		}
	}()
	pollFor(t, 10*time.Second, func() bool { return options.Load() > 0 }, "Kamailio probing the down node B")
	quiet := 0
	downDeadline := time.Now().Add(30 * time.Second)
	for quiet < 4 {
		before := invites.Load()
		if n := place(); n != a {
			t.Fatal("a call while B is down landed elsewhere than A")
		}
		if invites.Load() == before {
			quiet++
		} else {
			quiet = 0
		}
		if time.Now().After(downDeadline) {
			t.Fatalf("Kamailio still sends INVITEs to the down node B after 30 s (%d INVITEs)", invites.Load())
		}
	}
	hole.Close()

	// B joins on its listed address: only a successful probe can make
	// Kamailio send it calls again.
	b = startNode(t, route, func(c *config.Config) { c.SIP.Listen = bAddr })
	if b.srv.SIPAddr() != bAddr {
		t.Fatalf("B listens on %s, want %s", b.srv.SIPAddr(), bAddr)
	}
	joined := time.Now()
	deadline := joined.Add(10 * time.Second)
	var tookAfter time.Duration
	for calls := 0; ; calls++ {
		if place() == b {
			tookAfter = time.Since(joined)
			t.Logf("B took its first call %.1f s after it started (%d calls went to A before)", tookAfter.Seconds(), calls)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no call landed on B within 10 s of its start (%d calls, all on A)", calls+1)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// And from now on the calls are spread over both.
	landed := map[*node]int{}
	for range 4 {
		landed[place()]++
	}
	if landed[a] == 0 || landed[b] == 0 {
		t.Errorf("after B joined: %d calls on A, %d on B, want both", landed[a], landed[b])
	}
}
