package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tapedeck/tapedeck/internal/webhook"
)

// Scenario o: every call dials 5XX, whose dialplan application is
// Script(<loadgen's app>/incoming). tapedeck POSTs Ozeki's IncomingCall
// notification to loadgen's web application on loopback, which answers
// the OzML document
//
//	<Response><Record Format="wav" [FinishedUrl=".../done"]/><Delay>86400</Delay></Response>
//
// the same work as scenario b's ARI application (record the caller's
// channel until the caller hangs up), through a script instead of ARI.
//
// With -callbacks each Record carries FinishedUrl: when the recording
// ends, tapedeck's webhook sender (outbox, signature, retries) posts
// RecordCompleted to the same application, which checks the signature
// (webhook.secret, X-Tapedeck-Signature), that every call's notification
// arrives exactly once (by CallId and by X-Tapedeck-Delivery), and that its
// RecordURL names the call's recording.

// unsafeName is what tapedeck replaces in a CallId to name its recording
// (internal/api/ozeki).
var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// ozmlSecret signs scenario o's callbacks (webhook.secret).
const ozmlSecret = "loadgen-webhook-secret"

// ozmlFolder is where scenario o's recordings go (ozeki.folder).
const ozmlFolder = "HttpRecordings"

type ozmlApp struct {
	ln        net.Listener
	srv       *http.Server
	callbacks bool
	secret    []byte

	mu        sync.Mutex
	incoming  map[string]bool         // CallIds announced by IncomingCall
	announced map[string]time.Time    // when
	extra     *extraRecords           // -record-rate's callbacks (/extra)
	completed map[string][]ozmlNotice // RecordCompleted by CallId
	delivery  map[string]int          // X-Tapedeck-Delivery -> count
	problems  []string
	badSig    int
	times     []time.Time // arrival of each RecordCompleted
	arrived   chan struct{}
}

type ozmlNotice struct {
	reason, state, format, recordURL, duration string
}

func newOZMLApp(callbacks bool, extra *extraRecords) (*ozmlApp, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := &ozmlApp{ln: ln, callbacks: callbacks, extra: extra, announced: map[string]time.Time{}, secret: []byte(ozmlSecret), incoming: map[string]bool{},
		completed: map[string][]ozmlNotice{}, delivery: map[string]int{}, arrived: make(chan struct{}, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("/incoming", a.serveIncoming)
	mux.HandleFunc("/done", a.serveDone)
	if extra != nil {
		extra.hookBase = "http://" + ln.Addr().String()
		mux.HandleFunc("/extra", extra.serveExtra)
	}
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go a.srv.Serve(ln)
	return a, nil
}

func (a *ozmlApp) base() string { return "http://" + a.ln.Addr().String() }

func (a *ozmlApp) close() { a.srv.Close() }

// serverConfig is what scenario o adds to tapedeck's configuration: the
// webhook sender may reach loopback and signs its requests.
func (a *ozmlApp) serverConfig() string {
	cfg := fmt.Sprintf(`webhook:
  allow: ["127.0.0.1"]
  secret: %q
ozeki:
  folder: %s
`, ozmlSecret, ozmlFolder)
	if a.extra != nil {
		cfg += a.extra.serverConfig()
	}
	return cfg
}

// calls lists the announced calls and when each was announced.
func (a *ozmlApp) calls() map[string]time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]time.Time, len(a.announced))
	for id, t := range a.announced {
		out[id] = t
	}
	return out
}

// dialplan is scenario o's extension.
func (a *ozmlApp) dialplan() string {
	return fmt.Sprintf("  - exten: \"_5XX\"\n    app: \"Script(%s/incoming)\"\n", a.base())
}

func (a *ozmlApp) problem(format string, args ...any) {
	a.mu.Lock()
	if len(a.problems) < 50 {
		a.problems = append(a.problems, fmt.Sprintf(format, args...))
	}
	a.mu.Unlock()
}

// readForm reads a notification and checks its signature.
func (a *ozmlApp) readForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil || r.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		a.problem("%s %s: unreadable request", r.Method, r.URL.Path)
		return nil, false
	}
	if !webhook.Verify(a.secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute) {
		a.mu.Lock()
		a.badSig++
		a.mu.Unlock()
		a.problem("%s: bad or missing %s", r.URL.Path, webhook.SignatureHeader)
		http.Error(w, "bad signature", http.StatusForbidden)
		return nil, false
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		a.problem("%s: bad form: %v", r.URL.Path, err)
		http.Error(w, "bad form", http.StatusBadRequest)
		return nil, false
	}
	return form, true
}

