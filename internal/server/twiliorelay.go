package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/tapedeck/tapedeck/internal/api/twilio"
	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/contain"
)

// Twilio's live-call recording control (POST Calls/{CallSid}/Recordings
// and Calls/{CallSid}/Recordings/{Sid}) acts on the node that carries the
// call. A node that does not carry the call asks the others over NATS,
// on {prefix}tapedeck.twilio.{node}, as the ARI relay does: the request
// travels whole (its credentials too: the node that runs it checks them
// against the shared accounts), and the node that has the call answers.
// A CallSid names no node, so every live node is asked; those without the
// call say so and run nothing.

// relayedTwilio is a relayed Twilio request, or its answer.
type relayedTwilio struct {
	CallSid string      `json:"call_sid,omitempty"`
	Method  string      `json:"method,omitempty"`
	Path    string      `json:"path,omitempty"`
	Query   string      `json:"query,omitempty"`
	Host    string      `json:"host,omitempty"`
	Header  http.Header `json:"header,omitempty"`
	Body    []byte      `json:"body,omitempty"`
	// The answer: NotHere says the node does not carry the call.
	NotHere bool `json:"not_here,omitempty"`
	Status  int  `json:"status,omitempty"`
}

// relayedHeaders are the request headers that travel.
var relayedHeaders = []string{"Authorization", "Content-Type", "X-Forwarded-Proto", "X-Twilio-Signature"}

type twilioRelay struct {
	c     *cluster
	tw    http.Handler
	calls interface {
		CallLegs(callSid string) (string, []call.ChannelID)
	}
	log *slog.Logger
	sub *nats.Subscription
}

func twilioSubject(prefix, entity string) string { return prefix + "tapedeck.twilio." + entity }

func startTwilioRelay(c *cluster, tw http.Handler, calls *call.Manager, log *slog.Logger) (*twilioRelay, error) {
	t := &twilioRelay{c: c, tw: tw, calls: calls, log: log}
	sub, err := c.nc.Subscribe(twilioSubject(c.prefix, c.entity), func(m *nats.Msg) { go t.answer(m) })
	if err != nil {
		return nil, err
	}
	t.sub = sub
	return t, nil
}

func (t *twilioRelay) close() {
	if t != nil && t.sub != nil {
		_ = t.sub.Unsubscribe()
	}
}

// liveControlCall returns the CallSid of a live-call recording control
// request (POST .../Calls/{CallSid}/Recordings[/{Sid}]), or "".
func liveControlCall(r *http.Request) string {
	if r.Method != http.MethodPost {
		return ""
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	// 2010-04-01 Accounts {AC} Calls {CA} Recordings[.json] [{Sid}[.json]]
	if len(parts) < 6 || len(parts) > 7 || parts[0] != twilio.APIVersion || parts[1] != "Accounts" || parts[3] != "Calls" ||
		parts[4] == "" || strings.TrimSuffix(parts[5], ".json") != "Recordings" {
		return ""
	}
	return parts[4]
}

// handler serves the Twilio API, relaying live-call control of a call
// this node does not carry to the node that does.
func (t *twilioRelay) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		callSid := liveControlCall(r)
		if callSid == "" {
			t.tw.ServeHTTP(w, r)
			return
		}
		if _, legs := t.calls.CallLegs(callSid); len(legs) > 0 {
			t.tw.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRelayBody+1))
		if err != nil || len(body) > maxRelayBody {
			http.Error(w, "request body too large to relay", http.StatusRequestEntityTooLarge)
			return
		}
		req := relayedTwilio{CallSid: callSid, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host,
			Header: http.Header{}, Body: body}
		for _, h := range relayedHeaders {
			if v := r.Header.Values(h); len(v) > 0 {
				req.Header[h] = v
			}
		}
		if res := t.ask(r.Context(), req); res != nil {
			for k, v := range res.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(res.Status)
			_, _ = w.Write(res.Body)
			return
		}
		// No node carries the call: this node's answer (404).
		r.Body = io.NopCloser(bytes.NewReader(body))
		t.tw.ServeHTTP(w, r)
	})
}

// ask sends req to every live node and returns the answer of the one
// carrying the call, or nil.
func (t *twilioRelay) ask(ctx context.Context, req relayedTwilio) *relayedTwilio {
	data, err := json.Marshal(req)
	if err != nil {
		return nil
	}
	peers := t.c.livePeers()
	answers := make(chan *relayedTwilio, len(peers))
	var wg sync.WaitGroup
	for _, e := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, relayTimeout)
			defer cancel()
			msg, err := t.c.nc.RequestWithContext(rctx, twilioSubject(t.c.prefix, e), data)
			if err != nil {
				t.log.Debug("twilio: a node did not answer a relayed request", "node", e, "err", err)
				return
			}
			var res relayedTwilio
			if json.Unmarshal(msg.Data, &res) != nil || res.NotHere || res.Status == 0 {
				return
			}
			answers <- &res
		}()
	}
	go func() {
		wg.Wait()
		close(answers)
	}()
	for res := range answers {
		return res // the node carrying the call (one node does)
	}
	return nil
}

// answer runs another node's relayed request when this node carries the
// call.
func (t *twilioRelay) answer(m *nats.Msg) {
	reply := func(res relayedTwilio) {
		b, _ := json.Marshal(res)
		_ = m.Respond(b)
	}
	defer contain.Recover(t.log, "cluster twilio request", func() { reply(relayedTwilio{Status: 500}) })
	var req relayedTwilio
	if err := json.Unmarshal(m.Data, &req); err != nil || req.CallSid == "" {
		reply(relayedTwilio{NotHere: true})
		return
	}
	if _, legs := t.calls.CallLegs(req.CallSid); len(legs) == 0 {
		reply(relayedTwilio{NotHere: true})
		return
	}
	u := req.Path
	if req.Query != "" {
		u += "?" + req.Query
	}
	ctx, cancel := context.WithTimeout(context.Background(), relayTimeout)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, req.Method, u, bytes.NewReader(req.Body))
	if err != nil || liveControlCall(r) != req.CallSid {
		reply(relayedTwilio{NotHere: true})
		return
	}
	r.Host = req.Host
	r.RemoteAddr = "nats:" + m.Subject
	for k, v := range req.Header {
		r.Header[k] = v
	}
	rec := &relayRecorder{header: http.Header{}, status: 200}
	t.tw.ServeHTTP(rec, r)
	reply(relayedTwilio{Status: rec.status, Header: rec.header, Body: rec.body.Bytes()})
}
