package meta

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tokenRig is one backend for the token tests: open (re)opens the store
// with a key, raw reaches the database without the store, and dump is
// everything the database holds for the accounts as bytes (SQLite: the
// files; PostgreSQL: the rows as text).
type tokenRig struct {
	open func(t *testing.T, key string) (Store, error)
	raw  func(t *testing.T) *sql.DB
	dump func(t *testing.T) []byte
}

func sqliteTokenRig(t *testing.T) tokenRig {
	path := filepath.Join(t.TempDir(), "data", "tapedeck.db")
	return tokenRig{
		open: func(t *testing.T, key string) (Store, error) {
			if key == "" {
				return OpenSQLite(path) // token.key beside the database
			}
			return OpenSQLite(path, WithTokenKey(key))
		},
		raw: func(t *testing.T) *sql.DB {
			db, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			return db
		},
		dump: func(t *testing.T) []byte {
			var all []byte
			for _, f := range []string{path, path + "-wal", path + "-shm"} {
				b, err := os.ReadFile(f)
				if err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Fatal(err)
				}
				all = append(all, b...)
			}
			return all
		},
	}
}

func postgresTokenRig(t *testing.T) tokenRig {
	dsn := pgTestDSN(t)
	return tokenRig{
		open: func(t *testing.T, key string) (Store, error) {
			if key == "" {
				key = testTokenKey
			}
			return OpenPostgres(tctx(t), dsn, WithTokenKey(key))
		},
		raw: func(t *testing.T) *sql.DB {
			db, err := pgConnect(tctx(t), dsn)
			if err != nil {
				t.Fatal(err)
			}
			return db
		},
		dump: func(t *testing.T) []byte {
			db, err := pgConnect(tctx(t), dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			rows, err := db.QueryContext(tctx(t), `SELECT a::text FROM accounts a`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var all []byte
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					t.Fatal(err)
				}
				all = append(all, s...)
			}
			return all
		},
	}
}

func TestTokensAtRestSQLite(t *testing.T)   { testTokensAtRest(t, sqliteTokenRig(t)) }
func TestTokensAtRestPostgres(t *testing.T) { testTokensAtRest(t, postgresTokenRig(t)) }

// testTokensAtRest: the tokens of created, rotated and legacy (plaintext,
// from before migration 00011) accounts are nowhere in the database, yet
// authenticate and come back whole (for signing callbacks); a store opened
// with another key refuses to start.
func testTokensAtRest(t *testing.T, rig tokenRig) {
	ctx := tctx(t)
	s, err := rig.open(t, "")
	if err != nil {
		t.Fatal(err)
	}
	def, err := s.EnsureDefaultAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	alice := mustAccount(t, s, "alice")
	bob := mustAccount(t, s, "bob")
	oldBob := bob.AuthToken
	if bob, err = s.RotateToken(ctx, bob.Sid); err != nil || bob.AuthToken == oldBob {
		t.Fatalf("rotate: %+v, %v", bob, err)
	}
	// A legacy account: its token in plain text, as before 00011.
	const legacy = "0123456789abcdef0123456789abcdef"
	raw := rig.raw(t)
	if _, err := raw.ExecContext(ctx, s.(*sqlStore).q(`UPDATE accounts SET auth_token = $1, token_hash = '', token_enc = '' WHERE sid = $2`), legacy, alice.Sid); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if a, err := s.Authenticate(ctx, alice.Sid, legacy); err != nil || a.AuthToken != legacy {
		t.Fatalf("legacy token before the reopen: %+v, %v", a, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened: the legacy row is sealed.
	s, err = rig.open(t, "")
	if err != nil {
		t.Fatal(err)
	}
	dump := rig.dump(t)
	if len(dump) == 0 || !bytes.Contains(dump, []byte(def.Sid)) {
		t.Fatalf("the dump does not hold the accounts (%d bytes)", len(dump))
	}
	for name, tok := range map[string]string{"default": def.AuthToken, "legacy": legacy, "rotated": bob.AuthToken, "before rotation": oldBob} {
		if bytes.Contains(dump, []byte(tok)) {
			t.Errorf("the %s token %s is readable in the database", name, tok)
		}
	}
	for _, c := range []struct {
		sid, tok string
	}{{def.Sid, def.AuthToken}, {alice.Sid, legacy}, {bob.Sid, bob.AuthToken}} {
		a, err := s.Authenticate(ctx, c.sid, c.tok)
		if err != nil || a.AuthToken != c.tok {
			t.Errorf("Authenticate(%s): %+v, %v", c.sid, a, err)
		}
		if a, err := s.Account(ctx, c.sid); err != nil || a.AuthToken != c.tok {
			t.Errorf("Account(%s).AuthToken = %q, %v; want %q", c.sid, a.AuthToken, err, c.tok)
		}
		if _, err := s.Authenticate(ctx, c.sid, strings.ToUpper(c.tok)); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("Authenticate(%s) with a wrong token: %v", c.sid, err)
		}
	}
	if _, err := s.Authenticate(ctx, bob.Sid, oldBob); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("the token before rotation still works: %v", err)
	}
	list, err := s.ListAccounts(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("ListAccounts: %d, %v", len(list), err)
	}
	for _, a := range list {
		if len(a.AuthToken) != 32 {
			t.Errorf("listed %s with token %q", a.Name, a.AuthToken)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Another key does not open them: refused at open, not at the first
	// callback.
	if s, err := rig.open(t, "not the key"); !errors.Is(err, ErrTokenKey) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("open with another key: %v; want ErrTokenKey", err)
	}
}

// Without a key option, SQLite keeps its key owner-only beside the
// database, and PostgreSQL (shared by nodes) wants one given.
func TestTokenKeyDefaults(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := OpenSQLite(filepath.Join(dir, "tapedeck.db"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	fi, err := os.Stat(filepath.Join(dir, "token.key"))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() < 64 {
		t.Fatalf("token.key: %v, %v", fi, err)
	}
	if _, err := OpenPostgres(context.Background(), "postgres://x@127.0.0.1:1/x"); !errors.Is(err, ErrInvalid) ||
		!strings.Contains(err.Error(), "catalog.token_key") {
		t.Fatalf("OpenPostgres without a key: %v", err)
	}
}
