package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapedeck/tapedeck/internal/rtp"
	"github.com/tapedeck/tapedeck/internal/sdp"
	"github.com/tapedeck/tapedeck/internal/sipua"
	"github.com/tapedeck/tapedeck/internal/wakegrid"
)

const dtmfDigits = "123"

// callResult is what one call (the caller leg) did.
type callResult struct {
	answered bool
	failure  string // "" when the call went as planned
	setup    time.Duration
	held     time.Duration // answered -> BYE answered
	sent     int
	dtmfSent int
	sendErrs int
	received uint64
	lost     int64
}

// calleeResult is what one callee leg (scenario c) received and sent.
type calleeResult struct {
	sent     int
	received uint64
	lost     int64
}

type runner struct {
	c        config
	logf     func(string, ...any)
	audio    *audioLoop
	phone    *sipua.Phone
	callee   *sipua.Phone
	app      *ariApp
	ozml     *ozmlApp
	extra    *extraRecords
	pacer    *pacer
	target   string
	limit    int // audio packets per call
	extens   chan string
	results  []callResult
	inFlight atomic.Int64

	calleeMu  sync.Mutex
	callees   []calleeResult
	calleeWG  sync.WaitGroup
	calleeBad atomic.Int64
}

// run performs one load run and returns its report; err is for runs that
// could not be carried out at all (the report then may be partial or nil).
func run(ctx context.Context, c config, logf func(string, ...any)) (*Report, error) {
	audio, err := buildAudio()
	if err != nil {
		return nil, err
	}
	rep := newReport(c)
	r := &runner{c: c, logf: logf, audio: audio, limit: int(c.duration / packetInterval)}

	// The phones. Their RTP is read in batches, like the server's, so that
	// the load generator's share of the two cores stays small and its
	// receive path wakes neither itself nor (on loopback, where the sender
	// pays for the receiver's wake-up) the server per packet.
	poller, err := rtp.NewPoller(20*time.Millisecond, 100*time.Millisecond, 1)
	if err != nil {
		return nil, err
	}
	defer poller.Close()
	r.phone, err = sipua.New(sipua.Options{User: "loadgen", Host: "127.0.0.1", RTPMin: 22000, RTPMax: 25999, Poller: poller})
	if err != nil {
		return nil, err
	}
	defer r.phone.Close()
	if c.scenario == "c" || c.scenario == "p" {
		r.callee, err = sipua.New(sipua.Options{User: "callee", Host: "127.0.0.1", RTPMin: 26000, RTPMax: 29999, AutoAnswer: true,
			IncomingHandler: func() rtp.Handler { return sipua.NoopHandler{} }, Poller: poller})
		if err != nil {
			return nil, err
		}
		defer r.callee.Close()
	}
	extra, dialplan := "", ""
	if c.scenario == "p" {
		extra = policyConfig(r.phone.Port())
	}
	if c.streamBatchMs > 0 {
		extra += fmt.Sprintf("ari:\n  audiosocket_batch_ms: %d\n", c.streamBatchMs)
	}
	if c.scenario == "o" {
		// Scenario o: loadgen's OzML application (and callback receiver).
		if c.recordRate > 0 {
			if r.extra, err = newExtraRecords(c.recordRate, !c.recordNoURL); err != nil {
				return nil, err
			}
			defer r.extra.close()
		}
		r.ozml, err = newOZMLApp(c.callbacks, r.extra)
		if err != nil {
			return nil, err
		}
		defer r.ozml.close()
		extra, dialplan = r.ozml.serverConfig(), r.ozml.dialplan()
	}

	// The server(s).
	pid, sipAddr, httpBase, recDir := c.serverPID, c.target, strings.TrimRight(c.ari, "/"), c.recordings
	var nodes []*managedServer
	var kam *kamailioProc
	if c.serverCmd != "" {
		dir, err := os.MkdirTemp("", "loadgen-")
		if err != nil {
			return nil, err
		}
		if c.keep {
			logf("keeping %s", dir)
		} else {
			defer os.RemoveAll(dir)
		}
		dsn := ""
		if c.pg != "" {
			var drop func() error
			dsn, drop, err = pgFreshDatabase(ctx, c.pg)
			if err != nil {
				return nil, err
			}
			defer func() {
				if err := drop(); err != nil {
					logf("dropping the run's database: %v", err)
				}
			}()
		}
		// The nodes stop before the database goes (defers run last first).
		defer func() {
			for _, srv := range nodes {
				if err := srv.stop(); err != nil {
					logf("tapedeck stop: %v", err)
				}
			}
		}()
		prefix := runPrefix()
		var cpuSets []string
		if c.pinNodes {
			var err error
			if cpuSets, err = nodeCPUSets(c.nodes); err != nil {
				return nil, err
			}
		}
		for i := 0; i < c.nodes; i++ {
			ndir := dir
			nextra := extra
			rtpMin, rtpMax := 10000, 20000
			if c.nodes > 1 || dsn != "" || c.nats != "" {
				ndir = filepath.Join(dir, fmt.Sprintf("node-%c", 'a'+i))
				if err := os.MkdirAll(ndir, 0o755); err != nil {
					return nil, err
				}
				nextra += clusterExtra(i, dsn, c.nats, prefix)
				span := 10000 / c.nodes
				rtpMin, rtpMax = 10000+i*span, 10000+(i+1)*span-1
			}
			cmdline, cpus := c.serverCmd, ""
			if cpuSets != nil {
				// taskset execs the server: the PID measured is the node's.
				cpus = cpuSets[i]
				cmdline = "taskset -c " + cpus + " " + cmdline
			}
			srv, err := startServer(ctx, cmdline, ndir, dialplan, nextra, rtpMin, rtpMax)
			if err != nil {
				return nil, err
			}
			nodes = append(nodes, srv)
			if cpus != "" {
				// What the kernel says the node may run on, not what
				// was asked.
				got, err := cpusAllowed(srv.pid())
				if err != nil || got != cpus {
					return nil, fmt.Errorf("-pin-nodes: node %d (pid %d) runs on CPUs %q (%v), want %q", i, srv.pid(), got, err, cpus)
				}
			}
			logf("tapedeck node %d pid %d sip %s http %s data %s cpus %q", i, srv.pid(), srv.sipAddr, srv.httpAddr, srv.dataDir, cpus)
			if c.nodes > 1 || c.kamailio || dsn != "" || c.nats != "" {
				rep.Nodes = append(rep.Nodes, NodeReport{Name: fmt.Sprintf("loadgen-%c", 'a'+i), PID: srv.pid(), SIP: srv.sipAddr, CPUs: cpus})
			}
		}
		srv := nodes[0]
		pid, sipAddr, httpBase = srv.pid(), srv.sipAddr, "http://"+srv.httpAddr
		recDir = filepath.Join(srv.dataDir, "recording")
		rep.Server = fmt.Sprintf("%s (started by loadgen, pid %d, sip %s, http %s)", c.serverCmd, pid, sipAddr, srv.httpAddr)
		if len(nodes) > 1 || dsn != "" || c.nats != "" {
			rep.Server = fmt.Sprintf("%s × %d nodes started by loadgen (catalog %s, NATS %s)", c.serverCmd, len(nodes),
				map[bool]string{true: "PostgreSQL, one fresh database", false: "SQLite each"}[dsn != ""], map[bool]string{true: c.nats, false: "none"}[c.nats != ""])
			if cpuSets != nil {
				rep.Server += fmt.Sprintf(", each on CPUs of its own %v", cpuSets)
			}
		}
		if c.kamailio {
			addrs := make([]string, len(nodes))
			for i, n := range nodes {
				addrs[i] = n.sipAddr
			}
			kam, err = startKamailio(ctx, c.kamailioCfg, dir, addrs, r.phone)
			if err != nil {
				return nil, err
			}
			defer kam.stop()
			sipAddr = kam.addr
			rep.Kamailio = &KamailioReport{Addr: kam.addr, Config: c.kamailioCfg}
			rep.Server += fmt.Sprintf(", calls through Kamailio %s (%s)", kam.addr, c.kamailioCfg)
			logf("kamailio on %s in front of %v", kam.addr, addrs)
		}
	} else {
		rep.Server = fmt.Sprintf("pid %d, sip %s, http %s", pid, sipAddr, httpBase)
	}
	if _, err := readCPU(pid); err != nil {
		return nil, fmt.Errorf("server pid %d: %w", pid, err)
	}
	pids := []int{pid}
	httpBases := []string{httpBase}
	recDirs := []string{recDir}
	if len(nodes) > 1 {
		pids, httpBases, recDirs = nil, nil, nil
		for _, n := range nodes {
			pids = append(pids, n.pid())
			httpBases = append(httpBases, "http://"+n.httpAddr)
			recDirs = append(recDirs, filepath.Join(n.dataDir, "recording"))
		}
	}

	host, port, _ := strings.Cut(sipAddr, ":")
	if host == "" || port == "" {
		return nil, fmt.Errorf("bad SIP address %q", sipAddr)
	}
	r.target = sipAddr

	// Scenario p: the callee is a user registered with tapedeck.
	if c.scenario == "p" {
		if c.serverCmd == "" {
			return nil, errors.New("scenario p needs -server-cmd (it configures a trunk and a user)")
		}
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := setupPolicyUser(pctx, httpBase, sipAddr, r.callee.Port())
		cancel()
		if err != nil {
			return nil, fmt.Errorf("scenario p: %w", err)
		}
	}

	// The ARI application.
	if c.scenario == "b" || c.scenario == "b2" || c.scenario == "e" || c.scenario == "c" {
		calleeEP := ""
		if r.callee != nil {
			calleeEP = "PJSIP/callee@127.0.0.1:" + strconv.Itoa(r.callee.Port())
		}
		r.app = newARIApp(httpBase, c.ariUser, c.ariPass, c.scenario, calleeEP, logf)
		if c.scenario == "e" {
			rcv, err := newStreamReceiver(poller)
			if err != nil {
				return nil, err
			}
			defer rcv.close()
			r.app.stream, r.app.streamFormat, r.app.streamVia, r.app.streamEncap = rcv, c.streamFormat, c.streamVia, c.streamEncap
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := r.app.connect(cctx)
		cancel()
		if err != nil {
			return nil, err
		}
		defer r.app.close()
	}
	r.extens = make(chan string, 100)
	for i := 300; i < 400; i++ {
		r.extens <- strconv.Itoa(i)
	}

	stopPacer := make(chan struct{})
	r.pacer = newPacer(c.tick)
	go r.pacer.run(stopPacer)
	defer close(stopPacer)
	if r.callee != nil {
		go r.answerCallees(ctx)
	}

	// Baseline.
	h0, err := getHealth(ctx, httpBase, c.ariUser, c.ariPass)
	if err != nil {
		return nil, fmt.Errorf("server health: %w", err)
	}
	rep.HealthBefore = h0.raw
	rss0, thr0, _ := procStatus(pid)
	samp := newSampler(pid, httpBase, c.ariUser, c.ariPass)
	sampCtx, stopSamp := context.WithCancel(ctx)
	sampDone := make(chan struct{})
	go func() { samp.run(sampCtx); close(sampDone) }()
	// The other nodes' samplers count their channels (memory figures are
	// the first node's).
	others := make([]*sampler, 0, len(pids)-1)
	for i := 1; i < len(pids); i++ {
		o := newSampler(pids[i], httpBases[i], c.ariUser, c.ariPass)
		others = append(others, o)
		sampDone := make(chan struct{})
		go func() { o.run(sampCtx); close(sampDone) }()
		defer func() { <-sampDone }()
	}
	scrapeDone := make(chan struct{})
	var scrapes atomic.Int64
	var scrapeErr atomic.Value
	go func() {
		defer close(scrapeDone)
		if c.scrape > 0 {
			scrapeMetrics(sampCtx, httpBase, c.scrape, &scrapes, &scrapeErr)
		}
	}()
	runStart := time.Now()
	self0, _ := readCPU(os.Getpid())
	cpu0, each0 := sumCPU(pids)
	var kam0 procCPU
	if kam != nil {
		kam0 = kam.cpu()
	}
	t0 := time.Now()

	// Calls.
	r.results = make([]callResult, c.calls)
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / c.rate)
	logf("scenario %s: %d calls at %.0f/s, %v each, target %s", c.scenario, c.calls, c.rate, c.duration, sipAddr)
launch:
	for i := 0; i < c.calls; i++ {
		if d := time.Until(t0.Add(time.Duration(i) * interval)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				for j := i; j < c.calls; j++ {
					r.results[j].failure = "not placed (interrupted)"
				}
				break launch
			}
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r.results[i] = r.call(ctx, i)
		}(i)
	}
	progress := time.NewTicker(5 * time.Second)
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	extraDone := make(chan struct{})
	if r.extra != nil {
		r.extra.apiBase = httpBase
		xctx, xcancel := context.WithCancel(ctx)
		go func() { <-allDone; xcancel() }()
		go func() { defer close(extraDone); r.extra.drive(xctx, c.duration, r.ozml.calls) }()
	} else {
		close(extraDone)
	}
