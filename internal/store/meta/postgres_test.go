package meta

// PostgreSQL tests. The server is found at $TAPEDECK_TEST_PG_DSN, else at
// defaultTestPGDSN (the role scripts/pg-test.sh creates), else as the
// postgres superuser without password (trust/peer setups). One database,
// tapedeck_test_<random>, is made per test run and dropped at its end; each
// store gets its own schema in it. When no server answers the tests skip,
// but fail under CI=true.

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

const defaultTestPGDSN = "postgres://tapedeck:tapedeck@127.0.0.1:5432/postgres?sslmode=disable"

var pgTest struct {
	once   sync.Once
	err    error
	admin  *sql.DB // connected to the server's own database (for DROP)
	testDB *sql.DB // connected to the test database (for CREATE SCHEMA)
	dsn    string  // the test database
	dbName string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pgTest.dbName != "" {
		pgTest.testDB.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if _, err := pgTest.admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{pgTest.dbName}.Sanitize()+` WITH (FORCE)`); err != nil {
			fmt.Fprintf(os.Stderr, "meta: dropping test database %s: %v\n", pgTest.dbName, err)
		}
		cancel()
		pgTest.admin.Close()
	}
	os.Exit(code)
}

// withDatabase returns dsn naming database db (and search_path, if set).
func withDatabase(dsn, db, searchPath string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", err
		}
		u.Path = "/" + db
		if searchPath != "" {
			q := u.Query()
			q.Set("search_path", searchPath)
			u.RawQuery = q.Encode()
		}
		return u.String(), nil
	}
	dsn += " dbname=" + db
	if searchPath != "" {
		dsn += " search_path=" + searchPath
	}
	return dsn, nil
}

func pgConnect(ctx context.Context, dsn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = 5 * time.Second
	db := stdlib.OpenDB(*cfg)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func setupPG() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	candidates := []string{defaultTestPGDSN, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"}
	if env := os.Getenv("TAPEDECK_TEST_PG_DSN"); env != "" {
		candidates = []string{env}
	}
	var errs []string
	for _, dsn := range candidates {
		admin, err := pgConnect(ctx, dsn)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", redact(dsn), err))
			continue
		}
		name := "tapedeck_test_" + randomHex(6)
		if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
			admin.Close()
			errs = append(errs, fmt.Sprintf("%s: %v", redact(dsn), err))
			continue
		}
		pgTest.admin, pgTest.dbName = admin, name
		if pgTest.dsn, err = withDatabase(dsn, name, ""); err != nil {
			return err
		}
		if pgTest.testDB, err = pgConnect(ctx, pgTest.dsn); err != nil {
			return err
		}
		return nil
	}
	return fmt.Errorf("%s", strings.Join(errs, "; "))
}

func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}

