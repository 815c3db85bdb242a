package ozeki

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/netguard"
	"github.com/tapedeck/tapedeck/internal/webhook"
)

// The dialplan application Script(url) hands a call to a web application:
// tapedeck POSTs Ozeki's IncomingCall notification (NotificationName,
// CallId, Caller, Callee) to url and runs the OzML document it answers.
// UserInput posts the digits to its Url (or the script's) and runs the
// answer in place of the rest of the document. A document that ends
// without hanging up hangs up the call (a script call is never left
// hanging); so does a failure (the document is not OzML, the application
// is unreachable, answers an error or too slowly): logged with the call
// id and hung up with cause 38 (failure).
//
// Script(url, fallback) names a fallback application, as Twilio's
// FallbackUrl: when url's first document cannot be had (unreachable, an
// error status, too slow, not OzML), the same IncomingCall notification,
// with ErrorMessage added, goes to fallback and its document runs. Every
// failure that hangs a call up is also notified: a ScriptFailed
// notification (CallId, Url, Reason) through the webhook sender to
// ozeki.script_failure_url, when configured.

// MaxHandoffs bounds how many documents (UserInput replies) one call runs.
const MaxHandoffs = 50

// scriptAPIs finds the API of the node a call is on (tests run several
// nodes in one process).
var scriptAPIs sync.Map // call.Calls -> *API

// SetScriptRunner makes a runs Script() for the calls of its Calls.
func SetScriptRunner(a *API) { scriptAPIs.Store(a.o.Calls, a) }

func init() {
	call.RegisterApp(call.Application{
		Name:        "Script",
		OnOriginate: true,
		Check: func(args []string, _ call.CheckEnv) error {
			if len(args) < 1 || len(args) > 2 || args[0] == "" {
				return errors.New("want Script(url) or Script(url,fallback_url), e.g. Script(http://app.example.com/incoming)")
			}
			for _, arg := range args {
				u, err := url.Parse(arg)
				if err != nil || !u.IsAbs() || netguard.CheckURL(u) != nil {
					return fmt.Errorf("%q is not an http(s) URL", arg)
				}
			}
			return nil
		},
		Admit: func(inv *call.Invocation) *call.Decline {
			if _, ok := scriptAPIs.Load(inv.Calls); !ok {
				inv.Log.Error("rejecting call: Script() without the command API")
				return &call.Decline{Code: 500, Reason: "Server Internal Error"}
			}
			return nil
		},
		Run: func(inv *call.Invocation) {
			v, _ := scriptAPIs.Load(inv.Calls)
			a := v.(*API)
			ch, _ := inv.Calls.Channel(inv.ChannelID)
			fallback := ""
			if len(inv.Args) > 1 {
				fallback = inv.Args[1]
			}
			a.track(inv.ChannelID, func() { a.runIncoming(inv.ChannelID, inv.Args[0], fallback, ch) })
		},
	})
}

// track runs f, a script of call id, on a goroutine counted by Wait. A
// panic in it (a bug met by one document) fails that call only: it is
// logged with its stack and the call is hung up, the process goes on.
func (a *API) track(id call.ChannelID, f func()) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer func() {
			if v := recover(); v != nil {
				a.o.Log.Error("ozml script panicked; hanging up its call", "call", id, "panic", v, "stack", string(debug.Stack()))
				a.o.Calls.Hangup(id, call.CauseFailure)
			}
		}()
		f()
	}()
}

