package meta

// BenchmarkMeta1M: ingest and list latency on a big catalog, for both
// backends. It loads TAPEDECK_BENCH_ROWS recordings (default 1,000,000 when
// the benchmark is selected by name, e.g. -bench Meta1M; 20,000 under a
// generic pattern such as -bench . so that a broad benchmark run stays
// short) across 100 accounts in 5,000-row transactions, reports the ingest
// rate, then measures pages of 50 and reports p50/p99 latency:
//
//	go test -run '^$' -bench Meta1M -benchtime 2000x -timeout 60m ./internal/store/meta/
//
// With TAPEDECK_BENCH_KEEP=<dir>, the rows are loaded once and kept (SQLite:
// a file in dir; PostgreSQL: a database tapedeck_bench_meta1m_<rows> on the
// test server, or TAPEDECK_BENCH_PG_DB when set), and a later run with the
// same setting reuses them.
//
// With TAPEDECK_BENCH_COLD=<command>, each scenario starts on a cold cache:
// the command is run (sh -c, outside the timing) before each scenario's
// queries with two arguments, the backend ("sqlite" or "postgres") and its
// catalog (the SQLite file, or the PostgreSQL database name), and is
// expected to evict that catalog's pages from the caches (the database's
// own and the kernel's page cache), as bench/evict-catalog.sh does (run as
// root). The figures are then those of the first queries after the
// database host boots:
//
//	TAPEDECK_BENCH_KEEP=/tmp/bench TAPEDECK_BENCH_COLD=$PWD/bench/evict-catalog.sh \
//	  go test -run '^$' -bench 'Meta1M/postgres/vacuumed' -benchtime 1000x ./internal/store/meta/
//
// Benchmarks never run in a plain `go test`.

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const benchAccounts = 100

func benchRows(b *testing.B) int {
	if v := os.Getenv("TAPEDECK_BENCH_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < benchAccounts*10 {
			b.Fatalf("TAPEDECK_BENCH_ROWS=%q: want a number >= %d", v, benchAccounts*10)
		}
		return n
	}
	if f := flag.Lookup("test.bench"); f != nil && strings.Contains(f.Value.String(), "Meta1M") {
		return 1_000_000
	}
	return 20_000
}

func BenchmarkMeta1M(b *testing.B) {
	keep := os.Getenv("TAPEDECK_BENCH_KEEP")
	b.Run("sqlite", func(b *testing.B) {
		benchCatalog(b, func(b testing.TB) Store {
			path := filepath.Join(b.TempDir(), "tapedeck.db")
			if keep != "" {
				path = filepath.Join(keep, fmt.Sprintf("meta1m-%d.db", benchRows(b.(*testing.B))))
			}
			benchColdArgs = []string{"sqlite", path}
			s, err := OpenSQLite(path)
			if err != nil {
				b.Fatal(err)
			}
			return s
		})
	})
	b.Run("postgres", func(b *testing.B) {
		benchCatalog(b, func(b testing.TB) Store {
			dsn := pgTestDSN(b)
			benchColdArgs = nil // a schema of the test database: not evicted alone
			if keep != "" {
				name := fmt.Sprintf("tapedeck_bench_meta1m_%d", benchRows(b.(*testing.B)))
				if v := os.Getenv("TAPEDECK_BENCH_PG_DB"); v != "" {
					name = v
				}
				dsn = keptPGDatabase(b, name)
				benchColdArgs = []string{"postgres", name}
			}
			s, err := OpenPostgres(context.Background(), dsn, WithTokenKey(testTokenKey))
			if err != nil {
				b.Fatal(err)
			}
			return s
		})
	})
}

// keptPGDatabase returns the DSN of database name on the test server,
// creating it when missing; it is kept after the run (TAPEDECK_BENCH_KEEP:
// a later run reuses the rows loaded there).
func keptPGDatabase(b testing.TB, name string) string {
	pgTestDSN(b) // connects, or skips
	ctx := context.Background()
	var exists bool
	if err := pgTest.admin.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		b.Fatal(err)
	}
	if !exists {
		if _, err := pgTest.admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
			b.Fatal(err)
		}
	}
	dsn, err := withDatabase(pgTest.dsn, name, "")
	if err != nil {
		b.Fatal(err)
	}
	return dsn
}

