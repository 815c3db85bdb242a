package main

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapedeck/tapedeck/internal/webhook"
)

// Scenario o with -record-rate R: while the calls are up, loadgen also
// drives the Ozeki command API as an integrator would — R `Record`
// commands a second (Duration=1, Format=wav, into a RecordPath of their
// own), spread round-robin over the calls that are up — and each of those
// recordings sends RecordCompleted to loadgen's application at /extra
// through the webhook sender (unless -record-no-url). That is a product
// path that produces notifications at a chosen rate: every notification
// is a real recording's. The run fails unless every accepted command's
// RecordCompleted arrives exactly once and signed. With -record-no-url the
// same commands run without FinishedUrl: the difference between the two
// is what the notifications cost.

const (
	ozekiUser = "loadgen"
	ozekiPass = "loadgen-pass"
)

// extraRecords drives the Record commands and receives their callbacks.
type extraRecords struct {
	rate     float64
	withURL  bool
	dir      string // RecordPath (ozeki.record_paths)
	apiBase  string // http://host:port (the HTTP listener's /api)
	hookBase string // loadgen's application
	secret   []byte
	client   *http.Client

	sent, accepted, refused atomic.Int64
	mu                      sync.Mutex
	refusals                []string
	delivery                map[string]int
	badSig                  int
	states                  map[string]int
	times                   []time.Time
	arrived                 chan struct{}
}

func newExtraRecords(rate float64, withURL bool) (*extraRecords, error) {
	dir, err := os.MkdirTemp("", "loadgen-extra-")
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
	return &extraRecords{rate: rate, withURL: withURL, dir: dir, secret: []byte(ozmlSecret),
		client: &http.Client{Transport: tr, Timeout: 10 * time.Second}, delivery: map[string]int{},
		states: map[string]int{}, arrived: make(chan struct{}, 1)}, nil
}

func (x *extraRecords) close() { os.RemoveAll(x.dir) }

// serverConfig adds the API user and the RecordPath's directory to
// scenario o's ozeki section (appended inside it).
func (x *extraRecords) serverConfig() string {
	return fmt.Sprintf("  users:\n    - username: %s\n      password: %s\n  record_paths: [%q]\n", ozekiUser, ozekiPass, x.dir)
}

// serveExtra receives the commands' RecordCompleted.
func (x *extraRecords) serveExtra(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	ok := err == nil && webhook.Verify(x.secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute)
	form, _ := url.ParseQuery(string(body))
	now := time.Now()
	x.mu.Lock()
	if !ok {
		x.badSig++
	}
	x.delivery[r.Header.Get(webhook.DeliveryHeader)]++
	x.states[form.Get("Reason")+"/"+form.Get("State")]++
	x.times = append(x.times, now)
	x.mu.Unlock()
	select {
	case x.arrived <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

// drive sends the commands at x.rate until ctx ends, to calls announced
// at least 200 ms ago with more than 1.5 s of their hold left (calls()
// lists the announced calls and when).
func (x *extraRecords) drive(ctx context.Context, hold time.Duration, calls func() map[string]time.Time) {
	if x.rate <= 0 {
		return
	}
	jobs := make(chan string, 4096)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range jobs {
				x.record(id)
			}
		}()
	}
	defer func() { close(jobs); wg.Wait() }()
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var ids []string
	var listed time.Time
	next := 0
	var sent int64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if now.Sub(listed) > 50*time.Millisecond {
				ids = ids[:0]
				for id, at := range calls() {
					if up := now.Sub(at); up > 200*time.Millisecond && up < hold-1500*time.Millisecond {
						ids = append(ids, id)
					}
				}
				sort.Strings(ids)
				listed = now
			}
			due := int64(now.Sub(start).Seconds() * x.rate)
			for ; sent < due; sent++ {
				if len(ids) == 0 {
					continue // none up yet: these are skipped, not owed
				}
				next = (next + 1) % len(ids)
				select {
				case jobs <- ids[next]:
				default: // the API is behind: counted as not sent
				}
			}
		}
	}
}