// pgTestDSN returns the DSN of a fresh, empty schema in the run's test
// database, or skips (fails under CI=true) when PostgreSQL is unreachable.
func pgTestDSN(t testing.TB) string {
	t.Helper()
	pgTest.once.Do(func() { pgTest.err = setupPG() })
	if pgTest.err != nil {
		msg := fmt.Sprintf("PostgreSQL unreachable (%v); run scripts/pg-test.sh or set TAPEDECK_TEST_PG_DSN", pgTest.err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("SKIP: " + msg)
	}
	schema := "s_" + randomHex(6)
	if _, err := pgTest.testDB.ExecContext(context.Background(), `CREATE SCHEMA `+schema); err != nil {
		t.Fatal(err)
	}
	dsn, err := withDatabase(pgTest.dsn, pgTest.dbName, schema)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// testTokenKey seals the PostgreSQL test stores' tokens.
const testTokenKey = "meta tests"

func openPostgresTest(t testing.TB) Store {
	t.Helper()
	dsn := pgTestDSN(t)
	s, err := OpenPostgres(tctx(t), dsn, WithTokenKey(testTokenKey))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestPostgres(t *testing.T) { runStoreTests(t, openPostgresTest) }

func TestPostgresReopen(t *testing.T) {
	dsn := pgTestDSN(t)
	ctx := tctx(t)
	// Nodes starting together: concurrent opens migrate once.
	stores := make([]Store, 4)
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = OpenPostgres(ctx, dsn, WithTokenKey(testTokenKey))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open #%d: %v", i, err)
		}
		defer stores[i].Close()
	}
	def, err := stores[0].EnsureDefaultAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := sampleRec(def.Sid, 1)
	mustPut(t, stores[1], r)
	got, err := stores[2].Recording(ctx, def.Sid, r.Sid)
	if err != nil {
		t.Fatal(err)
	}
	checkRec(t, got, normRec(r))
	if _, err := OpenPostgres(ctx, "postgres://nobody@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", WithTokenKey(testTokenKey)); err == nil {
		t.Fatal("OpenPostgres to a closed port succeeded")
	}
}

// TestPostgresInsertVacuum: the tables whose counts are index-only scans
// (recordings, recording_owners) are vacuumed by autovacuum after every
// 10,000 inserts, not after 20 % of the table, so that their pages become
// all-visible and a count does not read the rows inserted since (migration
// 00016).
func TestPostgresInsertVacuum(t *testing.T) {
	s := openPostgresTest(t)
	for _, table := range []string{"recordings", "recording_owners"} {
		var opts []string
		var raw sql.NullString
		if err := s.(*sqlStore).r.QueryRowContext(tctx(t), `SELECT array_to_string(reloptions, ',') FROM pg_class WHERE oid = $1::regclass`, table).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		opts = strings.Split(raw.String, ",")
		for _, want := range []string{"autovacuum_vacuum_insert_threshold=10000", "autovacuum_vacuum_insert_scale_factor=0"} {
			if !slices.Contains(opts, want) {
				t.Errorf("%s: reloptions %v, want %s", table, opts, want)
			}
		}
	}
}

// TestPostgresPrepareDoesNotHoldOthers: preparing a statement waits for
// the locks of the tables it names (here the outbox, locked by another
// session); meanwhile another caller's statement, prepared under its own
// deadline, ends at that deadline instead of waiting for the first
// prepare behind the store's statement mutex (the webhook sender's Notify,
// with its 10 s deadline, then hung until the lock went).
func TestPostgresPrepareDoesNotHoldOthers(t *testing.T) {
	s := openPostgresTest(t)
	ctx := tctx(t)
	conn, err := s.(*sqlStore).w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			_ = tx.Rollback()
			_ = conn.Close()
		}
	}
	defer release()
	if _, err := tx.ExecContext(ctx, `LOCK TABLE webhook_outbox IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := tx.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	claimed := make(chan error, 1)
	go func() {
		_, err := s.(Outbox).Claim(context.Background(), "a", time.Now(), time.Minute, time.Now().Add(-time.Minute), 1)
		claimed <- err
	}()
	// The claim's statement waits for the lock (it is being prepared: the
	// store is fresh).
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int
		if err := pgTest.testDB.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity
WHERE wait_event_type = 'Lock' AND $1 = ANY(pg_blocking_pids(pid))`, pid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the claim never waited for the outbox lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	done := make(chan error, 1)
	go func() {
		c, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := s.(Outbox).Enqueue(c, OutboxItem{Node: "a", Kind: "K", URL: "http://x/", ContentType: "text/plain", Body: []byte("b")})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !Transient(err) {
			t.Errorf("the insert while the outbox is locked: %v, want its deadline (a transient error)", err)
		}
	case <-time.After(5 * time.Second):
		release()
		<-done
		t.Fatal("an insert with a 300 ms deadline still waited after 5 s: it waited for another statement's prepare")
	}
	release()
	if err := <-claimed; err != nil {
		t.Errorf("the claim once the lock went: %v", err)
	}
}