type benchSet struct {
	accounts []Account
	calls    [][]string // per account, its CallSids
	first    time.Time
	span     time.Duration
}

// benchRecording i: two recordings per call, calls round-robin over the
// accounts, DateCreated increasing over a year (as they arrive), random
// durations with decimals.
func benchLoad(b *testing.B, s Store, n int) benchSet {
	if set, ok := benchLoaded(b, s, n); ok {
		b.Logf("reusing the %d rows loaded by an earlier run (TAPEDECK_BENCH_KEEP)", n)
		return set
	}
	set, el := benchLoadT(b, s, n)
	b.Logf("ingest: %d rows in %v: %.0f rows/s", n, el.Round(time.Millisecond), float64(n)/el.Seconds())
	b.Run("ingest", func(b *testing.B) {
		for range b.N {
		}
		b.ReportMetric(float64(n)/el.Seconds(), "rows/s")
	})
	return set
}

// benchLoaded rebuilds the benchSet of the n rows that benchLoadT loaded
// into s in an earlier run (kept with TAPEDECK_BENCH_KEEP); false when s
// does not hold them.
func benchLoaded(b testing.TB, s Store, n int) (benchSet, bool) {
	ctx := context.Background()
	if _, err := s.RecordingByName(ctx, fmt.Sprintf("bench-%d", n-1)); err != nil {
		return benchSet{}, false
	}
	set := benchSet{first: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), span: 365 * 24 * time.Hour}
	for i := range benchAccounts {
		a, err := s.AccountByName(ctx, fmt.Sprintf("bench-%03d", i))
		if err != nil {
			b.Fatal(err)
		}
		set.accounts = append(set.accounts, a)
	}
	set.calls = make([][]string, benchAccounts)
	for i := 0; i < n; i += 2 {
		call := i / 2
		set.calls[call%benchAccounts] = append(set.calls[call%benchAccounts], fmt.Sprintf("CA%032x", call))
	}
	return set, true
}

func benchLoadT(b testing.TB, s Store, n int) (benchSet, time.Duration) {
	ctx := context.Background()
	set := benchSet{first: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), span: 365 * 24 * time.Hour}
	for i := range benchAccounts {
		a, err := s.CreateAccount(ctx, fmt.Sprintf("bench-%03d", i))
		if err != nil {
			b.Fatal(err)
		}
		set.accounts = append(set.accounts, a)
	}
	set.calls = make([][]string, benchAccounts)
	rng := rand.New(rand.NewPCG(7, 7))
	step := set.span / time.Duration(n)
	const batch = 5000
	rs := make([]Recording, 0, batch)
	start := time.Now()
	for i := range n {
		call := i / 2
		acct := call % benchAccounts
		callSid := fmt.Sprintf("CA%032x", call)
		if i%2 == 0 {
			set.calls[acct] = append(set.calls[acct], callSid)
		}
		dc := set.first.Add(time.Duration(i)*step + time.Duration(rng.IntN(1000))*time.Microsecond)
		rs = append(rs, Recording{
			Sid: NewRecordingSid(), AccountSid: set.accounts[acct].Sid, CallSid: callSid,
			DateCreated: dc, DateUpdated: dc, StartTime: dc.Add(-time.Second),
			Duration: float64(rng.IntN(60000)) / 100, Channels: 1, Format: "wav", Size: rng.Int64N(1 << 24),
			SHA256: randomHex(32), Source: SourceARI, Status: StatusCompleted,
			Name: fmt.Sprintf("bench-%d", i), FilePath: fmt.Sprintf("2025/bench-%d.wav", i),
			// About 200 callers per account, 50 recordings each (From).
			CallerNumber: fmt.Sprintf("+1555%07d", (call/benchAccounts)%200), CalledNumber: "+15559870000",
		})
		if len(rs) == batch || i == n-1 {
			if err := s.PutRecordings(ctx, rs); err != nil {
				b.Fatal(err)
			}
			rs = rs[:0]
		}
	}
	return set, time.Since(start)
}

