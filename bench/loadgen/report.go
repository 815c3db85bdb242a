package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Report is the outcome of one run (text, markdown and JSON).
type Report struct {
	CommandLine string  `json:"command_line"`
	Scenario    string  `json:"scenario"`
	Machine     Machine `json:"machine"`
	Server      string  `json:"server"`
	Started     string  `json:"started"`

	CallsRequested int          `json:"calls_requested"`
	Rate           float64      `json:"rate_per_s"`
	HoldSeconds    float64      `json:"hold_seconds"`
	DTMF           DTMFReport   `json:"dtmf"`
	Calls          CallsReport  `json:"calls"`
	Setup          SetupReport  `json:"setup_ms"`
	RTP            RTPReport    `json:"rtp"`
	CallSeconds    float64      `json:"call_seconds"`
	WallSeconds    float64      `json:"wall_seconds"`
	DrainSeconds   float64      `json:"drain_seconds"`
	CPU            CPUReport    `json:"server_cpu"`
	LoadgenCPUSec  float64      `json:"loadgen_cpu_seconds"`
	Memory         MemoryReport `json:"server_memory"`
	Soak           *SoakReport  `json:"soak,omitempty"`
	PeakChannels   int64        `json:"peak_channels"`
	MetricsScrapes int64        `json:"metrics_scrapes,omitempty"`
	HealthBefore   string       `json:"healthz_before"`
	Recordings     RecReport    `json:"recordings"`
	// Streams is scenario e's external media streams as loadgen's
	// AudioSocket receiver got them.
	Streams *StreamReport `json:"streams,omitempty"`
	// Callbacks is scenario o's script application: IncomingCall and,
	// with -callbacks, the RecordCompleted notifications it received.
	Callbacks *CallbackReport `json:"callbacks,omitempty"`
	// ExtraRecords: scenario o with -record-rate, the Ozeki Record
	// commands sent and their RecordCompleted received.
	ExtraRecords *ExtraRecordReport `json:"extra_records,omitempty"`
	// Nodes (cluster runs, cluster.go): each node's CPU and recordings;
	// CPU above is their sum. Kamailio's CPU is not in it.
	Nodes          []NodeReport    `json:"nodes,omitempty"`
	Kamailio       *KamailioReport `json:"kamailio,omitempty"`
	ARIRestCalls   int64           `json:"ari_rest_calls,omitempty"`
	ARIErrors      []string        `json:"ari_errors,omitempty"`
	FailureReasons map[string]int  `json:"failure_reasons,omitempty"`
	Problems       []string        `json:"problems,omitempty"`
	Passed         bool            `json:"passed"`
}

type Machine struct {
	NProc     int    `json:"nproc"`
	CPUModel  string `json:"cpu_model"`
	GoVersion string `json:"go_version"`
	Kernel    string `json:"kernel"`
}

type DTMFReport struct {
	Enabled      bool   `json:"enabled"`
	Digits       string `json:"digits,omitempty"`
	EventPackets int    `json:"event_packets_sent"`
	Checked      bool   `json:"checked"`
	Expected     int64  `json:"expected_server_events,omitempty"`
	ServerEvents int64  `json:"server_events,omitempty"` // ChannelDtmfReceived seen by the ARI app
}

type CallsReport struct {
	Attempted int `json:"attempted"`
	Answered  int `json:"answered"`
	Failed    int `json:"failed"`
	Legs      int `json:"callee_legs,omitempty"`
}

type SetupReport struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

type RTPReport struct {
	Sent           int64  `json:"sent"`
	DTMFSent       int64  `json:"dtmf_sent"`
	SendErrors     int64  `json:"send_errors"`
	Received       uint64 `json:"received"`
	Lost           int64  `json:"lost"`
	CalleeSent     int64  `json:"callee_sent,omitempty"`
	CalleeReceived uint64 `json:"callee_received,omitempty"`
	CalleeLost     int64  `json:"callee_lost,omitempty"`
	PacerLate      int64  `json:"pacer_late_packets"`
	PacerMaxBurst  int64  `json:"pacer_max_burst"`
}

