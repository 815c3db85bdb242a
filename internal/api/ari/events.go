package ari

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/tapedeck/tapedeck/internal/event"
)

func (s *Server) eventsResource() *Resource {
	return &Resource{
		Name:        "events",
		Description: "WebSocket resource",
		Ops: []Op{
			{Method: "GET", Path: "/events", Nickname: "eventWebsocket", Summary: "WebSocket connection for events.", Returns: "Message", Upgrade: true,
				Params: []Param{
					{Name: "app", In: "query", Type: "string", Required: true, Multi: true, Description: "Applications to subscribe to."},
					{Name: "subscribeAll", In: "query", Type: "boolean", Description: "Subscribe to all Asterisk events. If provided, the applications listed will be subscribed to all events, effectively disabling the application specific subscriptions. Default is 'false'."},
				}},
		},
	}
}

// serveEvents upgrades /ari/events to a WebSocket and streams the events of
// the listed applications.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var apps []string
	for _, a := range strings.Split(q.Get("app"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			apps = append(apps, a)
		}
	}
	if len(apps) == 0 {
		writeError(w, apiErr(http.StatusBadRequest, "Missing parameter app"))
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && !s.wsOriginAllowed(r, origin) {
		// A browser page of another site must not drive ARI with the
		// credentials the browser holds for this host (cross-site
		// WebSocket hijacking). Programs (ari-client, Go clients) send
		// no Origin and are not affected.
		s.log.Warn("ARI WebSocket refused: Origin not allowed", "origin", origin, "remote", r.RemoteAddr)
		writeError(w, apiErr(http.StatusForbidden, "Origin not allowed; add it to ari.allowed_origins"))
		return
	}
	all, _ := parseBool(q.Get("subscribeAll"))
	// As in Asterisk, the applications are registered before the 101
	// response, so a call arriving right after the handshake finds them.
	// Several applications on one socket share one queue (the sink), so
	// that their events keep the order they were published in.
	subs := make([]*event.Subscriber, 0, len(apps))
	var sink *event.Subscriber
	if len(apps) > 1 {
		sink = event.NewSubscriber("", s.opts.EventQueue, false)
	}
	for _, app := range apps {
		sub := event.NewSubscriber(app, s.opts.EventQueue, all)
		if sink != nil {
			sub.ShareQueue(sink)
		}
		s.bus.Register(sub, s.replacedMessage)
		subs = append(subs, sub)
	}
	readers := subs
	if sink != nil {
		readers = []*event.Subscriber{sink}
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:       []string{"ari"},
		InsecureSkipVerify: true, // the Origin was checked above, against ari.allowed_origins
	})
	if err != nil {
		s.log.Debug("websocket upgrade failed", "err", err)
		for _, sub := range subs {
			sub.Close(nil)
			s.bus.Unregister(sub)
		}
		return
	}
	conn.SetReadLimit(1 << 20)
	promWSClients.Inc()
	defer promWSClients.Dec()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()

	var writeMu sync.Mutex
	write := func(msg []byte) error {
		writeMu.Lock()
		defer writeMu.Unlock()
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		return conn.Write(wctx, websocket.MessageText, msg)
	}

	s.log.Info("ARI application connected", "apps", strings.Join(apps, ","), "remote", r.RemoteAddr, "user", basicUser(r))

	closeCode, closeReason := websocket.StatusNormalClosure, ""
	var once sync.Once
	finish := func(code websocket.StatusCode, reason string) {
		once.Do(func() {
			closeCode, closeReason = code, reason
			cancel()
		})
	}
	go func() {
		select {
		case <-s.done:
			finish(websocket.StatusGoingAway, "server shutting down")
		case <-ctx.Done():
		}
	}()
	var wg sync.WaitGroup
	watched := subs
	if sink != nil {
		watched = append(watched[:len(watched):len(watched)], sink)
	}
	for _, sub := range watched {
		// A dropped subscriber ends the socket at once, even while a write
		// to a client that stopped reading is blocked.
		go func() {
			select {
			case <-sub.Dropped():
			case <-ctx.Done():
				return
			}
			switch reason := sub.Reason(); {
			case errors.Is(reason, event.ErrOverflow):
				s.log.Warn("ARI client too slow: event queue overflowed, disconnecting", "apps", strings.Join(apps, ","), "remote", r.RemoteAddr)
				finish(websocket.StatusPolicyViolation, "event queue overflow")
			case errors.Is(reason, event.ErrReplaced) && len(subs) == 1:
				finish(websocket.StatusNormalClosure, "application replaced")
			}
		}()
	}
	for _, sub := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				msgs := sub.Next(ctx.Done())
				if msgs == nil {
					break
				}
				for _, m := range msgs {
					if err := write(m); err != nil {
						finish(websocket.StatusGoingAway, "write failed")
						return
					}
				}
			}
		}()
	}
	// Read to process pings and close frames; messages are ignored. The
	// reader has its own context: cancelling a Read closes the connection
	// without our close reason.
	readCtx, readCancel := context.WithCancel(context.Background())
	defer readCancel()
	go func() {
		for {
			if _, _, err := conn.Read(readCtx); err != nil {
				finish(websocket.StatusNormalClosure, "")
				return
			}
		}
	}()
	<-ctx.Done()
	for _, sub := range subs {
		sub.Close(nil)
		s.bus.Unregister(sub)
	}
	if sink != nil {
		sink.Close(nil)
	}
	wg.Wait()
	s.log.Info("ARI application disconnected", "apps", strings.Join(apps, ","), "remote", r.RemoteAddr, "reason", closeReason)
	writeMu.Lock()
	_ = conn.Close(closeCode, closeReason)
	writeMu.Unlock()
}

func (s *Server) replacedMessage(app string) []byte {
	b, _ := json.Marshal(event.Base{Type: "ApplicationReplaced", Timestamp: event.Time(time.Now()), AsteriskID: s.bus.EntityID(), Application: app})
	return b
}

// wsOriginAllowed reports whether an Origin may open the events
// WebSocket: one a browser cannot have sent (below), the page's own host
// (the same origin), or an origin listed in ari.allowed_origins ("*"
// allows all).
func (s *Server) wsOriginAllowed(r *http.Request, origin string) bool {
	if OriginAllowed(s.opts.AllowedOrigins, origin) {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if u.Scheme != "" && u.Host != "" && (u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil) {
		// Not an origin as browsers serialize it ("null" or
		// scheme://host[:port], RFC 6454 section 6.2), so not a page
		// holding the browser's credentials: a program's own header, like
		// the "http://localhost/" CyCoreSystems/ari's native client sends
		// by default (golang.org/x/net/websocket needs one). Asterisk
		// takes those; refusing them only turned such programs away.
		return true
	}
	return u.Host != "" && strings.EqualFold(u.Host, r.Host)
}