func (a *ozmlApp) serveIncoming(w http.ResponseWriter, r *http.Request) {
	form, ok := a.readForm(w, r)
	if !ok {
		return
	}
	id := form.Get("CallId")
	if form.Get("NotificationName") != "IncomingCall" || id == "" {
		a.problem("/incoming: NotificationName %q, CallId %q", form.Get("NotificationName"), id)
		http.Error(w, "not an IncomingCall", http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	dup := a.incoming[id]
	a.incoming[id] = true
	a.announced[id] = time.Now()
	a.mu.Unlock()
	if dup {
		a.problem("IncomingCall for %s twice", id)
	}
	finished := ""
	if a.callbacks {
		finished = ` FinishedUrl="` + a.base() + `/done"`
	}
	w.Header().Set("Content-Type", "application/xml")
	fmt.Fprintf(w, `<?xml version="1.0"?>
<Response>
  <Record Format="wav"%s/>
  <Delay>86400</Delay>
</Response>
`, finished)
}

func (a *ozmlApp) serveDone(w http.ResponseWriter, r *http.Request) {
	form, ok := a.readForm(w, r)
	if !ok {
		return
	}
	now := time.Now()
	id := form.Get("CallId")
	n := ozmlNotice{reason: form.Get("Reason"), state: form.Get("State"), format: form.Get("Format"),
		recordURL: form.Get("RecordURL"), duration: form.Get("Duration")}
	if form.Get("NotificationName") != "RecordCompleted" || id == "" {
		a.problem("/done: NotificationName %q, CallId %q", form.Get("NotificationName"), id)
	}
	a.mu.Lock()
	a.completed[id] = append(a.completed[id], n)
	a.times = append(a.times, now)
	if d := r.Header.Get(webhook.DeliveryHeader); d != "" {
		a.delivery[d]++
	} else {
		a.delivery[""]++
	}
	a.mu.Unlock()
	select {
	case a.arrived <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

// incomingCalls is how many calls the script application was asked for.
func (a *ozmlApp) incomingCalls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.incoming)
}

// waitCallbacks waits until every announced call has its RecordCompleted
// (or the deadline); it returns how many are missing.
func (a *ozmlApp) waitCallbacks(limit time.Duration) int {
	deadline := time.Now().Add(limit)
	for {
		a.mu.Lock()
		missing := 0
		for id := range a.incoming {
			if len(a.completed[id]) == 0 {
				missing++
			}
		}
		a.mu.Unlock()
		if missing == 0 || time.Now().After(deadline) {
			return missing
		}
		select {
		case <-a.arrived:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// CallbackReport is what scenario o's application received.
type CallbackReport struct {
	Enabled    bool           `json:"enabled"`
	Calls      int            `json:"calls"`    // IncomingCall notifications (calls the script ran)
	Expected   int            `json:"expected"` // RecordCompleted expected (one a call, with -callbacks)
	Delivered  int            `json:"delivered"`
	Duplicates int            `json:"duplicates"` // a second RecordCompleted for a call, or a delivery id seen twice
	Missing    int            `json:"missing"`
	Unknown    int            `json:"unknown"` // RecordCompleted for a call never announced
	BadSig     int            `json:"bad_signatures"`
	BadURL     int            `json:"bad_record_urls"` // RecordURL not naming a recording of the call
	Reasons    map[string]int `json:"reasons,omitempty"`
	PeakPerSec int            `json:"peak_per_second"` // most RecordCompleted in one second
	RatePerSec float64        `json:"rate_per_second"` // delivered / (last - first arrival)
	// WaitSeconds: from the last call's end until every recording was
	// finished (and, with callbacks, every RecordCompleted had arrived).
	WaitSeconds float64  `json:"wait_seconds"`
	Problems    []string `json:"problems,omitempty"`
}

// report checks the callbacks against the recordings found (paths
// relative to the recordings root, e.g. HttpRecordings/x.wav).
func (a *ozmlApp) report(recDir string) *CallbackReport {
	a.mu.Lock()
	defer a.mu.Unlock()
	cr := &CallbackReport{Enabled: a.callbacks, Calls: len(a.incoming), BadSig: a.badSig, Reasons: map[string]int{}}
	cr.Problems = append(cr.Problems, a.problems...)
	if a.callbacks {
		cr.Expected = len(a.incoming)
	}
	for id, ns := range a.completed {
		cr.Delivered += len(ns)
		if len(ns) > 1 {
			cr.Duplicates += len(ns) - 1
		}
		if !a.incoming[id] {
			cr.Unknown++
		}
		for _, n := range ns {
			cr.Reasons[n.reason+"/"+n.state]++
			if !recordURLNames(n.recordURL, recDir, id) {
				cr.BadURL++
				if len(cr.Problems) < 50 {
					cr.Problems = append(cr.Problems, fmt.Sprintf("RecordURL of %s does not name its recording: %q", id, n.recordURL))
				}
			}
		}
	}
	for d, n := range a.delivery {
		if d != "" && n > 1 {
			cr.Duplicates += n - 1
		}
	}
	if a.callbacks {
		for id := range a.incoming {
			if len(a.completed[id]) == 0 {
				cr.Missing++
			}
		}
	}
	if len(a.times) > 0 {
		ts := append([]time.Time(nil), a.times...)
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
		if span := ts[len(ts)-1].Sub(ts[0]).Seconds(); span > 0 {
			cr.RatePerSec = float64(len(ts)) / span
		}
		j := 0
		for i := range ts {
			for ts[i].Sub(ts[j]) >= time.Second {
				j++
			}
			cr.PeakPerSec = max(cr.PeakPerSec, i-j+1)
		}
	}
	return cr
}

// recordURLNames: the RecordURL's path is /api/recordings/<base64 of the
// file's path><ext>, and the file is the call's recording under recDir.
func recordURLNames(raw, recDir, callID string) bool {
	u, err := url.Parse(raw)
	if err != nil || !strings.HasPrefix(u.Path, "/api/recordings/") {
		return false
	}
	name := strings.TrimPrefix(u.Path, "/api/recordings/")
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimSuffix(name, filepath.Ext(name)))
	if err != nil {
		return false
	}
	p := string(b)
	return filepath.Dir(p) == filepath.Join(recDir, ozmlFolder) && strings.HasPrefix(filepath.Base(p), unsafeName.ReplaceAllString(callID, "_")+"-") &&
		strings.HasSuffix(p, ".wav") && u.Query().Get("sig") != ""
}