wait:
	for {
		select {
		case <-allDone:
			break wait
		case <-progress.C:
			logf("%.0fs: %d calls in progress", time.Since(t0).Seconds(), r.inFlight.Load())
		}
	}
	progress.Stop()
	callsEnded := time.Now()

	// "Every call has ended" from the server's side: no channels left.
	drained := false
	dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
	for dctx.Err() == nil {
		idle := 0
		for _, base := range httpBases {
			if h, err := getHealth(dctx, base, c.ariUser, c.ariPass); err == nil && h.channels == 0 {
				idle++
			}
		}
		if idle == len(httpBases) {
			drained = true
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	dcancel()
	// A call's work ends with its recording finished (and, scenario o with
	// -callbacks, its RecordCompleted delivered): that is in the CPU
	// figure. The ARI app's recordings are finished at RecordingFinished.
	if r.app != nil {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if n := r.app.waitRecordings(wctx); n > 0 {
			rep.fail(fmt.Sprintf("%d recordings not finished 30 s after the calls", n))
		}
		cancel()
	}
	if r.ozml != nil && recDir != "" {
		if c.callbacks {
			if n := r.ozml.waitCallbacks(30 * time.Second); n > 0 {
				rep.fail(fmt.Sprintf("%d RecordCompleted callbacks not delivered 30 s after the calls", n))
			}
		}
		if n := waitPolicyRecordings(ctx, filepath.Join(recDir, ozmlFolder), r.results, 30*time.Second); n > 0 {
			rep.fail(fmt.Sprintf("%d script recordings not finished 30 s after the calls", n))
		}
	}
	<-extraDone
	if r.extra != nil {
		if n := r.extra.wait(30 * time.Second); n > 0 {
			rep.fail(fmt.Sprintf("%d RecordCompleted of the Record commands not delivered 30 s after the calls", n))
		}
	}
	finished := time.Now()
	cpu1, each1 := sumCPU(pids)
	if kam != nil {
		k1 := kam.cpu()
		rep.Kamailio.CPUSeconds = float64(k1.utime-kam0.utime+k1.stime-kam0.stime) / float64(clockTicks)
	}
	for i := range rep.Nodes {
		if i < len(each1) {
			rep.Nodes[i].CPUSeconds = float64(each1[i].utime-each0[i].utime+each1[i].stime-each0[i].stime) / float64(clockTicks)
		}
	}
	self1, _ := readCPU(os.Getpid())
	t1 := time.Now()
	stopSamp()
	<-sampDone
	<-scrapeDone
	rep.MetricsScrapes = scrapes.Load()
	if err, _ := scrapeErr.Load().(error); err != nil {
		rep.fail("/metrics: " + err.Error())
	}
	if !drained {
		rep.fail("server still had channels 30 s after the last call ended")
	}
	r.calleeWG.Wait()

	// Scenario p: the policy recordings are finished when their WAV
	// headers are final (written at close).
	if c.scenario == "p" && recDir != "" {
		if n := waitPolicyRecordings(ctx, filepath.Join(recDir, "policy"), r.results, 30*time.Second); n > 0 {
			rep.fail(fmt.Sprintf("%d policy recordings not finished 30 s after the calls", n))
		}
	}

	// The ARI app's errors and streams (its recordings were waited for
	// above, before the CPU was read).
	if r.app != nil {
		rep.ARIErrors = r.app.errorList()
		rep.ARIRestCalls = r.app.restCalls.Load()
		if r.app.stream != nil {
			rep.Streams = r.app.stream.report(r.app.streamFormat, r.limit*frameSamples, r.app.streamsExpected())
			if rep.Streams.Short > 0 || rep.Streams.Received < rep.Streams.Expected {
				rep.fail(fmt.Sprintf("external media: %d of %d streams received, %d short", rep.Streams.Received, rep.Streams.Expected, rep.Streams.Short))
			}
		}
	}

	if r.extra != nil {
		er := r.extra.report()
		rep.ExtraRecords = er
		if er.Duplicates > 0 || er.BadSig > 0 || er.WithURL && int64(er.Delivered) != er.Accepted || !er.WithURL && er.Delivered != 0 {
			rep.fail(fmt.Sprintf("Record commands: %d accepted, %d callbacks delivered, %d duplicates, %d bad signatures",
				er.Accepted, er.Delivered, er.Duplicates, er.BadSig))
		}
	}
	if r.ozml != nil {
		cr := r.ozml.report(recDir)
		cr.WaitSeconds = finished.Sub(callsEnded).Seconds()
		rep.Callbacks = cr
		answered := 0
		for _, res := range r.results {
			if res.answered {
				answered++
			}
		}
		switch {
		case cr.Calls != answered:
			rep.fail(fmt.Sprintf("script: %d IncomingCall notifications for %d answered calls", cr.Calls, answered))
		case cr.Missing > 0 || cr.Duplicates > 0 || cr.Unknown > 0 || cr.BadSig > 0 || cr.BadURL > 0 || cr.Delivered != cr.Expected:
			rep.fail(fmt.Sprintf("callbacks: %d delivered of %d expected, %d missing, %d duplicates, %d unknown, %d bad signatures, %d bad RecordURLs",
				cr.Delivered, cr.Expected, cr.Missing, cr.Duplicates, cr.Unknown, cr.BadSig, cr.BadURL))
		case len(cr.Problems) > 0:
			rep.fail("script application: " + cr.Problems[0])
		}
	}

	// Figures.
	rep.fill(r, runStart)
	rep.WallSeconds = t1.Sub(t0).Seconds()
	rep.DrainSeconds = t1.Sub(callsEnded).Seconds()
	rep.setCPU(cpu0, cpu1, self0, self1)
	rep.setMemory(rss0, thr0, samp, c.calls)
	rep.PeakChannels = samp.maxChannels.Load()
	for _, o := range others {
		rep.PeakChannels += o.maxChannels.Load()
	}
	if c.soak {
		up := int64(min(float64(c.calls), c.rate*c.duration.Seconds()))
		if c.scenario == "c" || c.scenario == "p" {
			up *= 2
		}
		rep.Soak = analyseSoak(samp.series.all(), up, c.duration.Seconds())
		if !rep.Soak.Flat {
			rep.fail("soak: " + rep.Soak.Why)
		}
	}
	if r.app != nil && c.dtmf {
		rep.DTMF.ServerEvents = r.app.dtmfEvents.Load()
		rep.DTMF.Checked = true
	}
	if recDir != "" {
		rep.checkRecordings(r, recDirs, runStart)
	} else {
		rep.Recordings.Note = "not checked: no -recordings DIR"
		rep.fail("recordings not checked (give -recordings DIR)")
	}
	rep.finish()
	return rep, nil
}

// call places one call and returns what happened.
func (r *runner) call(ctx context.Context, i int) (res callResult) {
	r.inFlight.Add(1)
	defer r.inFlight.Add(-1)
	exten := "2001"
	var gate chan struct{}
	switch r.c.scenario {
	case "p":
		exten = policyDID
	case "b", "b2", "e":
		exten = strconv.Itoa(300 + i%100)
	case "o":
		exten = strconv.Itoa(500 + i%100)
	case "c":
		select {
		case exten = <-r.extens:
		case <-ctx.Done():
			res.failure = "not placed (interrupted)"
			return res
		}
		defer func() { r.extens <- exten }()
		gate = make(chan struct{})
		r.app.gates.Store(exten, gate)
		defer r.app.gates.Delete(exten)
	}
	dctx, cancel := context.WithTimeout(ctx, r.c.dialTimeout)
	call, err := r.phone.Dial(dctx, sipua.Target(exten, r.target), sipua.CallOptions{Codecs: []string{"PCMU", "PCMA"}})
	cancel()
	if err != nil {
		var rej *sipua.ErrRejected
		if errors.As(err, &rej) {
			res.failure = fmt.Sprintf("rejected %d %s", rej.Code, rej.Reason)
		} else {
			res.failure = "dial: " + shortErr(err)
		}
		return res
	}
	res.answered, res.setup = true, call.SetupTime
	answered := time.Now()
	bye := func() {
		hctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := call.Hangup(hctx); err != nil && res.failure == "" {
			res.failure = "BYE: " + shortErr(err)
		}
		cancel()
		res.held = time.Since(answered)
	}
	if gate != nil {
		select {
		case <-gate:
		case <-call.Ended():
			res.failure = "hung up by the server before the bridge recording started"
			res.held = time.Since(answered)
			return res
		case <-time.After(15 * time.Second):
			res.failure = "bridge recording did not start within 15 s"
			bye()
			return res
		}
	}
	if r.c.audioDelay > 0 {
		time.Sleep(r.c.audioDelay)
	}
	st := r.newStream(call, r.limit, r.c.dtmf)
	r.pacer.add(st)
	select {
	case <-st.gone:
	case <-call.Ended():
		st.stop()
		<-st.gone
		if st.sent < r.limit {
			res.failure = fmt.Sprintf("hung up by the server after %d of %d packets", st.sent, r.limit)
		}
	}
	res.sent, res.dtmfSent, res.sendErrs = st.sent, st.dtmfSent, st.errs
	if st.errs > 0 && res.failure == "" {
		res.failure = "RTP send errors"
	}
	call.Media().Flush()
	stats := call.Media().Stats()
	res.received, res.lost = stats.Received, stats.Lost
	if res.failure == "" {
		if r.c.byeDelay > 0 {
			time.Sleep(r.c.byeDelay)
		}
		bye()
	} else {
		res.held = time.Since(answered)
		hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = call.Hangup(hctx)
		cancel()
	}
	return res
}

func (r *runner) newStream(call *sipua.Call, limit int, dtmf bool) *stream {
	pcma := call.Codec().Name == "PCMA"
	var dtmfPT uint8
	if call.Answer != nil {
		if ch, err := sdp.Negotiate(call.Answer, []string{call.Codec().Name}); err == nil && ch.HasDTMF {
			dtmfPT = ch.DTMF.PayloadType
		}
	}
	digits := ""
	if dtmf {
		digits = dtmfDigits
	}
	return newStream(call.Media(), r.audio, pcma, dtmfPT, limit, digits)
}

// answerCallees sends audio on every answered callee leg until the server
// hangs it up (scenario c).
func (r *runner) answerCallees(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case call, ok := <-r.callee.Incoming():
			if !ok {
				return
			}
			r.calleeWG.Add(1)
			go func() {
				defer r.calleeWG.Done()
				st := r.newStream(call, 0, false)
				r.pacer.add(st)
				select {
				case <-call.Ended():
				case <-time.After(r.c.duration + time.Minute):
					r.calleeBad.Add(1)
					hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					_ = call.Hangup(hctx)
					cancel()
				}
				st.stop()
				<-st.gone
				s := call.Media().Stats()
				r.calleeMu.Lock()
				r.callees = append(r.callees, calleeResult{sent: st.sent, received: s.Received, lost: s.Lost})
				r.calleeMu.Unlock()
			}()
		}
	}
}

