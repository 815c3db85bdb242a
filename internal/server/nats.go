package server

import (
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/tapedeck/tapedeck/internal/event"
	"github.com/tapedeck/tapedeck/internal/rawsock"
)

// natsQueue bounds the events waiting for the NATS connection; beyond it
// events are dropped and counted (the bus never waits for NATS).
const natsQueue = 4096

// natsBridge publishes the node's ARI events on NATS in ari-proxy's
// subject scheme, ari.event.{app}.{node} with the node's asterisk_id, the
// message being the ARI event's JSON as a WebSocket client receives it, so
// that ari-proxy-style tooling can listen to every node.
type natsBridge struct {
	nc      *nats.Conn
	bus     *event.Bus
	node    string
	prefix  string // subjects' prefix, "ari." by default
	q       chan natsMsg
	dropped atomic.Int64
	wg      sync.WaitGroup
	once    sync.Once
}

type natsMsg struct {
	subject string
	data    []byte
}

// startNATS connects to url (reconnecting forever) and taps bus. The first
// connection may fail: the client keeps retrying in the background.
func startNATS(url, prefix, node string, bus *event.Bus, log *slog.Logger) (*natsBridge, error) {
	// NoEcho: the node's own messages (its announcements, its applications'
	// events, its lost-recording notices) do not come back to it; it
	// ignored each of them, at the cost of a read and a handler's wake-up.
	// rawDialer: the connection's reads and writes stay out of the
	// scheduler's syscall state (package rawsock), so a message that finds
	// the node idle does not wake the runtime's monitor.
	nc, err := nats.Connect(url, nats.Name("tapedeck "+node), nats.NoEcho(), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1),
		nats.SetCustomDialer(rawDialer{net.Dialer{Timeout: nats.DefaultTimeout}}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("nats: disconnected", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats: reconnected", "url", c.ConnectedUrl()) }))
	if err != nil {
		return nil, err
	}
	b := &natsBridge{nc: nc, bus: bus, node: subjectToken(node), prefix: prefix, q: make(chan natsMsg, natsQueue)}
	b.wg.Add(1)
	go b.run(log)
	bus.SetTap(b.tap)
	return b, nil
}

// subjectToken makes s one NATS subject token ('.', '*', '>' and spaces
// are separators or wildcards there).
func subjectToken(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, s)
}

func (b *natsBridge) tap(app string, msg []byte) {
	select {
	case b.q <- natsMsg{subject: b.prefix + "event." + subjectToken(app) + "." + b.node, data: msg}:
	default:
		b.dropped.Add(1)
	}
}

func (b *natsBridge) run(log *slog.Logger) {
	defer b.wg.Done()
	for m := range b.q {
		if err := b.nc.Publish(m.subject, m.data); err != nil {
			b.dropped.Add(1)
		}
	}
}

// connected says whether the NATS connection is up.
func (b *natsBridge) connected() bool { return b.nc.Status() == nats.CONNECTED }

// close stops publishing (after what is queued) and closes the connection.
func (b *natsBridge) close() {
	b.once.Do(func() {
		b.bus.SetTap(nil)
		close(b.q)
		b.wg.Wait()
		_ = b.nc.Drain()
	})
}

// rawDialer dials NATS like nats.go's own dialer (its default timeout)
// and wraps the connection in a rawsock.Stream.
type rawDialer struct{ net.Dialer }

func (d rawDialer) Dial(network, addr string) (net.Conn, error) {
	c, err := d.Dialer.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	return rawsock.Stream(c), nil
}
