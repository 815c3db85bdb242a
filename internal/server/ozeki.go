package server

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/tapedeck/tapedeck/internal/api/ozeki"
	"github.com/tapedeck/tapedeck/internal/api/twilio"
	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/netguard"
	"github.com/tapedeck/tapedeck/internal/speech"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/webhook"
)

// ozekiParts are the command API, its own listener and the webhook sender.
type ozekiParts struct {
	api    *ozeki.API
	sender *webhook.Sender
	srv    *http.Server
	l      net.Listener
}

// newOzeki builds the webhook sender, speech and the command API, and
// mounts /api on mux.
func (s *Server) newOzeki(mux *http.ServeMux, ms meta.Store, synth *speech.Synth) error {
	cfg := s.cfg
	ob, ok := ms.(meta.Outbox)
	if !ok {
		return errors.New("the catalog database has no webhook outbox")
	}
	allow, err := netguard.Parse(cfg.Webhook.Allow)
	if err != nil {
		return fmt.Errorf("webhook.allow: %w", err)
	}
	w := cfg.Webhook
	w.WebhookDefaults()
	o := &ozekiParts{}
	s.ozeki = o
	o.sender = webhook.New(webhook.Options{
		Outbox: ob, Node: cfg.NodeID, Allow: allow, Secret: []byte(w.Secret),
		Timeout: time.Duration(w.TimeoutSeconds) * time.Second, MaxAttempts: w.MaxAttempts,
		Backoff: time.Duration(w.BackoffSeconds) * time.Second, Workers: w.Workers, Log: s.log,
		NodeDeadAfter: time.Duration(w.NodeDeadSeconds) * time.Second,
		OnReply:       func(r webhook.Reply) { o.api.OnReply(r) },
		// Twilio's recording status callbacks carry Twilio's signature.
		Signers: map[string]webhook.Signer{twilio.CallbackKind: twilio.Signer(ms)},
	})
	key := []byte(cfg.Catalog.SignKey)
	if len(key) == 0 {
		key = make([]byte, 32)
		rand.Read(key)
	}
	o.api = ozeki.New(ozeki.Options{
		Calls: s.calls, Users: cfg.Ozeki.Users, RecordPaths: cfg.Ozeki.RecordPaths, Folder: cfg.OzekiFolder(),
		Webhook: o.sender, Speech: synth, SignKey: key, Log: s.log, Catalog: s.catalog,
		RecordURLTTL:     time.Duration(cfg.Ozeki.RecordURLTTLSeconds) * time.Second,
		ScriptTimeout:    time.Duration(cfg.Ozeki.ScriptTimeoutSeconds) * time.Second,
		ScriptFailureURL: cfg.Ozeki.ScriptFailureURL,
		BaseURL:          func() string { return ozekiBaseURL(cfg, o.l, s.hl) },
	})
	ozeki.SetScriptRunner(o.api)
	mux.Handle("/api", o.api)
	mux.Handle("/api/", o.api)
	if cfg.Ozeki.Listen != "" {
		own := http.NewServeMux()
		own.Handle("/", o.api) // Ozeki also serves the API at /?command=...
		o.srv = &http.Server{Handler: own, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: MaxHTTPHeaderBytes, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	}
	return nil
}

// speechSynth is the Speak synthesiser, caching under the data dir.
func speechSynth(dataDir string) *speech.Synth {
	return speech.New(filepath.Join(dataDir, "cache", "speech"))
}

// startOzeki starts the sender and the API's own listener.
func (s *Server) startOzeki() error {
	o := s.ozeki
	o.sender.Start()
	if o.srv == nil {
		return nil
	}
	l, err := net.Listen("tcp", s.cfg.Ozeki.Listen)
	if err != nil {
		return fmt.Errorf("ozeki listen: %w", err)
	}
	o.l = l
	go func() {
		if err := o.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("ozeki command API stopped", "err", err)
		}
	}()
	s.log.Info("ozeki command API listening", "addr", l.Addr().String())
	return nil
}

// OzekiAddr is the command API's own listener (empty when not configured).
func (s *Server) OzekiAddr() string {
	if s.ozeki == nil || s.ozeki.l == nil {
		return ""
	}
	return s.ozeki.l.Addr().String()
}

// closeOzeki waits for the notifications of the calls just hung up to be
// queued, then stops the sender (what is queued stays in the outbox).
func (s *Server) closeOzeki() {
	o := s.ozeki
	if o == nil {
		return
	}
	if o.srv != nil {
		o.srv.Close()
	}
	o.api.Wait(5 * time.Second)
	o.sender.Close()
}

// ozekiBaseURL is the base of the RecordURLs the command API hands out:
// ozeki.public_url; else http.public_url when the API is served on the
// HTTP listener (own is nil); else the address of the listener that
// serves it.
func ozekiBaseURL(cfg config.Config, own, httpL net.Listener) string {
	switch {
	case cfg.Ozeki.PublicURL != "":
		return strings.TrimSuffix(cfg.Ozeki.PublicURL, "/")
	case own == nil && cfg.Ozeki.Listen == "" && cfg.HTTP.PublicURL != "":
		return strings.TrimSuffix(cfg.HTTP.PublicURL, "/")
	case own != nil:
		return "http://" + own.Addr().String()
	case cfg.Ozeki.Listen != "":
		// Not bound yet: the start-up's settling of a killed run's
		// recordings queues their RecordCompleted before Start.
		return listenBase(cfg.Ozeki.Listen)
	case httpL != nil:
		return "http://" + httpL.Addr().String()
	}
	return listenBase(cfg.HTTP.Listen)
}

// listenBase is the base URL of a listen address that is not bound yet
// ("" for a port chosen when it is bound).
func listenBase(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return ""
	}
	if host == "" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