type ozResponse struct {
	Code    int    `xml:"Code"`
	Message string `xml:"Message"`
}

func (x *extraRecords) record(id string) {
	q := url.Values{"command": {"Record"}, "Username": {ozekiUser}, "Password": {ozekiPass}, "CallId": {id},
		"Duration": {"1"}, "Format": {"wav"}, "RecordPath": {x.dir}}
	if x.withURL {
		q.Set("FinishedUrl", x.hookBase+"/extra")
	}
	x.sent.Add(1)
	res, err := x.client.Get(x.apiBase + "/api?" + q.Encode())
	if err != nil {
		x.refuse("%v", err)
		return
	}
	defer res.Body.Close()
	var r ozResponse
	if err := xml.NewDecoder(io.LimitReader(res.Body, 1<<16)).Decode(&r); err != nil {
		x.refuse("HTTP %d, unreadable answer: %v", res.StatusCode, err)
		return
	}
	if r.Code != 200 {
		// A call that ended meanwhile (601) is the harness's timing, not a
		// failure; counted apart.
		x.refuse("code %d: %s", r.Code, r.Message)
		return
	}
	x.accepted.Add(1)
}

func (x *extraRecords) refuse(format string, args ...any) {
	x.refused.Add(1)
	x.mu.Lock()
	if len(x.refusals) < 20 {
		x.refusals = append(x.refusals, fmt.Sprintf(format, args...))
	}
	x.mu.Unlock()
}

// wait waits until every accepted command's callback has arrived (or the
// deadline); it returns how many are missing.
func (x *extraRecords) wait(limit time.Duration) int {
	if !x.withURL {
		return 0
	}
	deadline := time.Now().Add(limit)
	for {
		x.mu.Lock()
		got := len(x.times)
		x.mu.Unlock()
		missing := int(x.accepted.Load()) - got
		if missing <= 0 || time.Now().After(deadline) {
			return max(missing, 0)
		}
		select {
		case <-x.arrived:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ExtraRecordReport is what -record-rate did.
type ExtraRecordReport struct {
	Rate       float64        `json:"rate"`
	WithURL    bool           `json:"finished_url"`
	Sent       int64          `json:"sent"`
	Accepted   int64          `json:"accepted"`
	Refused    int64          `json:"refused"`
	Refusals   []string       `json:"refusals,omitempty"`
	Delivered  int            `json:"delivered"`
	Duplicates int            `json:"duplicates"`
	BadSig     int            `json:"bad_signatures"`
	States     map[string]int `json:"states,omitempty"`
	RatePerSec float64        `json:"rate_per_second"` // delivered / (last - first arrival)
	PeakPerSec int            `json:"peak_per_second"`
}

func (x *extraRecords) report() *ExtraRecordReport {
	x.mu.Lock()
	defer x.mu.Unlock()
	er := &ExtraRecordReport{Rate: x.rate, WithURL: x.withURL, Sent: x.sent.Load(), Accepted: x.accepted.Load(),
		Refused: x.refused.Load(), Refusals: append([]string(nil), x.refusals...), Delivered: len(x.times),
		BadSig: x.badSig, States: x.states}
	for d, n := range x.delivery {
		if n > 1 || d == "" {
			er.Duplicates += n - 1
		}
	}
	er.RatePerSec, er.PeakPerSec = rates(x.times)
	return er
}

// rates: arrivals per second over their span, and the most in one second.
func rates(times []time.Time) (float64, int) {
	if len(times) == 0 {
		return 0, 0
	}
	ts := append([]time.Time(nil), times...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	rate := 0.0
	if span := ts[len(ts)-1].Sub(ts[0]).Seconds(); span > 0 {
		rate = float64(len(ts)) / span
	}
	peak, j := 0, 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= time.Second {
			j++
		}
		peak = max(peak, i-j+1)
	}
	return rate, peak
}
