// Command loadgen is tapedeck's load harness: it places many SIP calls with
// real G.711 RTP (the project's own sipua phone), has them recorded, and
// measures how much server CPU tapedeck spends per recorded call-second.
// Afterwards it reads every recording back and checks its length and that
// it has no gaps. See bench/run.sh and `make bench`.
//
//	loadgen -server-cmd "./tapedeck" -scenario a -calls 100 -duration 30s
//	loadgen -target 127.0.0.1:5060 -server-pid 1234 -recordings ./data/recording -scenario a
//	loadgen -server-cmd "./tapedeck" -scenario a -nodes 2 -pg postgres://... -nats nats://127.0.0.1:4222
//	  (two nodes sharing PostgreSQL and NATS behind Kamailio; cluster.go)
//
// Scenarios:
//
//	a  every call dials 2001: the dialplan's Record() records the caller
//	b  calls dial 300..399 (Stasis(loadgen,...)); loadgen's ARI app records
//	   each channel (POST /channels/{id}/record)
//	c  two-party bridge: loadgen is the caller and the callee; the ARI app
//	   originates the second leg, bridges both and records the bridge in
//	   stereo; both sides send audio
//	o  calls dial 500..599 (Script(<loadgen's app>)): loadgen's web app
//	   answers IncomingCall with OzML <Record Format="wav"/><Delay>, the
//	   work of scenario b through a script; -callbacks adds FinishedUrl, so
//	   every recording also sends a signed RecordCompleted through the
//	   webhook sender, checked to arrive once per call (ozml.go)
//	p  the same two-party call recorded by policy, without ARI: loadgen's
//	   caller is a trunk dialling a DID of a user whose incoming external
//	   calls are recorded (call_recording.stereo); loadgen's callee is that
//	   user's phone, registered with digest authentication; tapedeck's
//	   Dial bridges both and records the bridge. The caller's audio starts
//	   -audio-delay (default 200 ms for p) after the answer, since the
//	   policy recording starts just after it; leading silence is trimmed
//	   when checking the recording
//
// A run with any failed call, gap, missing recording or recording whose
// length is off by more than 20 ms is FAILED (exit status 1).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

type config struct {
	target      string
	calls       int
	rate        float64
	duration    time.Duration
	scenario    string
	ari         string
	ariUser     string
	ariPass     string
	serverPID   int
	serverCmd   string
	recordings  string
	dtmf        bool
	jsonOut     string
	md          bool
	keep        bool
	tick        time.Duration
	dialTimeout time.Duration
	quiet       bool
	writeWAV    string
	checkDir    string
	byeDelay    time.Duration
	audioDelay  time.Duration
	soak        bool
	scrape      time.Duration
	// callbacks: scenario o's Record carries FinishedUrl.
	callbacks bool
	// recordRate: scenario o also sends this many Ozeki Record commands a
	// second (records.go); recordNoURL: without FinishedUrl.
	recordRate  float64
	recordNoURL bool
	// streamFormat is scenario e's external media format.
	streamFormat string
	// streamVia is how scenario e streams a call: snoop or call.
	streamVia string
	// streamEncap is scenario e's external media encapsulation.
	streamEncap string
	// streamBatchMs is the server's ari.audiosocket_batch_ms (-server-cmd).
	streamBatchMs int
	// Cluster runs (cluster.go).
	nodes       int
	kamailio    bool
	kamailioCfg string
	pg          string
	nats        string
	// pinNodes gives each node its own CPUs (taskset), as separate
	// machines would have them (cluster.go, nodeCPUSets).
	pinNodes bool
}

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

