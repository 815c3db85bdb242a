// Command tapedeck is the tapedeck call-recording and programmable-voice
// server.
//
//	tapedeck [-config FILE] [-sip HOST:PORT] [-http HOST:PORT] [-data DIR]
//	tapedeck -t -config FILE    validate the configuration and exit
//
// SIGTERM or SIGINT drains (no new calls; calls in progress finish, bounded
// by shutdown_timeout_seconds); a second signal forces the stop.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/server"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "accounts" {
		return accounts(args[1:], os.Stdout, stderr)
	}
	fs := flag.NewFlagSet("tapedeck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML configuration file (default: embedded defaults)")
	fs.String("sip", "", "SIP listen address host:port (overrides sip.listen)")
	fs.String("http", "", "HTTP listen address host:port (overrides http.listen)")
	fs.String("data", "", "data directory (overrides data_dir)")
	rtpPorts := fs.String("rtp-ports", "", "RTP port range MIN-MAX (overrides rtp.port_min/port_max)")
	fs.String("log-level", "", "log level: debug, info, warn, error")
	test := fs.Bool("t", false, "validate the configuration and exit")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file until shutdown (for profiling)")
	memProfile := fs.String("memprofile", "", "write a heap profile to this file when the shutdown signal arrives (for finding what calls leave behind)")
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *memProfile == "" {
		// No heap profile wanted: stop sampling allocations. A sample
		// unwinds the stack (touching more of the binary's tables as rare
		// paths get sampled) and keeps a bucket per call site for good.
		runtime.MemProfileRate = 0
	}
	if *version {
		fmt.Fprintln(os.Stdout, "tapedeck", server.Version)
		return 0
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "tapedeck:", err)
		return 1
	}
	// Precedence: defaults < file < environment < flags.
	if err := config.ApplyEnv(&cfg, os.Getenv); err != nil {
		fmt.Fprintln(stderr, "tapedeck:", err)
		return 1
	}
	set := map[string]string{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = f.Value.String() })
	if v, ok := set["sip"]; ok {
		cfg.SIP.Listen = v
	}
	if v, ok := set["http"]; ok {
		cfg.HTTP.Listen = v
	}
	if v, ok := set["data"]; ok {
		cfg.DataDir = v
	}
	if v, ok := set["log-level"]; ok {
		cfg.Log.Level = v
	}
	if _, ok := set["rtp-ports"]; ok {
		if err := config.ApplyEnv(&cfg, func(k string) string {
			if k == "TAPEDECK_RTP_PORTS" {
				return *rtpPorts
			}
			return ""
		}); err != nil {
			fmt.Fprintln(stderr, "tapedeck: -rtp-ports:", err)
			return 2
		}
	}
	// The dialplan's applications are checked as the server will run them.
	if err := cfg.ValidateWith(call.AppChecker(call.CheckEnv{RecordingsDir: cfg.RecordingsDir()})); err != nil {
		fmt.Fprintf(stderr, "tapedeck: invalid configuration:\n%v\n", err)
		return 1
	}
	if *test {
		fmt.Fprintln(stderr, "tapedeck: configuration OK")
		return 0
	}
	log := newLogger(cfg.Log, stderr)
	slog.SetDefault(log)
	if os.Getenv("GOGC") == "" {
		// A recorded call allocates almost nothing once it is up, so a
		// tighter heap goal costs next to no CPU and keeps memory per call
		// down (measured: about 115 -> 88 KiB RSS per call at 200 calls,
		// bench/RESULTS.md). GOGC in the environment overrides this.
		debug.SetGCPercent(50)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
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
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	sig := <-sigs
	log.Info("signal received: draining; send it again to force", "signal", sig.String())
	if *memProfile != "" {
		writeHeapProfile(*memProfile, log)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeout)*time.Second)
	go func() {
		sig := <-sigs
		log.Warn("second signal: forcing shutdown", "signal", sig.String())
		cancel()
	}()
	err = srv.Shutdown(ctx)
	cancel()
	if err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	return 0
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

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
