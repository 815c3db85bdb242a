package sip

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/testutil/pgtest"
)

// BenchmarkContacts is the per-call cost of finding the callee's phones
// now that the location store is shared by the nodes: Contacts reads the
// user's rows from the catalog database (10,000 registered users) and
// lays this node's unwritten changes over them. sqlite: the catalog is
// SQLite; postgres: PostgreSQL on 127.0.0.1 (skipped when unreachable;
// $TAPEDECK_TEST_PG_DSN as the store tests use it).
func BenchmarkContacts(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		st, err := meta.OpenSQLite(filepath.Join(b.TempDir(), "meta.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		benchContacts(b, st)
	})
	b.Run("postgres", func(b *testing.B) {
		st := benchPostgres(b)
		defer st.Close()
		benchContacts(b, st)
	})
}

func benchContacts(b *testing.B, st meta.Store) {
	const users = 10000
	loc := metaLocations{st.(meta.Registrations)}
	now := time.Now()
	var changes []BindingChange
	for u := range users {
		name := fmt.Sprintf("u%d", u)
		changes = append(changes, BindingChange{User: name, Upsert: []Binding{{User: name,
			Contact: fmt.Sprintf("sip:%s@127.0.0.1:%d", name, 10000+u%50000), Expires: now.Add(time.Hour), CallID: "c", CSeq: 1}}})
	}
	ctx := context.Background()
	for chunk := range slices.Chunk(changes, 1000) {
		if err := loc.ApplyBindings(ctx, chunk); err != nil {
			b.Fatal(err)
		}
	}
	r := NewRegistrar(NewAuthenticator(testUsers, DigestOptions{}, nil), loc, RegistrarOptions{}, slog.New(slog.DiscardHandler))
	defer r.Close()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for n := range b.N {
		start := time.Now()
		if cs := r.Contacts(fmt.Sprintf("u%d", n%users)); len(cs) != 1 {
			b.Fatalf("user %d: %v", n%users, cs)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// benchPostgres opens a fresh database on the test PostgreSQL server,
// dropped when the benchmark ends.
func benchPostgres(b *testing.B) meta.Store {
	dsn := pgtest.FreshDatabase(b, "tapedeck_bench")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := meta.OpenPostgres(ctx, dsn, meta.WithTokenKey("sip benchmarks"))
	if err != nil {
		b.Fatal(err)
	}
	return st
}