// Wait waits (at most d) for scripts and notifications in progress.
func (a *API) Wait(d time.Duration) {
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// callCtx is a context that ends with the call.
func (a *API) callCtx(id call.ChannelID) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	done := a.o.Calls.CallDone(id)
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func (a *API) runIncoming(id call.ChannelID, appURL, fallback string, ch call.ChannelJSON) {
	log := a.o.Log.With("call", id, "script", redactURL(appURL))
	ctx, cancel := a.callCtx(id)
	defer cancel()
	form := url.Values{
		"NotificationName":  {"IncomingCall"},
		"CallId":            {string(id)},
		"Caller":            {ch.Caller.Number},
		"CallerDisplayName": {ch.Caller.Name},
		"Callee":            {ch.Dialplan.Exten},
		"ApiExtension":      {ch.Dialplan.Exten},
	}
	// CallSid (not Ozeki's: its receivers ignore fields they do not know)
	// names the call in the Twilio and Restcomm APIs and the catalog: its
	// recordings, its live control.
	if sid, err := a.o.Calls.CallSid(id); err == nil && sid != "" {
		form.Set("CallSid", sid)
	}
	doc, err := a.fetchOzML(ctx, appURL, form)
	if err != nil && fallback != "" && ctx.Err() == nil {
		log.Warn("ozml application failed; asking the fallback", "err", err, "fallback", redactURL(fallback))
		form.Set("ErrorMessage", err.Error())
		var ferr error
		if doc, ferr = a.fetchOzML(ctx, fallback, form); ferr == nil {
			appURL, err = fallback, nil
		} else {
			err = fmt.Errorf("%w; fallback: %v", err, ferr)
		}
	}
	if err != nil {
		a.scriptFailed(id, appURL, log, err)
		return
	}
	a.runDocument(ctx, id, doc, appURL, true, log)
}

// scriptFailed logs, notifies (ScriptFailed to ozeki.script_failure_url)
// and hangs the call up with cause 38.
func (a *API) scriptFailed(id call.ChannelID, appURL string, log interface {
	Error(string, ...any)
}, err error) {
	log.Error("ozml script failed; hanging up", "err", err)
	a.o.Calls.Hangup(id, call.CauseFailure)
	a.notify(context.Background(), "ScriptFailed", string(id), a.o.ScriptFailureURL, url.Values{
		"NotificationName": {"ScriptFailed"},
		"CallId":           {string(id)},
		"Url":              {redactURL(appURL)},
		"Reason":           {err.Error()},
	})
}

// scriptClient fetches OzML documents: the webhook allow-list, a timeout,
// at most netguard.MaxRedirects redirects.
func (a *API) scriptClient() *http.Client {
	a.clientOnce.Do(func() {
		var allow *netguard.Policy
		if a.o.Webhook != nil {
			allow = a.o.Webhook.Allow()
		}
		a.client = allow.Client()
		a.client.Timeout = a.o.ScriptTimeout
	})
	return a.client
}

// fetchOzML POSTs a notification and parses the answer.
func (a *API) fetchOzML(ctx context.Context, target string, form url.Values) (*Document, error) {
	if a.o.Webhook != nil {
		if err := a.o.Webhook.CheckTarget(ctx, target); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, a.o.ScriptTimeout)
	defer cancel()
	body := form.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "tapedeck-ozml")
	if a.o.Webhook != nil {
		if sec := a.o.Webhook.Secret(); len(sec) > 0 {
			req.Header.Set(webhook.SignatureHeader, webhook.Sign(sec, time.Now(), []byte(body)))
		}
	}
	res, err := a.scriptClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("application unreachable: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("application answered %s", res.Status)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, MaxDocument+1))
	if err != nil {
		return nil, fmt.Errorf("reading the application's answer: %w", err)
	}
	return ParseOzML(b)
}

// OnReply runs an OzML answer to a notification (e.g. RecordCompleted) on
// its call, if the call is still up; other answers are ignored.
func (a *API) OnReply(r webhook.Reply) {
	if r.CallID == "" || !looksLikeOzML(r.Body) {
		return
	}
	id := call.ChannelID(r.CallID)
	if _, err := a.o.Calls.Channel(id); err != nil {
		return
	}
	log := a.o.Log.With("call", id, "reply_to", r.Kind)
	doc, err := ParseOzML(r.Body)
	if err != nil {
		log.Error("ozml reply to a notification is not valid; ignored", "err", err)
		return
	}
	a.track(id, func() {
		ctx, cancel := a.callCtx(id)
		defer cancel()
		a.runDocument(ctx, id, doc, r.URL, false, log)
	})
}

func looksLikeOzML(b []byte) bool {
	s := strings.TrimSpace(string(b))
	return strings.HasPrefix(s, "<?xml") || strings.HasPrefix(s, "<Response")
}

type logger interface {
	Info(string, ...any)
	Warn(string, ...any)
	Error(string, ...any)
}

// runDocument runs the verbs in order; hangupAtEnd: a script call ends with
// its document.
func (a *API) runDocument(ctx context.Context, id call.ChannelID, doc *Document, appURL string, hangupAtEnd bool, log logger) {
	for handoffs := 0; ; handoffs++ {
		next, done := a.runVerbs(ctx, id, doc.Verbs, appURL, log)
		if ctx.Err() != nil || done {
			return
		}
		if next == nil {
			break
		}
		if handoffs >= MaxHandoffs {
			a.scriptFailed(id, appURL, log, fmt.Errorf("more than %d documents in one call", MaxHandoffs))
			return
		}
		doc = next
	}
	if hangupAtEnd {
		log.Info("ozml document ended; hanging up")
		a.o.Calls.Hangup(id, call.CauseNormalClearing)
	}
}

// runVerbs runs verbs; it returns the next document (UserInput's answer)
// or done when the call was hung up or failed.
func (a *API) runVerbs(ctx context.Context, id call.ChannelID, verbs []Verb, appURL string, log logger) (next *Document, done bool) {
	for _, v := range verbs {
		if ctx.Err() != nil {
			return nil, true
		}
		switch v.Name {
		case "Speak":
			uri, e := a.speakURI(v.Text, v.Attrs.get("voice"), "Speak")
			if e != nil {
				// Speech unavailable or bad text: the verb fails, the call goes on.
				log.Error("ozml Speak failed; going on", "cause", e.Message)
				continue
			}
			a.playAndWait(ctx, id, uri, log)
		case "Play":
			u := v.Text
			if u == "" {
				u = v.Attrs.get("url")
			}
			if u == "" {
				log.Error("ozml Play without a URL or sound; going on")
				continue
			}
			a.playAndWait(ctx, id, mediaURI(u), log)
		case "Record":
			r, e := a.parseRecord(ctx, v.Attrs, "Record")
			if e == nil {
				if cid := v.Attrs.get("callid"); cid != "" && cid != string(id) {
					e = errParamWhy("CallId", "Record", "a script records its own call")
				}
			}
			if e != nil {
				log.Error("ozml Record refused; going on", "code", e.Code, "cause", e.Message)
				continue
			}
			r.CallID = id
			// The recording first: it answers the call once it hears it
			// (call.RecordCall), so the caller's first words are in the
			// file; answering first lost what arrived before the file was
			// open (up to 340 ms under load, bench/RESULTS.md).
			if e := a.StartRecord(r, nil); e != nil {
				log.Error("ozml Record failed; going on", "code", e.Code, "cause", e.Message)
			}
			if err := a.o.Calls.AnswerCall(id); err != nil {
				return nil, true
			}
		case "Delay":
			secs, err := strconv.ParseFloat(v.Text, 64)
			if err != nil || secs < 0 || secs > 86400 {
				a.scriptFailed(id, appURL, log, fmt.Errorf("Delay %q is not a number of seconds", v.Text))
				return nil, true
			}
			if err := a.o.Calls.AnswerCall(id); err != nil {
				return nil, true
			}
			t := time.NewTimer(time.Duration(secs * float64(time.Second)))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, true
			}
		case "Hangup":
			a.o.Calls.Hangup(id, call.CauseNormalClearing)
			return nil, true
		case "Reject":
			a.o.Calls.Hangup(id, call.CauseCallRejected)
			return nil, true
		case "SendDTMF":
			d := v.Text
			if d == "" {
				d = v.Attrs.get("dtmf")
			}
			if !digitsRE.MatchString(d) || len(d) > 64 {
				log.Error("ozml SendDTMF with bad digits; going on", "digits", d)
				continue
			}
			if err := a.o.Calls.AnswerCall(id); err != nil {
				return nil, true
			}
			if err := a.o.Calls.SendDTMFCall(id, call.DTMFOptions{Digits: d, Between: 100, Duration: 160}); err != nil {
				log.Error("ozml SendDTMF failed; going on", "err", err)
			}
		case "UserInput":
			doc, err := a.userInput(ctx, id, v, appURL, log)
			if err != nil {
				if ctx.Err() != nil {
					return nil, true
				}
				a.scriptFailed(id, appURL, log, err)
				return nil, true
			}
			return doc, false
		case "Forward", "Call":
			if err := a.forward(ctx, id, v, log); err != nil {
				if ctx.Err() != nil {
					return nil, true
				}
				log.Warn("ozml "+v.Name+" failed; going on", "err", err)
			}
		}
	}
	return nil, false
}