func benchCatalog(b *testing.B, open func(testing.TB) Store) {
	n := benchRows(b)
	s := open(b)
	defer s.Close()
	set := benchLoad(b, s, n)
	ctx := context.Background()
	week := 7 * 24 * time.Hour

	type scenario struct {
		name string
		next func(rng *rand.Rand, last *Page) Query
	}
	window := func(rng *rand.Rand) (*time.Time, *time.Time) {
		from := set.first.Add(time.Duration(rng.Int64N(int64(set.span - week))))
		to := from.Add(week)
		return &from, &to
	}
	acct := func(rng *rand.Rand) int { return rng.IntN(benchAccounts) }
	var walk Query // deep-aftersid state
	scenarios := []scenario{
		{"window/DateCreated:desc", func(rng *rand.Rand, _ *Page) Query {
			from, to := window(rng)
			return Query{AccountSid: set.accounts[acct(rng)].Sid, StartFrom: from, StartTo: to, SortBy: SortDateCreated, Desc: true, Limit: 50}
		}},
		{"window/Duration:desc", func(rng *rand.Rand, _ *Page) Query {
			from, to := window(rng)
			return Query{AccountSid: set.accounts[acct(rng)].Sid, StartFrom: from, StartTo: to, SortBy: SortDuration, Desc: true, Limit: 50}
		}},
		{"callsid/DateCreated:desc", func(rng *rand.Rand, _ *Page) Query {
			a := acct(rng)
			return Query{AccountSid: set.accounts[a].Sid, CallSid: set.calls[a][rng.IntN(len(set.calls[a]))], SortBy: SortDateCreated, Desc: true, Limit: 50}
		}},
		{"from/DateCreated:desc", func(rng *rand.Rand, _ *Page) Query {
			return Query{AccountSid: set.accounts[acct(rng)].Sid, From: fmt.Sprintf("+1555%07d", rng.IntN(200)), SortBy: SortDateCreated, Desc: true, Limit: 50}
		}},
		{"all/IncludeDeleted/first-page", func(rng *rand.Rand, _ *Page) Query {
			return Query{AccountSid: set.accounts[acct(rng)].Sid, IncludeDeleted: true, SortBy: SortDateCreated, Desc: true, Limit: 50}
		}},
		{"all/DateCreated:desc/first-page", func(rng *rand.Rand, _ *Page) Query {
			return Query{AccountSid: set.accounts[acct(rng)].Sid, SortBy: SortDateCreated, Desc: true, Limit: 50}
		}},
		{"all/DateCreated:desc/deep-aftersid", func(rng *rand.Rand, last *Page) Query {
			if last == nil || len(last.Items) < 50 || walk.AccountSid == "" {
				walk = Query{AccountSid: set.accounts[acct(rng)].Sid, SortBy: SortDateCreated, Desc: true, Limit: 50}
			} else {
				walk.AfterSid = last.Items[len(last.Items)-1].Sid
			}
			return walk
		}},
	}
	// Deep pages by offset (Restcomm's Page), read by the deferred join
	// ("join") and by a plain OFFSET over the table's rows ("skip"),
	// alternated A B A B on the same rows; the names have one length, so
	// both draw the same accounts and offsets.
	deepOffset := func(rng *rand.Rand, _ *Page) Query {
		per := n / benchAccounts
		return Query{AccountSid: set.accounts[acct(rng)].Sid, SortBy: SortDateCreated, Desc: true, Limit: 50, Offset: per/2 + rng.IntN(per/2-50)}
	}
	for round := range 2 {
		scenarios = append(scenarios,
			scenario{fmt.Sprintf("all/DateCreated:desc/deep-offset/join/%d", round+1), deepOffset},
			scenario{fmt.Sprintf("all/DateCreated:desc/deep-offset/skip/%d", round+1), deepOffset})
	}
	defer func() { deferredOffset = true }()
	// Twice: right after the bulk load, and after what autovacuum (or
	// SQLite's PRAGMA optimize) does to such a table soon after: PostgreSQL
	// reads of freshly loaded pages are slower (hint bits, no visibility
	// map for index-only COUNTs).
	for _, phase := range []string{"fresh", "vacuumed"} {
		if phase == "vacuumed" {
			st := s.(*sqlStore)
			maint := "VACUUM ANALYZE recordings, recording_owners"
			if st.d.name == "sqlite" {
				maint = "ANALYZE"
			}
			t := time.Now()
			if _, err := st.w.ExecContext(ctx, maint); err != nil {
				b.Fatal(err)
			}
			b.Logf("%s: %v", maint, time.Since(t).Round(time.Millisecond))
		}
		for _, sc := range scenarios {
			walk = Query{}
			deferredOffset = !strings.Contains(sc.name, "/skip/")
			benchScenario(b, s, phase+"/"+sc.name, sc.next)
		}
	}
}

