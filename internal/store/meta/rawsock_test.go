package meta

import (
	"testing"

	"github.com/tapedeck/tapedeck/internal/testutil/schedtrace"
)

// TestPostgresRepliesStayOutOfTheSyscallState: the catalog's PostgreSQL
// connections read and write without entering the scheduler's syscall
// state (package rawsock), which woke the runtime's monitor at each reply
// that found a cluster node idle.
func TestPostgresRepliesStayOutOfTheSyscallState(t *testing.T) {
	s := openPostgresTest(t)
	ctx := tctx(t)
	if _, err := s.EnsureDefaultAccount(ctx); err != nil {
		t.Fatal(err)
	}
	const queries = 10
	got := schedtrace.Syscalls(t, func() {
		for range queries {
			if _, err := s.ListAccounts(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}, "jackc/pgx")
	if len(got) > 0 {
		t.Fatalf("%d of the connection's reads and writes for %d queries went through the syscall state, e.g. %s", len(got), queries, got[0])
	}
}