// sampler follows the server's memory, threads and channels during the run.
type sampler struct {
	pid         int
	base        string
	user, pass  string // ARI credentials: /healthz details need them
	maxRSS      atomic.Int64
	maxThreads  atomic.Int64
	maxChannels atomic.Int64
	maxGor      atomic.Int64
	// Every 5 s: a point of the soak series (from start).
	start  time.Time
	series series
	// Every second: the channels up and the RSS, for the RSS with all calls up.
	upMu sync.Mutex
	up   []upSample
}

type upSample struct {
	channels, rssKB int64
}

// rssAllUp is the median RSS of the samples taken while the most channels
// were up (within 5 %), or -1 without such samples.
func (s *sampler) rssAllUp() int64 {
	s.upMu.Lock()
	defer s.upMu.Unlock()
	var most int64
	for _, u := range s.up {
		most = max(most, u.channels)
	}
	var rss []int64
	for _, u := range s.up {
		if most > 0 && u.channels*100 >= most*95 {
			rss = append(rss, u.rssKB)
		}
	}
	if len(rss) == 0 {
		return -1
	}
	slices.Sort(rss)
	return rss[len(rss)/2]
}

func newSampler(pid int, base, user, pass string) *sampler {
	s := &sampler{pid: pid, base: base, user: user, pass: pass, start: time.Now()}
	s.maxGor.Store(-1)
	return s
}

