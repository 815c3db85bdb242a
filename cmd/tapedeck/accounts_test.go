package main

// `tapedeck accounts` as an operator runs it: the built binary with -data or
// the server's own -config file (SQLite, or PostgreSQL when
// catalog.database names one and a server is reachable), checked through
// the metadata store and through a running server's Restcomm API.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil"
)

var (
	createLine = regexp.MustCompile(`^(AC[0-9a-f]{32}) ([0-9a-f]{32})\n$`)
	listLine   = regexp.MustCompile(`^(AC[0-9a-f]{32}) (\S+)$`)
)

// cliEnv is the environment without TAPEDECK_* variables, so that the
// caller's settings (e.g. TAPEDECK_DATABASE) do not leak into the tests.
func cliEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TAPEDECK_") {
			env = append(env, kv)
		}
	}
	return env
}

// cli runs the tapedeck binary with args and returns its exit code, stdout
// and stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(tapedeckBinary(t), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = cliEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("tapedeck %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return code, stdout.String(), stderr.String()
}

// mustCLI runs the binary and requires exit 0.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := cli(t, args...)
	if code != 0 {
		t.Fatalf("tapedeck %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

type cliAccount struct{ sid, token, name string }

// createAccount runs `accounts create name` and checks its one-line output.
func createAccount(t *testing.T, where []string, name string) cliAccount {
	t.Helper()
	out := mustCLI(t, append(append([]string{"accounts"}, where...), "create", name)...)
	m := createLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("accounts create %s printed %q, want one line \"AccountSid AuthToken\"", name, out)
	}
	return cliAccount{m[1], m[2], name}
}

// listAccounts runs `accounts list` and parses its lines (no tokens: they
// are shown only by create and rotate).
func listAccounts(t *testing.T, where []string) []cliAccount {
	t.Helper()
	out := mustCLI(t, append(append([]string{"accounts"}, where...), "list")...)
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("accounts list output does not end in a newline: %q", out)
	}
	var list []cliAccount
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		m := listLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("accounts list line %q, want \"AccountSid Name\"", line)
		}
		list = append(list, cliAccount{sid: m[1], name: m[2]})
	}
	return list
}

// rotateToken runs `accounts rotate sid` and returns the new token.
func rotateToken(t *testing.T, where []string, sid string) string {
	t.Helper()
	out := mustCLI(t, append(append([]string{"accounts"}, where...), "rotate", sid)...)
	m := createLine.FindStringSubmatch(out)
	if m == nil || m[1] != sid {
		t.Fatalf("accounts rotate %s printed %q, want one line \"%s NewAuthToken\"", sid, out, sid)
	}
	return m[2]
}