// playAndWait plays a media URI and waits for its end (or the call's).
func (a *API) playAndWait(ctx context.Context, id call.ChannelID, uri string, log logger) {
	if err := a.o.Calls.AnswerCall(id); err != nil {
		return
	}
	pb, err := a.o.Calls.PlayCall(id, call.PlayOptions{Media: []string{uri}})
	if err != nil {
		log.Error("ozml playback failed; going on", "err", err)
		return
	}
	select {
	case <-a.o.Calls.PlayDone(pb.ID):
	case <-ctx.Done():
	}
}

// userInput plays the prompt, collects digits and posts them; the answer
// is the next document.
func (a *API) userInput(ctx context.Context, id call.ChannelID, v Verb, appURL string, log logger) (*Document, error) {
	target := v.Attrs.get("url")
	if target == "" {
		target = appURL
	}
	timeout := 5 * time.Second
	if t := v.Attrs.get("timeout"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n <= 0 || n > 600 {
			return nil, fmt.Errorf("UserInput Timeout %q: want 1-600 seconds", t)
		}
		timeout = time.Duration(n) * time.Second
	}
	maxDigits := 1
	if m := v.Attrs.get("maxdigits"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n <= 0 || n > 64 {
			return nil, fmt.Errorf("UserInput MaxDigits %q: want 1-64", m)
		}
		maxDigits = n
	}
	finish := v.Attrs.get("finishdigits")
	if finish == "" && maxDigits > 1 {
		finish = "#"
	}
	if err := a.o.Calls.AnswerCall(id); err != nil {
		return nil, err
	}
	// Digits pressed during the prompt count: collection starts first.
	type result struct {
		d   string
		err error
	}
	got := make(chan result, 1)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		d, err := a.o.Calls.CollectDigits(cctx, id, maxDigits, finish, timeout+a.promptLength(v))
		got <- result{d, err}
	}()
	for _, p := range v.Prompt {
		if p.Name == "Speak" {
			if uri, e := a.speakURI(p.Text, p.Attrs.get("voice"), "Speak"); e == nil {
				a.playAndWait(ctx, id, uri, log)
			} else {
				log.Error("ozml UserInput prompt: Speak failed; going on", "cause", e.Message)
			}
		} else if u := p.Text; u != "" {
			a.playAndWait(ctx, id, mediaURI(u), log)
		}
	}
	r := <-got
	if r.err != nil {
		return nil, r.err
	}
	log.Info("ozml UserInput collected", "digits", len(r.d))
	return a.fetchOzML(ctx, target, url.Values{
		"NotificationName": {"UserInput"},
		"CallId":           {string(id)},
		"Digits":           {r.d},
	})
}

