package twilio

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sethvargo/go-retry"

	"github.com/tapedeck/tapedeck/internal/api/restcomm"
	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/webhook"
)

// Recording status callbacks: RecordingStatusCallback, …Event, …Method on
// POST Calls/{CallSid}/Recordings, sent through the durable webhook sender
// with Twilio's parameters and signed as Twilio signs (X-Twilio-Signature).

// NamePrefix starts the catalog name of every recording this API starts
// (twilio/CALLSID/…), the only ones that keep a status callback.
const NamePrefix = "twilio/"

// CallbackKind is the webhook kind of a recording status callback.
const CallbackKind = "RecordingStatusCallback"

// SignatureHeader is Twilio's request signature header.
const SignatureHeader = "X-Twilio-Signature"

// Signature is Twilio's signature of a request: base64 HMAC-SHA1, keyed
// by the account's auth token, of the URL followed by each POST parameter's
// name and value, sorted by name (a name's values sorted too).
func Signature(authToken, rawURL string, params url.Values) string {
	var b strings.Builder
	b.WriteString(rawURL)
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vs := append([]string(nil), params[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Signer signs recording status callbacks with the token of the account
// they name (their AccountSid parameter), at each attempt: a token
// changed meanwhile signs with the new one, as Twilio does. A POST is
// signed over its URL and its parameters; a GET (its parameters in its
// query) over its URL alone, query included, as Twilio signs GETs.
func Signer(m meta.Store) webhook.Signer {
	return func(ctx context.Context, it meta.OutboxItem, req *http.Request) error {
		var form, signed url.Values
		var err error
		if it.IsGET() {
			form = req.URL.Query()
		} else if form, err = url.ParseQuery(string(it.Body)); err != nil {
			return err
		} else {
			signed = form
		}
		acc, err := m.Account(ctx, form.Get("AccountSid"))
		if err != nil {
			return err
		}
		req.Header.Set(SignatureHeader, Signature(acc.AuthToken, it.URL, signed))
		return nil
	}
}

// SetWebhook gives the API the sender of its status callbacks (before it
// serves); without one a RecordingStatusCallback is refused.
func (s *Server) SetWebhook(w *webhook.Sender) { s.o.Webhook = w }

// callbackEvents are the events a callback may ask for.
// degraded is tapedeck's (Twilio has no such event): the recording's packet
// loss passed recording.degraded_loss_percent.
var callbackEvents = map[string]bool{"in-progress": true, "completed": true, "absent": true, "failed": true, "paused": true, "resumed": true,
	"degraded": true}

// callback is where a recording's status goes.
type callback struct {
	url    string
	method string // POST or GET (the parameters in the query string)
	events map[string]bool
	base   string // media URL base
}

// stored is the callback as the catalog keeps it (meta.StatusCallback).
func (cb *callback) stored(track string) meta.StatusCallback {
	out := meta.StatusCallback{URL: cb.url, Method: cb.method, Base: cb.base, Track: track}
	for e := range cb.events {
		out.Events = append(out.Events, e)
	}
	sort.Strings(out.Events)
	return out
}

// keepFor bounds how long a recording's start waits for a busy catalog to
// keep its callback (keepCallback).
const keepFor = 5 * time.Second

// started keeps the callback of a recording whose row the catalog has
// (keepCallback), with its in-progress callback (when asked for) queued
// in the same transaction, before the API answers: what it answers for is
// then in the catalog, not only in this node's memory. Only when the
// catalog could not keep it (refused, or busy for keepFor) is the
// in-progress callback handed to the sender (Notify), which keeps it in
// memory until the catalog takes it, as before.
func (s *Server) started(ctx context.Context, lr *liveRec, rec meta.Recording) {
	var notes []meta.OutboxItem
	if n, ok := s.notification(lr, "in-progress", rec); ok && s.o.Webhook != nil {
		it, err := s.o.Webhook.Prepare(ctx, n)
		if err == nil {
			notes = append(notes, it)
		}
	}
	// Kept before the sid is known to finished: it then knows whether the
	// catalog queues the final status with the row.
	kept := s.keepCallback(ctx, lr, rec.Sid, notes...)
	s.mu.Lock()
	lr.sid, lr.kept = rec.Sid, kept
	s.mu.Unlock()
	if kept && len(notes) > 0 {
		s.o.Webhook.Wake()
		return
	}
	if len(notes) > 0 {
		s.hold(lr, rec.Sid)
	}
	s.notify(lr, "in-progress", rec)
}

// hold notes that a callback of the recording sid went to the sender's
// memory (Notify) instead of the outbox: its later callbacks go there too,
// behind it (Notify keeps them in order), and its final one is then not
// queued with its final row (FinalNotices) but sent by finished, so that
// none passes the one held.
func (s *Server) hold(lr *liveRec, sid string) {
	s.mu.Lock()
	lr.held = true
	s.held[sid] = true
	s.mu.Unlock()
}

// noteLive queues a live recording's paused, resumed or degraded callback
// (when asked for) in the transaction that writes its row's status st
// (and quality q, when not nil: meta.StatusCallbacks.NoteLive), before the
// API answers; a busy catalog is tried again for keepFor. A recording
// whose final row is written meanwhile gets none: its terminal callback is
// queued, and nothing follows it. Only when the catalog could not take it
// (refused, or busy for keepFor), or an earlier callback of the recording
// is held in memory, is it handed to the sender (Notify), which keeps it in
// memory, in order, until the catalog takes it.
func (s *Server) noteLive(ctx context.Context, lr *liveRec, event string, st meta.Status, q *meta.Quality, rec meta.Recording) {
	n, ok := s.notification(lr, event, rec)
	if !ok || s.o.Webhook == nil {
		return
	}
	s.mu.Lock()
	held := lr.held
	s.mu.Unlock()
	sc, isSC := s.o.Catalog.Meta.(meta.StatusCallbacks)
	if held || !isSC {
		s.notify(lr, event, rec)
		return
	}
	it, err := s.o.Webhook.Prepare(ctx, n)
	if err != nil {
		s.log.Error("twilio: a recording's status callback cannot be sent", "sid", rec.Sid, "event", event, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keepFor)
	defer cancel()
	err = whileBusy(ctx, func(ctx context.Context) error { return sc.NoteLive(ctx, lr.name, st, q, it) })
	if err == nil {
		s.o.Webhook.Wake()
		return
	}
	if errors.Is(err, meta.ErrNotFound) {
		// Final already: its terminal callback is queued; a paused or
		// degraded one after it would tell the client a falsehood.
		s.log.Info("twilio: recording ended before its status callback was queued; none sent", "sid", rec.Sid, "event", event)
		return
	}
	s.log.Error("twilio: recording status callback not queued with its row; sent from this node's memory, and none if this node is lost",
		"sid", rec.Sid, "event", event, "err", err)
	s.hold(lr, rec.Sid)
	s.notify(lr, event, rec)
}

// whileBusy calls f until it succeeds, fails with an error that is not
// transient (meta.Transient: a busy catalog), or ctx ends, waiting 10 ms
// between the first tries and twice as long after each, 500 ms at most.
// It returns f's last error (ctx's only where f was never called).
func whileBusy(ctx context.Context, f func(context.Context) error) error {
	var last error
	err := retry.Do(ctx, retry.WithCappedDuration(500*time.Millisecond, retry.NewExponential(10*time.Millisecond)),
		func(ctx context.Context) error {
			last = f(ctx)
			if meta.Transient(last) {
				return retry.RetryableError(last)
			}
			return last
		})
	if err != nil && last != nil {
		return last
	}
	return err
}

// keepCallback keeps a recording's callback with its catalog row, so that
// its final status is queued with its final row (FinalNotices), by this
// node or, if this node is lost, by the node that settles the recording
// (a cluster's catalog.settleLost), and queues notes (its in-progress
// callback) in the same transaction. A catalog that is busy (a transient
// error) is tried again for keepFor at most. It reports whether it was
// kept. Failing to keep it is logged: the recording goes on, and this
// node sends its statuses itself (started, finished).
func (s *Server) keepCallback(ctx context.Context, lr *liveRec, sid string, notes ...meta.OutboxItem) bool {
	sc, ok := s.o.Catalog.Meta.(meta.StatusCallbacks)
	if lr.callback == nil || !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, keepFor)
	defer cancel()
	err := whileBusy(ctx, func(ctx context.Context) error {
		return sc.SetStatusCallback(ctx, sid, lr.callback.stored(lr.track), notes...)
	})
	if err != nil {
		s.log.Error("twilio: recording status callback not kept in the catalog; sent from this node's memory, and none if this node is lost", "sid", sid, "err", err)
		return false
	}
	return true
}

// LostNotices is FinalNotices for a recording that another node made and
// this one is settling because that node was lost (the catalog's
// LostNotices): it gets failed (or completed, when this node recovered
// the file from a shared directory), as the recording's own node would
// have sent it. The catalog queues it in the transaction that settles the
// row (meta.NodeLiveness.SettleLost), which clears the kept callback with
// it: should the lost node come back and finish the recording, its final
// row replaces the settled one but its end is not sent again (finished
// finds no callback kept), so the client gets exactly one terminal
// callback.
func (s *Server) LostNotices(ctx context.Context, row meta.Recording) ([]meta.OutboxItem, error) {
	return s.FinalNotices(ctx, row)
}

// FinalNotices makes the outbox row of the final status of a recording
// (the catalog's FinalNotices and LostNotices), from the callback kept
// with its row (keepCallback): completed, absent or failed. The catalog
// queues it in the transaction that writes the final row
// (meta.FinalRows, meta.NodeLiveness.SettleLost), so it is queued once,
// with the row, or not at all and again at the next try; a node killed
// before it has its row settled, and the callback queued, by its restart
// or by the node that finds it lost. A callback that cannot be read is an
// error (the row waits for the next try); one that can never be sent (no
// webhooks here, a target the allow-list now refuses) is logged and left
// out.
func (s *Server) FinalNotices(ctx context.Context, row meta.Recording) ([]meta.OutboxItem, error) {
	sc, ok := s.o.Catalog.Meta.(meta.StatusCallbacks)
	if !ok || row.Sid == "" || row.Status.Live() || !strings.HasPrefix(row.Name, NamePrefix) {
		// Only this API's recordings keep a callback: the end of any
		// other costs no look-up.
		return nil, nil
	}
	s.mu.Lock()
	held := s.held[row.Sid]
	s.mu.Unlock()
	if held {
		// An earlier callback is in this node's memory: the final one is
		// sent behind it (finished), not queued before it.
		return nil, nil
	}
	kept, has, err := sc.StatusCallback(ctx, row.Sid)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, nil // a row written final at once: none kept
	}
	if err != nil {
		return nil, fmt.Errorf("recording %s: its status callback: %w", row.Sid, err)
	}
	if !has {
		return nil, nil
	}
	if s.o.Webhook == nil {
		s.log.Error("twilio: a recording has a status callback but this node sends no webhooks", "sid", row.Sid, "url", kept.URL)
		return nil, nil
	}
	cb := &callback{url: kept.URL, method: kept.Method, events: map[string]bool{}, base: kept.Base}
	if cb.method == "" {
		cb.method = "POST"
	}
	if cb.base == "" {
		cb.base = strings.TrimSuffix(s.o.PublicURL, "/")
	}
	for _, e := range kept.Events {
		cb.events[e] = true
	}
	lr := &liveRec{sid: row.Sid, name: row.Name, callSid: row.CallSid, accountSid: row.AccountSid, track: kept.Track,
		channels: max(row.Channels, 1), callback: cb}
	n, ok := s.notification(lr, finalEvent(row.Status), row)
	if !ok {
		return nil, nil
	}
	it, err := s.o.Webhook.Prepare(ctx, n)
	if err != nil {
		s.log.Error("twilio: a recording's status callback cannot be sent", "sid", row.Sid, "url", kept.URL, "err", err)
		return nil, nil
	}
	return []meta.OutboxItem{it}, nil
}

// finalEvent is the callback event of a final status.
func finalEvent(st meta.Status) string {
	event := Status(st)
	if event != "absent" && event != "failed" {
		event = "completed"
	}
	return event
}

// parseCallback reads RecordingStatusCallback, …Event and …Method.
func (s *Server) parseCallback(r *http.Request) (*callback, error) {
	target := r.PostForm.Get("RecordingStatusCallback")
	if target == "" {
		return nil, nil
	}
	method := strings.ToUpper(r.PostForm.Get("RecordingStatusCallbackMethod"))
	switch method {
	case "", "POST":
		method = "POST"
	case "GET":
	default:
		return nil, fail(400, CodeInvalidParameter, "RecordingStatusCallbackMethod must be GET or POST, got %q", method)
	}
	if s.o.Webhook == nil {
		return nil, fail(400, CodeInvalidParameter, "RecordingStatusCallback: this server sends no webhooks")
	}
	if err := s.o.Webhook.CheckTarget(r.Context(), target); err != nil {
		return nil, fail(400, CodeInvalidParameter, "RecordingStatusCallback: %s", strings.TrimPrefix(err.Error(), webhook.ErrTarget.Error()+": "))
	}
	cb := &callback{url: target, method: method, events: map[string]bool{}, base: restcomm.BaseURL(r, s.o.PublicURL)}
	for _, v := range r.PostForm["RecordingStatusCallbackEvent"] {
		for _, e := range strings.FieldsFunc(v, func(c rune) bool { return c == ' ' || c == ',' }) {
			if !callbackEvents[e] {
				return nil, fail(400, 13621, "Invalid RecordingStatusCallbackEvent %q", e)
			}
			cb.events[e] = true
		}
	}
	if len(cb.events) == 0 {
		cb.events["completed"] = true // Twilio's default
	}
	return cb, nil
}

// notify sends a recording's status to its callback, when it asked for
// the event.
func (s *Server) notify(lr *liveRec, event string, rec meta.Recording) {
	n, ok := s.notification(lr, event, rec)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A catalog too slow for the deadline does not lose it: the sender
	// keeps it and retries (Notify).
	if err := s.o.Webhook.Notify(ctx, n); err != nil {
		s.log.Error("twilio: recording status callback not queued", "sid", rec.Sid, "event", event, "err", err)
	}
}

// notification is a recording's status for its callback; false when it
// did not ask for the event (paused and resumed are sent with
// RecordingStatus paused and in-progress).
func (s *Server) notification(lr *liveRec, event string, rec meta.Recording) (webhook.Notification, bool) {
	cb := lr.callback
	if cb == nil || !cb.events[event] {
		return webhook.Notification{}, false
	}
	status := event
	if event == "resumed" {
		status = "in-progress"
	}
	start := rec.StartTime
	if start.IsZero() {
		start = rec.DateCreated
	}
	form := url.Values{
		"AccountSid": {rec.AccountSid}, "CallSid": {lr.callSid}, "RecordingSid": {rec.Sid},
		"RecordingUrl":    {cb.base + "/" + APIVersion + "/Accounts/" + rec.AccountSid + "/Recordings/" + rec.Sid},
		"RecordingStatus": {status}, "RecordingChannels": {strconv.Itoa(lr.channels)},
		"RecordingStartTime": {start.UTC().Format(dateLayout)}, "RecordingSource": {"StartCallRecordingAPI"},
		"RecordingTrack": {lr.track}, "ErrorCode": {"0"},
	}
	switch event {
	case "completed", "absent", "failed":
		form.Set("RecordingDuration", strconv.Itoa(int(rec.Duration+0.5)))
	}
	if event == "absent" {
		form.Set("ErrorCode", strconv.Itoa(catalog.AbsentCode(rec)))
	}
	if event == "degraded" {
		// tapedeck's parameters: how bad it is (the status stays the
		// recording's own).
		form.Set("RecordingStatus", Status(rec.Status))
		form.Set("RecordingDegraded", "true")
		if v := rec.Quality.View(); v != nil {
			form.Set("PacketsExpected", strconv.FormatInt(v.PacketsExpected, 10))
			form.Set("PacketsLost", strconv.FormatInt(v.PacketsLost, 10))
			form.Set("LossPercent", strconv.FormatFloat(v.LossPercent, 'f', -1, 64))
			form.Set("LossSilenceMs", strconv.FormatInt(v.LossSilenceMs, 10))
			form.Set("JitterMs", strconv.FormatFloat(v.JitterMs, 'f', -1, 64))
		}
	}
	return webhook.Notification{Kind: CallbackKind, CallID: lr.callSid, URL: cb.url, Form: form, Method: cb.method,
		Order: OrderKey(rec.Sid)}, true
}

// OrderKey orders a recording's status callbacks (webhook.Notification's
// Order): in-progress, then paused, resumed, degraded as they happened,
// then the terminal one, each delivered (or given up) before the next is
// sent, whichever node sends it.
func OrderKey(sid string) string { return CallbackKind + ":" + sid }

// degraded sends the degraded event (when asked for) with the quality the
// recording has now.
func (s *Server) degraded(lr *liveRec, q *meta.Quality) {
	if lr.callback == nil || !lr.callback.events["degraded"] {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// After its start's in-progress callback (queued before the start
	// answers, and the Sid known then), never before it.
	ok := lr.awaitStart(ctx)
	s.mu.Lock()
	sid := lr.sid
	s.mu.Unlock()
	if !ok || sid == "" {
		s.log.Error("twilio: degraded recording never started in the catalog; no callback", "name", lr.name)
		return
	}
	rec, err := s.o.Catalog.Meta.RecordingByName(ctx, lr.name)
	if err != nil {
		s.log.Error("twilio: degraded recording not found in the catalog; no callback", "name", lr.name, "err", err)
		return
	}
	if !rec.Status.Live() {
		s.log.Info("twilio: recording ended before its degraded callback was queued; none sent", "sid", rec.Sid)
		return
	}
	rec.Quality = q
	s.noteLive(ctx, lr, "degraded", rec.Status, q, rec)
}

// finished sends the final status of a recording once the catalog has it.
// It waits, without polling, for the recording's start to settle (its Sid
// known, its in-progress callback queued: startDone) and then for its
// final row: the row is read once, and again only when the catalog says
// it is done with the recording's end (catalog.Service.AwaitEnd), as when
// the final write failed at the hangup and the catalog's retry wrote it.
// That wait has no time limit of its own: the catalog retries a failed
// final write every reconcile interval until it succeeds or can never
// succeed, and finished waits as long, so that a final status sent from
// this node's memory (a callback not kept with the row, or held) is not
// lost to a retry that comes later than some fixed time. Once it returns
// the final status was sent (or queued with the row by the catalog), or
// an error says why none is: nothing of the recording is held for it.
func (s *Server) finished(lr *liveRec) {
	if lr.callback == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !lr.awaitStart(ctx) {
		s.log.Error("twilio: recording's start never settled; no final status callback", "name", lr.name)
		return
	}
	s.mu.Lock()
	sid, kept := lr.sid, lr.kept
	s.mu.Unlock()
	if sid == "" {
		s.log.Error("twilio: recording never started in the catalog; no final status callback", "name", lr.name)
		return
	}
	defer func() {
		s.mu.Lock()
		delete(s.held, sid)
		s.mu.Unlock()
	}()
	// Asked before the read, so that a final write after it is not missed.
	ended, stop := s.o.Catalog.AwaitEnd(lr.name)
	defer stop()
	for {
		rctx, cancel := context.WithTimeout(context.Background(), readTimeout)
		rec, err := s.o.Catalog.Meta.Recording(rctx, lr.accountSid, sid)
		switch {
		case err == nil && !rec.Status.Live():
			if !(kept && s.queuedWithRow(rctx, sid)) {
				s.notify(lr, finalEvent(rec.Status), rec)
			}
			cancel()
			return
		case ended == nil && err != nil && !errors.Is(err, meta.ErrNotFound):
			cancel()
			s.log.Error("twilio: recording's final row cannot be read; no final status callback", "sid", sid, "err", err)
			return
		case ended == nil:
			cancel()
			// The catalog is done with its end and has no final row: the
			// row was deleted (a canceled recording) or its final write
			// failed in a way no retry mends.
			s.log.Error("twilio: recording has no final row; no final status callback", "sid", sid, "err", err)
			return
		}
		cancel()
		<-ended     // (a read that failed is tried again then too)
		ended = nil // read once more
	}
}

// readTimeout bounds one read of the catalog by finished.
const readTimeout = 30 * time.Second

// queuedWithRow reports whether the final status of the recording sid,
// whose callback this node kept with its row, was queued with its final
// row (FinalNotices): the catalog clears the kept callback when it does
// (meta.FinalRows). A callback still kept (its row was written before it
// was kept, or without FinalNotices) or one that cannot be read is this
// node's to send.
func (s *Server) queuedWithRow(ctx context.Context, sid string) bool {
	sc, ok := s.o.Catalog.Meta.(meta.StatusCallbacks)
	if !ok || s.o.Catalog.FinalNotices == nil {
		return false
	}
	_, has, err := sc.StatusCallback(ctx, sid)
	if err != nil {
		s.log.Error("twilio: recording status callback: was it queued with the row?", "sid", sid, "err", err)
		return false
	}
	return !has
}