// checkAccountsCLI runs create / list / rotate / errors against one store
// (where are the flags naming it) and checks the results with open, which
// opens the same store. It returns the accounts, default first.
func checkAccountsCLI(t *testing.T, where []string, open func(t *testing.T) meta.Store) []cliAccount {
	t.Helper()
	alice := createAccount(t, where, "alice")
	bob := createAccount(t, where, "bob")
	if alice.sid == bob.sid || alice.token == bob.token {
		t.Fatalf("two accounts share a Sid or token: %+v %+v", alice, bob)
	}
	// A taken name: an error, nothing on stdout.
	code, out, errOut := cli(t, append(append([]string{"accounts"}, where...), "create", "alice")...)
	if code == 0 || out != "" || !strings.Contains(errOut, "tapedeck") {
		t.Fatalf("create of a taken name: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	list := listAccounts(t, where)
	named := func(a cliAccount) cliAccount { return cliAccount{sid: a.sid, name: a.name} }
	if len(list) != 3 || list[0].name != "default" || list[1] != named(alice) || list[2] != named(bob) {
		t.Fatalf("accounts list %+v, want default, then %+v, %+v", list, alice, bob)
	}
	// A token is shown once, by create or rotate; never by list.
	if out := mustCLI(t, append(append([]string{"accounts"}, where...), "list")...); strings.Contains(out, alice.token) || strings.Contains(out, bob.token) {
		t.Fatalf("accounts list shows tokens:\n%s", out)
	}
	def := list[0]
	if again := listAccounts(t, where); again[0] != def {
		t.Fatalf("default account changed between runs: %+v then %+v", def, again[0])
	}
	// The default account, made by the catalog, gets a token the
	// operator sees by rotating it.
	def.token = rotateToken(t, where, def.sid)

	newToken := rotateToken(t, where, alice.sid)
	if newToken == alice.token {
		t.Fatal("rotate printed the old token")
	}
	list = listAccounts(t, where)
	if list[1] != named(alice) || list[2] != named(bob) || list[0] != named(def) {
		t.Fatalf("after rotate: %+v", list)
	}
	code, out, errOut = cli(t, append(append([]string{"accounts"}, where...), "rotate", "AC"+strings.Repeat("0", 32))...)
	if code == 0 || out != "" || errOut == "" {
		t.Fatalf("rotate of an unknown Sid: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// The store agrees: the old token no longer authenticates.
	st := open(t)
	defer st.Close()
	ctx := context.Background()
	if _, err := st.Authenticate(ctx, alice.sid, alice.token); !errors.Is(err, meta.ErrUnauthorized) {
		t.Errorf("old token after rotate: %v, want ErrUnauthorized", err)
	}
	if a, err := st.Authenticate(ctx, alice.sid, newToken); err != nil || a.Name != "alice" {
		t.Errorf("new token: %+v %v", a, err)
	}
	if _, err := st.Authenticate(ctx, bob.sid, bob.token); err != nil {
		t.Errorf("bob's token (not rotated): %v", err)
	}
	if d, err := st.EnsureDefaultAccount(ctx); err != nil || d.Sid != def.sid || d.AuthToken != def.token {
		t.Errorf("default account in the store %+v %v, CLI listed %+v", d, err, def)
	}
	return []cliAccount{def, {alice.sid, newToken, "alice"}, bob}
}

// TestAccountsCLIDataDir: the CLI on a -data directory (SQLite).
func TestAccountsCLIDataDir(t *testing.T) {
	dir := t.TempDir()
	where := []string{"-data", dir}
	checkAccountsCLI(t, where, func(t *testing.T) meta.Store {
		st, err := meta.OpenSQLite(filepath.Join(dir, "tapedeck.db"))
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

// TestAccountsCLIUsage: bad usage exits non-zero with the usage message and
// prints nothing on stdout.
func TestAccountsCLIUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{},
		{"create"},
		{"create", "a", "b"},
		{"list", "extra"},
		{"rotate"},
		{"rotate", "AC1", "AC2"},
		{"frobnicate"},
		{"-nosuchflag", "list"},
	} {
		var stdout, stderr bytes.Buffer
		full := append([]string{"-data", dir}, args...)
		if code := accounts(full, &stdout, &stderr); code == 0 || stdout.Len() != 0 || !strings.Contains(stderr.String(), "usage: tapedeck accounts") {
			t.Errorf("accounts %q: exit %d, stdout %q, stderr %q; want non-zero and the usage", full, code, stdout.String(), stderr.String())
		}
	}
	// The binary too, through main's dispatch.
	code, out, errOut := cli(t, "accounts", "-data", dir)
	if code == 0 || out != "" || !strings.Contains(errOut, "usage: tapedeck accounts") {
		t.Errorf("tapedeck accounts (no command): exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = cli(t, "accounts", "-data", dir, "create")
	if code == 0 || out != "" || !strings.Contains(errOut, "usage: tapedeck accounts") {
		t.Errorf("tapedeck accounts create (no name): exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// A config file that does not exist or does not parse.
	code, out, errOut = cli(t, "accounts", "-config", filepath.Join(dir, "missing.yaml"), "list")
	if code == 0 || out != "" || !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("missing config: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("catalog:\n  databse: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = cli(t, "accounts", "-config", bad, "list")
	if code == 0 || out != "" || !strings.Contains(errOut, "databse") {
		t.Errorf("config with a typo: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// A database that is not PostgreSQL.
	mysql := filepath.Join(dir, "mysql.yaml")
	if err := os.WriteFile(mysql, []byte("data_dir: "+dir+"\ncatalog:\n  database: mysql://x@127.0.0.1/y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = cli(t, "accounts", "-config", mysql, "list")
	if code == 0 || out != "" || !strings.Contains(errOut, "catalog.database") {
		t.Errorf("non-PostgreSQL catalog.database: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// restcommStatus GETs an account's recordings list from a server.
func restcommStatus(t *testing.T, base, sid, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/restcomm/2012-04-24/Accounts/"+sid+"/Recordings.json", nil)
	req.SetBasicAuth(sid, token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestAccountsCLIServerConfig: the CLI with the server's -config file;
// the server started on the same file accepts the accounts it made, and a
// rotation while it runs takes effect at once.
func TestAccountsCLIServerConfig(t *testing.T) {
	sipPort, httpPort := testutil.FreeSIPPort(t), testutil.FreeTCPPort(t)
	cfgPath := writeConfig(t, sipPort, httpPort)
	where := []string{"-config", cfgPath}
	dataDir := dataDirOf(t, cfgPath)
	accs := checkAccountsCLI(t, where, func(t *testing.T) meta.Store {
		st, err := meta.OpenSQLite(filepath.Join(dataDir, "tapedeck.db"))
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
	def, alice, bob := accs[0], accs[1], accs[2]

	startBinary(t, "-config", cfgPath)
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitHTTP(t, base)
	for _, a := range accs {
		if code := restcommStatus(t, base, a.sid, a.token); code != 200 {
			t.Errorf("%s (%s) with the CLI's token: %d, want 200", a.name, a.sid, code)
		}
	}
	// A rotation while the server runs: the old token is refused at once.
	newToken := rotateToken(t, where, bob.sid)
	if code := restcommStatus(t, base, bob.sid, bob.token); code != 401 {
		t.Errorf("bob's old token after rotate: %d, want 401", code)
	}
	if code := restcommStatus(t, base, bob.sid, newToken); code != 200 {
		t.Errorf("bob's new token: %d, want 200", code)
	}
	// An account created while the server runs works at once too.
	carol := createAccount(t, where, "carol")
	if code := restcommStatus(t, base, carol.sid, carol.token); code != 200 {
		t.Errorf("carol, created while the server runs: %d, want 200", code)
	}
	if code := restcommStatus(t, base, alice.sid, def.token); code != 401 {
		t.Errorf("alice with the default account's token: %d, want 401", code)
	}
	if list := listAccounts(t, where); len(list) != 4 || list[0].sid != def.sid || list[3].sid != carol.sid || list[3].name != "carol" {
		t.Errorf("accounts list with the server running: %+v", list)
	}
}

// TestAccountsCLIPostgres: a config whose catalog.database names a fresh
// PostgreSQL database. Skips when PostgreSQL is unreachable (fails under
// CI=true).
func TestAccountsCLIPostgres(t *testing.T) {
	dsn := freshPGDatabase(t)
	cfgPath := filepath.Join(t.TempDir(), "tapedeck.yaml")
	cfg := fmt.Sprintf("data_dir: %s\ncatalog:\n  database: %q\n", t.TempDir(), dsn)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	checkAccountsCLI(t, []string{"-config", cfgPath}, func(t *testing.T) meta.Store {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st, err := meta.OpenPostgres(ctx, dsn, meta.WithTokenKeyFile(filepath.Join(dataDirOf(t, cfgPath), "token.key")))
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
	// Nothing went to the data directory's SQLite file.
	if _, err := os.Stat(filepath.Join(dataDirOf(t, cfgPath), "tapedeck.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("SQLite file with catalog.database set: %v", err)
	}
}

// freshPGDatabase creates an empty PostgreSQL database for the test (as
// internal/store/meta's tests find the server) and drops it at the end.
func freshPGDatabase(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	candidates := []string{
		"postgres://tapedeck:tapedeck@127.0.0.1:5432/postgres?sslmode=disable",
		"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
	}
	if env := os.Getenv("TAPEDECK_TEST_PG_DSN"); env != "" {
		candidates = []string{env}
	}
	connect := func(ctx context.Context, dsn string) (*pgx.Conn, error) {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, err
		}
		cfg.ConnectTimeout = 5 * time.Second
		return pgx.ConnectConfig(ctx, cfg)
	}
	var errs []string
	for _, admin := range candidates {
		c, err := connect(ctx, admin)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", redactDSN(admin), err))
			continue
		}
		b := make([]byte, 6)
		rand.Read(b)
		name := "tapedeck_cli_" + hex.EncodeToString(b)
		_, err = c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
		c.Close(ctx)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", redactDSN(admin), err))
			continue
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := connect(ctx, admin)
			if err == nil {
				_, err = c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
				c.Close(ctx)
			}
			if err != nil {
				t.Errorf("dropping database %s: %v", name, err)
			}
		})
		if strings.HasPrefix(admin, "postgres://") || strings.HasPrefix(admin, "postgresql://") {
			u, err := url.Parse(admin)
			if err != nil {
				t.Fatal(err)
			}
			u.Path = "/" + name
			return u.String()
		}
		t.Skipf("SKIP: TAPEDECK_TEST_PG_DSN is not a postgres:// URL, which catalog.database needs")
	}
	testutil.SkipOrFail(t, "SKIP PostgreSQL test: PostgreSQL unreachable (%s); run scripts/pg-test.sh or set TAPEDECK_TEST_PG_DSN", strings.Join(errs, "; "))
	return ""
}

func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}
