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

	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
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
// t, or fails it under CI (CI=true), where every test must run.
func FreshDatabase(t testing.TB, prefix string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn := DSN()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		testutil.SkipOrFail(t, "SKIP: PostgreSQL unreachable (scripts/pg-test.sh starts it): %v", err)
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

// FreshStore is a catalog store (meta.OpenPostgres, token key "test") on
// a FreshDatabase of t's own, closed when t ends (before the database is
// dropped), and the database's URL.
func FreshStore(t testing.TB, prefix string) (meta.Store, string) {
	t.Helper()
	dsn := FreshDatabase(t, prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := meta.OpenPostgres(ctx, dsn, meta.WithTokenKey("test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, dsn
}

// BusyOutbox makes the catalog database that db is connected to refuse
// every insert into webhook_outbox with PostgreSQL's lock_not_available
// (55P03), as a busy catalog does, while the table outbox_block has a row:
// it has one now, and `DELETE FROM outbox_block` lets the inserts through.
// refusals counts the inserts refused so far (a sequence, which the
// refused insert's rollback leaves counted).
func BusyOutbox(t testing.TB, ctx context.Context, db *pgx.Conn) (refusals func() int64) {
	t.Helper()
	for _, q := range []string{
		`CREATE TABLE outbox_block (x int)`, `INSERT INTO outbox_block VALUES (1)`, `CREATE SEQUENCE outbox_refusals`,
		`CREATE FUNCTION outbox_busy() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN
  IF EXISTS (SELECT 1 FROM outbox_block) THEN
    PERFORM nextval('outbox_refusals');
    RAISE EXCEPTION 'outbox busy (test)' USING ERRCODE = '55P03';
  END IF;
  RETURN NEW; END $f$`,
		`CREATE TRIGGER outbox_busy BEFORE INSERT ON webhook_outbox FOR EACH ROW EXECUTE FUNCTION outbox_busy()`,
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return func() int64 {
		t.Helper()
		var n int64
		var called bool
		if err := db.QueryRow(ctx, `SELECT last_value, is_called FROM outbox_refusals`).Scan(&n, &called); err != nil {
			t.Fatal(err)
		}
		if !called {
			return 0
		}
		return n
	}
}
