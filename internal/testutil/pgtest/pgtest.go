// Package pgtest gives tests a PostgreSQL database of their own on the
// test server.
package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DSN is the test PostgreSQL server: $TAPEDECK_TEST_PG_DSN, else the role
// that scripts/pg-test.sh makes on 127.0.0.1.
func DSN() string {
	if dsn := os.Getenv("TAPEDECK_TEST_PG_DSN"); dsn != "" {
		return dsn
	}
	return "postgres://tapedeck:tapedeck@127.0.0.1:5432/postgres?sslmode=disable"
}

// FreshDatabase creates a database for t alone on the test server (named
// prefix_<nanoseconds>), dropped once t and the cleanups registered after
// it have run, and returns its URL. A server that cannot be reached skips
// t.
func FreshDatabase(t testing.TB, prefix string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn := DSN()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Skip("SKIP: PostgreSQL unreachable: ", err)
	}
	defer admin.Close(context.Background())
	name := fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, dsn); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
