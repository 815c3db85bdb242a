package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// ariApp is the ARI application "loadgen" of scenarios b and c, a plain Go
// client: the events WebSocket and REST calls.
//
// Scenario b: on StasisStart it starts POST /channels/{id}/record (name
// loadgen/<id>, wav). tapedeck's record answers the channel itself once the
// recording is attached, so the caller's first packet is in the file; an
// app that answers first and then records loses the packets that arrive in
// between (the duration check would then flag every call).
//
// Scenario c: on the caller's StasisStart it answers, originates the second
// leg to loadgen's callee phone, and once that leg is up (its StasisStart)
// creates a mixing bridge, adds both and records the bridge in stereo
// (caller left, callee right). When RecordingStarted arrives the caller is
// told to start sending audio (gate). When the caller leaves (StasisEnd) the
// bridge is destroyed and the callee hung up.
type ariApp struct {
	base     string // http://host:port
	user     string
	pass     string
	scenario string
	callee   string // PJSIP/callee@127.0.0.1:port (c)
	client   *http.Client
	conn     *websocket.Conn
	logf     func(format string, args ...any)

	// gates maps a dialled extension to the caller waiting for its bridge
	// recording to start (c).
	gates sync.Map // exten -> chan struct{}

	mu        sync.Mutex
	pairs     map[string]*pair // by caller and callee channel id
	recs      map[string]*recState
	recsDone  chan struct{} // signalled at every finished recording
	errors    []string
	restCalls atomic.Int64

	dtmfEvents atomic.Int64
	stasis     atomic.Int64

	// Scenario e: the AudioSocket receiver and the streams started.
	stream       *streamReceiver
	streamFormat string
	// streamVia "call": scenario e bridges the call itself with the
	// external media channel (a voice bot) instead of a snoop of it, and
	// does not record it (a recording channel cannot join a bridge).
	streamVia string
	// streamEncap is the external media encapsulation: audiosocket or rtp.
	streamEncap string
	streams     atomic.Int64
}

type pair struct {
	exten, caller, callee, bridge string
	ended                         bool
}

type recState struct {
	name     string
	started  bool
	finished bool
	state    string
	cause    string
}

func newARIApp(base, user, pass, scenario, callee string, logf func(string, ...any)) *ariApp {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &ariApp{
		base: strings.TrimRight(base, "/"), user: user, pass: pass, scenario: scenario, callee: callee,
		client:   &http.Client{Transport: tr, Timeout: 15 * time.Second},
		pairs:    map[string]*pair{},
		recs:     map[string]*recState{},
		recsDone: make(chan struct{}, 1),
		logf:     logf,
	}
}

// connect opens the events WebSocket; the app is registered when it returns.
func (a *ariApp) connect(ctx context.Context) error {
	ws := "ws" + strings.TrimPrefix(a.base, "http") + "/ari/events?app=loadgen&api_key=" + url.QueryEscape(a.user+":"+a.pass)
	c, _, err := websocket.Dial(ctx, ws, nil)
	if err != nil {
		return fmt.Errorf("ARI events: %w", err)
	}
	c.SetReadLimit(1 << 20)
	a.conn = c
	go a.read()
	return nil
}

func (a *ariApp) close() {
	if a.conn != nil {
		a.conn.Close(websocket.StatusNormalClosure, "")
	}
}

type ariEvent struct {
	Type    string   `json:"type"`
	Args    []string `json:"args"`
	Digit   string   `json:"digit"`
	Channel *struct {
		ID string `json:"id"`
	} `json:"channel"`
	Recording *struct {
		Name  string `json:"name"`
		State string `json:"state"`
		Cause string `json:"cause"`
	} `json:"recording"`
}

func (a *ariApp) read() {
	for {
		_, data, err := a.conn.Read(context.Background())
		if err != nil {
			return
		}
		var ev ariEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			continue
		}
		switch ev.Type {
		case "StasisStart":
			a.stasis.Add(1)
			go a.onStasisStart(ev)
		case "StasisEnd":
			go a.onStasisEnd(ev)
		case "ChannelDtmfReceived":
			a.dtmfEvents.Add(1)
		case "RecordingStarted", "RecordingFinished", "RecordingFailed":
			a.onRecording(ev)
		}
	}
}

func (a *ariApp) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	a.mu.Lock()
	if len(a.errors) < 50 {
		a.errors = append(a.errors, msg)
	}
	a.mu.Unlock()
	a.logf("ARI: %s", msg)
}