type CPUReport struct {
	UserSeconds      float64 `json:"user_seconds"`
	SystemSeconds    float64 `json:"system_seconds"`
	TotalSeconds     float64 `json:"total_seconds"`
	MsPerCallSecond  float64 `json:"ms_per_call_second"` // server CPU ms per recorded call-second
	UserShare        float64 `json:"user_share"`
	CoresBusy        float64 `json:"cores_busy"` // average over the measurement window
	CallsPerCoreEst  float64 `json:"calls_per_core_estimate"`
	ClockTicksPerSec int64   `json:"clock_ticks_per_second"`
}

type MemoryReport struct {
	RSSBeforeKB  int64   `json:"rss_before_kb"`
	RSSPeakKB    int64   `json:"rss_peak_kb"`
	RSSPerCallKB float64 `json:"rss_per_call_kb"` // (peak - before) / calls up at once
	// RSSAllUpKB is the median RSS while all the calls were up, and
	// RSSPerActiveCallKB (it - before) / calls up: the memory an active
	// call holds, without the transients of set-up and tear-down waves.
	RSSAllUpKB         int64   `json:"rss_all_up_kb"`
	RSSPerActiveCallKB float64 `json:"rss_per_active_call_kb"`
	ThreadsBefore      int64   `json:"threads_before"`
	ThreadsPeak        int64   `json:"threads_peak"`
	ThreadsPerCall     float64 `json:"threads_per_call"`
	GoroutinesPerCall  float64 `json:"goroutines_per_call,omitempty"`
	GoroutinesNote     string  `json:"goroutines_note,omitempty"`
}

type RecReport struct {
	Dir        string  `json:"dir"`
	Expected   int     `json:"expected"`
	Found      int     `json:"found"`
	Missing    int     `json:"missing"`
	Unreadable int     `json:"unreadable"`
	WithGap    int     `json:"with_gap"`
	BadLength  int     `json:"bad_length"`
	BadHeader  int     `json:"bad_header"`
	GapMs      float64 `json:"gap_ms_total"`
	// GapsFromLateSender: the gaps are all of a bridge-clocked recording
	// (scenarios c and p) and add up to no more than the packets loadgen's
	// own pacer sent late (20 ms each). A bridge mixes in real time: a
	// packet that comes more than the play-out buffer's 20-40 ms late is
	// heard, and recorded, as 20 ms of silence followed by the packet, so
	// a loadgen starved of CPU makes such gaps itself (nothing it sent is
	// missing). Gaps beyond that are the server's, and fail the run.
	GapsFromLateSender bool       `json:"gaps_from_late_sender,omitempty"`
	OffMsMin           float64    `json:"off_ms_min"`
	OffMsMax           float64    `json:"off_ms_max"`
	LeadMsMax          float64    `json:"lead_trimmed_ms_max,omitempty"`
	TrailMsMax         float64    `json:"trail_trimmed_ms_max,omitempty"`
	Bad                []recCheck `json:"bad,omitempty"` // up to 20
	Note               string     `json:"note,omitempty"`
}

