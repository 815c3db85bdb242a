package meta

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations
var migrationsFS embed.FS

func migrations(dir string) fs.FS {
	sub, err := fs.Sub(migrationsFS, "migrations/"+dir)
	if err != nil {
		panic(err)
	}
	return sub
}

var sqliteDialect = &dialect{
	name:    "sqlite",
	rebind:  func(q string) string { return dollarParam.ReplaceAllString(q, "?$1") },
	timeArg: func(t time.Time) any { return t.UnixMicro() },
	isUnique: func(err error) bool {
		var e *sqlite.Error
		return errors.As(err, &e) &&
			(e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
	},
	putChunk: 1,
	rowid:    true,
	isFKey: func(err error) bool {
		var e *sqlite.Error
		return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	},
}

// SQLite page caches: the writer connection's and each reader's.
const (
	writerCacheKiB = 128
	readerCacheKiB = 128
)

// OpenSQLite opens (creating it and its directory if needed) the SQLite
// catalog at path, e.g. <data dir>/tapedeck.db, and applies the migrations.
// The database is in WAL mode: one writer connection (writes are serialized
// in the process, a busy timeout covers other processes) and a pool of
// read-only connections that read concurrently with it. The accounts'
// tokens are sealed with the key of the options, by default the key in
// token.key beside the database (made when missing).
func OpenSQLite(path string, opts ...Option) (Store, error) {
	if path == "" || path == ":memory:" {
		return nil, fmt.Errorf("%w: OpenSQLite needs a file path", ErrInvalid)
	}
	o := options{tokenKeyFile: filepath.Join(filepath.Dir(path), "token.key")}
	for _, opt := range opts {
		opt(&o)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("meta(sqlite): %w", err)
		}
	}
	uri := "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path) +
		"?_busy_timeout=10000&_foreign_keys=1&_synchronous=NORMAL"

	// Page caches are kept small: every call inserts and looks up rows on
	// random pages of the indexes, so caches of the default 2 MiB per
	// connection fill slowly over thousands of calls and look, in the
	// process's RSS, like a leak. SQLite's allocator also rounds each cached
	// page (4 KiB plus a header) up to an 8 KiB slot and keeps freed memory
	// for reuse, so a cache costs twice its size and never gives it back.
	// At 128 KiB per connection the catalog's memory stops growing within
	// about a thousand calls. The pages a cache misses are in the OS page
	// cache, a pread away; a reader's cache is emptied anyway whenever its
	// next read transaction finds the WAL changed, i.e. after any write.
	w, err := sql.Open("sqlite", uri+"&_journal_mode=WAL&_txlock=immediate&_pragma=cache_size(-"+strconv.Itoa(writerCacheKiB)+")")
	if err != nil {
		return nil, fmt.Errorf("meta(sqlite): open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := migrate(ctx, w, goose.DialectSQLite3, migrations("sqlite"), nil); err != nil {
		w.Close()
		return nil, fmt.Errorf("meta(sqlite): %s: %w", path, err)
	}

	r, err := sql.Open("sqlite", uri+"&_query_only=1&_pragma=cache_size(-"+strconv.Itoa(readerCacheKiB)+")")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("meta(sqlite): open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	// Readers stay open. Closing an idle one gives nothing back to the OS
	// (SQLite's allocator keeps freed memory for reuse), and reopening it
	// parses the schema and fills a cache again: the churn only grows RSS.
	r.SetConnMaxIdleTime(0)
	r.SetConnMaxLifetime(0)
	if err := r.PingContext(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("meta(sqlite): %s: %w", path, err)
	}
	// The writer keeps its statement journals in memory. A statement of a
	// transaction (every catalog write is one: see group.go) that may fail
	// halfway (a trigger, a constraint) copies each page it changes to
	// SQLite's sub-journal, to undo itself; past 64 KiB (16 pages: a live
	// row's insert changes 13, and more whenever one of the 12 b-trees it
	// touches splits a page) the sub-journal spilled to a temporary file,
	// created, written, unlinked and closed in the commit (RESULTS.md,
	// call13). In memory it holds
	// at most the pages of one statement (or of one savepoint) and is
	// emptied after it. Set after the migrations: temp_store=MEMORY also
	// keeps a sort in memory whole, and a migration may build an index
	// over every row; the writer's own statements sort nothing large.
	if _, err := w.ExecContext(ctx, "PRAGMA temp_store=MEMORY"); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("meta(sqlite): %s: temp_store: %w", path, err)
	}
	// Keep the planner's statistics fresh (cheap; see "PRAGMA optimize").
	_, _ = w.ExecContext(ctx, "PRAGMA optimize=0x10002")
	st := newSQLStore(w, r, sqliteDialect, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = w.ExecContext(ctx, "PRAGMA optimize")
		return errors.Join(r.Close(), w.Close())
	})
	st.group = newCommitGroup(w, groupWindow)
	if err := st.seedFeatures(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("meta(sqlite): %s: %w", path, err)
	}
	if st.tokens, err = o.aead(); err == nil {
		err = st.sealTokens(ctx)
	}
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("meta(sqlite): %s: %w", path, err)
	}
	return st, nil
}

// migrate applies the embedded migrations. Features add their tables in
// migrations of their own that are developed in parallel, so a database
// may have met a later number before an earlier one lands: those are
// applied out of order rather than refused (each feature's migration
// touches only its own tables).
func migrate(ctx context.Context, db *sql.DB, d goose.Dialect, fsys fs.FS, opts []goose.ProviderOption) error {
	opts = append(opts, goose.WithLogger(goose.NopLogger()), goose.WithDisableGlobalRegistry(true),
		goose.WithAllowOutofOrder(true))
	p, err := goose.NewProvider(d, db, fsys, opts...)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return nil
}