// do sends one REST request; the body of a 2xx answer is decoded into out.
func (a *ariApp) do(method, path string, q url.Values, out any) error {
	u := a.base + "/ari" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(a.user, a.pass)
	a.restCalls.Add(1)
	res, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, strings.TrimSpace(string(body)))
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

func (a *ariApp) expectRecording(name string) {
	a.mu.Lock()
	if a.recs[name] == nil {
		a.recs[name] = &recState{name: name}
	}
	a.mu.Unlock()
}

func (a *ariApp) onStasisStart(ev ariEvent) {
	if ev.Channel == nil {
		return
	}
	id := ev.Channel.ID
	arg := ""
	if len(ev.Args) > 0 {
		arg = ev.Args[0]
	}
	switch {
	case (a.scenario == "e") && (arg == "snoop" || strings.HasSuffix(id, "-ext")):
		// The snoop and external media channels entering the app.
	case a.scenario == "e" && a.streamVia == "call":
		if err := a.do("POST", "/channels/"+id+"/answer", nil, nil); err != nil {
			a.fail("answer %s: %v", id, err)
			return
		}
		a.streamCall(id)
	case a.scenario == "b" || a.scenario == "b2" || a.scenario == "e":
		names := []string{"loadgen/" + id}
		if a.scenario == "b2" {
			names = append(names, "loadgen/"+id+"-2")
		}
		for _, name := range names {
			a.expectRecording(name)
			q := url.Values{"name": {name}, "format": {"wav"}, "ifExists": {"overwrite"}}
			if err := a.do("POST", "/channels/"+id+"/record", q, nil); err != nil {
				a.fail("record %s: %v", id, err)
				a.dropRecording(name)
			}
		}
		if a.scenario == "e" {
			a.streamCall(id)
		}
	case a.scenario == "c" && arg == "callee":
		a.mu.Lock()
		p := a.pairs[id]
		a.mu.Unlock()
		if p == nil {
			a.fail("callee %s: no caller", id)
			return
		}
		a.bridgeAndRecord(p)
	case a.scenario == "c":
		p := &pair{exten: arg, caller: id, callee: id + "-callee", bridge: id + "-bridge"}
		a.mu.Lock()
		a.pairs[p.caller], a.pairs[p.callee] = p, p
		a.mu.Unlock()
		if err := a.do("POST", "/channels/"+id+"/answer", nil, nil); err != nil {
			a.fail("answer %s: %v", id, err)
			return
		}
		q := url.Values{"endpoint": {a.callee}, "app": {"loadgen"}, "appArgs": {"callee"},
			"originator": {id}, "channelId": {p.callee}, "timeout": {"15"}}
		if err := a.do("POST", "/channels", q, nil); err != nil {
			a.fail("originate for %s: %v", id, err)
		}
	}
}

func (a *ariApp) bridgeAndRecord(p *pair) {
	if err := a.do("POST", "/bridges/"+p.bridge, url.Values{"type": {"mixing"}}, nil); err != nil {
		a.fail("create bridge %s: %v", p.bridge, err)
		return
	}
	// The caller first: it is the left channel of the stereo recording.
	if err := a.do("POST", "/bridges/"+p.bridge+"/addChannel", url.Values{"channel": {p.caller + "," + p.callee}}, nil); err != nil {
		a.fail("addChannel %s: %v", p.bridge, err)
		return
	}
	name := "loadgen/" + p.caller
	a.expectRecording(name)
	q := url.Values{"name": {name}, "format": {"wav"}, "stereo": {"true"}, "ifExists": {"overwrite"}}
	if err := a.do("POST", "/bridges/"+p.bridge+"/record", q, nil); err != nil {
		a.fail("record bridge %s: %v", p.bridge, err)
		a.dropRecording(name)
	}
}

