package meta

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/tapedeck/tapedeck/internal/rawsock"
)

func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

var postgresDialect = &dialect{
	name:     "postgres",
	rebind:   func(q string) string { return q },
	timeArg:  func(t time.Time) any { return t },
	boolCast: "::boolean",
	timeCast: "::timestamptz",
	isUnique: func(err error) bool { return pgCode(err) == "23505" },
	putChunk: 200,
	isFKey:   func(err error) bool { return pgCode(err) == "23503" },
}

// pgConnLifetime bounds a catalog connection's life (the pool's and Ping's
// held one).
const pgConnLifetime = time.Hour

// OpenPostgres connects to the PostgreSQL catalog named by dsn (a URL such
// as postgres://user:pass@host:5432/db?sslmode=disable, or key=value pairs;
// a search_path parameter selects the schema) and applies the migrations,
// under an advisory lock so that nodes starting together migrate once.
// The accounts' tokens are sealed with the key of the options, which are
// required (WithTokenKey, WithTokenKeyFile): nodes sharing the catalog
// must use the same key.
func OpenPostgres(ctx context.Context, dsn string, opts ...Option) (Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	aead, err := o.aead()
	if err != nil {
		return nil, fmt.Errorf("meta(postgres): %w", err)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("meta(postgres): %w", err)
	}
	// The connections' reads and writes stay out of the scheduler's
	// syscall state (package rawsock): a reply that finds the node idle
	// no longer wakes the runtime's monitor.
	cfg.DialFunc = rawsock.WrapDial(cfg.DialFunc)
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(pgConnLifetime)

	var schema string
	if err := db.QueryRowContext(ctx, `SELECT current_database() || '.' || coalesce(current_schema(), '')`).Scan(&schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("meta(postgres): connect: %w", err)
	}
	// One lock per database and schema.
	h := fnv.New64a()
	h.Write([]byte("tapedeck/meta:" + schema))
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(int64(h.Sum64()&(1<<62-1))),
		lock.WithLockTimeout(1, 300),
		lock.WithUnlockTimeout(1, 60))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("meta(postgres): %w", err)
	}
	if err := migrate(ctx, db, goose.DialectPostgres, migrations("postgres"),
		[]goose.ProviderOption{goose.WithSessionLocker(locker)}); err != nil {
		db.Close()
		return nil, fmt.Errorf("meta(postgres): %w", err)
	}
	st := newSQLStore(db, db, postgresDialect, db.Close)
	st.tokens = aead
	if err := st.seedFeatures(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("meta(postgres): %w", err)
	}
	if err := st.sealTokens(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("meta(postgres): %w", err)
	}
	return st, nil
}