// sampleEvery is the sampler's period: /proc every pass, /healthz on the
// passes that fall on a whole second, a soak point on whole 5 s.
const sampleEvery = 250 * time.Millisecond

// run samples until ctx ends: once at once (with the run's baseline
// /healthz, which has just woken the server), then at the multiples of
// sampleEvery on the wall clock. The server's periodic jobs wait for the
// multiples of their periods on the wall clock too (internal/wakegrid: the
// RTP poller's 100 ms, the writers' 200 ms, the readiness check's and the
// cluster announcement's 1 s), so a /healthz sent on a whole second reaches
// a node while it is awake for its own jobs. A free-running 1 s ticker, as
// before, sent it at the phase the run happened to start at: one more
// wake-up of every node a second, which on Go 1.26 also puts the runtime's
// monitor back to polling every 20 µs (bench/RESULTS.md, sched13, wake20) —
// the harness's cost, counted as the server's, in S once and in K per node.
// /proc/PID/status reads do not wake the server. A build without the grid
// (a490023) is sampled at the same instants, which are arbitrary to it.
func (s *sampler) run(ctx context.Context) {
	t := time.NewTimer(sampleEvery) // reset to the next instant after each pass
	defer t.Stop()
	at := time.Now()
	for n := 0; ; n++ {
		if rss, thr, err := procStatus(s.pid); err == nil {
			s.maxRSS.Store(max(s.maxRSS.Load(), rss))
			s.maxThreads.Store(max(s.maxThreads.Load(), thr))
		}
		if n == 0 || onWhole(at, time.Second) {
			hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if h, err := getHealth(hctx, s.base, s.user, s.pass); err == nil {
				s.maxChannels.Store(max(s.maxChannels.Load(), h.channels))
				if rss, _, err := procStatus(s.pid); err == nil {
					s.upMu.Lock()
					s.up = append(s.up, upSample{channels: h.channels, rssKB: rss})
					s.upMu.Unlock()
				}
				if h.goroutines >= 0 {
					s.maxGor.Store(max(s.maxGor.Load(), h.goroutines))
				}
				if n == 0 || onWhole(at, 5*time.Second) {
					rss, _, _ := procStatus(s.pid)
					kib := func(b int64) int64 {
						if b > 0 {
							return b / 1024
						}
						return b
					}
					s.series.add(soakSample{At: time.Since(s.start).Seconds(), Channels: h.channels, RSSKB: rss,
						Goroutines: h.goroutines, FDs: countFDs(s.pid), HeapLiveKB: kib(h.heapLive), GoHeldKB: kib(h.goHeld)})
				}
			}
			cancel()
		}
		now := time.Now()
		d := wakegrid.UntilFrom(now, sampleEvery)
		at = now.Add(d)
		t.Reset(d)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// onWhole tells whether instant at is a multiple of period on the wall clock.
func onWhole(at time.Time, period time.Duration) bool {
	return at.UnixNano()%int64(period) == 0
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(p*float64(len(s))+0.999999) - 1
	return s[max(0, min(k, len(s)-1))]
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

// scrapeMetrics GETs base/metrics every interval until ctx ends, reading
// each answer whole as a Prometheus server does; the first failure is kept
// in firstErr.
func scrapeMetrics(ctx context.Context, base string, every time.Duration, n *atomic.Int64, firstErr *atomic.Value) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := func() error {
			req, err := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
			if err != nil {
				return err
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			if err != nil {
				return err
			}
			if res.StatusCode != http.StatusOK || !strings.Contains(string(b), "tapedeck_") {
				return fmt.Errorf("%d, %d bytes without tapedeck_ metrics", res.StatusCode, len(b))
			}
			return nil
		}()
		if err != nil {
			if ctx.Err() == nil {
				firstErr.CompareAndSwap(nil, err)
			}
			continue
		}
		n.Add(1)
	}
}