// streamCall streams what a caller says to loadgen's AudioSocket (or RTP)
// receiver, as a transcription app does: a snoop channel (spy=in) bridged
// with an external media channel.
func (a *ariApp) streamCall(id string) {
	a.streams.Add(1)
	snoop, ext, br := id+"-snoop", id+"-ext", id+"-sb"
	if a.streamVia == "call" {
		snoop = id // the call itself joins the bridge
	} else if err := a.do("POST", "/channels/"+id+"/snoop/"+snoop, url.Values{"spy": {"in"}, "app": {"loadgen"}, "appArgs": {"snoop"}}, nil); err != nil {
		a.fail("snoop %s: %v", id, err)
		return
	}
	q := url.Values{"app": {"loadgen"}, "channelId": {ext}, "external_host": {a.stream.addr()}, "encapsulation": {"audiosocket"},
		"transport": {"tcp"}, "format": {a.streamFormat}, "data": {uuidFor(id)}}
	if a.streamEncap == "rtp" {
		q.Set("external_host", a.stream.rtpAddr())
		q.Set("encapsulation", "rtp")
		q.Set("transport", "udp")
		q.Del("data")
	}
	if err := a.do("POST", "/channels/externalMedia", q, nil); err != nil {
		a.fail("externalMedia %s: %v", id, err)
		return
	}
	if err := a.do("POST", "/bridges/"+br, url.Values{"type": {"mixing"}}, nil); err != nil {
		a.fail("create bridge %s: %v", br, err)
		return
	}
	if err := a.do("POST", "/bridges/"+br+"/addChannel", url.Values{"channel": {snoop + "," + ext}}, nil); err != nil {
		a.fail("addChannel %s: %v", br, err)
	}
}

func (a *ariApp) streamsExpected() int { return int(a.streams.Load()) }

func (a *ariApp) onStasisEnd(ev ariEvent) {
	if a.scenario == "e" && ev.Channel != nil && !strings.HasSuffix(ev.Channel.ID, "-ext") && !strings.HasSuffix(ev.Channel.ID, "-snoop") {
		id := ev.Channel.ID
		if err := a.do("DELETE", "/bridges/"+id+"-sb", nil, nil); err != nil && !strings.Contains(err.Error(), "404") {
			a.fail("destroy bridge %s-sb: %v", id, err)
		}
		if err := a.do("DELETE", "/channels/"+id+"-ext", nil, nil); err != nil && !strings.Contains(err.Error(), "404") {
			a.fail("hangup %s-ext: %v", id, err)
		}
		return
	}
	if a.scenario != "c" || ev.Channel == nil {
		return
	}
	a.mu.Lock()
	p := a.pairs[ev.Channel.ID]
	first := p != nil && !p.ended
	if first {
		p.ended = true
	}
	a.mu.Unlock()
	if !first {
		return
	}
	// Whichever leg leaves first ends the call: the bridge (and with it the
	// recording) goes, then the other leg.
	if err := a.do("DELETE", "/bridges/"+p.bridge, nil, nil); err != nil && !strings.Contains(err.Error(), "404") {
		a.fail("destroy bridge %s: %v", p.bridge, err)
	}
	other := p.callee
	if ev.Channel.ID == p.callee {
		other = p.caller
	}
	if err := a.do("DELETE", "/channels/"+other, nil, nil); err != nil && !strings.Contains(err.Error(), "404") {
		a.fail("hangup %s: %v", other, err)
	}
}

func (a *ariApp) dropRecording(name string) {
	a.mu.Lock()
	delete(a.recs, name)
	a.mu.Unlock()
}

func (a *ariApp) onRecording(ev ariEvent) {
	if ev.Recording == nil {
		return
	}
	name := ev.Recording.Name
	a.mu.Lock()
	r := a.recs[name]
	if r == nil {
		r = &recState{name: name}
		a.recs[name] = r
	}
	var p *pair
	switch ev.Type {
	case "RecordingStarted":
		r.started = true
		if a.scenario == "c" {
			p = a.pairs[strings.TrimPrefix(name, "loadgen/")]
		}
	default:
		r.finished, r.state, r.cause = true, ev.Recording.State, ev.Recording.Cause
	}
	a.mu.Unlock()
	if ev.Type == "RecordingFailed" {
		a.fail("recording %s failed: %s", name, ev.Recording.Cause)
	}
	if p != nil {
		if g, ok := a.gates.Load(p.exten); ok {
			close(g.(chan struct{}))
			a.gates.Delete(p.exten)
		}
	}
	if ev.Type != "RecordingStarted" {
		select {
		case a.recsDone <- struct{}{}:
		default:
		}
	}
}

// waitRecordings waits until every recording the app started is finished.
func (a *ariApp) waitRecordings(ctx context.Context) (pending int) {
	for {
		a.mu.Lock()
		pending = 0
		for _, r := range a.recs {
			if !r.finished {
				pending++
			}
		}
		a.mu.Unlock()
		if pending == 0 {
			return 0
		}
		select {
		case <-a.recsDone:
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return pending
		}
	}
}

// recordings returns the names of the recordings started, with their final
// state.
func (a *ariApp) recordings() map[string]recState {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]recState, len(a.recs))
	for k, v := range a.recs {
		out[k] = *v
	}
	return out
}

func (a *ariApp) errorList() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.errors...)
}