// benchColdArgs: the arguments of TAPEDECK_BENCH_COLD's command for the
// catalog being measured (nil: not evicted).
var benchColdArgs []string

// benchCold runs TAPEDECK_BENCH_COLD's command, when set, for the catalog
// being measured.
func benchCold(b *testing.B) {
	cmd := os.Getenv("TAPEDECK_BENCH_COLD")
	if cmd == "" {
		return
	}
	if benchColdArgs == nil {
		b.Fatal("TAPEDECK_BENCH_COLD needs TAPEDECK_BENCH_KEEP (a database of its own to evict)")
	}
	out, err := exec.Command("sh", append([]string{"-c", cmd + ` "$@"`, "sh"}, benchColdArgs...)...).CombinedOutput()
	if err != nil {
		b.Fatalf("TAPEDECK_BENCH_COLD %q: %v\n%s", cmd, err, out)
	}
	b.Logf("cold: %s", bytes.TrimSpace(out))
}

func benchScenario(b *testing.B, s Store, name string, next func(*rand.Rand, *Page) Query) {
	ctx := context.Background()
	{
		sc := struct {
			name string
			next func(*rand.Rand, *Page) Query
		}{name, next}
		b.Run(sc.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, uint64(len(sc.name))))
			lat := make([]time.Duration, 0, b.N)
			var last *Page
			rows := 0
			benchCold(b)
			b.ResetTimer()
			for range b.N {
				q := sc.next(rng, last)
				t := time.Now()
				p, err := s.ListRecordings(ctx, q)
				lat = append(lat, time.Since(t))
				if err != nil {
					b.Fatal(err)
				}
				rows += len(p.Items)
				last = &p
			}
			b.StopTimer()
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(float64(rows)/float64(b.N), "rows/op")
		})
	}
}

// BenchmarkReadiness: what the node's readiness check (every second, and
// per /readyz) costs on a catalog of TAPEDECK_BENCH_ACCOUNTS accounts
// (default 10,000): the account list it used to read (every row, every
// token unsealed) against Ping.
//
//	go test -run '^$' -bench Readiness ./internal/store/meta/
func BenchmarkReadiness(b *testing.B) {
	n := 10_000
	if v := os.Getenv("TAPEDECK_BENCH_ACCOUNTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	for _, backend := range []struct {
		name string
		open func(testing.TB) Store
	}{{"sqlite", openSQLiteTest}, {"postgres", openPostgresTest}} {
		b.Run(backend.name, func(b *testing.B) {
			s := backend.open(b)
			ctx := context.Background()
			for i := range n {
				if _, err := s.CreateAccount(ctx, fmt.Sprintf("acct-%05d", i)); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("ListAccounts", func(b *testing.B) {
				for range b.N {
					if _, err := s.ListAccounts(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("Ping", func(b *testing.B) {
				for range b.N {
					if err := s.Ping(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
