// Command tapedeck is the tapedeck call-recording and programmable-voice
// server. `tapedeck help` lists its commands; `tapedeck` alone serves.
//
// SIGTERM or SIGINT drains (no new calls; calls in progress finish, bounded
// by shutdown_timeout_seconds); a second signal forces the stop. SIGHUP
// reloads the dialplan, ARI users and log level from the configuration
// file without touching the calls.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/server"
)

func main() {
	os.Exit(runIO(os.Args[1:], os.Stdout, os.Stderr))
}

// run is runIO with the standard output.
func run(args []string, stderr io.Writer) int { return runIO(args, os.Stdout, stderr) }

const usageText = `tapedeck: call recording and programmable voice over SIP (Asterisk ARI,
Restcomm Recordings API, Ozeki command API).

Usage:
  tapedeck [flags] [command] [arguments]

Commands:
  serve                  run the server (the default command)
  accounts list          list the catalog's accounts (Sid, name)
  accounts create NAME   make an account; prints its Sid and AuthToken (shown once)
  accounts rotate SID    give an account a new AuthToken; prints it (shown once)
  recordings list        list recordings (-account SID, -limit N)
  recordings get SID     show one recording's catalog row
  recordings export SID FILE
                         copy a recording's audio to FILE ("-": standard output)
  recordings delete SID  delete a recording (row and file)
  config check           validate the configuration and exit (also: -t)
  health                 ask the running server's /readyz (exit 0 ready, 1 not);
                         for container health checks, which have no curl
  version                print the version and the commit it was built from
  help [command]         print this help

Flags (before or after the command):
%s
Environment (between the file and the flags in precedence):
  TAPEDECK_SIP_LISTEN, TAPEDECK_HTTP_LISTEN, TAPEDECK_DATA_DIR, TAPEDECK_RTP_PORTS,
  TAPEDECK_EXTERNAL_HOST, TAPEDECK_LOG_LEVEL, TAPEDECK_LOG_FORMAT, TAPEDECK_DATABASE,
  TAPEDECK_ARI_USER=user:password, TAPEDECK_SIGN_KEY, TAPEDECK_TOKEN_KEY, TAPEDECK_S3_ACCESS_KEY,
  TAPEDECK_S3_SECRET_KEY; each secret also as NAME_FILE=path (the file's content).
  S3 without keys uses AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials
  or the instance's IAM role.

Signals (serve): SIGTERM/SIGINT drain, a second one forces the stop; SIGHUP
reloads the dialplan, ARI users and log level.

See README.md for a first recorded call.
`

// options are the command line's flags, valid before or after the command.
type options struct {
	fs                                             *flag.FlagSet
	cfgPath, rtpPorts, cpuProfile, memProfile      string
	test, version, help                            bool
	account                                        string
	limit                                          int
	set                                            map[string]string // flags given, by name
	sipAddr, httpAddr, dataDir, logLevel, rtpRange string
}