// promptLength is a generous allowance for the prompt before the digit
// timeout applies.
func (a *API) promptLength(v Verb) time.Duration {
	if len(v.Prompt) == 0 {
		return 0
	}
	return time.Minute
}

// forward calls another party and connects the two calls once it answers.
func (a *API) forward(ctx context.Context, id call.ChannelID, v Verb, log logger) error {
	target := v.Text
	if target == "" {
		return errors.New("no party to call")
	}
	ep := target
	if strings.HasPrefix(strings.ToLower(ep), "sip:") {
		ep = "PJSIP/" + ep
	}
	timeout := 30 * time.Second
	if t := v.Attrs.get("timeout"); t != "" {
		if n, err := strconv.Atoi(t); err == nil && n > 0 && n <= 600 {
			timeout = time.Duration(n) * time.Second
		}
	}
	if err := a.o.Calls.AnswerCall(id); err != nil {
		return err
	}
	leg, err := a.o.Calls.Originate(call.OriginateOptions{Endpoint: ep, CallerID: v.Attrs.get("callerid"), Timeout: timeout,
		Controlled: true, Originator: id})
	if err != nil {
		return err
	}
	// Wait for the answer (or the end of either call).
	deadline := time.NewTimer(timeout + 5*time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		j, err := a.o.Calls.Channel(leg.ID)
		if err != nil {
			return fmt.Errorf("%s did not answer", target)
		}
		if j.State == "Up" {
			break
		}
		select {
		case <-ctx.Done():
			a.o.Calls.Hangup(leg.ID, call.CauseNormalClearing)
			return ctx.Err()
		case <-deadline.C:
			a.o.Calls.Hangup(leg.ID, call.CauseNoAnswer)
			return fmt.Errorf("%s did not answer", target)
		case <-tick.C:
		}
	}
	if _, err := a.o.Calls.ConnectCalls(id, leg.ID); err != nil {
		a.o.Calls.Hangup(leg.ID, call.CauseFailure)
		return err
	}
	log.Info("ozml forwarded", "to", leg.ID)
	// The script waits while the two talk; the other party's hangup ends
	// the forward and the script goes on.
	select {
	case <-ctx.Done():
		a.o.Calls.Hangup(leg.ID, call.CauseNormalClearing)
	case <-a.o.Calls.CallDone(leg.ID):
	}
	return nil
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(bad url)"
	}
	u.RawQuery, u.User = "", nil
	return u.String()
}
