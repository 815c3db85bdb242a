package meta

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestTransient classifies real errors of both catalogs: what passes
// (busy, lock not available, a deadline, a refused connection) and what
// does not (a constraint, a syntax error, a refused value).
func TestTransient(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	st, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// SQLite busy: another connection holds the write lock, no busy wait.
	holder, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	hc, err := holder.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	if _, err := hc.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", "file:"+path+"?_busy_timeout=0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, busy := other.ExecContext(ctx, "BEGIN IMMEDIATE")
	hc.ExecContext(ctx, "ROLLBACK")
	_, syntax := other.ExecContext(ctx, "SELEC 1")
	_, unique := other.ExecContext(ctx, "CREATE TABLE u (x PRIMARY KEY); INSERT INTO u VALUES (1); INSERT INTO u VALUES (1)")

	// A refused TCP connection (a port just closed).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, refused := OpenPostgres(pctx, "postgres://u:p@"+addr+"/db?sslmode=disable&connect_timeout=2", WithTokenKey("x"))

	dctx, dcancel := context.WithTimeout(ctx, time.Nanosecond)
	defer dcancel()
	<-dctx.Done()
	deadline := st.(Outbox).Heartbeat(dctx, "n", time.Now())

	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"sqlite busy", busy, true},
		{"deadline", deadline, true},
		{"connection refused", refused, true},
		{"sqlite syntax", syntax, false},
		{"sqlite unique", unique, false},
		{"invalid", fmt.Errorf("x: %w", ErrInvalid), false},
		{"nil", nil, false},
	}
	for _, c := range cases {
		if c.err == nil && c.want {
			t.Fatalf("%s: no error", c.name)
		}
		if got := Transient(c.err); got != c.want {
			t.Errorf("%s: Transient(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
	if busy == nil || syntax == nil || unique == nil || refused == nil || deadline == nil {
		t.Fatalf("an error did not happen: busy %v syntax %v unique %v refused %v deadline %v", busy, syntax, unique, refused, deadline)
	}

	// PostgreSQL: a lock not available (NOWAIT) passes, a syntax error does not.
	pg := openPostgresTest(t).(*sqlStore)
	if _, err := pg.w.ExecContext(ctx, "CREATE TABLE lk (x int)"); err != nil {
		t.Fatal(err)
	}
	tx, err := pg.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "LOCK TABLE lk IN EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	tx2, err := pg.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx2.Rollback()
	_, nowait := tx2.ExecContext(ctx, "LOCK TABLE lk IN EXCLUSIVE MODE NOWAIT")
	_, pgSyntax := pg.w.ExecContext(ctx, "SELEC 1")
	if nowait == nil || !Transient(nowait) {
		t.Errorf("lock not available: Transient(%v) false", nowait)
	}
	if pgSyntax == nil || Transient(pgSyntax) {
		t.Errorf("syntax: Transient(%v) true", pgSyntax)
	}
}