func newOptions(stderr io.Writer) *options {
	o := &options{set: map[string]string{}}
	fs := flag.NewFlagSet("tapedeck", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are printed once, with the usage hint
	fs.StringVar(&o.cfgPath, "config", "", "YAML configuration `file` (default: embedded defaults)")
	fs.StringVar(&o.sipAddr, "sip", "", "SIP listen address `host:port` (overrides sip.listen)")
	fs.StringVar(&o.httpAddr, "http", "", "HTTP listen address `host:port` (overrides http.listen)")
	fs.StringVar(&o.dataDir, "data", "", "data `directory` (overrides data_dir)")
	fs.StringVar(&o.rtpRange, "rtp-ports", "", "RTP port range `MIN-MAX` (overrides rtp.port_min/port_max)")
	fs.StringVar(&o.logLevel, "log-level", "", "log `level`: debug, info, warn, error")
	fs.BoolVar(&o.test, "t", false, "validate the configuration and exit (as `config check`)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "serve: write a CPU profile to this `file` until shutdown")
	fs.StringVar(&o.memProfile, "memprofile", "", "serve: write a heap profile to this `file` when the shutdown signal arrives")
	fs.BoolVar(&o.version, "version", false, "print the version and exit (as `version`)")
	fs.BoolVar(&o.help, "help", false, "print this help")
	fs.BoolVar(&o.help, "h", false, "print this help")
	fs.StringVar(&o.account, "account", "", "recordings list: the account `Sid` (default: the default account)")
	fs.IntVar(&o.limit, "limit", 50, "recordings list: at most this many rows")
	o.fs = fs
	return o
}

func (o *options) usage(w io.Writer) {
	var b strings.Builder
	o.fs.SetOutput(&b)
	o.fs.PrintDefaults()
	o.fs.SetOutput(io.Discard)
	fmt.Fprintf(w, usageText, b.String())
}

// parse reads flags anywhere among the words; it returns the words.
func (o *options) parse(args []string) ([]string, error) {
	var words []string
	for {
		if err := o.fs.Parse(args); err != nil {
			return nil, err
		}
		rest := o.fs.Args()
		if len(rest) == 0 {
			break
		}
		words = append(words, rest[0])
		args = rest[1:]
	}
	o.fs.Visit(func(f *flag.Flag) { o.set[f.Name] = f.Value.String() })
	return words, nil
}

// usageError prints a one-line error and the usage hint; exit status 2.
func usageError(stderr io.Writer, format string, a ...any) int {
	fmt.Fprintf(stderr, "tapedeck: "+format+"\n", a...)
	fmt.Fprintln(stderr, "Run 'tapedeck help' for usage.")
	return 2
}

func runIO(args []string, stdout, stderr io.Writer) int {
	o := newOptions(stderr)
	words, err := o.parse(args)
	if errors.Is(err, flag.ErrHelp) {
		o.usage(stdout)
		return 0
	}
	if err != nil {
		return usageError(stderr, "%v", err)
	}
	if o.help {
		o.usage(stdout)
		return 0
	}
	// Everything tapedeck creates (catalog database, recordings, keys) is
	// owner-only: recordings are personal data.
	syscall.Umask(0o077)
	if o.memProfile == "" {
		// No heap profile wanted: stop sampling allocations. A sample
		// unwinds the stack (touching more of the binary's tables as rare
		// paths get sampled) and keeps a bucket per call site for good.
		runtime.MemProfileRate = 0
	}
	if o.version {
		return versionCmd(words, stdout, stderr)
	}
	cmd := "serve"
	if len(words) > 0 {
		cmd, words = words[0], words[1:]
	}
	if o.test {
		if cmd != "serve" && cmd != "config" {
			return usageError(stderr, "-t validates the configuration; it does not go with %q", cmd)
		}
		cmd, words = "config", []string{"check"}
	}
	switch cmd {
	case "help":
		if len(words) > 1 {
			return usageError(stderr, "help takes at most one command")
		}
		o.usage(stdout)
		return 0
	case "version":
		return versionCmd(words, stdout, stderr)
	case "serve":
		if len(words) > 0 {
			return usageError(stderr, "serve takes no arguments (got %q)", strings.Join(words, " "))
		}
		return serve(o, stderr)
	case "config":
		if len(words) != 1 || words[0] != "check" {
			return usageError(stderr, "usage: tapedeck config check [-config FILE]")
		}
		return configCheck(o, stderr)
	case "accounts":
		// accounts parses its own -config and -data.
		var pass []string
		for _, n := range []string{"config", "data"} {
			if v, ok := o.set[n]; ok {
				pass = append(pass, "-"+n, v)
			}
		}
		return accounts(append(pass, words...), stdout, stderr)
	case "recordings":
		return recordings(o, words, stdout, stderr)
	case "health":
		if len(words) > 0 {
			return usageError(stderr, "health takes no arguments")
		}
		return health(o, stdout, stderr)
	}
	return usageError(stderr, "unknown command %q", cmd)
}

// health asks the configured HTTP address's /readyz (a wildcard bind is
// asked on loopback).
func health(o *options, stdout, stderr io.Writer) int {
	cfg, err := o.loadConfig()
	if err != nil {
		fmt.Fprintln(stderr, "tapedeck:", err)
		return 1
	}
	host, port, err := net.SplitHostPort(cfg.HTTP.Listen)
	if err != nil {
		fmt.Fprintln(stderr, "tapedeck: http.listen:", err)
		return 1
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme := "http"
	client := &http.Client{Timeout: 5 * time.Second}
	if cfg.HTTP.TLS() {
		scheme = "https"
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // our own listener on loopback
	}
	res, err := client.Get(scheme + "://" + net.JoinHostPort(host, port) + "/readyz")
	if err != nil {
		fmt.Fprintln(stderr, "tapedeck: not reachable:", err)
		return 1
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	fmt.Fprint(stdout, string(body))
	if res.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

func versionCmd(words []string, stdout, stderr io.Writer) int {
	if len(words) > 0 {
		return usageError(stderr, "version takes no arguments")
	}
	v, commit := buildVersion()
	fmt.Fprintf(stdout, "tapedeck %s (commit %s, %s)\n", v, commit, runtime.Version())
	return 0
}

// loadConfig builds the configuration: defaults < file < environment <
// flags.
func (o *options) loadConfig() (config.Config, error) {
	cfg, err := config.Load(o.cfgPath)
	if err != nil {
		return cfg, err
	}
	if err := config.ApplyEnv(&cfg, os.Getenv); err != nil {
		return cfg, err
	}
	if v, ok := o.set["sip"]; ok {
		cfg.SIP.Listen = v
	}
	if v, ok := o.set["http"]; ok {
		cfg.HTTP.Listen = v
	}
	if v, ok := o.set["data"]; ok {
		cfg.DataDir = v
	}
	if v, ok := o.set["log-level"]; ok {
		cfg.Log.Level = v
	}
	if _, ok := o.set["rtp-ports"]; ok {
		if err := config.ApplyEnv(&cfg, func(k string) string {
			if k == "TAPEDECK_RTP_PORTS" {
				return o.rtpRange
			}
			return ""
		}); err != nil {
			return cfg, fmt.Errorf("-rtp-ports: %w", err)
		}
	}
	return cfg, nil
}

// validConfig loads and validates the configuration, checking the
// dialplan's applications as the server will run them.
func (o *options) validConfig(stderr io.Writer) (config.Config, bool) {
	cfg, err := o.loadConfig()
	if err != nil {
		fmt.Fprintln(stderr, "tapedeck:", err)
		return cfg, false
	}
	if err := cfg.ValidateWith(call.AppChecker(call.CheckEnv{RecordingsDir: cfg.RecordingsDir()})); err != nil {
		fmt.Fprintf(stderr, "tapedeck: invalid configuration:\n%v\n", err)
		return cfg, false
	}
	return cfg, true
}

func configCheck(o *options, stderr io.Writer) int {
	cfg, ok := o.validConfig(stderr)
	if !ok {
		return 1
	}
	// What the server would open at start: the catalog database and the
	// object store (reachable, credentials accepted).
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if errs := server.CheckReach(ctx, cfg); len(errs) > 0 {
		fmt.Fprintf(stderr, "tapedeck: configuration valid, but the server would not start:\n%v\n", errors.Join(errs...))
		return 1
	}
	fmt.Fprintln(stderr, "tapedeck: configuration OK")
	return 0
}

func serve(o *options, stderr io.Writer) int {
	cfg, ok := o.validConfig(stderr)
	if !ok {
		return 1
	}
	server.Version, _ = buildVersion()
	log := newLogger(cfg.Log, stderr)
	slog.SetDefault(log)
	if os.Getenv("GOGC") == "" {
		// A recorded call allocates almost nothing once it is up, so a
		// tighter heap goal costs next to no CPU and keeps memory per call
		// down (measured: about 115 -> 88 KiB RSS per call at 200 calls,
		// bench/RESULTS.md). GOGC in the environment overrides this.
		debug.SetGCPercent(50)
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			log.Error("cpu profile", "err", err)
			return 1
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Error("cpu profile", "err", err)
			return 1
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	srv, err := server.New(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if err := srv.Start(); err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	var sig os.Signal
	for sig = range sigs {
		if sig != syscall.SIGHUP {
			break
		}
		reload(o, srv, log)
	}
	log.Info("signal received: draining; send it again to force", "signal", sig.String())
	if o.memProfile != "" {
		writeHeapProfile(o.memProfile, log)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeout)*time.Second)
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGHUP {
				log.Info("SIGHUP while draining: nothing reloaded")
				continue
			}
			log.Warn("second signal: forcing shutdown", "signal", sig.String())
			cancel()
			return
		}
	}()
	err = srv.Shutdown(ctx)
	cancel()
	if err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

// reload re-reads the configuration on SIGHUP and applies what can change
// with calls up; an invalid file changes nothing.
func reload(o *options, srv *server.Server, log *slog.Logger) {
	var errs strings.Builder
	cfg, ok := o.validConfig(&errs)
	if !ok {
		log.Error("SIGHUP: configuration not reloaded; the running one stays", "config", o.cfgPath, "err", strings.TrimSpace(errs.String()))
		return
	}
	did, restart, err := srv.Reload(cfg)
	if err != nil {
		log.Error("SIGHUP: configuration not reloaded; the running one stays", "config", o.cfgPath, "err", err)
		return
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	logLevel.Set(level)
	did = append(did, "log level: "+level.String())
	log.Info("SIGHUP: configuration reloaded; calls in progress are untouched", "config", o.cfgPath, "reloaded", did, "needs_restart", restart)
}

// writeHeapProfile writes the in-use heap after a collection.
func writeHeapProfile(path string, log *slog.Logger) {
	f, err := os.Create(path)
	if err != nil {
		log.Error("heap profile", "err", err)
		return
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		log.Error("heap profile", "err", err)
	}
}

// logLevel is the server log's level; SIGHUP changes it.
var logLevel slog.LevelVar

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	logLevel.Set(level)
	opts := &slog.HandlerOptions{Level: &logLevel}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Stamped at build time: go build -ldflags "-X main.version=1.2.3 -X
// main.commit=abc123" (the Makefile's build target does). Without them the
// module version and VCS revision Go records are used.
var version, commit string

func buildVersion() (v, c string) {
	v, c = version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		if c == "" {
			var rev, dirty string
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					if s.Value == "true" {
						dirty = "-dirty"
					}
				}
			}
			if rev != "" {
				c = rev[:min(12, len(rev))] + dirty
			}
		}
	}
	if v == "" {
		v = server.Version
	}
	if c == "" {
		c = "unknown"
	}
	return v, c
}
