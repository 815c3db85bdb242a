package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/tapedeck/tapedeck/internal/server"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

const recordingsUsage = "usage: tapedeck recordings list [-account SID] [-limit N] | get SID | export SID FILE | delete SID"

// recordings runs `tapedeck recordings list|get|export|delete` over the
// catalog of the configuration (the server may be running: SQLite in WAL
// mode and PostgreSQL take both).
func recordings(o *options, words []string, stdout, stderr io.Writer) int {
	if len(words) == 0 {
		return usageError(stderr, "%s", recordingsUsage)
	}
	want := map[string]int{"list": 0, "get": 1, "export": 2, "delete": 1}
	n, ok := want[words[0]]
	if !ok || len(words)-1 != n {
		return usageError(stderr, "%s", recordingsUsage)
	}
	cfg, err := o.loadConfig()
	if err != nil {
		fmt.Fprintln(stderr, "tapedeck:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := os.Stat(cfg.DataDir); err != nil && cfg.Catalog.Database == "" {
		fmt.Fprintf(stderr, "tapedeck: no catalog: the data directory %s does not exist (is -data or -config right?)\n", cfg.DataDir)
		return 1
	}
	svc, closeCat, err := server.OpenCatalog(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "tapedeck: cannot open the catalog under %s: %v\n", cfg.DataDir, plainError(err))
		return 1
	}
	defer closeCat()
	switch words[0] {
	case "list":
		sid := o.account
		if sid == "" {
			acc, err := svc.Meta.EnsureDefaultAccount(ctx)
			if err != nil {
				fmt.Fprintln(stderr, "tapedeck: default account:", plainError(err))
				return 1
			}
			sid = acc.Sid
		}
		page, err := svc.Meta.ListRecordings(ctx, meta.Query{AccountSid: sid, Limit: o.limit, Desc: true})
		if err != nil {
			fmt.Fprintln(stderr, "tapedeck: list recordings:", plainError(err))
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SID\tCREATED\tDURATION\tSTATUS\tNAME")
		for _, r := range page.Items {
			fmt.Fprintf(tw, "%s\t%s\t%.1fs\t%s\t%s\n", r.Sid, r.DateCreated.Format(time.RFC3339), r.Duration, r.Status, r.Name)
		}
		tw.Flush()
		fmt.Fprintf(stderr, "%d of %d recordings\n", len(page.Items), page.Total)
	case "get":
		r, err := svc.Meta.RecordingBySid(ctx, words[1])
		if err != nil {
			fmt.Fprintf(stderr, "tapedeck: recording %s: %v\n", words[1], plainError(err))
			return 1
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
	case "export":
		r, err := svc.Meta.RecordingBySid(ctx, words[1])
		if err != nil {
			fmt.Fprintf(stderr, "tapedeck: recording %s: %v\n", words[1], plainError(err))
			return 1
		}
		m, err := svc.Open(ctx, r, "")
		if err != nil {
			fmt.Fprintf(stderr, "tapedeck: recording %s: its file: %v\n", words[1], plainError(err))
			return 1
		}
		defer m.Close()
		var w io.Writer = stdout
		if words[2] != "-" {
			f, err := os.OpenFile(words[2], os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				fmt.Fprintln(stderr, "tapedeck:", err)
				return 1
			}
			defer f.Close()
			w = f
		}
		if _, err := io.Copy(w, m); err != nil {
			fmt.Fprintln(stderr, "tapedeck: export:", err)
			return 1
		}
	case "delete":
		r, err := svc.Meta.RecordingBySid(ctx, words[1])
		if err != nil {
			fmt.Fprintf(stderr, "tapedeck: recording %s: %v\n", words[1], plainError(err))
			return 1
		}
		by := meta.Audit{AccountSid: r.AccountSid, RecordingSid: r.Sid, Action: meta.AuditDelete, Actor: cliActor(), API: "cli"}
		if err := svc.Remove(ctx, by); err != nil {
			fmt.Fprintf(stderr, "tapedeck: delete %s: %v\n", r.Sid, plainError(err))
			return 1
		}
		fmt.Fprintf(stderr, "deleted %s (%s)\n", r.Sid, r.Name)
	}
	return 0
}

// plainError says a catalog error in words: the kind, not the database
// driver's text.
func plainError(err error) string {
	switch {
	case errors.Is(err, meta.ErrNotFound), errors.Is(err, os.ErrNotExist):
		return "not found"
	case errors.Is(err, meta.ErrConflict):
		return "already exists"
	case errors.Is(err, meta.ErrInvalid):
		return "not valid"
	case errors.Is(err, os.ErrPermission):
		return "permission denied"
	case errors.Is(err, context.DeadlineExceeded):
		return "the database did not answer in time"
	}
	return err.Error()
}

// cliActor names who deletes through the CLI, for the audit row: the
// operating-system user running it.
func cliActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "cli"
}