func cli(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.StringVar(&c.target, "target", "127.0.0.1:5060", "tapedeck SIP address host:port (ignored with -server-cmd)")
	fs.IntVar(&c.calls, "calls", 20, "number of calls; they are all up at once when calls/rate < duration")
	fs.Float64Var(&c.rate, "rate", 50, "new calls per second")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "hold time per call (audio sent, then BYE)")
	fs.BoolVar(&c.soak, "soak", false, "soak run: sample RSS, goroutines and open descriptors every 5 s and fail unless they stay flat (within 5 %) while all calls are up, after a warm-up of one call duration (use minutes: e.g. -calls 2400 -rate 3.34 -duration 60s holds 200 calls for 11 minutes: a warm-up of one call duration, then 10 minutes judged)")
	fs.DurationVar(&c.scrape, "scrape-metrics", 0, "GET the server's /metrics at this interval during the run, as a Prometheus would (0: never); for measuring what metrics cost")
	fs.StringVar(&c.scenario, "scenario", "a", "a (dialplan Record, 2001), b (ARI channel record, 3XX), b2 (b with a second recording of each call), o (b's work through an OzML script: Script(), Record, Delay; see -callbacks), e (b with each call also streamed to loadgen's AudioSocket receiver: snoop spy=in, externalMedia, bridge), c (ARI two-party bridge, stereo record) or p (the same two-party call recorded by a user's policy, stereo)")
	fs.BoolVar(&c.callbacks, "callbacks", false, "scenario o: each recording also sends RecordCompleted to loadgen's receiver through the webhook sender (FinishedUrl); the run fails unless every call's callback arrives exactly once, signed")
	fs.Float64Var(&c.recordRate, "record-rate", 0, "scenario o: also send this many Ozeki API Record commands a second (Duration=1, wav, a RecordPath of their own) round-robin to the calls that are up, each recording's RecordCompleted posted to loadgen through the webhook sender; the run fails unless each arrives once, signed (records.go)")
	fs.BoolVar(&c.recordNoURL, "record-no-url", false, "with -record-rate: the same commands without FinishedUrl (no notifications), to measure what the notifications cost")
	fs.StringVar(&c.streamFormat, "stream-format", "ulaw", "scenario e: the external media format (ulaw, slin, slin16, …)")
	fs.StringVar(&c.streamVia, "stream-via", "snoop", "scenario e: snoop (record the call, stream a snoop of it: a transcription app) or call (bridge the call itself with the external media channel, no recording: a voice bot)")
	fs.StringVar(&c.streamEncap, "stream-encap", "audiosocket", "scenario e: the external media encapsulation: audiosocket (TCP to loadgen's AudioSocket receiver) or rtp (UDP to loadgen's RTP receiver, externalMedia's default)")
	fs.IntVar(&c.streamBatchMs, "stream-batch-ms", 0, "scenario e with -server-cmd: the server's ari.audiosocket_batch_ms (audio written to the stream's socket at once; 0: each 20 ms frame)")
	fs.StringVar(&c.ari, "ari", "http://127.0.0.1:8088", "tapedeck HTTP base for ARI and /healthz (ignored with -server-cmd)")
	fs.StringVar(&c.ariUser, "ari-user", "asterisk", "ARI user")
	fs.StringVar(&c.ariPass, "ari-pass", "asterisk", "ARI password")
	fs.IntVar(&c.serverPID, "server-pid", 0, "pid of a running tapedeck to measure")
	fs.StringVar(&c.serverCmd, "server-cmd", "", `start tapedeck with a generated config: "path [args...]" (-config FILE is appended); preferred`)
	fs.StringVar(&c.recordings, "recordings", "", "recordings root to check (with -server-cmd: <data>/recording)")
	fs.BoolVar(&c.dtmf, "dtmf", false, "send RFC 4733 digits 1, 2, 3 mid-call (alongside the audio)")
	fs.StringVar(&c.jsonOut, "json", "", "write the report as JSON to this file")
	fs.BoolVar(&c.md, "md", false, "print a markdown block for bench/RESULTS.md")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary data dir and server log (-server-cmd)")
	fs.DurationVar(&c.tick, "tick", 5*time.Millisecond, "pacer tick (packets are due every 20 ms per call; a shorter tick spreads them)")
	fs.DurationVar(&c.dialTimeout, "dial-timeout", 15*time.Second, "INVITE timeout")
	fs.BoolVar(&c.quiet, "q", false, "no progress lines on stderr")
	fs.StringVar(&c.writeWAV, "write-wav", "", "write the audio loop as an 8 kHz µ-law WAV (for SIPp's rtp_stream) and exit")
	fs.StringVar(&c.checkDir, "check", "", "only check the WAV recordings under this directory (gaps, length against -duration) and exit, e.g. after a SIPp run")
	fs.DurationVar(&c.byeDelay, "bye-delay", 0, "wait this long after the last packet before the BYE (diagnostics)")
	fs.DurationVar(&c.audioDelay, "audio-delay", 0, "wait this long after the answer before the first packet (diagnostics)")
	fs.IntVar(&c.nodes, "nodes", 1, "with -server-cmd: start this many tapedeck nodes (more than one needs -pg and implies -kamailio; scenario a only); server CPU is summed over them and every node's recordings are checked")
	fs.BoolVar(&c.kamailio, "kamailio", false, "with -server-cmd: start Kamailio (Debian package) with -kamailio-cfg in front of the nodes and send the calls to it")
	fs.StringVar(&c.kamailioCfg, "kamailio-cfg", "packaging/kamailio/kamailio.cfg", "the Kamailio configuration (the project's dispatcher configuration)")
	fs.StringVar(&c.pg, "pg", "", "with -server-cmd: a PostgreSQL DSN allowed to CREATE DATABASE (e.g. postgres://tapedeck:tapedeck@127.0.0.1:5432/postgres?sslmode=disable); each run's nodes share a fresh database in it (dropped after the run) as catalog. Empty: each node its own SQLite")
	fs.StringVar(&c.nats, "nats", "", "with -server-cmd: the nodes' nats.url (e.g. nats://127.0.0.1:4222); empty: no NATS")
	fs.DurationVar(&timerSlack, "timer-slack", 0, "with -server-cmd: start each node with this timer slack (prctl PR_SET_TIMERSLACK, as systemd's TimerSlackNSec= in packaging/tapedeck.service; 0: the kernel's default, 50µs)")
	fs.BoolVar(&c.pinNodes, "pin-nodes", false, "with -nodes > 1: run each node on CPUs of its own (taskset; loadgen's CPUs split evenly, the remainder left to none), as nodes on separate machines run; each Go runtime then sizes itself (GOMAXPROCS) to its share instead of all nodes contending for every CPU")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case c.writeWAV != "":
		if err := writeMulawWAV(c.writeWAV); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
		return 0
	case c.checkDir != "":
		return checkOnly(c.checkDir, c.duration, stdout)
	}
	if err := c.validate(); err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 2
	}
	// sipgo logs transport warnings on the default logger; keep errors only.
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	logf := func(format string, a ...any) {
		if !c.quiet {
			fmt.Fprintf(stderr, "loadgen: "+format+"\n", a...)
		}
	}
	rep, err := run(ctx, c, logf)
	if rep != nil {
		rep.CommandLine = "loadgen " + strings.Join(args, " ")
		rep.writeText(stdout)
		if c.md {
			fmt.Fprintln(stdout)
			rep.writeMarkdown(stdout)
		}
		if c.jsonOut != "" {
			if err := rep.writeJSON(c.jsonOut); err != nil {
				fmt.Fprintln(stderr, "loadgen:", err)
				return 1
			}
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	if !rep.Passed {
		return 1
	}
	return 0
}

func (c *config) validate() error {
	switch c.scenario {
	case "a", "b", "b2", "e", "c", "o":
	case "p":
		if c.audioDelay == 0 {
			c.audioDelay = 200 * time.Millisecond
		}
	default:
		return fmt.Errorf("-scenario %q: want a, b, b2, c, e, o or p", c.scenario)
	}
	if c.callbacks && c.scenario != "o" {
		return errors.New("-callbacks: scenario o only")
	}
	switch c.streamVia {
	case "", "snoop", "call":
	default:
		return fmt.Errorf("-stream-via %q: want snoop or call", c.streamVia)
	}
	switch c.streamEncap {
	case "", "audiosocket", "rtp":
	default:
		return fmt.Errorf("-stream-encap %q: want audiosocket or rtp", c.streamEncap)
	}
	if c.recordRate < 0 || c.recordRate > 0 && c.scenario != "o" {
		return errors.New("-record-rate: a positive rate, scenario o only")
	}
	if c.calls <= 0 || c.rate <= 0 || c.duration < time.Second {
		return errors.New("-calls and -rate must be positive and -duration at least 1s")
	}
	if c.serverCmd == "" && c.serverPID == 0 {
		return errors.New("give -server-cmd (preferred) or -server-pid to measure the server")
	}
	if c.serverCmd != "" && c.serverPID != 0 {
		return errors.New("-server-cmd and -server-pid are exclusive")
	}
	if c.scenario == "o" && c.serverCmd == "" {
		return errors.New("scenario o needs -server-cmd (it configures the script extension and the webhook sender)")
	}
	if c.nodes < 1 {
		c.nodes = 1
	}
	if c.nodes > 1 {
		c.kamailio = true
		if c.pg == "" {
			return errors.New("-nodes > 1 needs -pg (the nodes share one PostgreSQL catalog)")
		}
		if c.scenario != "a" {
			return errors.New("-nodes > 1: scenario a only")
		}
	}
	if c.pinNodes && c.nodes < 2 {
		return errors.New("-pin-nodes needs -nodes > 1")
	}
	if (c.nodes > 1 || c.kamailio || c.pg != "" || c.nats != "") && c.serverCmd == "" {
		return errors.New("-nodes, -kamailio, -pg and -nats need -server-cmd")
	}
	if c.kamailio && c.scenario != "a" {
		return errors.New("-kamailio: scenario a only")
	}
	return nil
}