func newReport(c config) *Report {
	r := &Report{Scenario: c.scenario, CallsRequested: c.calls, Rate: c.rate, HoldSeconds: c.duration.Seconds(),
		Started: time.Now().UTC().Format(time.RFC3339), FailureReasons: map[string]int{}}
	r.Machine = Machine{NProc: runtime.NumCPU(), GoVersion: runtime.Version(), CPUModel: cpuModel(), Kernel: kernel()}
	if c.dtmf {
		r.DTMF = DTMFReport{Enabled: true, Digits: dtmfDigits}
	}
	return r
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

func (r *Report) fail(why string) { r.Problems = append(r.Problems, why) }

func (r *Report) fill(rn *runner, _ time.Time) {
	var setups []time.Duration
	for _, c := range rn.results {
		r.Calls.Attempted++
		if c.answered {
			r.Calls.Answered++
			setups = append(setups, c.setup)
		}
		if c.failure != "" {
			r.Calls.Failed++
			key := c.failure
			if i := strings.IndexAny(key, "0123456789"); i > 0 && strings.HasPrefix(key, "hung up by the server after") {
				key = "hung up by the server early"
			}
			r.FailureReasons[key]++
		}
		r.CallSeconds += c.held.Seconds()
		r.RTP.Sent += int64(c.sent)
		r.RTP.DTMFSent += int64(c.dtmfSent)
		r.RTP.SendErrors += int64(c.sendErrs)
		r.RTP.Received += c.received
		r.RTP.Lost += c.lost
	}
	r.DTMF.EventPackets = int(r.RTP.DTMFSent)
	r.Setup = SetupReport{P50: ms(percentile(setups, 0.50)), P99: ms(percentile(setups, 0.99)), Max: ms(percentile(setups, 1))}
	rn.calleeMu.Lock()
	for _, c := range rn.callees {
		r.Calls.Legs++
		r.RTP.CalleeSent += int64(c.sent)
		r.RTP.CalleeReceived += c.received
		r.RTP.CalleeLost += c.lost
	}
	rn.calleeMu.Unlock()
	if n := rn.calleeBad.Load(); n > 0 {
		r.fail(fmt.Sprintf("%d callee legs were never hung up by the server", n))
	}
	r.RTP.PacerLate = rn.pacer.late.Load()
	r.RTP.PacerMaxBurst = rn.pacer.maxBurst.Load()
	if r.DTMF.Enabled && rn.app != nil {
		r.DTMF.Expected = int64(r.Calls.Answered-r.Calls.Failed) * int64(len(dtmfDigits))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (r *Report) setCPU(c0, c1, s0, s1 procCPU) {
	hz := float64(clockTicks)
	u := float64(c1.utime-c0.utime) / hz
	s := float64(c1.stime-c0.stime) / hz
	r.CPU = CPUReport{UserSeconds: u, SystemSeconds: s, TotalSeconds: u + s, ClockTicksPerSec: clockTicks}
	if u+s > 0 {
		r.CPU.UserShare = u / (u + s)
	}
	if r.CallSeconds > 0 {
		r.CPU.MsPerCallSecond = (u + s) * 1000 / r.CallSeconds
		if r.CPU.MsPerCallSecond > 0 {
			r.CPU.CallsPerCoreEst = 1000 / r.CPU.MsPerCallSecond
		}
	}
	if r.WallSeconds > 0 {
		r.CPU.CoresBusy = (u + s) / r.WallSeconds
	}
	r.LoadgenCPUSec = float64(s1.utime-s0.utime+s1.stime-s0.stime) / hz
}

func (r *Report) setMemory(rss0, thr0 int64, s *sampler, calls int) {
	m := MemoryReport{RSSBeforeKB: rss0, RSSPeakKB: max(s.maxRSS.Load(), rss0), ThreadsBefore: thr0, ThreadsPeak: max(s.maxThreads.Load(), thr0)}
	peak := max(r.PeakChannels, s.maxChannels.Load())
	n := float64(calls)
	if r.Scenario == "c" && peak > 0 {
		n = float64(peak) / 2 // two channels per bridged call
	} else if peak > 0 && float64(peak) < n {
		n = float64(peak) // calls up at the same time
	}
	if n > 0 {
		m.RSSPerCallKB = float64(m.RSSPeakKB-m.RSSBeforeKB) / n
		if up := s.rssAllUp(); up > 0 {
			m.RSSAllUpKB = up
			m.RSSPerActiveCallKB = float64(up-m.RSSBeforeKB) / n
		}
		m.ThreadsPerCall = float64(m.ThreadsPeak-m.ThreadsBefore) / n
	}
	if g := s.maxGor.Load(); g >= 0 {
		m.GoroutinesPerCall = float64(g) / n
	} else {
		m.GoroutinesNote = "tapedeck's /healthz does not expose a goroutine count (it prints \"ok N channels\"); threads from /proc/PID/status are reported instead"
	}
	r.Memory = m
}

// checkRecordings checks the run's recordings under dirs (one per node;
// only scenario a runs on several nodes).
func (r *Report) checkRecordings(rn *runner, dirs []string, since time.Time) {
	rr := &r.Recordings
	dir := dirs[0]
	rr.Dir = strings.Join(dirs, ", ")
	sent := rn.limit * frameSamples
	type item struct{ name, path string }
	var items []item
	switch r.Scenario {
	case "a":
		for i, dir := range dirs {
			matches, _ := filepath.Glob(filepath.Join(dir, "calls", "2001-*.wav"))
			for _, p := range matches {
				if fi, err := os.Stat(p); err == nil && !fi.ModTime().Before(since.Add(-time.Second)) {
					items = append(items, item{strings.TrimSuffix(strings.TrimPrefix(p, dir+"/"), ".wav"), p})
					if i < len(r.Nodes) {
						r.Nodes[i].Recordings++
					}
				}
			}
		}
		rr.Expected = r.Calls.Answered
	case "o":
		matches, _ := filepath.Glob(filepath.Join(dir, ozmlFolder, "*.wav"))
		for _, p := range matches {
			if fi, err := os.Stat(p); err == nil && !fi.ModTime().Before(since.Add(-time.Second)) {
				items = append(items, item{strings.TrimSuffix(strings.TrimPrefix(p, dir+"/"), ".wav"), p})
			}
		}
		rr.Expected = r.Calls.Answered
	case "p":
		matches, _ := filepath.Glob(filepath.Join(dir, "policy", "*.wav"))
		for _, p := range matches {
			if fi, err := os.Stat(p); err == nil && !fi.ModTime().Before(since.Add(-time.Second)) {
				items = append(items, item{strings.TrimSuffix(strings.TrimPrefix(p, dir+"/"), ".wav"), p})
			}
		}
		rr.Expected = r.Calls.Answered
	default:
		recs := rn.app.recordings()
		names := make([]string, 0, len(recs))
		for n := range recs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			items = append(items, item{n, filepath.Join(dir, n+".wav")})
		}
		rr.Expected = r.Calls.Answered
		if r.Scenario == "b2" {
			rr.Expected = 2 * r.Calls.Answered
		}
		if r.Scenario == "c" {
			// A bridge recording exists only for calls whose callee answered.
			rr.Expected = r.Calls.Answered
		}
		if r.Scenario == "e" && rn.app.streamVia == "call" {
			rr.Expected = 0 // the streamed calls are not recorded
		}
	}
	first := true
	for _, it := range items {
		if _, err := os.Stat(it.path); err != nil {
			continue
		}
		rr.Found++
		rc := checkRecording(it.path, it.name, sent, 20)
		bad := rc.Unreadable || rc.BadLength || rc.HasGap || !rc.HeaderOK
		switch {
		case rc.Unreadable:
			rr.Unreadable++
		default:
			if rc.HasGap {
				rr.WithGap++
			}
			if rc.BadLength {
				rr.BadLength++
			}
			if !rc.HeaderOK {
				rr.BadHeader++
			}
			rr.GapMs += rc.Gaps.GapMs + rc.RightGaps.GapMs
			if first {
				rr.OffMsMin, rr.OffMsMax = rc.OffMs, rc.OffMs
				first = false
			}
			rr.OffMsMin, rr.OffMsMax = min(rr.OffMsMin, rc.OffMs), max(rr.OffMsMax, rc.OffMs)
			rr.LeadMsMax, rr.TrailMsMax = max(rr.LeadMsMax, rc.LeadMs), max(rr.TrailMsMax, rc.TrailMs)
		}
		if bad && len(rr.Bad) < 20 {
			rr.Bad = append(rr.Bad, rc)
		}
	}
	rr.Missing = max(0, rr.Expected-rr.Found)
}

func (r *Report) finish() {
	if r.Calls.Failed > 0 {
		r.fail(fmt.Sprintf("%d failed calls", r.Calls.Failed))
	}
	rr := r.Recordings
	if rr.Missing > 0 {
		r.fail(fmt.Sprintf("%d recordings missing", rr.Missing))
	}
	if rr.Unreadable > 0 {
		r.fail(fmt.Sprintf("%d recordings unreadable", rr.Unreadable))
	}
	if rr.WithGap > 0 {
		if (r.Scenario == "c" || r.Scenario == "p") && rr.GapMs <= float64(r.RTP.PacerLate)*float64(packetInterval/time.Millisecond) {
			r.Recordings.GapsFromLateSender = true
		} else {
			r.fail(fmt.Sprintf("%d recordings with gaps (%.0f ms in all)", rr.WithGap, rr.GapMs))
		}
	}
	if rr.BadLength > 0 {
		r.fail(fmt.Sprintf("%d recordings whose length is off by more than 20 ms", rr.BadLength))
	}
	if rr.BadHeader > 0 {
		r.fail(fmt.Sprintf("%d recordings whose WAV header does not match the data", rr.BadHeader))
	}
	if r.DTMF.Checked && r.DTMF.ServerEvents < r.DTMF.Expected {
		r.fail(fmt.Sprintf("DTMF: the server reported %d of %d digits", r.DTMF.ServerEvents, r.DTMF.Expected))
	}
	if r.CPU.TotalSeconds <= 0 {
		r.fail("no server CPU time measured")
	}
	r.Passed = len(r.Problems) == 0
}

func verdict(ok bool) string {
	if ok {
		return "PASSED"
	}
	return "FAILED"
}

func (r *Report) writeText(w io.Writer) {
	tw := func(k, f string, a ...any) { fmt.Fprintf(w, "  %-28s %s\n", k, fmt.Sprintf(f, a...)) }
	fmt.Fprintf(w, "loadgen scenario %s: %s\n", r.Scenario, verdict(r.Passed))
	tw("command", "%s", r.CommandLine)
	tw("machine", "%d CPU %s, %s, Linux %s", r.Machine.NProc, r.Machine.CPUModel, r.Machine.GoVersion, r.Machine.Kernel)
	tw("server", "%s", r.Server)
	tw("calls attempted/answered/failed", "%d / %d / %d (hold %.0f s, %.0f new/s)", r.Calls.Attempted, r.Calls.Answered, r.Calls.Failed, r.HoldSeconds, r.Rate)
	if r.Calls.Legs > 0 {
		tw("callee legs", "%d", r.Calls.Legs)
	}
	for k, v := range r.FailureReasons {
		tw("  failure", "%d × %s", v, k)
	}
	if r.MetricsScrapes > 0 {
		tw("/metrics scrapes", "%d", r.MetricsScrapes)
	}
	tw("setup p50 / p99 / max", "%.2f / %.2f / %.2f ms", r.Setup.P50, r.Setup.P99, r.Setup.Max)
	tw("RTP sent (audio / dtmf)", "%d / %d, send errors %d, pacer late %d (max burst %d)", r.RTP.Sent, r.RTP.DTMFSent, r.RTP.SendErrors, r.RTP.PacerLate, r.RTP.PacerMaxBurst)
	if r.Scenario == "c" {
		tw("RTP received caller / callee", "%d (lost %d) / %d (lost %d); callee sent %d", r.RTP.Received, r.RTP.Lost, r.RTP.CalleeReceived, r.RTP.CalleeLost, r.RTP.CalleeSent)
	}
	if r.DTMF.Enabled {
		if r.DTMF.Checked {
			tw("DTMF", "digits %q per call, server events %d / %d expected", r.DTMF.Digits, r.DTMF.ServerEvents, r.DTMF.Expected)
		} else {
			tw("DTMF", "digits %q per call (not verifiable without ARI)", r.DTMF.Digits)
		}
	}
	tw("call-seconds / wall", "%.1f s / %.1f s (drain %.2f s)", r.CallSeconds, r.WallSeconds, r.DrainSeconds)
	tw("server CPU user / sys", "%.2f s / %.2f s (%.0f%% user), %.2f cores busy", r.CPU.UserSeconds, r.CPU.SystemSeconds, 100*r.CPU.UserShare, r.CPU.CoresBusy)
	tw("server CPU per call-second", "%.3f ms (≈ %.0f calls per core)", r.CPU.MsPerCallSecond, r.CPU.CallsPerCoreEst)
	for _, n := range r.Nodes {
		cpus := ""
		if n.CPUs != "" {
			cpus = " on CPUs " + n.CPUs
		}
		tw("  node "+n.Name, "pid %d sip %s%s: CPU %.2f s, %d recordings", n.PID, n.SIP, cpus, n.CPUSeconds, n.Recordings)
	}
	if k := r.Kamailio; k != nil {
		tw("Kamailio CPU (not above)", "%.2f s (%.3f ms per call-second), %s", k.CPUSeconds, k.CPUSeconds*1000/max(r.CallSeconds, 1e-9), k.Addr)
	}
	tw("loadgen CPU", "%.2f s", r.LoadgenCPUSec)
	if len(r.Nodes) > 1 {
		tw("memory figures", "the first node's, with its channels")
	}
	tw("server RSS before / all up / peak", "%d / %d / %d KiB: %.1f KiB per active call (%.1f at the peak)", r.Memory.RSSBeforeKB, r.Memory.RSSAllUpKB, r.Memory.RSSPeakKB, r.Memory.RSSPerActiveCallKB, r.Memory.RSSPerCallKB)
	tw("server threads before / peak", "%d / %d, %.2f per call", r.Memory.ThreadsBefore, r.Memory.ThreadsPeak, r.Memory.ThreadsPerCall)
	if r.Memory.GoroutinesNote != "" {
		tw("goroutines", "n/a: %s", r.Memory.GoroutinesNote)
	} else {
		tw("goroutines per call", "%.1f", r.Memory.GoroutinesPerCall)
	}
	tw("peak channels", "%d", r.PeakChannels)
	if k := r.Soak; k != nil {
		tw("soak (steady window)", "%.0f s after a %.0f s warm-up (RSS %.0f KiB when all calls came up), %d samples: RSS %.0f → %.0f KiB (%+.1f %%; last half %+.0f KiB/min), Go live heap %.0f → %.0f KiB, Go runtime held %.0f → %.0f KiB, goroutines %.0f → %.0f, fds %.0f → %.0f: %s",
			k.SteadySeconds, k.WarmupSeconds, k.RSSAllUpKB, k.Samples, k.RSSStartKB, k.RSSEndKB, 100*(k.RSSEndKB/k.RSSStartKB-1), k.RSSTailSlope, k.HeapStartKB, k.HeapEndKB, k.GoHeldStartKB, k.GoHeldEndKB, k.GoroutineStart, k.GoroutineEnd, k.FDStart, k.FDEnd, map[bool]string{true: "flat", false: "NOT flat " + k.Why}[k.Flat])
	}
	rr := r.Recordings
	tw("recordings found / expected", "%d / %d in %s %s", rr.Found, rr.Expected, rr.Dir, rr.Note)
	tw("recordings gap / length / hdr", "%d with gaps (%.0f ms), %d length off > 20 ms, %d bad header, %d unreadable", rr.WithGap, rr.GapMs, rr.BadLength, rr.BadHeader, rr.Unreadable)
	if rr.GapsFromLateSender {
		tw("  gaps", "no more than loadgen's pacer sent late (%d packets): real-time silences of a late sender", r.RTP.PacerLate)
	}
	tw("recording length - sent", "%+.1f .. %+.1f ms", rr.OffMsMin, rr.OffMsMax)
	if r.Scenario == "c" {
		tw("stereo edges trimmed (max)", "lead %.0f ms, trail %.0f ms", rr.LeadMsMax, rr.TrailMsMax)
	}
	if st := r.Streams; st != nil {
		tw("external media streams", "%d / %d received (%s %s), %d short, shortest %d %% of the caller's audio %v", st.Received, st.Expected, st.Encap, st.Format, st.Short, st.MinPct, st.Problems)
	}
	if er := r.ExtraRecords; er != nil {
		tw("Record commands (Ozeki API)", "%.0f/s asked: %d sent, %d accepted, %d refused %v", er.Rate, er.Sent, er.Accepted, er.Refused, er.Refusals[:min(len(er.Refusals), 3)])
		if er.WithURL {
			tw("  their RecordCompleted", "%d delivered, %d duplicates, %d bad signatures; %.0f/s (peak %d in 1 s) %v", er.Delivered, er.Duplicates, er.BadSig, er.RatePerSec, er.PeakPerSec, er.States)
		} else {
			tw("  their RecordCompleted", "none asked (-record-no-url)")
		}
	}
	if cb := r.Callbacks; cb != nil {
		if cb.Enabled {
			tw("callbacks (RecordCompleted)", "%d / %d delivered, %d missing, %d duplicates, %d unknown, %d bad signatures, %d bad RecordURLs; %.0f/s (peak %d in 1 s); all in %.2f s after the calls %v",
				cb.Delivered, cb.Expected, cb.Missing, cb.Duplicates, cb.Unknown, cb.BadSig, cb.BadURL, cb.RatePerSec, cb.PeakPerSec, cb.WaitSeconds, cb.Reasons)
		} else {
			tw("script calls", "%d IncomingCall, no callbacks; recordings finished %.2f s after the calls", cb.Calls, cb.WaitSeconds)
		}
		for i, p := range cb.Problems {
			if i == 5 {
				break
			}
			tw("  script problem", "%s", p)
		}
	}
	for i, b := range rr.Bad {
		if i == 5 {
			tw("  bad recordings", "... %d more (the JSON report lists up to 20)", len(rr.Bad)-5)
			break
		}
		tw("  bad recording", "%s: %.3f s vs %.3f s sent, gaps %d (%.0f ms, first at %.2f s) right-gaps %d %s", b.Name, b.Seconds, b.SentSec, b.Gaps.Gaps, b.Gaps.GapMs, b.Gaps.FirstGapAt, b.RightGaps.Gaps, b.Err)
	}
	for i, e := range r.ARIErrors {
		if i == 10 {
			tw("  ARI errors", "... %d more", len(r.ARIErrors)-10)
			break
		}
		tw("  ARI error", "%s", e)
	}
	for _, p := range r.Problems {
		tw("PROBLEM", "%s", p)
	}
}

// writeMarkdown prints a block for bench/RESULTS.md.
func (r *Report) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "    %s\n\n", r.CommandLine)
	fmt.Fprintln(w, "| scenario | calls (answered/failed) | hold | setup p50/p99 | server CPU per call-second | user/sys | cores busy | RSS per active call (at the peak) | threads per call | RTP sent/lost | recordings (gaps, length off) | result |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	lost := fmt.Sprint(r.RTP.Lost + r.RTP.CalleeLost)
	if r.Scenario != "c" {
		lost = "n/a (recv only)"
	}
	fmt.Fprintf(w, "| %s | %d (%d/%d) | %.0f s | %.2f / %.2f ms | %.3f ms | %.0f%% / %.0f%% | %.2f | %.1f KiB (%.1f) | %.2f | %d / %s | %d/%d (%d, %d; %+.0f..%+.0f ms) | %s |\n",
		r.Scenario, r.Calls.Attempted, r.Calls.Answered, r.Calls.Failed, r.HoldSeconds, r.Setup.P50, r.Setup.P99,
		r.CPU.MsPerCallSecond, 100*r.CPU.UserShare, 100*(1-r.CPU.UserShare), r.CPU.CoresBusy,
		r.Memory.RSSPerActiveCallKB, r.Memory.RSSPerCallKB, r.Memory.ThreadsPerCall, r.RTP.Sent+r.RTP.CalleeSent, lost,
		r.Recordings.Found, r.Recordings.Expected, r.Recordings.WithGap, r.Recordings.BadLength, r.Recordings.OffMsMin, r.Recordings.OffMsMax, verdict(r.Passed))
}

func (r *Report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
