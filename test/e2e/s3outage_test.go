package e2e

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/testutil/versitygw"
)

// switchProxy forwards a fixed loopback port to an S3 server while up;
// down closes the listener and every connection (connection refused): an
// S3 outage without stopping the shared server.
type switchProxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newSwitchProxy(t *testing.T, target string) *switchProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	p := &switchProxy{t: t, addr: ln.Addr().String(), target: target}
	ln.Close()
	p.up()
	t.Cleanup(p.down)
	return p
}

func (p *switchProxy) up() {
	var ln net.Listener
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for ln, err = net.Listen("tcp", p.addr); err != nil; ln, err = net.Listen("tcp", p.addr) {
		if time.Now().After(deadline) {
			p.t.Fatalf("proxy listen %s: %v", p.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
}

func (p *switchProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestS3OutageRetriedAcrossRestart: an upload that fails because S3 is
// unreachable is retried with back-off and lands once S3 is back; one still
// failing when tapedeck stops is picked up at the next start. The hangup
// never waits for either.
func TestS3OutageRetriedAcrossRestart(t *testing.T) {
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	proxy := newSwitchProxy(t, strings.TrimPrefix(strings.TrimPrefix(gw.Endpoint(), "http://"), "https://"))
	n := startNode(t, func(c *config.Config) {
		c.Catalog.S3 = config.S3{Endpoint: proxy.addr, AccessKey: versitygw.AccessKey,
			SecretKey: versitygw.SecretKey, Bucket: bucket}
	})
	n.srv.Catalog().RetryBase = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	uploaded := func(n *node, name string) func() bool {
		return func() bool {
			row, err := n.srv.Catalog().Meta.RecordingByName(ctx, name)
			return err == nil && strings.HasPrefix(row.FilePath, "blob:") && row.S3URI != ""
		}
	}
	// An outage during the upload: retried until S3 is back.
	proxy.down()
	events := n.connect("test")
	hangupRecorded(t, n, events, "353", "outage/retried")
	row, err := n.srv.Catalog().Meta.RecordingByName(ctx, "outage/retried")
	must(t, err)
	if row.Status != "completed" || strings.HasPrefix(row.FilePath, "blob:") {
		t.Fatalf("during the outage: %+v, want completed on local disk", row)
	}
	pollFor(t, 20*time.Second, func() bool { return n.srv.Catalog().FailedUploads() >= 1 }, "a failed upload attempt")
	proxy.up()
	pollFor(t, 20*time.Second, uploaded(n, "outage/retried"), "the retried upload")
	// The row points at the object first, then the local file goes
	// (catalog upload's finish): a crash between them keeps both.
	retried := filepath.Join(n.recDir(), "outage", "retried.wav")
	pollFor(t, 10*time.Second, func() bool {
		_, err := os.Stat(retried)
		return errors.Is(err, os.ErrNotExist)
	}, "the local file removed after the upload")

	// An outage across a restart: the next start uploads it.
	proxy.down()
	hangupRecorded(t, n, events, "354", "outage/restart")
	n.srv.Close()
	proxy.up() // S3 back before the restart (the server needs its bucket to start)
	cfg := n.cfg
	n2 := startNode(t, func(c *config.Config) { *c = cfg })
	pollFor(t, 20*time.Second, uploaded(n2, "outage/restart"), "the upload left by the previous run")
	row, err = n2.srv.Catalog().Meta.RecordingByName(ctx, "outage/restart")
	must(t, err)
	key := strings.TrimPrefix(row.FilePath, "blob:")
	if ok, err := gw.ObjectExists(ctx, bucket, key); err != nil || !ok {
		t.Fatalf("object %s: exists=%v err=%v", key, ok, err)
	}
}

// hangupRecorded records a call through ARI until the caller hangs up, and
// checks the hangup is not held up by the upload.
func hangupRecorded(t *testing.T, n *node, events *ariEvents, exten, name string) {
	t.Helper()
	phone := newPhone(t, "udp")
	id, call := recordingCall(t, n, events, phone, exten, "name="+urlq(name)+"&format=wav")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(t, call.SendAudio(ctx, sweep(8000/2)))
	waitRx(t, n, id, 25)
	start := time.Now()
	must(t, call.Hangup(ctx))
	events.skipTo("ChannelDestroyed", 5*time.Second)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("hangup took %v during an S3 outage", d)
	}
}
