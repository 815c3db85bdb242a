package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/server"
)

// accounts runs `tapedeck accounts create NAME | list | rotate SID`.
func accounts(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tapedeck accounts", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML configuration file (the server's)")
	dataDir := fs.String("data", "", "data directory (overrides data_dir)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tapedeck accounts [-config FILE] create NAME | list | rotate SID")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "tapedeck:", err)
		return 1
	}
	if err := config.ApplyEnv(&cfg, os.Getenv); err != nil {
		fmt.Fprintln(stderr, "tapedeck:", err)
		return 1
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		fmt.Fprintln(stderr, "tapedeck:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := server.OpenMeta(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "tapedeck: cannot open the catalog database:", plainError(err))
		return 1
	}
	defer st.Close()
	if _, err := st.EnsureDefaultAccount(ctx); err != nil {
		fmt.Fprintln(stderr, "tapedeck:", err)
		return 1
	}
	switch {
	case rest[0] == "create" && len(rest) == 2:
		acc, err := st.CreateAccount(ctx, rest[1])
		if err != nil {
			fmt.Fprintln(stderr, "tapedeck: create account:", plainError(err))
			return 1
		}
		fmt.Fprintf(stdout, "%s %s\n", acc.Sid, acc.AuthToken)
	case rest[0] == "list" && len(rest) == 1:
		list, err := st.ListAccounts(ctx)
		if err != nil {
			fmt.Fprintln(stderr, "tapedeck: list accounts:", err)
			return 1
		}
		// Tokens are shown once, by create and rotate: the catalog
		// keeps them sealed, and a listing is not the place for secrets.
		for _, a := range list {
			fmt.Fprintf(stdout, "%s %s\n", a.Sid, a.Name)
		}
	case rest[0] == "rotate" && len(rest) == 2:
		acc, err := st.RotateToken(ctx, rest[1])
		if err != nil {
			fmt.Fprintln(stderr, "tapedeck: rotate token:", plainError(err))
			return 1
		}
		fmt.Fprintf(stdout, "%s %s\n", acc.Sid, acc.AuthToken)
	default:
		fs.Usage()
		return 2
	}
	return 0
}
